"""`sparkify generate`: same seed same bytes, the real layout and formats, and a realistic shape."""

from __future__ import annotations

import json
import re
import tracemalloc
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sparkify_assets.cli import main
from sparkify_assets.generate import LakeSpec, generate_lake
from sparkify_assets.generator_output import LocalSink, S3Sink
from sparkify_assets_tests.helpers import count, load

SPEC = LakeSpec(events=4000, songs=300, users=60, days=5, seed=7)
DAYS = ["2018-11-01", "2018-11-02", "2018-11-03", "2018-11-04", "2018-11-05"]
EVENT_KEYS = [
    "artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level", "location",
    "method", "page", "registration", "sessionId", "song", "status", "ts", "userAgent", "userId",
]  # fmt: skip
SONG_KEYS = [
    "num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name",
    "song_id", "title", "duration", "year",
]  # fmt: skip
LOGGED_OUT_PAGES = {"Home", "About", "Help", "Login"}
SONG_PATH = re.compile(r"^song_data/([A-Z])/([A-Z])/([A-Z])/TR\1\2\3[A-Z0-9]{13}\.json$")


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def generate(root: Path, spec: LakeSpec = SPEC) -> Path:
    generate_lake(spec, LocalSink(root))
    return root


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("lake"))


@pytest.fixture(scope="module")
def events(lake) -> list[dict]:
    """Every event, in file order (days in order)."""
    out = []
    for day in DAYS:
        text = (lake / f"log_data/2018/11/{day}-events.json").read_text()
        out.extend(json.loads(line) for line in text.split("\n"))
    return out


@pytest.fixture(scope="module")
def songs(lake) -> list[dict]:
    return [json.loads(p.read_bytes()) for p in sorted((lake / "song_data").rglob("*.json"))]


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path, lake):
    again = files_of(generate(tmp_path / "again"))
    assert again == files_of(lake)
    other = files_of(generate(tmp_path / "other", LakeSpec(events=4000, songs=300, users=60, days=5, seed=8)))
    assert set(other) != set(again)  # song file names come from the seed too
    assert (
        other["log_data/2018/11/2018-11-01-events.json"] != again["log_data/2018/11/2018-11-01-events.json"]
    )


def test_layout_is_the_real_one(lake):
    keys = list(files_of(lake))
    logs = [k for k in keys if k.startswith("log_data/")]
    assert logs == [f"log_data/2018/11/{day}-events.json" for day in DAYS]
    song_keys = [k for k in keys if k.startswith("song_data/")]
    assert len(song_keys) == 300
    assert all(SONG_PATH.match(k) for k in song_keys), [k for k in song_keys if not SONG_PATH.match(k)][:3]
    assert len(keys) == 305


def test_event_lines_have_every_field_in_order_with_the_real_types(lake, events):
    assert len(events) == 4000
    for e in events:
        assert list(e) == EVENT_KEYS
        assert isinstance(e["userId"], str)
        for key in ("itemInSession", "sessionId", "status", "ts"):
            assert type(e[key]) is int, key
        assert e["registration"] is None or type(e["registration"]) is float
        assert e["length"] is None or type(e["length"]) is float
        assert e["ts"] % 1000 == 796  # as every ts of the real logs
    for day in DAYS:
        raw = (lake / f"log_data/2018/11/{day}-events.json").read_bytes()
        assert not raw.endswith(b"\n")  # the real files have no newline after the last line
        assert raw.isascii()
        for line in raw.decode().split("\n"):
            # Compact JSON with \u escapes, as the real logs: re-encoding gives the same text.
            assert line == json.dumps(json.loads(line), separators=(",", ":")).replace("/", "\\/")
        # Slashes are escaped as in the real logs: "Mozilla\/5.0".
        assert b"Mozilla/" not in raw and b"Mozilla\\/5.0" in raw


def test_each_day_file_holds_its_own_day_in_time_order(lake):
    for day in DAYS:
        text = (lake / f"log_data/2018/11/{day}-events.json").read_text()
        ts = [json.loads(line)["ts"] for line in text.split("\n")]
        assert ts == sorted(ts)
        dates = {datetime.fromtimestamp(t / 1000, tz=timezone.utc).date().isoformat() for t in ts}
        assert dates == {day}
        assert len(ts) == 800  # 4,000 events over 5 days


def test_song_files_have_the_sample_spacing_and_key_order(lake, songs):
    for path in sorted((lake / "song_data").rglob("*.json"))[:50]:
        raw = path.read_bytes()
        assert raw.startswith(b'{"num_songs": 1, "artist_id": "AR')
        assert not raw.endswith(b"\n") and raw.isascii()
        assert raw.decode() == json.dumps(json.loads(raw))  # Python's default spacing, as the sample
    for s in songs:
        assert list(s) == SONG_KEYS
        assert s["num_songs"] == 1 and type(s["year"]) is int and type(s["duration"]) is float
        assert re.fullmatch(r"SO[A-Z0-9]{16}", s["song_id"]) and re.fullmatch(
            r"AR[A-Z0-9]{16}", s["artist_id"]
        )
        assert s["artist_latitude"] is None or type(s["artist_latitude"]) is float
        assert isinstance(s["artist_location"], str)
    assert len({s["song_id"] for s in songs}) == 300
    assert any(s["year"] == 0 for s in songs) and any(s["year"] > 0 for s in songs)
    assert any(s["artist_location"] == "" for s in songs)
    assert any(s["artist_latitude"] is None for s in songs)


def test_sessions_are_consecutive_items_of_one_user(events):
    by_session = defaultdict(list)
    for e in events:
        by_session[e["sessionId"]].append(e)
    assert len(by_session) > 200
    for session in by_session.values():
        assert [e["itemInSession"] for e in session] == list(range(len(session)))
        assert len({e["userId"] for e in session if e["userId"]}) <= 1
        # Logged-out events come first, then (after Login) the user's own events.
        auths = [e["auth"] for e in session]
        assert auths == sorted(auths, key=lambda a: a != "Logged Out")
    assert sum(1 for s in by_session.values() if len(s) >= 10) > 20


def test_logged_out_visitors_have_an_empty_user_id_and_no_person(events):
    anonymous = [e for e in events if e["userId"] == ""]
    assert len(anonymous) > 40
    for e in anonymous:
        assert e["auth"] == "Logged Out" and e["page"] in LOGGED_OUT_PAGES
        assert e["firstName"] is e["lastName"] is e["gender"] is e["registration"] is e["userAgent"] is None
    assert all(e["userId"] for e in events if e["page"] == "NextSong")
    logins = Counter(e["page"] for e in anonymous)["Login"]
    assert logins > 10


def test_song_popularity_is_zipf_like(events, songs):
    catalog = {(s["title"], s["artist_name"]) for s in songs}
    plays = Counter((e["song"], e["artist"]) for e in events if e["page"] == "NextSong")
    matched = Counter({k: v for k, v in plays.items() if k in catalog})
    top3 = sum(v for _, v in matched.most_common(3))
    # Uniform popularity would give 3 songs of 300 about 1% of the plays; 1/rank gives ~29%.
    assert top3 / sum(matched.values()) > 0.15
    assert len(matched) > 100  # the long tail is played too


def test_a_share_of_plays_name_songs_missing_from_the_catalog(events, songs):
    catalog = {(s["title"], s["artist_name"], s["duration"]) for s in songs}
    plays = [(e["song"], e["artist"], e["length"]) for e in events if e["page"] == "NextSong"]
    missing = sum(1 for p in plays if p not in catalog)
    assert 0.12 < missing / len(plays) < 0.28  # the default miss rate is 0.2


def test_users_change_level_only_through_submit_pages(events):
    last: dict[str, dict] = {}
    changes = 0
    for e in events:
        if not e["userId"]:
            continue
        before = last.get(e["userId"])
        if before and before["level"] != e["level"]:
            expected = "Submit Upgrade" if e["level"] == "paid" else "Submit Downgrade"
            assert before["page"] == expected, (before, e)
            changes += 1
        last[e["userId"]] = e
    assert changes >= 2
    assert {e["level"] for e in events} == {"free", "paid"}


def test_some_artists_have_several_spellings_and_places(songs):
    names, places = defaultdict(set), defaultdict(set)
    for s in songs:
        names[s["artist_id"]].add(s["artist_name"])
        places[s["artist_id"]].add(s["artist_location"])
    assert sum(1 for v in names.values() if len(v) > 1) >= 3
    assert sum(1 for v in places.values() if len(v) > 1) >= 3


def test_memory_follows_the_day_not_the_event_count(tmp_path):
    def peak(events: int, days: int, name: str) -> int:
        tracemalloc.start()
        try:
            generate_lake(
                LakeSpec(events=events, songs=200, users=50, days=days, seed=1), LocalSink(tmp_path / name)
            )
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small = peak(20_000, 2, "small")
    # Four times the events over four times the days: the same size of day.
    assert peak(80_000, 8, "big") < small * 1.25


def test_the_pipeline_loads_a_generated_lake_without_rejects(tmp_path, lake, events, duckdb_url):
    load(duckdb_url, str(lake))
    assert count(duckdb_url, "staging_events") == 4000
    assert count(duckdb_url, "staging_songs") == 300
    assert count(duckdb_url, "staging_rejects") == 0
    nextsong = sum(1 for e in events if e["page"] == "NextSong")
    assert count(duckdb_url, "songplays") == nextsong
    assert 0 < count(duckdb_url, "songplays", "song_id IS NOT NULL") < nextsong


def test_cli_writes_a_lake_with_progress_and_refuses_an_old_one(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["generate", "--events", "500", "--songs", "20", "--users", "5", "--days", "2", "--seed", "3"]
    assert main([*argv, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote 500 events in 2 daily log files and 20 song files" in captured.out
    assert "log_data: 2018-11-02 done, 500/500 events (100%)" in captured.err
    assert len(list((out / "song_data").rglob("*.json"))) == 20
    assert main([*argv, "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_s3_output_has_the_same_bytes_as_a_folder(tmp_path, aws_env):
    import boto3

    spec = LakeSpec(events=300, songs=15, users=5, days=2, seed=11)
    local = files_of(generate(tmp_path / "local", spec))
    bucket = f"sparkify-gen-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    generate_lake(spec, S3Sink(f"s3://{bucket}/lake"))
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    remote = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}
    assert len(remote) == 17
    assert remote == {f"lake/{k}": v for k, v in local.items()}
    assert main(["generate", "--events", "10", "--days", "1", "--out", f"s3://{bucket}/lake"]) == 1
