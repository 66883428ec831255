"""The lake sensors end to end, on a local folder and on moto's S3 server: they ask for exactly
the new and changed days, the runs they ask for leave the tables equal to a clean full load of the
same lake, and an unchanged lake asks for nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

from dagster import DagsterInstance, DefaultSensorStatus, build_sensor_context

from sparkify_assets.assets.analytics import ANALYTICS_TABLES
from sparkify_assets.resources.lake import sample_lake_path
from sparkify_assets.runner import QUIET, failures
from sparkify_assets.sensors import sparkify_lake_updates, sparkify_log_sensor, sparkify_song_sensor
from sparkify_assets_tests.helpers import count, load, make_defs, rows

SAMPLE = sample_lake_path()
CORE_TABLES = ["staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time"]
ANALYTICS_BY_NAME = {t.name: t for t in ANALYTICS_TABLES}
ANALYTICS = set(ANALYTICS_BY_NAME)
assert len(ANALYTICS) == 7

# Event lines in the sample's log files (counted with `grep -c .`), by day of November 2018.
SAMPLE_EVENTS = {1: 15, 2: 171, 3: 111, 4: 189, 5: 408, 6: 184, 7: 202, 8: 223, 9: 283, 10: 96, 11: 95}

# One more play on day 3, by a new user, of the catalog's "Setanta matins" by Elena
# (269.58322 s, song SOZCTXZ12AB0182364 in the sample), at 2018-11-03 12:00:00 UTC.
EXTRA_EVENT = {
    "artist": "Elena",
    "auth": "Logged In",
    "firstName": "Sensor",
    "gender": "F",
    "itemInSession": 0,
    "lastName": "Tester",
    "length": 269.58322,
    "level": "free",
    "location": "Nowhere, XX",
    "method": "PUT",
    "page": "NextSong",
    "registration": 1541000000000.0,
    "sessionId": 9999,
    "song": "Setanta matins",
    "status": 200,
    "ts": 1541246400000,
    "userAgent": "sensor-test",
    "userId": "999",
}

# A new catalog song that matches a play already loaded on day 5 (user 69, session 256, at
# 2018-11-05 00:33:12.796, "Almost Lover (Album Version)" by A Fine Frenzy, 267.91138 s).
NEW_SONG_KEY = "song_data/Z/Z/Z/TRSENSORTEST00001.json"
NEW_SONG = {
    "num_songs": 1,
    "artist_id": "ARSENSORTEST000001",
    "artist_latitude": None,
    "artist_longitude": None,
    "artist_location": "",
    "artist_name": "A Fine Frenzy",
    "song_id": "SOSENSORTEST000001",
    "title": "Almost Lover (Album Version)",
    "duration": 267.91138,
    "year": 2007,
}


def log_key(day: int) -> str:
    return f"log_data/2018/11/2018-11-{day:02d}-events.json"


def put_sample(lake, days: range) -> None:
    for path in sorted((SAMPLE / "song_data").rglob("*.json")):
        lake.put(path.relative_to(SAMPLE).as_posix(), path.read_bytes())
    for day in days:
        lake.put(log_key(day), (SAMPLE / log_key(day)).read_bytes())


def evaluate(defs, sensor_def, instance: DagsterInstance, cursor: str | None):
    with build_sensor_context(
        instance=instance, resources=defs.resources, cursor=cursor, definitions=defs
    ) as context:
        return sensor_def.evaluate_tick(context)


def run_request(defs, instance: DagsterInstance, request, job_name: str = sparkify_lake_updates.name):
    """Carry out a RunRequest as the daemon would (its tags on the run); may fail."""
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=request.asset_selection,
        run_config=QUIET,
        raise_on_error=False,
    )


def execute(defs, sensor_def, instance: DagsterInstance, request) -> set[tuple[str, str | None]]:
    """Run what a RunRequest asks for, as the daemon would; returns (asset, partition) materialized."""
    result = run_request(defs, instance, request, sensor_def.job_name)
    assert result.success, failures(result)
    return {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}


def assert_equals_clean_load(warehouse_url: str, lake_url: str, tmp_path: Path) -> None:
    clean = f"duckdb://{tmp_path / f'clean-{uuid.uuid4().hex[:6]}.duckdb'}"
    load(clean, lake_url)
    for table in [*CORE_TABLES, *sorted(ANALYTICS)]:
        columns = None if table in CORE_TABLES else [c.name for c in ANALYTICS_BY_NAME[table].columns]
        assert rows(warehouse_url, table, columns) == rows(clean, table, columns), table


def test_sensors_load_new_and_changed_days_once(writable_lake, duckdb_url, tmp_path):
    put_sample(writable_lake, range(1, 11))
    defs = make_defs(duckdb_url, writable_lake.url)
    instance = DagsterInstance.ephemeral()

    # First evaluations: one run loads everything (ten days and the catalog); the song sensor,
    # seeing no day staged yet, restages the catalog without touching songplays.
    logs = evaluate(defs, sparkify_log_sensor, instance, None)
    (first,) = logs.run_requests
    assert first.partition_key is None and first.asset_selection is None
    assert first.tags["dagster/asset_partition_range_start"] == "2018-11-01"
    assert first.tags["dagster/asset_partition_range_end"] == "2018-11-10"
    songs = evaluate(defs, sparkify_song_sensor, instance, None)
    (first_songs,) = songs.run_requests
    assert sorted(k.to_user_string() for k in first_songs.asset_selection) == [
        "artists",
        "songs",
        "staging_songs",
    ]
    done = execute(defs, sparkify_log_sensor, instance, first)
    assert {asset for asset, _ in done} == {*CORE_TABLES, *ANALYTICS}
    assert {p for asset, p in done if asset == "staging_events"} == {f"2018-11-{d:02d}" for d in range(1, 11)}
    execute(defs, sparkify_song_sensor, instance, first_songs)
    assert count(duckdb_url, "staging_events") == sum(SAMPLE_EVENTS[d] for d in range(1, 11)) == 1882
    assert count(duckdb_url, "staging_songs") == 71

    # Day 11 arrives, day 3 is re-uploaded with one more play, and a new song matches a day-5 play.
    writable_lake.put(log_key(11), (SAMPLE / log_key(11)).read_bytes())
    day3 = (SAMPLE / log_key(3)).read_bytes().rstrip(b"\n") + b"\n" + json.dumps(EXTRA_EVENT).encode() + b"\n"
    writable_lake.put(log_key(3), day3)
    writable_lake.put(NEW_SONG_KEY, json.dumps(NEW_SONG).encode())

    # The partitions are the lake's days when the code location loaded: day 3 reloads at once,
    # day 11 waits (and says so) until the code location reloads, which makes it a partition.
    before_reload = evaluate(defs, sparkify_log_sensor, instance, logs.cursor)
    assert [(r.partition_key, r.tags["sparkify/reason"]) for r in before_reload.run_requests] == [
        ("2018-11-03", "changed")
    ]
    defs = make_defs(duckdb_url, writable_lake.url)  # the code location reloads
    logs2 = evaluate(defs, sparkify_log_sensor, instance, logs.cursor)
    assert sorted((r.partition_key, r.tags["sparkify/reason"]) for r in logs2.run_requests) == [
        ("2018-11-03", "changed"),
        ("2018-11-11", "new"),
    ]
    songs2 = evaluate(defs, sparkify_song_sensor, instance, songs.cursor)
    assert len(songs2.run_requests) == 1
    # Plays of every staged day, and of day 11 whose run may come first, are re-matched.
    assert songs2.run_requests[0].tags["dagster/asset_partition_range_start"] == "2018-11-01"
    assert songs2.run_requests[0].tags["dagster/asset_partition_range_end"] == "2018-11-11"
    assert "songplays" in {k.to_user_string() for k in songs2.run_requests[0].asset_selection}

    # A day's run reloads that partition and rebuilds the dimensions built from every day.
    for request in logs2.run_requests:
        day = request.partition_key
        assert execute(defs, sparkify_log_sensor, instance, request) == {
            ("staging_events", day),
            ("songplays", day),
            ("users", None),
            ("time", None),
            *((name, None) for name in ANALYTICS),
        }
    execute(defs, sparkify_song_sensor, instance, songs2.run_requests[0])

    assert count(duckdb_url, "staging_events") == 1882 + 1 + SAMPLE_EVENTS[11]
    assert count(duckdb_url, "staging_events", "source_date = DATE '2018-11-03'") == SAMPLE_EVENTS[3] + 1
    assert ("999", "Sensor", "Tester", "F", "free") in rows(
        duckdb_url, "users", ["user_id", "first_name", "last_name", "gender", "level"]
    )
    plays = rows(duckdb_url, "songplays", ["start_time", "user_id", "session_id", "song_id"])
    assert (dt.datetime(2018, 11, 3, 12, 0), "999", 9999, "SOZCTXZ12AB0182364") in plays
    assert (dt.datetime(2018, 11, 5, 0, 33, 12, 796000), "69", 256, "SOSENSORTEST000001") in plays
    assert_equals_clean_load(duckdb_url, writable_lake.url, tmp_path)

    # Nothing changed: nothing to do.
    logs3 = evaluate(defs, sparkify_log_sensor, instance, logs2.cursor)
    songs3 = evaluate(defs, sparkify_song_sensor, instance, songs2.cursor)
    assert logs3.run_requests == [] and songs3.run_requests == []
    assert logs3.skip_message and songs3.skip_message


def test_a_deleted_day_is_reloaded_empty(local_lake, duckdb_url, tmp_path):
    put_sample(local_lake, range(1, 6))
    defs = make_defs(duckdb_url, local_lake.url)
    instance = DagsterInstance.ephemeral()
    first = evaluate(defs, sparkify_log_sensor, instance, None)
    execute(defs, sparkify_log_sensor, instance, first.run_requests[0])  # loads the catalog too

    local_lake.delete(log_key(4))
    second = evaluate(defs, sparkify_log_sensor, instance, first.cursor)
    assert [(r.partition_key, r.tags["sparkify/reason"]) for r in second.run_requests] == [
        ("2018-11-04", "deleted")
    ]
    execute(defs, sparkify_log_sensor, instance, second.run_requests[0])
    assert count(duckdb_url, "staging_events") == 15 + 171 + 111 + 408
    assert_equals_clean_load(duckdb_url, local_lake.url, tmp_path)
    assert evaluate(defs, sparkify_log_sensor, instance, second.cursor).run_requests == []


def test_sensors_read_only_the_lake_and_run_by_default():
    for sensor_def in (sparkify_log_sensor, sparkify_song_sensor):
        # No warehouse resource: a sensor never opens (or locks) the DuckDB file.
        assert sensor_def.required_resource_keys == {"lake"}
        assert sensor_def.default_status == DefaultSensorStatus.RUNNING
        assert 30 <= sensor_def.minimum_interval_seconds <= 600
    defs = make_defs("duckdb:///nowhere/never-opened.duckdb")
    assert defs.resolve_sensor_def("sparkify_log_sensor").job_name == "sparkify_lake_updates"
    assert defs.resolve_sensor_def("sparkify_song_sensor").job_name == "sparkify_lake_updates"
    assert not Path("/nowhere/never-opened.duckdb").exists()


def test_song_sensor_with_no_log_files_only_stages_the_catalog(local_lake, duckdb_url):
    put_sample(local_lake, range(0))
    defs = make_defs(duckdb_url, local_lake.url)
    instance = DagsterInstance.ephemeral()
    assert evaluate(defs, sparkify_log_sensor, instance, None).run_requests == []
    songs = evaluate(defs, sparkify_song_sensor, instance, None)
    assert execute(defs, sparkify_song_sensor, instance, songs.run_requests[0]) == {
        ("staging_songs", None),
        ("songs", None),
        ("artists", None),
    }
    assert (count(duckdb_url, "songs"), count(duckdb_url, "artists")) == (71, 69)
