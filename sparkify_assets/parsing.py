"""Turn raw lake files into staging rows, or into rejects that say why.

Every record of a file ends up in exactly one of the two: nothing is dropped silently, and no
content of a record can raise out of the parse (an unexpected error is that record's reject). What
is clearly recoverable loads normally: a UTF-8 byte order mark, CRLF line endings, blank lines, an
object pretty-printed over several lines, several objects in one file or in a JSON array, and a
gzip-compressed file (by its magic bytes, whatever its name). A file that is not UTF-8 JSON at all
(UTF-16, binary, another compression) is one reject that names the cause, on line 0.

Types are read as the engines read JSON (DESIGN.md section 2): a number or boolean in a text field
is its JSON text as written (`3.10` is '3.10', `true` is 'true'); a string with a lone surrogate
escape (`"\ud800"`), which no warehouse can store, is a reject.

The JSON key of each column is derived from the table declaration (snake_case column,
camelCase key), so `tables.py` stays the one place that names the fields.
"""

from __future__ import annotations

import gc
import gzip
import json
import math
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter

import pyarrow as pa
import pyarrow.compute as pc

from sparkify_assets import parsing_arrow
from sparkify_assets.tables import STAGING_EVENTS, STAGING_FILES, STAGING_REJECTS, STAGING_SONGS, Table

RAW_TEXT_LIMIT = 1000
# Redshift's VARCHAR(MAX) holds 65,535 bytes; longer text could not be loaded there.
MAX_TEXT_BYTES = 65535
# Events before 2000 or more than a day ahead of now cannot be real app events.
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
INT32 = 2**31 - 1
INT64 = 2**63 - 1

ARROW_TYPES = {
    "text": pa.string(),
    "hash": pa.string(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}

_WS = re.compile(r"[ \t\r\n]*")
# The line number of a reject that concerns the whole file (not UTF-8 JSON, not a lake file).
WHOLE_FILE_LINE = 0


class RejectError(ValueError):
    """A record that cannot be staged; the message is the reason stored with it."""


class _JsonFloat(float):
    """A JSON number with a fraction or exponent that remembers its text as written, so a text
    field stores '1.10' or '1E5' as the file has it (Python would print 1.1 and 100000.0)."""

    __slots__ = ("text",)


def _json_float(text: str) -> float:
    value = _JsonFloat(text)
    value.text = text
    return value


_DECODER = json.JSONDecoder(parse_float=_json_float)


def _shown(value: object) -> str:
    """A value as it reads in a reason: its JSON text, cut to 40 characters."""
    text = getattr(value, "text", None)
    if text is None:
        try:
            text = json.dumps(value)
        except (ValueError, TypeError, RecursionError):
            text = type(value).__name__
    return text[:40]


def _unexpected(exc: BaseException) -> str:
    """The reason for a record whose parse raised something no rule foresaw: still a reject."""
    # The message may quote the content: keep it storable (no lone surrogates, no NUL).
    message = " ".join(str(exc).split())[:80].encode("utf-8", "backslashreplace").decode("utf-8")
    message = message.replace("\x00", "\\x00")
    return f"record could not be read: {message}" if message else "record could not be read"


def _json_problem(exc: BaseException) -> str:
    """Why the JSON decoder gave up, for errors that are not a JSONDecodeError."""
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    if "digits" in str(exc):
        return "invalid JSON: a number has too many digits"
    return "invalid JSON: " + (" ".join(str(exc).split())[:60] or "unreadable value")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _json_text(value: object, name: str) -> str:
    """A number or boolean in a text field, as its JSON text (DESIGN.md section 2)."""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        text = getattr(value, "text", None)
        if text is None:  # NaN or Infinity: Python's json reads them, but they are not JSON
            raise RejectError(f"{name} is not a JSON value: {_shown(value)}")
        return text
    if isinstance(value, int):
        return str(value)
    raise RejectError(f"{name} is not text: {_shown(value)}")


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        value = _json_text(value, name)
    if "\x00" in value:
        raise RejectError(f"{name} contains a NUL character")
    if not value.isascii():
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            # json decodes "\ud800" to a lone surrogate, which UTF-8 (and every warehouse) refuses.
            raise RejectError(f"{name} holds an invalid Unicode escape (a lone surrogate)") from None
        if size > MAX_TEXT_BYTES:
            raise RejectError(f"{name} is longer than {MAX_TEXT_BYTES} bytes")
    elif len(value) > MAX_TEXT_BYTES:
        raise RejectError(f"{name} is longer than {MAX_TEXT_BYTES} bytes")
    return value


def _integer(value: object, name: str, limit: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RejectError(f"{name} is not an integer: {_shown(value)}")
    if not -limit - 1 <= value <= limit:
        raise RejectError(f"{name} is out of range: {_shown(value)}")
    return int(value)


def _double(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RejectError(f"{name} is not a number: {_shown(value)}")
    try:
        value = float(value)
    except OverflowError:  # an integer beyond double precision's range
        raise RejectError(f"{name} is not a finite number") from None
    if not math.isfinite(value):
        raise RejectError(f"{name} is not a finite number")
    return value


_CONVERTERS = {
    "text": _text,
    "integer": lambda v, n: _integer(v, n, INT32),
    "bigint": lambda v, n: _integer(v, n, INT64),
    "double": _double,
}


@dataclass(frozen=True)
class _Field:
    key: str
    column: str
    convert: object
    required: bool


def _fields(table: Table, camel: bool) -> tuple[_Field, ...]:
    return tuple(
        _Field(_camel(c.name) if camel else c.name, c.name, _CONVERTERS[c.type], c.not_null)
        for c in table.columns
        if c.name not in table.lineage_columns
    )


EVENT_FIELDS = _fields(STAGING_EVENTS, camel=True)
SONG_FIELDS = _fields(STAGING_SONGS, camel=False)


def _convert(obj: dict, fields: tuple[_Field, ...]) -> list:
    values = []
    for f in fields:
        if f.key not in obj:
            if f.required:
                raise RejectError(f"missing required field {f.key}")
            values.append(None)
            continue
        value = f.convert(obj[f.key], f.key)
        if value is None and f.required:
            raise RejectError(f"required field {f.key} is null")
        values.append(value)
    return values


def _event_row(obj: dict) -> list:
    if obj.get("userId") == "":
        obj = {**obj, "userId": None}
    row = _convert(obj, EVENT_FIELDS)
    ts = row[_EVENT_TS]
    if ts < MIN_TS_MS or ts > time.time() * 1000 + 86_400_000:
        raise RejectError(f"ts is out of range: {ts} is before 2000 or in the future")
    if row[_EVENT_PAGE] == "":
        raise RejectError("required field page is empty")
    return row


def _song_row(obj: dict) -> list:
    row = _convert(obj, SONG_FIELDS)
    if row[_SONG_ID] == "":
        raise RejectError("required field song_id is empty")
    return row


_REJECT_NAMES = tuple(STAGING_REJECTS.column_names)
_FILE_NAMES = tuple(STAGING_FILES.column_names)
_EVENT_TS = [f.column for f in EVENT_FIELDS].index("ts")
_EVENT_PAGE = [f.column for f in EVENT_FIELDS].index("page")
_SONG_ID = [f.column for f in SONG_FIELDS].index("song_id")


@dataclass
class ParsedBatch:
    """Rows and rejects parsed from one or more files of one staging table."""

    table: Table
    columns: dict[str, list] = field(default_factory=dict)
    rejects: dict[str, list] = field(default_factory=dict)
    files: dict[str, list] = field(default_factory=dict)
    records_read: int = 0

    def __post_init__(self) -> None:
        # Table.column_names builds a new list on every call: look the names up once per batch.
        self._names = tuple(self.table.column_names)
        self.columns = {c: [] for c in self._names}
        self.rejects = {c: [] for c in _REJECT_NAMES}
        self.files = {c: [] for c in _FILE_NAMES}

    @property
    def rows(self) -> int:
        return len(self.columns[self._names[0]])

    @property
    def rejected(self) -> int:
        return len(self.rejects["reason"])

    def add_row(self, values: list, lineage: list) -> None:
        for name, value in zip(self._names, values + lineage, strict=True):
            self.columns[name].append(value)

    def add_reject(self, key: str, line: int, day: date | None, reason: str, raw: str) -> None:
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "\\x00")
        for name, value in zip(
            _REJECT_NAMES,
            (self.table.name, key, line, day, reason, raw[:RAW_TEXT_LIMIT]),
            strict=True,
        ):
            self.rejects[name].append(value)

    def add_file(self, key: str, day: date | None, version: str | None, size: int, counts: tuple) -> None:
        read, staged, rejected = (now - before for now, before in zip(self._counts(), counts, strict=True))
        self.add_file_counts(key, day, version, size, read, staged, rejected)

    def add_file_counts(
        self,
        key: str,
        day: date | None,
        version: str | None,
        size: int,
        read: int,
        staged: int,
        rejected: int,
    ) -> None:
        for name, value in zip(
            _FILE_NAMES,
            (self.table.name, key, day, version, size, read, staged, rejected),
            strict=True,
        ):
            self.files[name].append(value)

    def _counts(self) -> tuple[int, int, int]:
        return self.records_read, self.rows, self.rejected

    def rows_table(self) -> pa.Table:
        return _arrow(self.table, self.columns)

    def rejects_table(self) -> pa.Table:
        return _arrow(STAGING_REJECTS, self.rejects)

    def files_table(self) -> pa.Table:
        return _arrow(STAGING_FILES, self.files)


def _arrow(table: Table, columns: dict[str, list]) -> pa.Table:
    return pa.table({c.name: pa.array(columns[c.name], type=ARROW_TYPES[c.type]) for c in table.columns})


def _records(text: str):
    """Yield (line_number, raw_text, value_or_error) for each JSON value in `text`.

    A value may span lines (pretty printing) or share a line with others. Text that is not JSON
    is yielded as an error covering the rest of its line, and reading resumes on the next line,
    so one bad line never hides the good lines after it.
    """
    pos, line, n = 0, 1, len(text)
    while True:
        start = _WS.match(text, pos).end()
        line += text.count("\n", pos, start)
        if start >= n:
            return
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            eol = text.find("\n", start)
            end = n if eol < 0 else eol
            # A last line cut off mid-record (no newline after it) is the classic truncated upload.
            truncated = eol < 0 and (exc.pos >= n - 1 or exc.msg.startswith("Unterminated"))
            reason = "truncated JSON at end of file" if truncated else f"invalid JSON: {exc.msg}"
            yield line, text[start:end], RejectError(reason)
        except (ValueError, RecursionError) as exc:
            # Not a JSONDecodeError: too deep a nesting, or an integer of more than 4,300 digits.
            eol = text.find("\n", start)
            end = n if eol < 0 else eol
            yield line, text[start:end], RejectError(_json_problem(exc))
        else:
            yield line, text[start:end], value
        line += text.count("\n", start, end)
        pos = end


def _decode(data: bytes) -> tuple[str, bool]:
    """Decode UTF-8, keeping invalid bytes as surrogates so their records can be rejected."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape"), True


def _has_bad_bytes(raw: str) -> bool:
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_file(
    batch: ParsedBatch,
    key: str,
    data: bytes,
    day: date | None = None,
    version: str | None = None,
    reject: str | None = None,
) -> None:
    """Parse one lake file into `batch`: each record becomes a row or a reject, and the file's
    counts go to `batch.files` for reconciliation. `reject`: the lake already found the file
    unloadable (a named pipe, a broken link, a stray name): one whole-file reject, `data` unread."""
    counts = batch._counts()
    try:
        _parse_records(batch, key, data, day, reject)
    finally:
        batch.add_file(key, day, version, len(data), counts)


GZIP_MAGIC = b"\x1f\x8b"
# The first bytes of a file tell UTF-16, binary and other compressions from JSON text.
SNIFF_BYTES = 4096
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed twice"),
    (b"PK\x03\x04", "a zip archive, not JSON (only gzip is read)"),
    (b"BZh", "bzip2-compressed (only gzip is read)"),
    (b"\xfd7zXZ\x00", "xz-compressed (only gzip is read)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed (only gzip is read)"),
    (b"PAR1", "a Parquet file, not JSON"),
)
# Bytes no JSON text holds outside a string, and no string holds unescaped.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\b")
BINARY_SHARE = 0.1


def unpack(data: bytes) -> tuple[bytes, str | None]:
    """A lake file's JSON bytes (gunzipped when gzip-compressed, by its magic bytes whatever its
    name, as Redshift's COPY … GZIP reads it), or the reason the whole file is rejected."""
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return b"", "file is gzip-compressed but cannot be decompressed (truncated or corrupt)"
    return data, _sniff(data[:SNIFF_BYTES])


def _sniff(head: bytes) -> str | None:
    """Why a file is not UTF-8 JSON text at all, from its first bytes; None when it may be. A few
    bad bytes in text are left to the records they are in ("invalid UTF-8 bytes")."""
    if head.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")):
        return "file is UTF-32 encoded, not UTF-8"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "file is UTF-16 encoded, not UTF-8"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"file is {what}"
    if b"\x00" in head and len(head) >= 2:
        even, odd = head[0::2], head[1::2]
        if (odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even)) or (
            even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd)
        ):
            return "file is UTF-16 encoded, not UTF-8"
    bad = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if not head.isascii():
        bad += len(head) - len(head.decode("utf-8", "ignore").encode("utf-8"))
    if bad > BINARY_SHARE * len(head):
        return "file is binary, not JSON"
    return None


def _preview(data: bytes) -> str:
    return data[:RAW_TEXT_LIMIT].decode("utf-8", "backslashreplace")


def _parse_records(
    batch: ParsedBatch, key: str, data: bytes, day: date | None, reject: str | None = None
) -> None:
    if reject is None:
        data, reject = unpack(data)
    if reject is not None:
        batch.records_read += 1
        batch.add_reject(key, WHOLE_FILE_LINE, day, reject, _preview(data))
        return
    if not data.strip():
        batch.records_read += 1
        batch.add_reject(key, 1, day, "empty file" if not data else "file holds only whitespace", "")
        return
    text, bad_bytes = _decode(data)
    _parse_text(batch, key, text, bad_bytes, day, 0)


def _parse_text(
    batch: ParsedBatch, key: str, text: str, bad_bytes: bool, day: date | None, offset: int
) -> None:
    """The careful path: every record of `text` (which starts on line `offset + 1`) to `batch`."""
    is_events = batch.table is STAGING_EVENTS
    make_row = _event_row if is_events else _song_row
    lineage = [key, None, day] if is_events else [key, None]
    for line, raw, value in _records(text):
        line += offset
        objects = value if isinstance(value, list) and value else [value]
        for obj in objects:
            batch.records_read += 1
            try:
                if isinstance(obj, RejectError):
                    raise obj
                if bad_bytes and _has_bad_bytes(raw):
                    raise RejectError("invalid UTF-8 bytes")
                if not isinstance(obj, dict):
                    raise RejectError(f"not a JSON object but {type(obj).__name__}")
                row = make_row(obj)
            except RejectError as exc:
                batch.add_reject(key, line, day, str(exc), raw)
            except Exception as exc:  # no content may fail the load: it is this record's reject
                batch.add_reject(key, line, day, _unexpected(exc), raw)
            else:
                lineage[1] = line
                batch.add_row(row, lineage)


def parse_files(table: Table, files) -> ParsedBatch:
    """Parse (LakeFile, bytes) pairs of one staging table into one batch."""
    batch = ParsedBatch(table)
    for f, data in files:
        parse_file(batch, f.key, data, f.day, f.version, getattr(f, "reject", None))
    return batch


# --- The fast path ------------------------------------------------------------------------
#
# Log segments of 64 KiB or more first try the vectorized path (`parsing_arrow`: pyarrow's JSON
# reader with an explicit schema), taken only when the segment's shape and the reader's own
# refusals prove the careful path would stage the same values, then checked by `_valid_columns`
# like the Python fast path below; any other segment goes through that Python path.
#
# The careful path above costs ~40 us per event in Python. Almost every line of a real lake is
# one complete JSON object whose values already have the declared types, so the fast path parses
# each line with orjson, takes the declared keys with one C call (itemgetter) and validates whole
# columns at once (type sets, Arrow's range-checked conversion). Anything unusual falls back, so
# the careful path stays the one definition of what is staged and why a record is rejected:
# - a line orjson cannot parse, that is not an object, or lacks a key: that line alone goes
#   through `json.loads` and the careful row checks, when it holds one complete JSON value;
# - a column check fails for a group of segments: the group is redone line by line carefully;
# - a line that is not one complete JSON value (pretty-printed objects, several values on one
#   line, invalid JSON) or bytes that are not UTF-8: the file, from that segment on, goes to
#   the careful scanner (`_parse_text`), which then sees exactly the text it always saw.

try:
    import orjson

    _fast_loads = orjson.loads
except ImportError:  # orjson is optional: the stdlib parser gives the same values, slower
    _fast_loads = None


def _stdlib_loads(line: bytes) -> object:
    # Decode first: json.loads(bytes) would skip a byte order mark (and guess UTF-16/32), where
    # the careful scanner rejects a line that starts with one.
    return json.loads(line.decode("utf-8"))


_fast_loads = _fast_loads or _stdlib_loads

# A file is cut into segments of about this size, at line ends, so memory follows the segment
# and segments can be parsed in parallel.
SEGMENT_BYTES = 8 * 1024 * 1024
# Small files (song files) travel in groups: one task per group, not per file.
TASK_FILES = 2000
_JSON_WS = " \t\r\n"
_NO_TYPE = type(None)
_STRING = pa.string()
_DOUBLE = pa.float64()
_ALLOWED_TYPES = {"text": {str}, "integer": {int}, "bigint": {int}, "double": {float, int}}


@dataclass(frozen=True)
class Segment:
    """Whole lines of one file: `data` starts on line `first_line` of the file."""

    key: str
    day: date | None
    data: bytes
    first_line: int
    start: int = 0  # byte offset of `data` in the file (after a byte order mark)


@dataclass
class SegmentResult:
    """What the fast path made of a segment; `ok` False: hand the file from here to the careful path."""

    ok: bool
    records_read: int = 0
    rows: int = 0
    rejects: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Spec:
    """Everything the fast path needs about one staging table, computed once."""

    table: Table
    fields: tuple[_Field, ...]
    keys: tuple[str, ...]
    allowed: tuple[frozenset, ...]
    arrow_types: tuple[pa.DataType, ...]
    make_row: object

    @property
    def arrow_schema(self) -> pa.Schema:
        """The declared fields by JSON key, for Arrow's reader."""
        return pa.schema(list(zip(self.keys, self.arrow_types, strict=True)))

    def index(self, column: str) -> int:
        return [f.column for f in self.fields].index(column)


def _spec(table: Table, fields: tuple[_Field, ...], make_row) -> _Spec:
    types = {c.name: c.type for c in table.columns}
    return _Spec(
        table=table,
        fields=fields,
        keys=tuple(f.key for f in fields),
        allowed=tuple(
            frozenset(_ALLOWED_TYPES[types[f.column]] | (set() if f.required else {_NO_TYPE})) for f in fields
        ),
        arrow_types=tuple(ARROW_TYPES[types[f.column]] for f in fields),
        make_row=make_row,
    )


_SPECS = {
    STAGING_EVENTS.name: _spec(STAGING_EVENTS, EVENT_FIELDS, _event_row),
    STAGING_SONGS.name: _spec(STAGING_SONGS, SONG_FIELDS, _song_row),
}


def _careful_line(spec: _Spec, text: str, line: int, out: list, lines: list, rejects: list) -> int | None:
    """One line holding one complete JSON value, as the careful scanner would treat it (it would
    parse the same value from the same position and end on this line). Returns the records
    read, or None when the line is not one complete JSON value."""
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    raw = text.strip(_JSON_WS)
    objects = value if isinstance(value, list) and value else [value]
    for obj in objects:
        try:
            if not isinstance(obj, dict):
                raise RejectError(f"not a JSON object but {type(obj).__name__}")
            row = spec.make_row(obj)
        except RejectError as exc:
            rejects.append((line, str(exc), raw))
        except Exception as exc:  # as in _parse_text: a reject, never a failed load
            rejects.append((line, _unexpected(exc), raw))
        else:
            out.append(tuple(row))
            lines.append(line)
    return len(objects)


def _scan(spec: _Spec, seg: Segment, careful: bool, out: list, lines: list) -> SegmentResult:
    """Append the rows of `seg` to `out` (values in field order) and their line numbers to
    `lines`; rows are only type-checked later, per column (`_columns`)."""
    try:
        seg.data.decode("utf-8")
    except UnicodeDecodeError:
        return SegmentResult(ok=False)
    raw_lines = seg.data.split(b"\n")
    # Text checks the columns do not make: a NUL (only writable as \u0000) or a value long
    # enough to exceed Redshift's limit (no longer than its line).
    careful = careful or b"\\u0000" in seg.data or max(map(len, raw_lines)) > MAX_TEXT_BYTES // 4
    loads, getter = _fast_loads, itemgetter(*spec.keys)
    if not careful:
        whole = _whole_segment(raw_lines, loads, getter)
        if whole is not None:
            out.extend(whole)
            lines.extend(range(seg.first_line, seg.first_line + len(whole)))
            return SegmentResult(ok=True, records_read=len(whole), rows=len(whole))
    append, line_append = out.append, lines.append
    result = SegmentResult(ok=True)
    read = 0
    for number, raw in enumerate(raw_lines, seg.first_line):
        if not careful:
            try:
                obj = loads(raw)
            except (ValueError, RecursionError):
                obj = None
            if type(obj) is dict:
                try:
                    values = getter(obj)
                except KeyError:
                    pass
                else:
                    append(values)
                    line_append(number)
                    read += 1
                    continue
        if not raw.strip(_JSON_WS.encode()):
            continue
        n = _careful_line(spec, raw.decode("utf-8"), number, out, lines, result.rejects)
        if n is None:
            return SegmentResult(ok=False)
        read += n
    result.records_read = read
    result.rows = read - len(result.rejects)
    return result


def _whole_segment(raw_lines: list[bytes], loads, getter) -> list[tuple] | None:
    """The common case without a Python loop: every line is one object holding every key (the
    last, empty piece after the final newline aside). None if any line is anything else: then
    `_scan` goes line by line. Not a dict: itemgetter raises TypeError; a missing key, KeyError."""
    if raw_lines and not raw_lines[-1]:
        raw_lines = raw_lines[:-1]
    try:
        return list(map(getter, map(loads, raw_lines)))
    except (ValueError, TypeError, KeyError, RecursionError):
        return None


def _columns(spec: _Spec, rows: list[tuple]) -> list[pa.Array] | None:
    """The rows as Arrow columns, or None if any value needs the careful path: an unexpected
    type, or a rule `_valid_columns` checks."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(spec.fields)
    arrays = []
    for allowed, arrow_type, values in zip(spec.allowed, spec.arrow_types, columns, strict=True):
        # Arrow converts numbers leniently (1.5 to int32 1, true to 1.0): check their types first.
        # It refuses anything but str (or bytes, which JSON cannot produce) for a string column.
        if arrow_type != _STRING and not set(map(type, values)) <= allowed:
            return None
        try:
            arrays.append(pa.array(values, type=arrow_type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeError):
            return None
    return _valid_columns(spec, arrays)


def _valid_columns(spec: _Spec, arrays: list[pa.Array]) -> list[pa.Array] | None:
    """Typed columns (in field order) as staged, or None when any value meets a rule of
    `_event_row`/`_song_row` (a NULL in a required field, an empty page or song_id, a ts out of
    range, a double that is not finite): those rows go to the careful path, which says why. Both
    fast paths (Python objects, Arrow's reader) end here, so these checks exist once."""
    arrays = list(arrays)
    for i, (f, arrow_type) in enumerate(zip(spec.fields, spec.arrow_types, strict=True)):
        array = arrays[i]
        if f.column == "user_id" and pc.any(pc.equal(array, "")).as_py():
            array = arrays[i] = pc.if_else(pc.equal(array, ""), pa.scalar(None, _STRING), array)
        if f.column in ("page", "song_id") and pc.any(pc.equal(array, "")).as_py():
            return None
        if f.required and array.null_count:
            return None
        # orjson refuses NaN and infinities, but the stdlib fallback (and Arrow's reader) read them.
        if (
            arrow_type == _DOUBLE
            and array.null_count < len(array)
            and not pc.all(pc.is_finite(array)).as_py()
        ):
            return None
    if spec.table is STAGING_EVENTS and len(arrays[_EVENT_TS]):
        low, high = pc.min_max(arrays[_EVENT_TS]).values()
        if low.as_py() < MIN_TS_MS or high.as_py() > time.time() * 1000 + 86_400_000:
            return None
    return arrays


def parse_segments(
    table_name: str, segments: list[Segment], careful: bool = False
) -> tuple[pa.Table, list[SegmentResult]]:
    """Parse segments of one staging table into one Arrow table (lineage columns included) and
    one result per segment. Runs in worker processes: arguments and results are picklable."""
    # The rows are acyclic tuples of strings and numbers: the cyclic garbage collector would
    # only re-traverse them, again and again as they pile up (40% of the time, measured).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse_segments(table_name, segments, careful)
    finally:
        if collecting:
            gc.enable()


def _parse_segments(
    table_name: str, segments: list[Segment], careful: bool
) -> tuple[pa.Table, list[SegmentResult]]:
    """Each segment through Arrow's reader when it proves clean (`parsing_arrow`), the others,
    in runs of consecutive segments, through the Python paths; pieces kept in segment order."""
    spec = _SPECS[table_name]
    if careful or spec.table is not STAGING_EVENTS or not parsing_arrow.enabled():
        return _python_segments(spec, segments, careful)
    pieces: list[pa.Table] = []
    results: list[SegmentResult] = []
    others: list[Segment] = []

    def flush() -> None:
        if others:
            rows, done = _python_segments(spec, others, careful)
            pieces.append(rows)
            results.extend(done)
            others.clear()

    for seg in segments:
        arrays = parsing_arrow.read_segment(seg.data, spec.arrow_schema)
        arrays = None if arrays is None else _valid_columns(spec, arrays)
        if arrays is None:
            others.append(seg)
            continue
        flush()
        n = len(arrays[0])
        lines = pa.array(range(seg.first_line, seg.first_line + n), pa.int32())
        keys = pa.array([seg.key], pa.string()).take(pa.array([0] * n, pa.int32()))
        days = pa.array([seg.day], pa.date32()).take(pa.array([0] * n, pa.int32()))
        pieces.append(pa.Table.from_arrays([*arrays, keys, lines, days], names=spec.table.column_names))
        results.append(SegmentResult(ok=True, records_read=n, rows=n))
    flush()
    if not pieces:
        return _python_segments(spec, [], careful)
    return (pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]), results


def _python_segments(
    spec: _Spec, segments: list[Segment], careful: bool
) -> tuple[pa.Table, list[SegmentResult]]:
    """The Python fast path (orjson per line, checks per column), careful line by line where it
    must: see "The fast path" above."""
    rows: list[tuple] = []
    lines: list[int] = []
    keys: list[str] = []
    days: list[date | None] = []
    results = []
    for seg in segments:
        before = len(rows)
        result = _scan(spec, seg, careful, rows, lines)
        if not result.ok:
            del rows[before:], lines[before:]
        keys.extend([seg.key] * (len(rows) - before))
        days.extend([seg.day] * (len(rows) - before))
        results.append(result)
    arrays = _columns(spec, rows)
    if arrays is None:
        if careful:
            # Rows the careful line checks passed but the columns refuse: hand every file to the
            # careful scanner (ParsedBatch) rather than fail the load.
            empty = _python_segments(spec, [], careful=True)[0]
            return empty, [SegmentResult(ok=False) for _ in segments]
        return _python_segments(spec, segments, careful=True)
    arrays += [pa.array(keys, pa.string()), pa.array(lines, pa.int32())]
    if spec.table is STAGING_EVENTS:
        arrays.append(pa.array(days, pa.date32()))
    return pa.Table.from_arrays(arrays, names=spec.table.column_names), results


def line_cuts(data: bytes, size: int | None = None) -> list[tuple[int, int, int]]:
    """Cut `data` at line ends into pieces of about `size` bytes: (start, end, first line)."""
    size = size or SEGMENT_BYTES
    cuts, start, line = [], 0, 1
    while start < len(data):
        cut = data.find(b"\n", start + size)
        end = len(data) if cut < 0 else cut + 1
        cuts.append((start, end, line))
        line += data.count(b"\n", start, end)
        start = end
    return cuts


# --- Streaming a list of files through the fast path, in order -------------------------------

# Parse in worker processes only when there is enough to parse to repay starting them (~2 s).
PARALLEL_MIN_BYTES = 64 * 1024 * 1024
# Arrow row groups are gathered up to this many rows before each insert into the warehouse.
APPEND_ROWS = 200_000


@dataclass
class _OpenFile:
    """A file whose segments are being parsed: its bytes stay until its last segment is back."""

    file: object
    body: bytes
    size: int
    segments_left: int
    read: int = 0
    staged: int = 0
    rejected: int = 0
    handed_over: bool = False
    whole: bool = False  # empty, or rejected as a whole: the careful path takes the file at once


@dataclass
class _Task:
    segments: list[Segment]
    files: list[_OpenFile]
    future: object


class StreamTotals(dict):
    """Files, records read, rows staged and rows rejected so far."""

    def __init__(self) -> None:
        super().__init__(files=0, records_read=0, rows_staged=0, rows_rejected=0)


def parse_stream(
    table: Table, files, totals: StreamTotals, pool=None, workers: int = 1
) -> Iterator[tuple[Table, pa.Table]]:
    """Parse (LakeFile, bytes) pairs of one staging table and yield (target table, Arrow rows) in
    file order: the staged rows, then the rejects and file counts. `pool` (an Executor with
    `workers` processes) parses segments elsewhere; results are consumed in submission order,
    so the rows and their order are the same with or without it."""
    side = ParsedBatch(table)  # rejects and file counts, which stay small
    pending: list[_Task] = []
    ready: list[pa.Table] = []
    task = _Task([], [], None)
    task_bytes = 0

    def submit() -> Iterator[tuple[Table, pa.Table]]:
        nonlocal task, task_bytes
        if task.segments:
            args = (table.name, task.segments, False)
            task.future = pool.submit(parse_segments, *args) if pool else _Done(parse_segments(*args))
            pending.append(task)
            task, task_bytes = _Task([], [], None), 0
        # Keep every worker busy with one task queued behind it, and no more (memory).
        while len(pending) > (2 * workers if pool else 0):
            yield from _finish(table, pending.pop(0), side, ready, totals)

    for f, data in files:
        totals["files"] += 1
        day = getattr(f, "day", None)
        reject = getattr(f, "reject", None)
        body = b""
        if reject is None:
            body, reject = unpack(data)  # gzip content is parsed decompressed
        body = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
        # Empty, whitespace only or not JSON text at all: one empty segment keeps the file's
        # place for the careful path's whole-file reject.
        whole = reject is not None or not body.strip()
        cuts = [(0, 0, 1)] if whole else line_cuts(body)
        state = _OpenFile(f, data if whole else body, len(data), len(cuts), whole=whole)
        for start, end, first_line in cuts:
            task.segments.append(Segment(f.key, day, body[start:end], first_line, start))
            task.files.append(state)
            task_bytes += end - start
            if len(task.segments) >= TASK_FILES or task_bytes >= SEGMENT_BYTES:
                yield from submit()
    yield from submit()
    while pending:
        yield from _finish(table, pending.pop(0), side, ready, totals)
    yield from _flush(table, ready, force=True)
    yield STAGING_REJECTS, side.rejects_table()
    yield STAGING_FILES, side.files_table()


class _Done:
    """A result computed in this process, shaped like a Future."""

    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


def _finish(table: Table, task: _Task, side: ParsedBatch, ready: list, totals: StreamTotals):
    rows, results = task.future.result()
    offset = 0
    for seg, state, result in zip(task.segments, task.files, results, strict=True):
        if state.whole:
            ready.append(rows.slice(0, offset))
            rows, offset = rows.slice(offset), 0
            _careful_file(table, state.file, state.body, side, ready, totals)
            continue
        if state.handed_over:
            # The careful path already parsed this file from an earlier segment on.
            ready.append(rows.slice(0, offset))
            rows, offset = rows.slice(offset + result.rows), 0
        elif not result.ok:
            state.handed_over = True
            ready.append(rows.slice(0, offset))
            rows, offset = rows.slice(offset), 0
            _careful_tail(table, state, seg, side, ready)
        else:
            offset += result.rows
            state.read += result.records_read
            state.staged += result.rows
            state.rejected += len(result.rejects)
            for line, reason, raw in result.rejects:
                side.add_reject(seg.key, line, seg.day, reason, raw)
        state.segments_left -= 1
        if state.segments_left == 0:
            f = state.file
            side.add_file_counts(
                f.key, seg.day, f.version, state.size, state.read, state.staged, state.rejected
            )
            totals["records_read"] += state.read
            totals["rows_staged"] += state.staged
            totals["rows_rejected"] += state.rejected
            state.body = b""
    ready.append(rows)
    yield from _flush(table, ready)


def _careful_tail(table: Table, state: _OpenFile, seg: Segment, side: ParsedBatch, ready: list) -> None:
    """The careful scanner over the rest of the file, from the first line of `seg`: every line
    before it held complete values, so the scanner would start there in the same state."""
    text, bad_bytes = _decode_tail(state.body[seg.start :])
    batch = ParsedBatch(table)
    _parse_text(batch, seg.key, text, bad_bytes, seg.day, seg.first_line - 1)
    ready.append(batch.rows_table())
    _merge_rejects(side, batch)
    state.read += batch.records_read
    state.staged += batch.rows
    state.rejected += batch.rejected


def _careful_file(table: Table, f, data: bytes, side: ParsedBatch, ready: list, totals: StreamTotals) -> None:
    batch = ParsedBatch(table)
    parse_file(batch, f.key, data, getattr(f, "day", None), f.version, getattr(f, "reject", None))
    ready.append(batch.rows_table())
    _merge_rejects(side, batch)
    for name, values in batch.files.items():
        side.files[name].extend(values)
    totals["records_read"] += batch.records_read
    totals["rows_staged"] += batch.rows
    totals["rows_rejected"] += batch.rejected


def _merge_rejects(side: ParsedBatch, batch: ParsedBatch) -> None:
    for name, values in batch.rejects.items():
        side.rejects[name].extend(values)


def _decode_tail(data: bytes) -> tuple[str, bool]:
    """`_decode` without the byte order mark rule: that applies to a file's first byte only."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape"), True


def _flush(table: Table, ready: list, force: bool = False) -> Iterator[tuple[Table, pa.Table]]:
    if ready and (force or sum(t.num_rows for t in ready) >= APPEND_ROWS):
        rows = pa.concat_tables([t for t in ready if t.num_rows]) if any(t.num_rows for t in ready) else None
        ready.clear()
        if rows is not None:
            yield table, rows
