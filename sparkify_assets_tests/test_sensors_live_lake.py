"""A live lake (a file within the last week) has open-ended daily partitions: a new day's file
is a partition, and is loaded by the log sensor, without reloading the code location; an
archive lake such as the shipped sample keeps exactly its days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import DagsterInstance

from sparkify_assets.partitions import LIVE_LAKE_DAYS, lake_partitions, loaded_partitions, partition_days
from sparkify_assets.resources.lake import sample_lake_path
from sparkify_assets.sensors import sparkify_log_sensor
from sparkify_assets_tests.helpers import make_defs
from sparkify_assets_tests.lake_support import LocalTestLake
from sparkify_assets_tests.test_sensors import evaluate

SAMPLE = sample_lake_path()


def key(day: date) -> str:
    return f"log_data/{day:%Y/%m}/{day.isoformat()}-events.json"


def test_the_sample_is_an_archive_lake_with_exactly_its_thirty_days():
    days = partition_days(loaded_partitions(make_defs("duckdb:///nowhere/never.duckdb", str(SAMPLE))))
    assert len(days) == 30 and (days[0], days[-1]) == (date(2018, 11, 1), date(2018, 11, 30))


def test_a_live_lake_is_open_ended_and_an_old_one_bounded():
    today = date(2026, 12, 2)
    live = lake_partitions([today - timedelta(days=LIVE_LAKE_DAYS), today - timedelta(days=10)], today)
    assert live.end is None  # open-ended: every day to yesterday, missing days included
    archive = lake_partitions([today - timedelta(days=LIVE_LAKE_DAYS + 1), today - timedelta(days=10)], today)
    assert archive.get_partition_keys() == [
        (today - timedelta(days=10)).isoformat(),
        (today - timedelta(days=LIVE_LAKE_DAYS + 1)).isoformat(),
    ]


def test_a_new_day_of_a_live_lake_loads_without_a_reload(tmp_path):
    today = datetime.now(UTC).date()
    lake = LocalTestLake(tmp_path / "lake")
    sample_day = (SAMPLE / "log_data/2018/11/2018-11-05-events.json").read_bytes()
    for back in (5, 4, 2):  # day -3 is missing
        lake.put(key(today - timedelta(days=back)), sample_day)
    defs = make_defs(f"duckdb://{tmp_path / 'w.duckdb'}", lake.url)
    days = partition_days(loaded_partitions(defs))
    assert days[0] == today - timedelta(days=5) and days[-1] == today - timedelta(days=1)
    assert today - timedelta(days=3) in days  # no file: a partition that shows as missing
    instance = DagsterInstance.ephemeral()
    first = evaluate(defs, sparkify_log_sensor, instance, None)
    assert (
        first.run_requests[0].tags["dagster/asset_partition_range_end"]
        == (today - timedelta(days=2)).isoformat()
    )

    # Yesterday's file and the missing day arrive; the code location is not reloaded.
    lake.put(key(today - timedelta(days=1)), sample_day)
    lake.put(key(today - timedelta(days=3)), sample_day)
    lake.put(key(today), sample_day)  # today is not over: it waits for midnight
    second = evaluate(defs, sparkify_log_sensor, instance, first.cursor)
    # The first load has no run yet (none was launched here): asked again with its own key, which
    # Dagster launches once.
    (again,) = [r for r in second.run_requests if r.partition_key is None]
    assert again.run_key == first.run_requests[0].run_key
    days = [r for r in second.run_requests if r.partition_key]
    assert sorted((r.partition_key, r.tags["sparkify/reason"]) for r in days) == [
        ((today - timedelta(days=3)).isoformat(), "late"),
        ((today - timedelta(days=1)).isoformat(), "new"),
    ]
