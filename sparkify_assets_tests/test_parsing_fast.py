"""The fast parser (orjson lines, column checks, segments, worker processes) against the careful
one: the same records, in the same order, staged or rejected with the same reasons."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from sparkify_assets import parsing
from sparkify_assets.parsing import fast, stream
from sparkify_assets.resources.lake import LakeFile
from sparkify_assets.tables import STAGING_EVENTS, STAGING_FILES, STAGING_REJECTS, STAGING_SONGS, Table

BAD_LAKE = Path(__file__).resolve().parent / "bad_lake"
DAY = date(2018, 11, 1)

EVENT = {
    "artist": "Société",
    "auth": "Logged In",
    "firstName": "Ann",
    "gender": "F",
    "itemInSession": 3,
    "lastName": "Lee",
    "length": 201.5,
    "level": "paid",
    "location": "Paris",
    "method": "PUT",
    "page": "NextSong",
    "registration": 1540919166796.0,
    "sessionId": 42,
    "song": "A song",
    "status": 200,
    "ts": 1541030402796,
    "userAgent": '"Mozilla/5.0"',
    "userId": "7",
}
SONG = {
    "num_songs": 1,
    "artist_id": "AR1",
    "artist_latitude": None,
    "artist_longitude": -1.5,
    "artist_location": "",
    "artist_name": "X",
    "song_id": "SO1",
    "title": "T",
    "duration": 269.58322,
    "year": 0,
}


def _event(**changes) -> str:
    return json.dumps({**EVENT, **changes}, ensure_ascii=False)


def _without(key: str) -> str:
    return json.dumps({k: v for k, v in EVENT.items() if k != key})


# One line each: values the fast path must hand to the careful path, or agree with it on.
ODD_EVENT_LINES = [
    _event(),
    _event(userId=""),
    _event(userId=None, firstName=None, length=None, artist=None, song=None, status=None),
    _event(userId=17),  # an integer where text is declared: the careful path stages "17"
    _event(page=""),
    _event(page=None),
    _without("ts"),
    _without("artist"),  # an optional key missing: NULL
    _event(ts=5),
    _event(ts=32503680000000),
    _event(itemInSession=2**31),
    _event(itemInSession=-(2**31) - 1),
    _event(status=1.0),  # an integral float: the careful path stages 1
    _event(status=1.5),
    _event(sessionId=True),
    _event(length=200),  # an integer where a double is declared
    _event(length=2**53 + 1),
    _event(registration=2**64 + 1),  # orjson reads this as a float, json as an int
    _event(ts=2**64 + 1),
    _event(ts=2**63),
    _event(length=0.1 + 0.2, registration=1e-310),
    _event(song={"nested": True}),
    _event(artist="a\u0000b"),
    _event(userAgent="x" * 70000),
    _event(userAgent="é" * 20000),
    '{"artist": "dup", "artist": "last", ' + _event()[1:],
    _event()[:-1] + ', "extra": [1, 2, {"deep": null}]}',
    _event().replace("201.5", "NaN"),
    _event().replace("201.5", "1e400"),
    _event().replace("201.5", "-0.0"),
    _event().replace("201.5", "2.5E+2"),
    "[" + _event() + ", " + _event(userId="8") + "]",
    "[]",
    "null",
    '"just text"',
    "  \t" + _event() + "  \r",
    "",
    "   ",
]

# Lines that are not one complete JSON value: the rest of the file goes to the careful scanner.
ESCALATING_EVENT_TEXTS = [
    _event() + " " + _event(userId="9"),  # two objects on one line
    "{not json}",
    json.dumps(EVENT, indent=2),  # pretty-printed over several lines
    _event()[:-20],  # truncated, with no newline after it: the last line
]


def _careful(table: Table, files: list[tuple[LakeFile, bytes]]) -> dict[str, list]:
    batch = parsing.parse_files(table, files)
    return {
        "rows": batch.rows_table().to_pylist(),
        "rejects": batch.rejects_table().to_pylist(),
        "files": batch.files_table().to_pylist(),
    }


def _fast(table: Table, files: list[tuple[LakeFile, bytes]], pool=None) -> dict[str, list]:
    out: dict[str, list] = {"rows": [], "rejects": [], "files": []}
    totals = parsing.StreamTotals()
    names = {table.name: "rows", STAGING_REJECTS.name: "rejects", STAGING_FILES.name: "files"}
    for target, rows in parsing.parse_stream(table, iter(files), totals, pool, 2 if pool else 1):
        out[names[target.name]] += rows.to_pylist()
    assert totals["records_read"] == sum(f["records_read"] for f in out["files"])
    assert totals["rows_staged"] == len(out["rows"])
    assert totals["rows_rejected"] == len(out["rejects"])
    return out


def _log(n: int, text: str | bytes) -> tuple[LakeFile, bytes]:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return LakeFile(f"log_data/2018/11/2018-11-{n:02d}-events.json", len(data), "v1", DAY), data


def _assert_same(table: Table, files: list[tuple[LakeFile, bytes]], pool=None) -> dict[str, list]:
    careful, fast = _careful(table, files), _fast(table, files, pool)
    assert fast == careful
    return fast


def test_each_odd_line_alone_and_after_good_lines():
    for line in ODD_EVENT_LINES:
        _assert_same(STAGING_EVENTS, [_log(1, line)])
        _assert_same(STAGING_EVENTS, [_log(1, "\n".join([_event()] * 3 + [line, _event(userId="5")]) + "\n")])


def test_one_file_of_every_odd_line_stages_and_rejects_like_the_careful_path():
    text = "\r\n".join(ODD_EVENT_LINES)
    out = _assert_same(STAGING_EVENTS, [_log(1, text), _log(2, "\ufeff" + text + "\n")])
    assert out["rows"] and out["rejects"]  # the corpus exercises both


@pytest.mark.parametrize("tail", ESCALATING_EVENT_TEXTS)
def test_lines_that_are_not_one_value_hand_the_file_over_from_their_segment(monkeypatch, tail):
    # Tiny segments: the hand-over happens after several segments were parsed the fast way.
    monkeypatch.setattr(stream, "SEGMENT_BYTES", 600)
    good = "\n".join(_event(userId=str(i)) for i in range(12))
    _assert_same(STAGING_EVENTS, [_log(1, good + "\n" + tail + "\n" + good), _log(2, good)])
    _assert_same(STAGING_EVENTS, [_log(1, good + "\n" + tail)])


def test_invalid_utf8_and_byte_order_marks_inside_a_file(monkeypatch):
    monkeypatch.setattr(stream, "SEGMENT_BYTES", 300)
    good = "\n".join(_event(userId=str(i)) for i in range(6)).encode()
    bad = _event(firstName="X").encode().replace(b"X", b"\xff\xfe")
    _assert_same(STAGING_EVENTS, [_log(1, good + b"\n" + bad + b"\n" + good)])
    _assert_same(STAGING_EVENTS, [_log(1, good + b"\n\xef\xbb\xbf" + good)])
    _assert_same(STAGING_EVENTS, [_log(1, b""), _log(2, b" \n\n"), _log(3, b"\xef\xbb\xbf")])


def test_songs_in_groups_with_odd_values():
    songs = [
        json.dumps(SONG),
        json.dumps({**SONG, "song_id": ""}),
        json.dumps({**SONG, "year": "1999"}),
        json.dumps({**SONG, "artist_latitude": 12}),
        json.dumps(SONG, indent=4),
        json.dumps([SONG, {**SONG, "song_id": "SO2"}]),
        json.dumps(SONG) + "\n" + json.dumps({**SONG, "song_id": "SO3"}),
        "",
    ]
    files = [
        (LakeFile(f"song_data/A/B/C/TR{i:04d}.json", len(s), "v1"), s.encode())
        for i, s in enumerate(songs * 3)
    ]
    _assert_same(STAGING_SONGS, files)


def test_the_bad_lake_corpus():
    for table, folder in ((STAGING_EVENTS, "log_data"), (STAGING_SONGS, "song_data")):
        files = []
        for path in sorted((BAD_LAKE / folder).rglob("*.json")):
            key = path.relative_to(BAD_LAKE).as_posix()
            day = date.fromisoformat(path.name[:10]) if table is STAGING_EVENTS else None
            files.append((LakeFile(key, path.stat().st_size, "v1", day), path.read_bytes()))
        _assert_same(table, files)


def test_worker_processes_give_the_same_rows_in_the_same_order(monkeypatch):
    monkeypatch.setattr(stream, "SEGMENT_BYTES", 2000)
    good = "\n".join(_event(userId=str(i), itemInSession=i) for i in range(40))
    files = [_log(d, good + "\n" + ODD_EVENT_LINES[d] + "\n" + good) for d in range(1, 12)]
    files.append(_log(12, good + "\n" + ESCALATING_EVENT_TEXTS[0] + "\n" + good))
    # Workers read the module's defaults, not the monkeypatched segment size: the cutting is done
    # in this process, which is what matters.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        _assert_same(STAGING_EVENTS, files, pool)


def test_a_lone_surrogate_escape_is_a_reject_on_both_paths():
    # Issue 14: json decodes "\ud800" to a lone surrogate, which Arrow (and every warehouse)
    # cannot encode; it used to fail the whole load. Now that line alone is rejected.
    files = [_log(1, "\n".join([_event(), _event().replace('"Lee"', '"\\ud800"'), _event(userId="8")]))]
    out = _assert_same(STAGING_EVENTS, files)
    assert len(out["rows"]) == 2
    assert [(r["source_line"], r["reason"]) for r in out["rejects"]] == [
        (2, "lastName holds an invalid Unicode escape (a lone surrogate)")
    ]


def test_rows_schema_matches_the_declaration():
    table, _ = parsing.parse_segments(STAGING_EVENTS.name, [parsing.Segment("k", DAY, _event().encode(), 1)])
    assert table.schema.names == STAGING_EVENTS.column_names
    assert [f.type for f in table.schema] == [parsing.ARROW_TYPES[c.type] for c in STAGING_EVENTS.columns]
    assert isinstance(table, pa.Table)


def test_duckdb_append_does_not_keep_batches_until_commit(tmp_path):
    from sparkify_assets.resources.warehouse import DuckDBWarehouse

    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    with wh.transaction() as tx:
        tx.ensure(STAGING_EVENTS)
        base = pa.total_allocated_bytes()
        for i in range(3):
            text = "\n".join(_event(userId=str(j), song="s" * 200) for j in range(2000 * i, 2000 * (i + 1)))
            rows, _ = parsing.parse_segments(
                STAGING_EVENTS.name, [parsing.Segment("k", DAY, text.encode(), 1)]
            )
            tx.append(STAGING_EVENTS, rows)
            del rows
        # Each batch holds ~0.5 MB of strings; a registered view would keep all three alive.
        assert pa.total_allocated_bytes() - base < 100_000
        assert tx.scalar("SELECT count(*) FROM staging_events") == 6000


def test_line_cuts_follow_the_segment_size(monkeypatch):
    monkeypatch.setattr(stream, "SEGMENT_BYTES", 10)
    data = b"0123456789abc\nxy\n\nlast"
    assert parsing.line_cuts(data) == [(0, 14, 1), (14, 22, 2)]
    assert parsing.line_cuts(data, 1) == [(0, 14, 1), (14, 17, 2), (17, 22, 3)]


def test_without_orjson_the_stdlib_fallback_agrees(monkeypatch):
    monkeypatch.setattr(fast, "_fast_loads", fast._stdlib_loads)
    monkeypatch.setattr(stream, "SEGMENT_BYTES", 700)
    text = "\n".join(ODD_EVENT_LINES)
    _assert_same(STAGING_EVENTS, [_log(1, text), _log(2, "\ufeff" + text + "\n\ufeff" + _event())])


def test_one_line_song_files_in_one_pass_agree_with_the_careful_path(monkeypatch):
    """Song files of one line each are parsed as one batch (`fast._one_line_segments`); any file
    that is not one clean line (here, one at a random place in each group) sends its group back
    file by file. Either way the rows, rejects and counts are the careful path's."""
    import random

    taken = []
    real = fast._one_line_segments

    def counting(*args):
        result = real(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(fast, "_one_line_segments", counting)
    # Not one clean line: the batch is refused (a rule's reject, an empty song_id, is taken by the
    # batch and refused by the column checks, which send the group to the careful path).
    odd = [
        json.dumps({**SONG, "song_id": ""}).encode(),
        json.dumps({k: v for k, v in SONG.items() if k != "title"}).encode(),  # a key missing
        (json.dumps(SONG) + "\n" + json.dumps({**SONG, "song_id": "SO9"})).encode(),  # two lines
        json.dumps(SONG).encode().replace(b'"X"', b'"\xff"'),  # not UTF-8
        b"",  # an empty file
        json.dumps({**SONG, "title": "a\x00b"}).encode(),  # a NUL, written \u0000
    ]
    rng = random.Random(17)
    clean = [
        (json.dumps({**SONG, "song_id": f"SO{i}", "title": f"t{i}"}) + ("\n" if i % 2 else "")).encode()
        for i in range(30)
    ]

    def files(texts: list[bytes]) -> list[tuple[LakeFile, bytes]]:
        return [(LakeFile(f"song_data/A/B/C/TR{i:04d}.json", len(t), "v1"), t) for i, t in enumerate(texts)]

    out = _assert_same(STAGING_SONGS, files(clean))
    assert len(out["rows"]) == 30 and taken == [True]
    for bad in odd:
        texts = list(clean)
        texts.insert(rng.randrange(len(texts) + 1), bad)
        taken.clear()
        out = _assert_same(STAGING_SONGS, files(texts))
        assert taken[0] == (b'"song_id": ""' in bad)
        assert len(out["rows"]) >= 30
