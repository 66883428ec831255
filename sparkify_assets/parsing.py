"""Turn raw lake files into staging rows, or into rejects that say why.

Every record of a file ends up in exactly one of the two: nothing is dropped silently. What is
clearly recoverable loads normally: a UTF-8 byte order mark, CRLF line endings, blank lines, an
object pretty-printed over several lines, several objects in one file or in a JSON array.

The JSON key of each column is derived from the table declaration (snake_case column,
camelCase key), so `tables.py` stays the one place that names the fields.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

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
_DECODER = json.JSONDecoder()


class RejectError(ValueError):
    """A record that cannot be staged; the message is the reason stored with it."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RejectError(f"{name} is not text: {json.dumps(value)[:40]}")
    value = str(value)
    if "\x00" in value:
        raise RejectError(f"{name} contains a NUL character")
    if len(value) > MAX_TEXT_BYTES // 4 and len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise RejectError(f"{name} is longer than {MAX_TEXT_BYTES} bytes")
    return value


def _integer(value: object, name: str, limit: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RejectError(f"{name} is not an integer: {json.dumps(value)[:40]}")
    if not -limit - 1 <= value <= limit:
        raise RejectError(f"{name} is out of range: {value}")
    return value


def _double(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RejectError(f"{name} is not a number: {json.dumps(value)[:40]}")
    value = float(value)
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
        self.columns = {c: [] for c in self.table.column_names}
        self.rejects = {c: [] for c in STAGING_REJECTS.column_names}
        self.files = {c: [] for c in STAGING_FILES.column_names}

    @property
    def rows(self) -> int:
        return len(self.columns[self.table.column_names[0]])

    @property
    def rejected(self) -> int:
        return len(self.rejects["reason"])

    def add_row(self, values: list, lineage: list) -> None:
        for name, value in zip(self.table.column_names, values + lineage, strict=True):
            self.columns[name].append(value)

    def add_reject(self, key: str, line: int, day: date | None, reason: str, raw: str) -> None:
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "\\x00")
        for name, value in zip(
            STAGING_REJECTS.column_names,
            (self.table.name, key, line, day, reason, raw[:RAW_TEXT_LIMIT]),
            strict=True,
        ):
            self.rejects[name].append(value)

    def add_file(self, key: str, day: date | None, version: str | None, size: int, counts: tuple) -> None:
        read, staged, rejected = (now - before for now, before in zip(self._counts(), counts, strict=True))
        for name, value in zip(
            STAGING_FILES.column_names,
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
    batch: ParsedBatch, key: str, data: bytes, day: date | None = None, version: str | None = None
) -> None:
    """Parse one lake file into `batch`: each record becomes a row or a reject, and the file's
    counts go to `batch.files` for reconciliation."""
    counts = batch._counts()
    try:
        _parse_records(batch, key, data, day)
    finally:
        batch.add_file(key, day, version, len(data), counts)


def _parse_records(batch: ParsedBatch, key: str, data: bytes, day: date | None) -> None:
    is_events = batch.table is STAGING_EVENTS
    make_row = _event_row if is_events else _song_row
    lineage = [key, None, day] if is_events else [key, None]
    if not data.strip():
        batch.records_read += 1
        batch.add_reject(key, 1, day, "empty file" if not data else "file holds only whitespace", "")
        return
    text, bad_bytes = _decode(data)
    for line, raw, value in _records(text):
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
            else:
                lineage[1] = line
                batch.add_row(row, lineage)


def parse_files(table: Table, files) -> ParsedBatch:
    """Parse (LakeFile, bytes) pairs of one staging table into one batch."""
    batch = ParsedBatch(table)
    for f, data in files:
        parse_file(batch, f.key, data, f.day, f.version)
    return batch
