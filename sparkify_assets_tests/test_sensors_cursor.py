"""The sensors' decisions without running anything: run keys, late, future and old files, the
cursor, and listing a lake since a day (local folder and moto's S3 server)."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import boto3
import pytest

from sparkify_assets.resources.lake import LocalLake, open_lake
from sparkify_assets.sensors import SensorCursorError, plan_log_runs, plan_song_run

TODAY = date(2018, 11, 30)  # the newest partition the tests allow, unless they say otherwise


def key(day: int, month: int = 11, year: int = 2018) -> str:
    return f"log_data/{year}/{month:02d}/{year}-{month:02d}-{day:02d}-events.json"


def write(root: Path, rel: str, body: bytes = b'{"ts": 0}\n') -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def days_of(tick) -> list[tuple[str, str]]:
    return [(r.partition_key, r.tags["sparkify/reason"]) for r in tick.run_requests]


def test_a_retried_tick_repeats_its_run_keys_and_a_file_put_back_gets_a_new_one(aws_env):
    bucket = f"sparkify-keys-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for day in (1, 2, 3):
        s3.put_object(Bucket=bucket, Key=key(day), Body=b'{"ts": 1}\n')
    lake = open_lake(f"s3://{bucket}")
    start = plan_log_runs(lake, None, TODAY).cursor.to_json()

    s3.put_object(Bucket=bucket, Key=key(2), Body=b'{"ts": 2}\n')
    changed = plan_log_runs(lake, start, TODAY)
    retried = plan_log_runs(lake, start, TODAY)  # the same tick again, e.g. after a crash
    assert days_of(changed) == [("2018-11-02", "changed")]
    assert [r.run_key for r in retried.run_requests] == [r.run_key for r in changed.run_requests]

    # Putting the first version back gives the first ETag again, yet a run key never used before.
    s3.put_object(Bucket=bucket, Key=key(2), Body=b'{"ts": 1}\n')
    back = plan_log_runs(lake, changed.cursor.to_json(), TODAY)
    assert days_of(back) == [("2018-11-02", "changed")]
    first_etag = s3.head_object(Bucket=bucket, Key=key(1))["ETag"].strip('"')
    assert back.run_requests[0].run_key.startswith(f"2018-11-02:{first_etag}:")
    assert back.run_requests[0].run_key not in {r.run_key for r in changed.run_requests}
    assert plan_log_runs(lake, back.cursor.to_json(), TODAY).run_requests == []


def test_late_files_in_the_look_back_load_and_older_ones_wait_for_a_manual_run(tmp_path):
    for day in (1, 2, 3, 4, 5, 7, 8, 9, 10):
        write(tmp_path, key(day))
    lake = LocalLake(tmp_path)
    cursor = plan_log_runs(lake, None, TODAY).cursor.to_json()
    write(tmp_path, key(6))  # late, within the 7-day look-back from day 10
    write(tmp_path, key(1), b'{"ts": 1}\n{"ts": 2}\n')  # day 1 changed, older than the look-back
    tick = plan_log_runs(lake, cursor, TODAY)
    assert days_of(tick) == [("2018-11-06", "late")]


def test_days_outside_the_partitions_wait(tmp_path):
    write(tmp_path, "log_data/2018/10/2018-10-31-events.json")  # before the first partition
    for day in (1, 2, 3):
        write(tmp_path, key(day))
    lake = LocalLake(tmp_path)
    # Day 3 is not a partition yet (its day is not over): it waits and is not recorded.
    first = plan_log_runs(lake, None, date(2018, 11, 2))
    assert first.run_requests[0].tags["dagster/asset_partition_range_start"] == "2018-11-01"
    assert first.run_requests[0].tags["dagster/asset_partition_range_end"] == "2018-11-02"
    assert plan_log_runs(lake, first.cursor.to_json(), date(2018, 11, 2)).run_requests == []
    assert days_of(plan_log_runs(lake, first.cursor.to_json(), date(2018, 11, 3))) == [("2018-11-03", "new")]


def test_a_day_that_is_not_a_loaded_partition_waits_and_is_named(tmp_path):
    for day in (1, 2, 4):
        write(tmp_path, key(day))
    lake = LocalLake(tmp_path)
    loaded = {date(2018, 11, d) for d in (1, 2, 4)}  # the partitions when the code location loaded
    first = plan_log_runs(lake, None, date(2018, 11, 4), partitions=loaded)
    write(tmp_path, key(3))  # a gap filled, and a new day, after the code location loaded
    write(tmp_path, key(5))
    waiting = plan_log_runs(lake, first.cursor.to_json(), date(2018, 11, 4), partitions=loaded)
    assert waiting.run_requests == []
    assert "2 day(s) in the lake are not partitions yet (2018-11-03, 2018-11-05)" in waiting.message
    assert "reload" in waiting.message
    # After the reload both are partitions; the cursor did not move past them, so both load.
    reloaded = loaded | {date(2018, 11, 3), date(2018, 11, 5)}
    after = plan_log_runs(lake, waiting.cursor.to_json(), date(2018, 11, 5), partitions=reloaded)
    assert days_of(after) == [("2018-11-03", "late"), ("2018-11-05", "new")]


def test_song_sensor_runs_once_per_catalog_change(tmp_path):
    write(tmp_path, key(1))
    write(tmp_path, key(2))
    write(tmp_path, "song_data/A/A/A/TRA.json", b'{"song_id": "S1"}')
    lake = LocalLake(tmp_path)
    # Nothing staged yet: restage the catalog only (the first load builds songplays).
    first = plan_song_run(lake, None, TODAY, set())
    assert sorted(k.to_user_string() for k in first.run_request.asset_selection) == [
        "artists",
        "songs",
        "staging_songs",
    ]
    assert plan_song_run(lake, first.cursor.to_json(), TODAY, {date(2018, 11, 1)}).run_request is None
    write(tmp_path, "song_data/B/B/B/TRB.json", b'{"song_id": "S2"}')
    second = plan_song_run(lake, first.cursor.to_json(), TODAY, {date(2018, 11, 1)})
    assert second.run_request.run_key != first.run_request.run_key
    # Day 1 is staged and day 2 is in the lake (its run may be waiting): both are re-matched.
    assert second.run_request.tags["dagster/asset_partition_range_start"] == "2018-11-01"
    assert second.run_request.tags["dagster/asset_partition_range_end"] == "2018-11-02"
    assert "songplays" in {k.to_user_string() for k in second.run_request.asset_selection}


def test_a_cursor_typed_by_hand_is_refused_with_the_fix(tmp_path):
    write(tmp_path, key(1))
    lake = LocalLake(tmp_path)
    with pytest.raises(SensorCursorError, match=r"sparkify_log_sensor > Reset cursor"):
        plan_log_runs(lake, "2018-11-05", TODAY)
    with pytest.raises(SensorCursorError, match=r"sparkify_song_sensor > Reset cursor"):
        plan_song_run(lake, '{"digest": 1}', TODAY, set())


def test_listing_since_a_day_crosses_months_and_years_and_skips_other_keys(tmp_path):
    for rel in (
        key(30),
        "log_data/2018/12/2018-12-30-events.json",
        "log_data/2018/12/2018-12-31-events.json",
        "log_data/2019/01/2019-01-01-events.json",
        "log_data/2019/01/notes.txt",
        "log_data/2019/02/2019-01-15-events.json",  # wrong month folder: not a daily file
    ):
        write(tmp_path, rel)
    got = [f.key for f in LocalLake(tmp_path).log_files(date(2018, 12, 31))]
    assert got == ["log_data/2018/12/2018-12-31-events.json", "log_data/2019/01/2019-01-01-events.json"]
    # The bounded form keeps its behaviour.
    got = [f.key for f in LocalLake(tmp_path).log_files(date(2018, 11, 30), date(2018, 12, 30))]
    assert got == [key(30), "log_data/2018/12/2018-12-30-events.json"]
