"""Property-based tests of the parser (issue 14): whatever a file holds (arbitrary JSON values in
the declared fields, arbitrary bytes, real sample lines and files damaged at random), no exception
escapes the parse, and for every file, records read = rows staged + rows rejected, on both paths
(careful and fast), which agree; every staged row can be stored (Arrow builds it, its text is
UTF-8). Hypothesis searches for counterexamples; the ones it found are kept as @example cases.

Runtime is kept modest by the `ci` profile (about 15 s here); `HYPOTHESIS_PROFILE=deep` searches
longer, and `HYPOTHESIS_PROFILE=search` runs without the kept examples (to see the search find the
classes on its own)."""

from __future__ import annotations

import gzip
import json
import os
from datetime import date

import pyarrow as pa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from sparkify_assets import parsing
from sparkify_assets.parsing import rules
from sparkify_assets.resources.lake import LakeFile
from sparkify_assets.tables import STAGING_EVENTS, STAGING_FILES, STAGING_REJECTS, STAGING_SONGS, Table
from sparkify_assets_tests.conftest import SAMPLE

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("deep", parent=settings.get_profile("ci"), max_examples=5000)
# Without the kept examples or Hypothesis's database: shows the search finds the classes itself.
settings.register_profile(
    "search", parent=settings.get_profile("ci"), phases=[Phase.generate, Phase.shrink], database=None
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DAY = date(2018, 11, 1)
LOG_FILE = SAMPLE / "log_data/2018/11/2018-11-01-events.json"  # 15 real events
LOG_LINES = LOG_FILE.read_bytes().splitlines()
SONG_FILES = sorted((SAMPLE / "song_data").rglob("*.json"))[:12]
EVENT = json.loads(LOG_LINES[0])
SONG = json.loads(SONG_FILES[0].read_bytes())

# Text with every code point. Surrogates are 2,048 of 1.1 million (Hypothesis leaves them out by
# default), so they, NUL and the byte order mark are also drawn from a list, to come up often
# (a second st.characters() would be merged with the first and drawn as rarely).
ANY_CHAR = st.characters(exclude_categories=()) | st.sampled_from(
    ["\ud800", "\udbff", "\udc00", "\udfff", "\x00", "\ufeff", "\n", '"', "\\", "é", "\U0001f600"]
)
ANY_TEXT = st.lists(ANY_CHAR, max_size=12).map("".join)  # st.text() would drop surrogates
# Integers up to 10**420: beyond int64 and beyond what a double can hold.
HUGE = st.builds(lambda e, sign: sign * 10**e, st.integers(15, 420), st.sampled_from([1, -1]))
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE
    | st.floats()  # NaN and infinities too: Python's json writes and reads them
    | ANY_TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)
# A field's value: st.recursive alone draws containers nearly every time, and a scalar (the usual
# content of a field, and where the cases live) too seldom.
FIELD_VALUES = JSON_SCALARS | JSON_VALUES
# Fragments that broke, or nearly broke, the parse: spliced into real lines by the damage tests.
NASTY = [
    b'"\\ud800"',
    b'"a\\udfffb"',
    b'"\\u0000"',
    b"1e400",
    b"9" * 400,
    b"9" * 5000,
    b"[" * 3000,
    b"NaN",
    b"-Infinity",
    # Arrow's reader takes these four, Python's json none of them; -0 is an integer to Python.
    b"Inf",
    b"-Inf",
    b"-NaN",
    b"-0",
    b"true",
    b"3.10",
    b"\xff\xfe",
    b"\xed\xa0\x80",
    b"\x1f\x8b",
    b"\x00",
    b"\r\n",
    b"\n",
    b"{",
    b"}",
    b'"',
    b"\\",
]


def _dumps(value: object, ascii_only: bool) -> bytes:
    """JSON text as a writer would produce it; a lone surrogate written raw (ascii_only False)
    becomes the bytes of an encoded surrogate, which are not UTF-8."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _log(data: bytes, n: int = 1) -> tuple[LakeFile, bytes]:
    return LakeFile(f"log_data/2018/11/2018-11-{n:02d}-events.json", len(data), "v1", DAY), data


def _song(data: bytes, n: int = 0) -> tuple[LakeFile, bytes]:
    return LakeFile(f"song_data/A/B/C/TR{n:04d}.json", len(data), "v1"), data


def _careful(table: Table, files: list) -> dict[str, list]:
    batch = parsing.parse_files(table, files)
    return {
        "rows": batch.rows_table().to_pylist(),
        "rejects": batch.rejects_table().to_pylist(),
        "files": batch.files_table().to_pylist(),
    }


def _fast(table: Table, files: list) -> dict[str, list]:
    out: dict[str, list] = {"rows": [], "rejects": [], "files": []}
    totals = parsing.StreamTotals()
    names = {table.name: "rows", STAGING_REJECTS.name: "rejects", STAGING_FILES.name: "files"}
    for target, rows in parsing.parse_stream(table, iter(files), totals, None, 1):
        assert isinstance(rows, pa.Table)
        out[names[target.name]] += rows.to_pylist()
    return out


def assert_accounted(table: Table, files: list) -> dict[str, list]:
    """The invariant: nothing raises; per file, read = staged + rejected; both paths agree;
    every text value staged or kept is valid UTF-8 (what DuckDB and PostgreSQL store)."""
    careful, fast = _careful(table, files), _fast(table, files)
    assert fast == careful
    # == takes -0.0 for 0.0 (and 1 for 1.0); the texts tell them apart.
    assert repr(fast) == repr(careful)
    by_key: dict[str, list[int]] = {}
    for row in careful["rows"]:
        by_key.setdefault(row["source_key"], [0, 0])[0] += 1
    for row in careful["rejects"]:
        by_key.setdefault(row["source_key"], [0, 0])[1] += 1
    assert [f["source_key"] for f in careful["files"]] == [f.key for f, _ in files]
    for f in careful["files"]:
        staged, rejected = by_key.get(f["source_key"], [0, 0])
        assert (f["rows_staged"], f["rows_rejected"]) == (staged, rejected)
        assert f["records_read"] == staged + rejected
    for row in careful["rows"] + careful["rejects"]:
        for value in row.values():
            if isinstance(value, str):
                value.encode("utf-8")
                assert "\x00" not in value
    return careful


def _events_with(values: dict, drop: list[str]) -> dict:
    obj = {**EVENT, **values}
    for key in drop:
        obj.pop(key, None)
    return obj


FIELDS = sorted(EVENT)


@given(field=st.sampled_from(FIELDS), value=FIELD_VALUES, ascii_only=st.booleans())
def test_any_json_value_in_one_event_field(field, value, ascii_only):
    """One field at a time: with several changed, the first bad one masks the others."""
    line = _dumps({**EVENT, field: value}, ascii_only)
    out = assert_accounted(STAGING_EVENTS, [_log(LOG_LINES[1] + b"\n" + line)])
    assert out["rows"][0]["source_line"] == 1  # the good line before it always loads


@given(
    changes=st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES, max_size=4),
    drop=st.lists(st.sampled_from(FIELDS), max_size=2),
    ascii_only=st.booleans(),
)
# Found by this test or the issue (each once failed the whole load with an exception):
@example(changes={"lastName": "\ud800"}, drop=[], ascii_only=True)  # UnicodeEncodeError in Arrow
@example(changes={"song": "\udfff"}, drop=[], ascii_only=False)
@example(changes={"length": 10**400}, drop=[], ascii_only=True)  # float() OverflowError
@example(changes={"registration": -(10**309)}, drop=[], ascii_only=True)
@example(changes={"song": 3.14, "artist": True, "userId": 17}, drop=[], ascii_only=True)
def test_any_json_values_in_an_event(changes, drop, ascii_only):
    line = _dumps(_events_with(changes, drop), ascii_only)
    good = LOG_LINES[1]
    out = assert_accounted(STAGING_EVENTS, [_log(good + b"\n" + line + b"\n" + good)])
    assert len(out["rows"]) >= 2  # the good lines around it always load


@given(
    changes=st.dictionaries(st.sampled_from(sorted(SONG)), JSON_VALUES, max_size=4), ascii_only=st.booleans()
)
@example(changes={"title": "\ud800"}, ascii_only=True)  # stopped every star table (issue 14)
@example(changes={"duration": 10**400}, ascii_only=True)
@example(changes={"title": 3.14}, ascii_only=True)
def test_any_json_values_in_a_song(changes, ascii_only):
    files = [_song(_dumps({**SONG, **changes}, ascii_only), 1), _song(SONG_FILES[1].read_bytes(), 2)]
    out = assert_accounted(STAGING_SONGS, files)
    assert any(r["source_key"] == files[1][0].key for r in out["rows"])


@given(value=FIELD_VALUES, ascii_only=st.booleans())
@example(value=[[[[[]]]]], ascii_only=True)
def test_any_json_value_as_a_record(value, ascii_only):
    assert_accounted(STAGING_EVENTS, [_log(_dumps(value, ascii_only))])
    assert_accounted(STAGING_SONGS, [_song(_dumps(value, ascii_only))])


@given(data=st.binary(max_size=600), compress=st.booleans())
@example(data=b"[" * 5000, compress=False)  # RecursionError in json
@example(data=b"9" * 5000, compress=False)  # ValueError: more than 4,300 digits
@example(data=b'{"ts": ' + b"9" * 5000 + b"}", compress=True)
@example(data=b"\x1f\x8b\x08\x00", compress=False)  # a truncated gzip header
def test_arbitrary_bytes(data, compress):
    if compress:
        data = gzip.compress(data)
    assert_accounted(STAGING_EVENTS, [_log(data)])
    assert_accounted(STAGING_SONGS, [_song(data)])


DAMAGE = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate", "value"]),
        st.floats(0, 1),
        st.floats(0, 1),
        st.sampled_from(NASTY) | st.binary(min_size=1, max_size=6),
    ),
    min_size=1,
    max_size=4,
)


def _splice_value(data: bytes, at: float, length: float, payload: bytes) -> bytes:
    """Replace one field's value in one line of `data` (when that line is a JSON object) by the
    raw bytes `payload`: damage where a value is expected, which random bytes seldom hit."""
    lines = data.split(b"\n")
    n = int(at * len(lines)) % len(lines)
    try:
        obj = json.loads(lines[n])
    except (ValueError, RecursionError):  # a line earlier damage made unreadable: leave it
        return data
    if not isinstance(obj, dict) or not obj:
        return data
    key = sorted(obj)[int(length * len(obj)) % len(obj)]
    obj[key] = "SPLICE_HERE"
    lines[n] = json.dumps(obj).encode().replace(b'"SPLICE_HERE"', payload)
    return b"\n".join(lines)


def _damage(data: bytes, ops: list) -> bytes:
    for kind, at, length, payload in ops:
        i = int(at * len(data))
        j = min(len(data), i + 1 + int(length * 40))
        if kind == "value":
            data = _splice_value(data, at, length, payload)
        elif kind == "insert":
            data = data[:i] + payload + data[i:]
        elif kind == "delete":
            data = data[:i] + data[j:]
        elif kind == "replace":
            data = data[:i] + payload + data[j:]
        elif kind == "truncate":
            data = data[:i]
        else:
            data = data[:j] + data[i:j] + data[j:]
    return data


@given(ops=DAMAGE, compress=st.sampled_from(["no", "before", "after"]), crlf=st.booleans())
@example(ops=[("replace", 0.3, 0.0, b'"\\ud800"')], compress="no", crlf=False)
@example(ops=[("truncate", 0.5, 0.0, b"x")], compress="before", crlf=False)  # half a gzip stream
def test_damaged_sample_log_file(ops, compress, crlf):
    data = LOG_FILE.read_bytes()
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    if compress == "before":
        data = gzip.compress(data)
    data = _damage(data, ops)
    if compress == "after":
        data = gzip.compress(data)
    out = assert_accounted(STAGING_EVENTS, [_log(data), _log(LOG_FILE.read_bytes(), 2)])
    assert sum(r["source_key"].endswith("-02-events.json") for r in out["rows"]) == len(LOG_LINES)


@given(picks=st.lists(st.tuples(st.integers(0, len(SONG_FILES) - 1), DAMAGE), min_size=1, max_size=4))
def test_damaged_sample_song_files(picks):
    files = [_song(_damage(SONG_FILES[i].read_bytes(), ops), n) for n, (i, ops) in enumerate(picks)]
    assert_accounted(STAGING_SONGS, files)


@given(
    value=st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans(),
    style=st.sampled_from(["repr", "exponent", "zeros"]),
    field=st.sampled_from(["artist", "song", "firstName", "location", "userAgent", "userId"]),
)
@example(value=3.14, style="repr", field="song")
@example(value=1.1, style="zeros", field="artist")
@example(value=True, style="repr", field="firstName")
def test_a_number_or_boolean_in_a_text_field_is_its_json_text(value, style, field):
    """DESIGN.md section 2: stored as the JSON text as written (not Python's rendering of it)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif style == "exponent" and isinstance(value, float):
        text = f"{value:e}".replace("e+", "E")
    elif style == "zeros" and isinstance(value, float):
        text = repr(value) + ("0" if "e" not in repr(value) and "." in repr(value) else "")
    else:
        text = repr(value) if isinstance(value, float) else str(value)
    obj = {**EVENT, field: "PLACEHOLDER"}
    line = json.dumps(obj).replace('"PLACEHOLDER"', text).encode()
    out = assert_accounted(STAGING_EVENTS, [_log(line)])
    column = {f.key: f.column for f in parsing.EVENT_FIELDS}[field]
    assert [r[column] for r in out["rows"]] == [text]


def test_an_unforeseen_error_in_a_rule_is_that_records_reject(monkeypatch):
    """The safety net under every rule: if one raised something no rule foresaw (injected here,
    a KeyError for one user), that record is rejected with a readable reason, on both paths,
    and the other records load."""
    from dataclasses import replace

    real = parsing._event_row

    def flaky(obj: dict) -> list:
        if obj.get("userId") == "boom":
            raise KeyError("an unforeseen \ud800 problem")
        return real(obj)

    monkeypatch.setattr(rules, "_event_row", flaky)
    spec = parsing._SPECS[STAGING_EVENTS.name]
    monkeypatch.setitem(parsing._SPECS, STAGING_EVENTS.name, replace(spec, make_row=flaky))
    # A number in a text field sends the group to the careful rules on the fast path too (the fast
    # path's own column checks would not call the injected rule).
    lines = [LOG_LINES[1], _dumps({**EVENT, "userId": "boom", "song": 3.5}, True), LOG_LINES[2]]
    out = assert_accounted(STAGING_EVENTS, [_log(b"\n".join(lines))])
    assert [r["source_line"] for r in out["rows"]] == [1, 3]
    assert [(r["source_line"], r["reason"]) for r in out["rejects"]] == [
        (2, "record could not be read: 'an unforeseen \\ud800 problem'")
    ]
