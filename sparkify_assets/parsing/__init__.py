"""Turn raw lake files into staging rows, or into rejects that say why, with their file and line.

One job per module:
- `rules`: the acceptance rules (what a record must hold, the reason it is rejected), written
  once: per record for the careful path, per column for the fast paths;
- `encoding`: a file's bytes as JSON text (gzip, whole files that are not UTF-8 JSON, decoding);
- `careful`: every record of a file, one by one, to a row or a reject (the reference);
- `vectorized`: pyarrow's JSON reader over a segment, taken only when provably what the careful
  path would stage;
- `fast`: a segment to Arrow columns (the vectorized reader, else orjson per line and column
  checks), handing anything in doubt to the careful path;
- `stream`: lake files cut into segments, fed to the fast path (in worker processes when worth
  it) and to the careful path, yielding Arrow batches in file order.
"""

from sparkify_assets.parsing.careful import ParsedBatch, parse_file, parse_files
from sparkify_assets.parsing.encoding import GZIP_MAGIC, unpack
from sparkify_assets.parsing.fast import Segment, SegmentResult, parse_segments
from sparkify_assets.parsing.rules import (
    _SPECS,
    ARROW_TYPES,
    EVENT_FIELDS,
    RAW_TEXT_LIMIT,
    SONG_FIELDS,
    WHOLE_FILE_LINE,
    RejectError,
    _camel,
    _event_row,
    _song_row,
)
from sparkify_assets.parsing.stream import PARALLEL_MIN_BYTES, StreamTotals, line_cuts, parse_stream

__all__ = [
    "_SPECS",
    "ARROW_TYPES",
    "EVENT_FIELDS",
    "GZIP_MAGIC",
    "PARALLEL_MIN_BYTES",
    "RAW_TEXT_LIMIT",
    "SONG_FIELDS",
    "WHOLE_FILE_LINE",
    "ParsedBatch",
    "RejectError",
    "Segment",
    "SegmentResult",
    "StreamTotals",
    "_camel",
    "_event_row",
    "_song_row",
    "line_cuts",
    "parse_file",
    "parse_files",
    "parse_segments",
    "parse_stream",
    "unpack",
]
