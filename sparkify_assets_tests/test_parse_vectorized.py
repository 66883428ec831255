"""The vectorized staging path (Arrow's JSON reader, `vectorized`) against the careful parser:
for the bad-input corpus, the shipped sample, generated lakes damaged at random lines and every
property-based input of test_parse_properties.py, the staged rows, the rejects (key, line,
reason, raw) and the file counts are identical (`assert_accounted` compares the careful
`parse_files` with `parse_stream`, which now tries Arrow first). Each test also checks that the
reader did take segments, so the comparison is not vacuous, and where damage is injected, that
some segments were refused and went careful.

The property tests run here a second time with `vectorized.MIN_BYTES` at 0, so that their
small inputs reach the reader (in production only segments of 64 KiB or more do)."""

from __future__ import annotations

import json
import random
import re
from datetime import date
from pathlib import Path

import pytest

from sparkify_assets import parsing
from sparkify_assets.generate import LakeSpec, generate_lake
from sparkify_assets.generator_output import LocalSink
from sparkify_assets.parsing import stream, vectorized
from sparkify_assets.resources.lake import LakeFile
from sparkify_assets.tables import STAGING_EVENTS, STAGING_SONGS
from sparkify_assets_tests.conftest import SAMPLE

# The property tests of issue 14, collected again in this module (its fixture lowers MIN_BYTES).
from sparkify_assets_tests.test_parse_properties import (  # noqa: F401
    assert_accounted,
    test_a_number_or_boolean_in_a_text_field_is_its_json_text,
    test_any_json_value_as_a_record,
    test_any_json_value_in_one_event_field,
    test_any_json_values_in_an_event,
    test_arbitrary_bytes,
    test_damaged_sample_log_file,
)

BAD_LAKE = Path(__file__).parent / "bad_lake"


@pytest.fixture(autouse=True, scope="module")
def every_segment_tries_the_reader():
    before = vectorized.MIN_BYTES
    vectorized.MIN_BYTES = 0
    yield
    vectorized.MIN_BYTES = before


@pytest.fixture
def taken(monkeypatch):
    """Counts the segments the reader took and refused (the real function runs)."""
    counts = {"taken": 0, "refused": 0}
    real = vectorized.read_segment

    def counting(data, schema):
        arrays = real(data, schema)
        counts["taken" if arrays is not None else "refused"] += 1
        return arrays

    monkeypatch.setattr(vectorized, "read_segment", counting)
    return counts


def _lake_files(root: Path, area: str) -> list[tuple[LakeFile, bytes]]:
    files = []
    for path in sorted((root / area).rglob("*.json")):
        key = path.relative_to(root).as_posix()
        day = date.fromisoformat(path.name[:10]) if area == "log_data" else None
        data = path.read_bytes()
        files.append((LakeFile(key, len(data), "v1", day), data))
    return files


@pytest.mark.parametrize("root", [BAD_LAKE, SAMPLE], ids=["bad_lake", "sample"])
def test_corpus_and_sample_stage_and_reject_the_same_records_on_both_paths(root, taken):
    out = assert_accounted(STAGING_EVENTS, _lake_files(root, "log_data"))
    assert out["rows"]
    assert_accounted(STAGING_SONGS, _lake_files(root, "song_data"))
    assert taken["taken"] > 0
    if root is BAD_LAKE:
        assert out["rejects"] and taken["refused"] > 0


def test_a_clean_segment_is_read_whole_by_the_reader():
    data = (SAMPLE / "log_data/2018/11/2018-11-01-events.json").read_bytes()
    arrays = vectorized.read_segment(data, parsing._SPECS["staging_events"].arrow_schema)
    assert arrays is not None and len(arrays[0]) == len(data.splitlines())


# Literals Arrow's reader and Python's json read differently, in a field of the schema and under
# a key it does not declare (which the reader drops without looking): (where, literal, staged).
_READERS_DIFFER = [
    ("x", b"Inf", False),
    ("x", b"-Inf", False),
    ("x", b"-NaN", False),
    ("x", b'[1,{"y":-Inf}]', False),
    ("x", b"Infinity", True),  # Python's json reads it, and "x" is not staged
    ("x", b"-0", True),
    ("length", b"-0", True),
    ("registration", b"-0", True),
]


DAY1_KEY = "log_data/2018/11/2018-11-01-events.json"


def _sample_day_damaged(edit) -> tuple[int, bytes, list[bytes]]:
    """The sample's first day with `edit` applied to its first NextSong line (its length is a
    double): that line's index, the file's bytes and its lines."""
    lines = (SAMPLE / DAY1_KEY).read_bytes().splitlines()
    n = next(i for i, line in enumerate(lines) if b'"page":"NextSong"' in line)
    lines[n] = edit(lines[n])
    return n, b"\n".join(lines) + b"\n", lines


def _as_files(data: bytes) -> list[tuple[LakeFile, bytes]]:
    return [(LakeFile(DAY1_KEY, len(data), "v1", date(2018, 11, 1)), data)]


@pytest.mark.parametrize("where, literal, staged", _READERS_DIFFER)
def test_literals_the_readers_read_differently_go_careful(where, literal, staged, taken):
    """A segment holding one of them is not taken by the reader; the careful path decides: the
    non-JSON literals are rejects, an integer -0 in a double field is staged as 0.0 (not -0.0)."""

    def edit(line: bytes) -> bytes:  # the bad literal under `where`
        if where == "x":
            return line[:-1] + b',"x":' + literal + b"}"
        field = b'"' + where.encode() + b'":'
        return re.sub(re.escape(field) + rb"[^,]+", lambda _: field + literal, line)

    n, damaged, lines = _sample_day_damaged(edit)
    out = assert_accounted(STAGING_EVENTS, _as_files(damaged))
    assert taken["taken"] == 0 and taken["refused"] >= 1
    row = [r for r in out["rows"] if r["source_line"] == n + 1]
    rejects = [r for r in out["rejects"] if r["source_line"] == n + 1]
    assert (len(row), len(rejects)) == ((1, 0) if staged else (0, 1))
    assert len(out["rows"]) + len(out["rejects"]) == len(lines)
    if staged and where != "x":
        assert repr(row[0][where]) == "0.0"
    if not staged:
        assert rejects[0]["reason"].startswith("invalid JSON")


# Damage of the kinds the reader must refuse (or the column checks catch), each on one line.
# Most put a bad value under a field, the field's own value moving to an extra key "x" (the bad
# value's key spelled with an escape, as a third item, where that is the damage).
_BAD_VALUES = {
    "number_as_text": ("song", b"3.10"),
    "exponent_as_text": ("artist", b"1E5"),
    "bool_as_text": ("userId", b"true"),
    "float_integer": ("sessionId", b"7.0"),
    "exponent_integer": ("status", b"2e2"),
    "lone_surrogate": ("song", b'"a\\ud800b"'),
    "nul": ("song", b'"a\\u0000b"'),
    "empty_user": ("userId", b'""'),
    "empty_page": ("page", b'""'),
    "old_ts": ("ts", b"1"),
    "nan": ("length", b"NaN"),
    "huge_int": ("registration", b"1" + b"0" * 400),
    "escaped_key": ("song", b'"escaped"', b'"s\\u006fng"'),
    "long_text": ("song", b'"' + b"x" * 70_000 + b'"'),
}
# A key before a field: the same key again, or the same name spelled with an escape.
_KEYS_BEFORE = {"duplicate_key": ("level", b'"level"'), "escaped_duplicate": ("level", b'"l\\u0065vel"')}
# Damage to the line as a whole.
_WHOLE_LINE = {
    "blank_after": lambda line, obj: line + b"\n",
    "crlf": lambda line, obj: line + b"\r",
    "two_objects": lambda line, obj: line + b" " + line,
    "not_object": lambda line, obj: b"[" + line + b"]",
    "missing_required": lambda line, obj: json.dumps(
        {k: v for k, v in obj.items() if k != "sessionId"}
    ).encode(),
    "truncated": lambda line, obj: line[: len(line) // 2],
    "deep": lambda line, obj: line[:-1] + b', "x": ' + b"[" * 600 + b"]" * 600 + b"}",
    "bom": lambda line, obj: b"\xef\xbb\xbf" + line,
}


# What the reader itself must refuse (module docstring of vectorized), and what it reads as typed
# values for the column checks to refuse; the rest (a 401-digit number in a double) only has to
# end the same on both paths.
_READER_REFUSES = {
    "number_as_text", "exponent_as_text", "bool_as_text", "float_integer", "exponent_integer",
    "lone_surrogate", "nul", "long_text",
}  # fmt: skip
_COLUMN_CHECKS_REFUSE = {"empty_user", "empty_page", "old_ts", "nan"}


@pytest.mark.parametrize("kind", sorted(set(_BAD_VALUES) - {"escaped_key"}))
def test_each_bad_value_in_its_own_field(kind, taken):
    """Each kind of bad value in place of a field's value (no extra key, which the reader refuses
    on its own): the reader refuses it, or reads it for the column checks, as its docstring says
    (pinned for the installed pyarrow), and both paths stage and reject the same."""
    field, value = _BAD_VALUES[kind][:2]
    key = b'"' + field.encode() + b'":'
    found = []

    def edit(line: bytes) -> bytes:  # the value, a string or anything up to the next , or }
        edited, n = re.subn(
            re.escape(key) + rb'(?:"(?:[^"\\]|\\.)*"|[^,}]+)', lambda _: key + value, line, count=1
        )
        found.append(n)
        return edited

    _, segment, lines = _sample_day_damaged(edit)
    assert found == [1]
    arrays = vectorized.read_segment(segment, parsing._SPECS["staging_events"].arrow_schema)
    if kind in _READER_REFUSES:
        assert arrays is None
    elif kind in _COLUMN_CHECKS_REFUSE:
        assert arrays is not None
    out = assert_accounted(STAGING_EVENTS, _as_files(segment))
    assert len(out["rows"]) + len(out["rejects"]) == len(lines)


def _damaged(obj: dict, rng: random.Random) -> bytes:
    kind = rng.choice(
        [
            "number_as_text", "exponent_as_text", "bool_as_text", "float_integer", "exponent_integer",
            "duplicate_key", "escaped_duplicate", "lone_surrogate", "nul", "empty_user", "empty_page",
            "old_ts", "nan", "huge_int", "blank_after", "crlf", "two_objects", "not_object",
            "missing_required", "truncated", "deep", "bom", "long_text", "escaped_key",
        ]
    )  # fmt: skip
    line = json.dumps(obj).encode()
    if kind in _WHOLE_LINE:
        return _WHOLE_LINE[kind](line, obj)
    if kind in _KEYS_BEFORE:
        field, before = _KEYS_BEFORE[kind]
        key = f'"{field}": '.encode()
        return line.replace(key, before + b': "gold", ' + key, 1)
    field, value, *spelled = _BAD_VALUES[kind]
    key = f'"{field}": '.encode()
    return line.replace(key, (spelled[0] + b": " if spelled else key) + value + b', "x": ', 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_lake_damaged_at_random_lines(tmp_path, monkeypatch, taken, seed):
    """A generated day of 6,000 events in segments of ~64 KiB, a few lines damaged at random:
    the reader takes the clean segments, refuses the damaged ones, and both paths agree."""
    monkeypatch.setattr(stream, "SEGMENT_BYTES", 64 * 1024)
    lake = tmp_path / "lake"
    generate_lake(LakeSpec(events=12_000, songs=30, users=40, days=2, seed=seed), LocalSink(lake))
    files = _lake_files(lake, "log_data")
    rng = random.Random(seed)
    (key, body), *rest = files
    lines = body.split(b"\n")
    for n in rng.sample(range(len(lines) - 1), 12):
        lines[n] = _damaged(json.loads(lines[n]), rng)
    damaged = b"\n".join(lines)
    out = assert_accounted(STAGING_EVENTS, [(key, damaged), *rest])
    assert len(out["rows"]) >= 12_000 - 2 * 12  # a damaged line is one reject, or two rows
    assert taken["taken"] > 10 and taken["refused"] > 0


def test_switched_off_the_reader_takes_nothing_and_the_rows_are_the_same(monkeypatch, taken):
    files = _lake_files(SAMPLE, "log_data")
    on = assert_accounted(STAGING_EVENTS, files)
    assert taken["taken"] > 0
    monkeypatch.setenv("SPARKIFY_ARROW_READER", "0")
    before = dict(taken)
    assert assert_accounted(STAGING_EVENTS, files) == on
    assert taken == before  # the reader was not called
