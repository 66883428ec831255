"""The careful path: every record of a file, one by one, to a staged row or a reject that says
why, with its file and line.

Every record of a file ends up in exactly one of the two: nothing is dropped silently, and no
content of a record can raise out of the parse (an unexpected error is that record's reject). What
is clearly recoverable loads normally: a UTF-8 byte order mark, CRLF line endings, blank lines, an
object pretty-printed over several lines, several objects in one file or in a JSON array, and a
gzip-compressed file. A file that is not UTF-8 JSON at all is one reject on line 0
(`encoding.unpack`). What a record must hold is `rules`; this module finds the records.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from sparkify_assets.parsing import rules
from sparkify_assets.parsing.encoding import decode, strip_bom, unpack
from sparkify_assets.parsing.rules import (
    _DECODER,
    ARROW_TYPES,
    RAW_TEXT_LIMIT,
    WHOLE_FILE_LINE,
    RejectError,
    _json_problem,
    _unexpected,
)
from sparkify_assets.tables import STAGING_EVENTS, STAGING_FILES, STAGING_REJECTS, Table

_WS = re.compile(r"[ \t\r\n]*")
_REJECT_NAMES = tuple(STAGING_REJECTS.column_names)
_FILE_NAMES = tuple(STAGING_FILES.column_names)


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
        self._file_columns = tuple(self.files[c] for c in _FILE_NAMES)

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
        # Once per file (300k song files): appends without a loop over the names.
        table, keys, days, versions, sizes, reads, stageds, rejecteds = self._file_columns
        table.append(self.table.name)
        keys.append(key)
        days.append(day)
        versions.append(version)
        sizes.append(size)
        reads.append(read)
        stageds.append(staged)
        rejecteds.append(rejected)

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
    text, bad_bytes = decode(strip_bom(data))
    _parse_text(batch, key, text, bad_bytes, day, 0)


def _parse_text(
    batch: ParsedBatch, key: str, text: str, bad_bytes: bool, day: date | None, offset: int
) -> None:
    """The careful path: every record of `text` (which starts on line `offset + 1`) to `batch`."""
    is_events = batch.table is STAGING_EVENTS
    # Looked up on the module at each call, so that a test can inject a failing rule.
    make_row = rules._event_row if is_events else rules._song_row
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
