"""The fast path: segments of lake files (whole lines) to Arrow columns, without the careful
parser's loop over records, deciding nothing the careful path would decide differently.

Log segments of 64 KiB or more first try the vectorized path (`vectorized`: pyarrow's JSON
reader with an explicit schema), taken only when the segment's shape and the reader's own
refusals prove the careful path would stage the same values, then checked by `rules._valid_columns`
like the Python fast path below; any other segment goes through that Python path.

The careful path (`careful`) costs ~40 us per event in Python. Almost every line of a real lake is
one complete JSON object whose values already have the declared types, so the fast path parses
each line with orjson, takes the declared keys with one C call (itemgetter) and validates whole
columns at once (type sets, Arrow's range-checked conversion). Anything unusual falls back, so
the careful path stays the one definition of what is staged and why a record is rejected:
- a line orjson cannot parse, that is not an object, or lacks a key: that line alone goes
  through `json.loads` and the careful row checks, when it holds one complete JSON value;
- a column check fails for a group of segments: the group is redone line by line carefully;
- a line that is not one complete JSON value (pretty-printed objects, several values on one
  line, invalid JSON) or bytes that are not UTF-8: the file, from that segment on, goes to
  the careful scanner (`careful._parse_text`), which then sees exactly the text it always saw.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import NamedTuple

import pyarrow as pa

from sparkify_assets.parsing import vectorized
from sparkify_assets.parsing.rules import (
    _DECODER,
    _SPECS,
    _STRING,
    MAX_TEXT_BYTES,
    RejectError,
    _Spec,
    _unexpected,
    _valid_columns,
)
from sparkify_assets.tables import STAGING_EVENTS

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


_JSON_WS = " \t\r\n"


class Segment(NamedTuple):
    """Whole lines of one file: `data` starts on line `first_line` of the file. (A tuple: one is
    made per song file, and a frozen dataclass's __init__ cost more than the file's parse.)"""

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


def _one_line_segments(
    spec: _Spec, segments: list[Segment], out: list, lines: list
) -> list[SegmentResult] | None:
    """Many one-line segments (song files: one object each) in one pass, with what `_scan` makes
    of each when every one is a single line holding one object with every key: one row each.
    None otherwise, with nothing appended: then `_scan` takes them one by one. The checks are
    `_scan`'s, made once over all the lines (UTF-8, no `\\u0000`, line length)."""
    if len(segments) < 2:
        return None
    bodies = []
    for seg in segments:
        data = seg.data[:-1] if seg.data.endswith(b"\n") else seg.data
        if not data or b"\n" in data:
            return None
        bodies.append(data)
    joined = b"\n".join(bodies)
    if b"\\u0000" in joined or max(map(len, bodies)) > MAX_TEXT_BYTES // 4:
        return None
    if not joined.isascii():
        try:
            joined.decode("utf-8")  # the "\n" between files cannot complete a broken sequence
        except UnicodeDecodeError:
            return None
    rows = _whole_segment(bodies, _fast_loads, itemgetter(*spec.keys))
    if rows is None:
        return None
    out.extend(rows)
    lines.extend(seg.first_line for seg in segments)
    return [SegmentResult(ok=True, records_read=1, rows=1) for _ in segments]


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
    """Each segment through Arrow's reader when it proves clean (`vectorized`), the others,
    in runs of consecutive segments, through the Python paths; pieces kept in segment order."""
    spec = _SPECS[table_name]
    if careful or spec.table is not STAGING_EVENTS or not vectorized.enabled():
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
        arrays = vectorized.read_segment(seg.data, spec.arrow_schema)
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
    results = None if careful else _one_line_segments(spec, segments, rows, lines)
    if results is not None:
        keys = [seg.key for seg in segments]
        days = [seg.day for seg in segments]
    else:
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
