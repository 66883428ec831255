"""The stream that feeds the paths: lake files, in order, cut at line ends into segments that
the fast path parses (in worker processes when there is enough to parse), with each file handed
to the careful path from the first segment the fast path cannot take; yields Arrow batches for
the warehouse in file order, then the rejects and the files' counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from sparkify_assets.parsing.careful import ParsedBatch, _parse_text, parse_file
from sparkify_assets.parsing.encoding import decode, strip_bom, unpack
from sparkify_assets.parsing.fast import Segment, parse_segments
from sparkify_assets.tables import STAGING_FILES, STAGING_REJECTS, Table

# A file is cut into segments of about this size, at line ends, so memory follows the segment
# and segments can be parsed in parallel.
SEGMENT_BYTES = 8 * 1024 * 1024
# Small files (song files) travel in groups: one task per group, not per file.
TASK_FILES = 2000


def line_cuts(data: bytes, size: int | None = None) -> list[tuple[int, int, int]]:
    """Cut `data` at line ends into pieces of about `size` bytes: (start, end, first line)."""
    size = size or SEGMENT_BYTES
    if len(data) <= size:  # a song file, or a small log file: one piece
        return [(0, len(data), 1)] if data else []
    cuts, start, line = [], 0, 1
    while start < len(data):
        cut = data.find(b"\n", start + size)
        end = len(data) if cut < 0 else cut + 1
        cuts.append((start, end, line))
        line += data.count(b"\n", start, end)
        start = end
    return cuts


# Parse in worker processes only when there is enough to parse to repay starting them (~2 s).
PARALLEL_MIN_BYTES = 64 * 1024 * 1024
# Arrow row groups are gathered up to this many rows before each insert into the warehouse.
APPEND_ROWS = 200_000


@dataclass(slots=True)
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
        body = strip_bom(body)
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
    text, bad_bytes = decode(state.body[seg.start :])
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


def _flush(table: Table, ready: list, force: bool = False) -> Iterator[tuple[Table, pa.Table]]:
    if ready and (force or sum(t.num_rows for t in ready) >= APPEND_ROWS):
        rows = pa.concat_tables([t for t in ready if t.num_rows]) if any(t.num_rows for t in ready) else None
        ready.clear()
        if rows is not None:
            yield table, rows
