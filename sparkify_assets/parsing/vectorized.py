"""The vectorized path: a segment of log lines read by pyarrow's JSON reader (C++, explicit schema),
taken only when the reader's values are provably what the careful parser would give.

This module holds no acceptance rule. It reads a segment into typed Arrow columns and returns them
only when nothing about the segment could make the careful path decide differently; the caller
then applies the same column checks as the Python fast path (`rules._valid_columns`: required
fields, empty page, empty userId, finite doubles, ts range), and any segment refused here or there
goes through the Python fast path (`fast`), which ends in the careful parser. What makes a segment
unprovable, and why (checked against pyarrow 21 and 26; test_parse_vectorized pins each for
the installed one):

- not UTF-8, or a `\\u0000` escape: the careful path rejects those records;
- any line not exactly one object from its first byte to its last (`{` ... `}`): blank or
  whitespace lines, CRLF, a byte order mark, pretty-printed or concatenated values, arrays (the
  reader skips blank lines and reads `{..} {..}` as two rows, so line numbers would shift);
- a line longer than `LINE_LIMIT` bytes: a number of 4,300 digits or nesting deep enough for
  Python's recursion limit (both rejects in the careful path) need more bytes than that, and no
  text value can reach Redshift's 65,535-byte limit;
- the reader's own refusals, which cover the rest: a number or boolean in a text field (the
  careful path stores its JSON text as written, e.g. '3.10', '1E5', 'true'), a fraction or
  exponent in an integer field (1.0 and 1e2 are integers to the careful path), an integer out of
  range, a duplicate key (also when one spelling is escaped), a lone surrogate escape, control
  characters in strings, invalid JSON;
- a row count that differs from the line count;
- a key the schema does not declare: the reader would drop it unseen, and its value may be one
  that the readers read differently (Arrow takes `Inf`, `-Inf` and `-NaN`, Python's json does
  not, so the careful path rejects the line as invalid JSON). The lake's events carry exactly
  the declared keys, so this costs clean segments nothing;
- a double -0.0: an integer `-0` is the double -0.0 to the reader and the integer 0 (staged 0.0)
  to Python's json, and the two cannot be told apart after the read.
NaN and Infinity in declared doubles reach the finite-number check; in declared text or integer
fields the reader refuses them.
"""

from __future__ import annotations

import math
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

# Segments shorter than this go to the Python fast path: the reader's per-call cost would exceed
# the Python loop's (song files, small test files).
MIN_BYTES = 64 * 1024
LINE_LIMIT = 1024

_READ_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, UnicodeError, ValueError)


def enabled() -> bool:
    """SPARKIFY_ARROW_READER=0 turns this path off (the Python paths then stage every segment):
    for before/after measurements and as a way out should the reader ever misbehave."""
    return os.environ.get("SPARKIFY_ARROW_READER", "1") != "0"


def _provable_shape(data: bytes) -> int | None:
    """The number of lines when every line is one `{...}` of at most LINE_LIMIT bytes; else None."""
    body = data[:-1] if data.endswith(b"\n") else data
    if not body.startswith(b"{") or not body.endswith(b"}"):
        return None
    # The lines' lengths by Arrow's split (C++, no bytes object per line): the whole body as one
    # binary value over the same memory, split at newlines.
    whole = pa.Array.from_buffers(
        pa.large_binary(), 1, [None, pa.array([0, len(body)], pa.int64()).buffers()[1], pa.py_buffer(body)]
    )
    lengths = pc.binary_length(pc.list_flatten(pc.split_pattern(whole, b"\n")))
    # Each newline sits between a '}' and a '{': no blank, whitespace-only or CRLF line.
    if body.count(b"}\n{") != len(lengths) - 1 or pc.max(lengths).as_py() > LINE_LIMIT:
        return None
    return len(lengths)


def read_segment(data: bytes, schema: pa.Schema) -> list[pa.Array] | None:
    """The declared fields of every line of `data` as Arrow arrays (in schema order), or None
    when the careful parser might decide any line differently (module docstring)."""
    if len(data) < MIN_BYTES or b"\\u0000" in data:
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    lines = _provable_shape(data)
    if lines is None:
        return None
    try:
        table = pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pj.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="error", newlines_in_values=False
            ),
        )
    except _READ_ERRORS:
        return None
    if table.num_rows != lines:
        return None
    arrays = [table.column(name).combine_chunks() for name in schema.names]
    return None if any(_has_negative_zero(a) for a in arrays) else arrays


def _has_negative_zero(values: pa.Array) -> bool:
    if not pa.types.is_floating(values.type):
        return False
    # Zeros are rare (a length or registration of 0), so their signs are read in Python.
    zeros = pc.filter(values, pc.equal(values, 0.0)).to_pylist()
    return any(math.copysign(1.0, z) < 0 for z in zeros)
