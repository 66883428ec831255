"""Every object of the lake is accounted for (issue 14): loaded, rejected as a whole file with a
reason, or ignored by a documented rule, and named by the non-blocking `lake_inventory` check.
The lakes are hand-made from the shipped sample: a gzip day, a day gzip-compressed under a .json
name, a UTF-16 day, a stray file, a misplaced day, a hidden file, a named pipe, a broken link and a
symbolic link loop, on DuckDB and PostgreSQL. Expected counts come from the sample files' own
lines, never from the code under test."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from sparkify_assets.resources.lake import LocalLake
from sparkify_assets_tests.conftest import SAMPLE
from sparkify_assets_tests.helpers import WAREHOUSE_FIXTURES, check_evaluations, count, load, rows

LOGS = SAMPLE / "log_data/2018/11"
NOBODY = 65534


def _events(day: int) -> int:
    """Events in a sample day: its non-blank lines (every sample line is a valid event)."""
    return sum(
        1 for line in (LOGS / f"2018-11-{day:02d}-events.json").read_bytes().splitlines() if line.strip()
    )


def _log(lake: Path, day: int) -> Path:
    return lake / f"log_data/2018/11/2018-11-{day:02d}-events.json"


@pytest.fixture
def odd_lake() -> Iterator[Path]:
    """The sample, days 1-6 and all songs, with every kind of odd object. In a folder others can
    enter (not pytest's 0700 tmp), so a test can also list it as an unprivileged user."""
    lake = Path(tempfile.mkdtemp(prefix="odd-lake-"))
    os.chmod(lake, 0o755)
    shutil.copytree(SAMPLE / "song_data", lake / "song_data")
    (lake / "log_data/2018/11").mkdir(parents=True)
    for day in range(1, 7):
        shutil.copy(LOGS / f"2018-11-{day:02d}-events.json", _log(lake, day))
    # Day 2 as .json.gz; day 3 gzip-compressed under its .json name (the magic bytes decide).
    day2 = _log(lake, 2)
    day2.with_name(day2.name + ".gz").write_bytes(gzip.compress(day2.read_bytes()))
    day2.unlink()
    _log(lake, 3).write_bytes(gzip.compress(_log(lake, 3).read_bytes()))
    # Day 4 saved as UTF-16 by an editor: one reason, not hundreds of "invalid JSON" lines.
    _log(lake, 4).write_bytes(_log(lake, 4).read_text(encoding="utf-8").encode("utf-16"))
    # Day 5 misplaced in December's folder; a stray CSV; a hidden file; a README among the songs.
    (lake / "log_data/2018/12").mkdir()
    shutil.move(_log(lake, 5), lake / "log_data/2018/12/2018-11-05-events.json")
    (lake / "log_data/2018/11/export.csv").write_text("artist,auth\nX,Logged In\n")
    (lake / "log_data/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (lake / "song_data/README.md").write_text("Song files, one per track.\n")
    (lake / "song_data/A/notes.txt").write_text("to do\n")
    # File-system oddities: a named pipe named like a day (opening it would hang), a broken
    # link named like a day, and a link loop.
    os.mkfifo(_log(lake, 7))
    _log(lake, 8).symlink_to(lake / "nowhere.json")
    (lake / "log_data/loop_a").symlink_to(lake / "log_data/loop_b")
    (lake / "log_data/loop_b").symlink_to(lake / "log_data/loop_a")
    yield lake
    shutil.rmtree(lake, ignore_errors=True)


REJECTED_LOGS = {
    "log_data/2018/11/2018-11-04-events.json": "file is UTF-16 encoded, not UTF-8",
    "log_data/2018/11/2018-11-07-events.json": "not a regular file but a named pipe (never opened)",
    "log_data/2018/11/2018-11-08-events.json": "broken symbolic link (its target does not exist)",
    "log_data/2018/11/export.csv": (
        "not a daily log file (log_data/YYYY/MM/YYYY-MM-DD-events.json or .json.gz)"
    ),
    "log_data/2018/12/2018-11-05-events.json": (
        "misplaced log file: the log of 2018-11-05 belongs at log_data/2018/11/2018-11-05-events.json"
    ),
    "log_data/loop_a": "symbolic link loop",
    "log_data/loop_b": "symbolic link loop",
}
REJECTED_SONGS = {"song_data/A/notes.txt": "not a song file (song_data/**/*.json or .json.gz)"}


@pytest.mark.parametrize("backend", sorted(WAREHOUSE_FIXTURES))
def test_an_odd_lake_loads_what_it_can_and_names_the_rest(request, backend, odd_lake):
    url = request.getfixturevalue(WAREHOUSE_FIXTURES[backend])
    result = load(url, str(odd_lake))

    # Days 1, 2 (.json.gz), 3 (gzip under .json) and 6 load; 4 (UTF-16) and 5 (misplaced) do not.
    assert count(url, "staging_events") == sum(_events(d) for d in (1, 2, 3, 6))
    loaded_days = rows(url, "staging_files", ["source_key", "records_read", "rows_staged", "rows_rejected"])
    by_key = {k: (r, s, j) for k, r, s, j in loaded_days}
    assert by_key["log_data/2018/11/2018-11-02-events.json.gz"] == (_events(2), _events(2), 0)
    assert by_key["log_data/2018/11/2018-11-03-events.json"] == (_events(3), _events(3), 0)
    assert count(url, "staging_songs") == 71  # the contract's count: the README and notes.txt are not songs

    # Every other object is one whole-file reject (line 0) with its reason, counted in staging_files.
    rejects = rows(url, "staging_rejects", ["target_table", "source_key", "source_line", "reason"])
    expected = [("staging_events", k, 0, r) for k, r in REJECTED_LOGS.items()]
    expected += [("staging_songs", k, 0, r) for k, r in REJECTED_SONGS.items()]
    assert rejects == sorted(expected, key=repr)
    for key in (*REJECTED_LOGS, *REJECTED_SONGS):
        assert by_key[key] == (1, 0, 1), key

    # The metadata counts them; the non-blocking check fails as a warning and names the first ones.
    meta = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert meta["staging_events"]["objects_rejected"].value == len(REJECTED_LOGS)
    assert meta["staging_events"]["objects_ignored"].value == 1  # .DS_Store
    assert meta["staging_songs"]["objects_rejected"].value == 1
    assert meta["staging_songs"]["objects_ignored"].value == 1  # README.md
    checks = check_evaluations(result)
    events_check = checks["staging_events:lake_inventory"]
    assert events_check["passed"] is False
    assert events_check["objects_rejected"] == len(REJECTED_LOGS)
    assert events_check["objects_ignored"] == 1
    assert "log_data/.DS_Store" in events_check["sample"]
    assert "export.csv" in events_check["sample"]
    assert checks["staging_songs:lake_inventory"]["passed"] is False
    # The rest of the pipeline ran: the inventory check does not block.
    assert checks["staging_events:reconcile_records"]["passed"] is True
    assert checks["staging_songs:reconcile_records"]["passed"] is True
    assert count(url, "songplays") > 0

    # The check's description (what `sparkify run` and the UI show) names the first objects.
    description = _check_description(result, "staging_events", "lake_inventory")
    assert description.startswith(
        f"{len(REJECTED_LOGS)} object(s) under log_data/ rejected as whole files, 1 ignored"
    )
    assert "log_data/.DS_Store ignored: hidden" in description


def _check_description(result, asset: str, name: str) -> str:
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            if ev.asset_key.to_user_string() == asset and ev.check_name == name:
                return ev.description or ""
    raise AssertionError(f"no {asset}:{name} evaluation")


def test_undated_rejects_are_restated_by_every_run(duckdb_url, odd_lake):
    """Objects under log_data/ that are no day's file belong to no partition: a one-day run
    restates them all, so fixing the lake clears them, and re-running never duplicates them."""
    load(duckdb_url, str(odd_lake))
    load(duckdb_url, str(odd_lake), date(2018, 11, 6), date(2018, 11, 6))
    assert count(duckdb_url, "staging_rejects", "source_line = 0") == len(REJECTED_LOGS) + len(REJECTED_SONGS)
    # Fix the lake: the CSV goes, day 5 goes where it belongs.
    (odd_lake / "log_data/2018/11/export.csv").unlink()
    shutil.move(odd_lake / "log_data/2018/12/2018-11-05-events.json", _log(odd_lake, 5))
    load(duckdb_url, str(odd_lake), date(2018, 11, 5), date(2018, 11, 5))
    keys = {k for (k,) in rows(duckdb_url, "staging_rejects", ["source_key"])}
    assert "log_data/2018/11/export.csv" not in keys
    assert "log_data/2018/12/2018-11-05-events.json" not in keys
    assert count(duckdb_url, "staging_events", "source_date = DATE '2018-11-05'") == _events(5)
    assert count(duckdb_url, "staging_files", "source_key = 'log_data/2018/11/export.csv'") == 0


def test_a_day_with_both_json_and_gz_loads_once(duckdb_url, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(SAMPLE / "song_data", lake / "song_data")
    (lake / "log_data/2018/11").mkdir(parents=True)
    day = _log(lake, 1)
    shutil.copy(LOGS / "2018-11-01-events.json", day)
    day.with_name(day.name + ".gz").write_bytes(gzip.compress(day.read_bytes()))
    load(duckdb_url, str(lake))
    assert count(duckdb_url, "staging_events") == _events(1)
    assert rows(duckdb_url, "staging_rejects", ["source_key", "reason"]) == [
        (
            "log_data/2018/11/2018-11-01-events.json.gz",
            "another log file of 2018-11-01 is loaded: log_data/2018/11/2018-11-01-events.json",
        )
    ]


def _as_nobody(work) -> object:
    """Run `work()` as a user whom chmod 000 stops: as root (whom it does not stop), in a forked
    child that dropped root for user nobody, its result coming back through a pipe as JSON."""
    if os.geteuid() != 0:
        return json.loads(json.dumps({"ok": work()}))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = {"ok": work()}
        except BaseException as exc:  # reported to the parent, which fails the test with it
            out = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(out).encode())
        os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 1 << 16):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_unreadable_folder_and_file_are_rejects_that_name_them(odd_lake):
    locked = odd_lake / "log_data/2019"
    (locked / "01").mkdir(parents=True)
    shutil.copy(LOGS / "2018-11-06-events.json", locked / "01/2019-01-06-events.json")
    os.chmod(locked, 0o000)
    secret = odd_lake / "song_data/A/A/A/TRAAAAW128F429D538.json"
    os.chmod(secret, 0o000)

    def work():
        lk = LocalLake(odd_lake)
        inv = lk.inventory("log_data")
        read = [(f.key, f.reject) for f, _ in lk.read_many(lk.song_files()) if f.reject]
        return {"rejected": {f.key: f.reject for f in inv.rejected}, "read": read}

    try:
        got = _as_nobody(work)
    finally:
        os.chmod(locked, 0o755)
    assert "error" not in got, got
    assert got["ok"]["rejected"]["log_data/2019/"] == (
        "folder cannot be listed (Permission denied): its files are not loaded"
    )
    assert got["ok"]["read"] == [
        ["song_data/A/A/A/TRAAAAW128F429D538.json", "file cannot be read (Permission denied)"]
    ]


def test_listing_never_opens_a_named_pipe(odd_lake):
    """The pipe has no writer: opening it for reading in blocking mode would wait forever. The
    listing and the read refuse it by its type, at once."""
    lk = LocalLake(odd_lake)
    pipe = next(f for f in lk.inventory("log_data").rejected if f.key.endswith("2018-11-07-events.json"))
    assert list(lk.read_many([pipe])) == [(pipe, b"")]
    with pytest.raises(Exception, match="named pipe"):
        lk.read(pipe.key)


def test_s3_keys_take_the_same_rules(aws_env):
    import boto3

    from sparkify_assets.resources.lake import open_lake

    s3 = boto3.client("s3")
    bucket = "inventory-rules"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for key in (
        "lake/log_data/2018/11/2018-11-01-events.json",
        "lake/log_data/2018/11/2018-11-02-events.json.gz",
        "lake/log_data/2018/11/2018-11-02-events.json.bak",
        "lake/log_data/2018/11/_SUCCESS",
        "lake/log_data/2018/",
        "lake/log_data/2018/02/2018-02-30-events.json",
        "lake/song_data/A/TRA.json",
        "lake/song_data/A/.hidden/TRB.json",
        "lake/song_data/SHA256SUMS",
    ):
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    lk = open_lake(f"s3://{bucket}/lake")
    logs = lk.inventory("log_data")
    assert [f.key for f in logs.loaded] == [
        "log_data/2018/11/2018-11-01-events.json",
        "log_data/2018/11/2018-11-02-events.json.gz",
    ]
    assert {f.key: f.reject for f in logs.rejected} == {
        "log_data/2018/02/2018-02-30-events.json": "not a daily log file: 2018-02-30 is not a date",
        "log_data/2018/11/2018-11-02-events.json.bak": (
            "not a daily log file (log_data/YYYY/MM/YYYY-MM-DD-events.json or .json.gz)"
        ),
    }
    assert dict(logs.ignored) == {
        "log_data/2018/": "folder marker",
        "log_data/2018/11/_SUCCESS": "tool marker (a name starting with an underscore)",
    }
    songs = lk.inventory("song_data")
    assert [f.key for f in songs.loaded] == ["song_data/A/TRA.json"]
    assert dict(songs.ignored) == {
        "song_data/A/.hidden/TRB.json": "hidden (a name starting with a dot)",
        "song_data/SHA256SUMS": "documentation or checksum file",
    }
    assert lk.ignored_log_keys() == sorted(
        [f.key for f in logs.rejected] + ["log_data/2018/", "log_data/2018/11/_SUCCESS"]
    )
