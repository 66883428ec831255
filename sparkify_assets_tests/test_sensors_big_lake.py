"""The log sensor on a lake of three years of daily files (moto's S3 server, generated keys): with a
cursor it lists only the last days, in one S3 list call, instead of the whole bucket."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import boto3
import pytest
from dagster import DagsterInstance, build_sensor_context

from sparkify_assets.resources.lake import S3Lake
from sparkify_assets.sensors import LOOKBACK_DAYS, sparkify_log_sensor
from sparkify_assets_tests.helpers import make_defs

FIRST = date(2018, 11, 1)
DAYS = 1096  # 2018-11-01 to 2021-10-31: three years, one leap day
LAST = date(2021, 10, 31)


def put_days(client, bucket: str, days: list[date]) -> None:
    def put(day: date) -> None:
        line = {"ts": 0, "userId": "1", "page": "Home", "sessionId": 1, "itemInSession": 0}
        key = f"lake/log_data/{day:%Y/%m}/{day.isoformat()}-events.json"
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps(line).encode())

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, days))


@pytest.fixture
def list_spy(monkeypatch):
    """Every S3Lake a sensor opens, how many files each listing returned, and the seconds it took."""
    lakes: list[S3Lake] = []
    listed: list[int] = []
    seconds: list[float] = []
    real = S3Lake._list

    def spy(self, prefix, start_after=None):
        if self not in lakes:
            lakes.append(self)
        started = time.perf_counter()
        found = real(self, prefix, start_after)
        seconds.append(time.perf_counter() - started)
        listed.append(len(found))
        return found

    monkeypatch.setattr(S3Lake, "_list", spy)
    return lakes, listed, seconds


def evaluate(defs, cursor):
    with build_sensor_context(
        instance=DagsterInstance.ephemeral(), resources=defs.resources, cursor=cursor, definitions=defs
    ) as context:
        return sparkify_log_sensor.evaluate_tick(context)


def test_recent_cursor_lists_only_recent_days(aws_env, tmp_path, list_spy):
    bucket = f"sparkify-big-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    days = [FIRST + timedelta(days=i) for i in range(DAYS)]
    assert days[-1] == LAST
    started = time.perf_counter()
    put_days(client, bucket, days)
    print(f"\nuploaded {DAYS} daily files in {time.perf_counter() - started:.2f}s")
    lakes, listed, seconds = list_spy
    defs = make_defs(f"duckdb://{tmp_path / 'unused.duckdb'}", f"s3://{bucket}/lake")
    # Loading the Definitions lists log_data/ once (the partitions are the lake's days).
    assert sum(lake.list_calls for lake in lakes) == 2 and sum(listed) == DAYS
    assert len(defs.resolve_assets_def("songplays").partitions_def.get_partition_keys()) == DAYS
    for spied in list_spy:
        spied.clear()

    # No cursor: one full listing (1,096 keys, two pages) and one run over the three years.
    started = time.perf_counter()
    first = evaluate(defs, None)
    elapsed = time.perf_counter() - started
    calls = sum(lake.list_calls for lake in lakes)
    print(
        f"first evaluation: {calls} list calls, {sum(listed)} files listed in {sum(seconds):.3f}s, "
        f"whole evaluation {elapsed:.3f}s"
    )
    assert calls == 2
    (request,) = first.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2018-11-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2021-10-31"
    # The cursor keeps the look-back window only, whatever the size of the lake.
    assert len(json.loads(first.cursor)["seen"]) == LOOKBACK_DAYS + 1

    # Two new days: the listing starts a look-back before the cursor's last day.
    put_days(client, bucket, [date(2021, 11, 1), date(2021, 11, 2)])
    defs = make_defs(f"duckdb://{tmp_path / 'unused.duckdb'}", f"s3://{bucket}/lake")  # reloaded
    for spied in list_spy:
        spied.clear()
    started = time.perf_counter()
    second = evaluate(defs, first.cursor)
    elapsed = time.perf_counter() - started
    calls = sum(lake.list_calls for lake in lakes)
    print(
        f"evaluation with a recent cursor: {calls} list call(s), {sum(listed)} files listed in "
        f"{sum(seconds):.3f}s, whole evaluation {elapsed:.3f}s"
    )
    # The first load was not run here: it is asked again under its own key (Dagster launches a
    # run key once), and the two new days are asked for.
    assert [r.run_key for r in second.run_requests if r.partition_key is None] == [request.run_key]
    assert [r.partition_key for r in second.run_requests if r.partition_key] == ["2021-11-01", "2021-11-02"]
    assert calls == 1
    # 2021-10-24 (the cursor's last day minus the 7-day look-back) to 2021-11-02.
    assert listed == [10]
