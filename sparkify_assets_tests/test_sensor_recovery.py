"""The sensors recover from runs that failed or were cancelled: the day is asked for again, after
its backoff, until it lands, exactly once, and the tables then equal a clean load of the lake.

The causes are real: an analyst's DuckDB session holding the warehouse file open (another
process), a typo in the warehouse URL fixed afterwards, a run terminated while it waited for
the warehouse's run lock. The ticks run the log sensor's planner against the same instance with
an injected clock (`now`), so a backoff can be passed without waiting for it; the sensor itself
is evaluated too, to show it reads the same record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from sparkify_assets.partitions import loaded_partitions, partition_days
from sparkify_assets.resources.warehouse import WarehouseResource
from sparkify_assets.run_ledger import BACKOFF_FIRST_SECONDS, BACKOFF_MAX_SECONDS, InstanceLedger
from sparkify_assets.runner import failures, open_resource
from sparkify_assets.sensors import (
    SongCursor,
    fingerprint,
    plan_log_runs,
    plan_song_run,
    sparkify_log_sensor,
)
from sparkify_assets_tests.helpers import count, make_defs, rows
from sparkify_assets_tests.test_sensors import (
    NEW_SONG,
    NEW_SONG_KEY,
    SAMPLE,
    SAMPLE_EVENTS,
    assert_equals_clean_load,
    evaluate,
    log_key,
    put_sample,
    run_request,
)

DAY5 = "2018-11-05"
ROOT = Path(__file__).resolve().parent.parent


def mistyped(warehouse: str) -> str:
    """The warehouse URL with its scheme mistyped, as in a hand-edited setting: every run fails."""
    return warehouse.replace("duckdb://", "duckbd://", 1)


def tick(defs, instance: DagsterInstance, cursor: str | None, now: float):
    """One evaluation of the log sensor's planner, as the sensor makes it, at time `now`."""
    days = partition_days(loaded_partitions(defs))
    return plan_log_runs(
        open_resource(defs, "lake"),
        cursor,
        days[-1],
        partitions=set(days),
        ledger=InstanceLedger(instance),
        now=now,
    )


def day_runs(instance: DagsterInstance, day: str = DAY5) -> list[DagsterRunStatus]:
    """The statuses of every run of the day's partition, oldest first."""
    runs = instance.get_runs(RunsFilter(tags={"dagster/partition": day}))
    return [r.status for r in reversed(runs)]


def ended(instance: DagsterInstance, result) -> float:
    return instance.get_run_record_by_id(result.run_id).end_time


def first_load_then_day5(test_lake, warehouse: str, instance: DagsterInstance):
    """Days 1-4 loaded by the first evaluation; then day 5 lands and the code location reloads.
    Returns the first tick."""
    put_sample(test_lake, range(1, 5))
    defs = make_defs(warehouse, test_lake.url)
    first = tick(defs, instance, None, time.time())
    result = run_request(defs, instance, first.run_requests[0])
    assert result.success, failures(result)
    test_lake.put(log_key(5), (SAMPLE / log_key(5)).read_bytes())
    return first


def ask_day5(defs, instance, cursor: str):
    asked = tick(defs, instance, cursor, time.time())
    assert [(r.partition_key, r.tags["sparkify/reason"]) for r in asked.run_requests] == [(DAY5, "new")]
    return asked


@contextmanager
def analyst_session(path: Path):
    """Another process with the DuckDB file open for writing, as an analyst's `duckdb` shell."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        yield
    finally:
        holder.stdin.close()
        holder.wait(30)


def test_a_day_that_failed_on_a_locked_warehouse_loads_once_the_session_closes(writable_lake, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse = f"duckdb://{path}"
    instance = DagsterInstance.ephemeral()
    first = first_load_then_day5(writable_lake, warehouse, instance)
    defs = make_defs(warehouse, writable_lake.url)  # the code location reloads: day 5 is a partition
    asked = ask_day5(defs, instance, first.cursor.to_json())

    with analyst_session(path):
        failed = run_request(defs, instance, asked.run_requests[0])
        assert not failed.success
        # Just after the failure: nothing is asked, and the tick says why and until when.
        waiting = tick(defs, instance, asked.cursor.to_json(), time.time())
        assert waiting.run_requests == []
        assert f"{DAY5} waits for attempt 2" in waiting.message
        assert f"run {failed.run_id[:8]} failed" in waiting.message
        assert "is locked by another process" in waiting.message
        # The sensor itself reads the same record.
        evaluated = evaluate(defs, sparkify_log_sensor, instance, asked.cursor.to_json())
        assert evaluated.run_requests == [] and f"{DAY5} waits for attempt 2" in evaluated.skip_message

    later = time.time() + BACKOFF_FIRST_SECONDS + 1
    retry = tick(defs, instance, waiting.cursor.to_json(), later)
    (request,) = retry.run_requests
    assert (request.partition_key, request.tags["sparkify/reason"]) == (DAY5, "retry")
    assert request.run_key == f"{asked.run_requests[0].run_key}:a1"
    assert "asked again" in retry.message and failed.run_id[:8] in retry.message
    # A tick retried after a crash asks for the same run key: Dagster launches it once.
    assert [r.run_key for r in tick(defs, instance, waiting.cursor.to_json(), later).run_requests] == [
        request.run_key
    ]
    landed = run_request(defs, instance, request)
    assert landed.success, failures(landed)

    # Landed: nothing more, however late the clock.
    assert (
        tick(defs, instance, retry.cursor.to_json(), time.time() + 10 * BACKOFF_MAX_SECONDS).run_requests
        == []
    )
    assert evaluate(defs, sparkify_log_sensor, instance, retry.cursor.to_json()).run_requests == []
    assert day_runs(instance) == [DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS]
    assert count(warehouse, "staging_events", f"source_date = DATE '{DAY5}'") == SAMPLE_EVENTS[5]
    assert_equals_clean_load(warehouse, writable_lake.url, tmp_path)


def test_a_bad_warehouse_url_fixed_afterwards_loads_the_day_once_without_a_tight_loop(
    writable_lake, duckdb_url, tmp_path
):
    instance = DagsterInstance.ephemeral()
    first = first_load_then_day5(writable_lake, duckdb_url, instance)
    # The code location reloads with a typo in SPARKIFY_WAREHOUSE_URL.
    typo = make_defs(mistyped(duckdb_url), writable_lake.url)
    asked = ask_day5(typo, instance, first.cursor.to_json())

    one = run_request(typo, instance, asked.run_requests[0])
    assert not one.success
    second = tick(typo, instance, asked.cursor.to_json(), ended(instance, one) + BACKOFF_FIRST_SECONDS)
    (retry,) = second.run_requests
    assert "Unknown warehouse URL scheme duckbd://" in second.message
    two = run_request(typo, instance, retry)
    assert not two.success
    # Two failures: the next attempt waits twice as long, not a minute.
    early = tick(
        typo, instance, second.cursor.to_json(), ended(instance, two) + 2 * BACKOFF_FIRST_SECONDS - 1
    )
    assert early.run_requests == [] and f"{DAY5} waits for attempt 3" in early.message

    fixed = make_defs(duckdb_url, writable_lake.url)  # the URL is fixed and the code location reloads
    third = tick(fixed, instance, early.cursor.to_json(), ended(instance, two) + 2 * BACKOFF_FIRST_SECONDS)
    (request,) = third.run_requests
    assert request.run_key == f"{asked.run_requests[0].run_key}:a2"
    landed = run_request(fixed, instance, request)
    assert landed.success, failures(landed)

    assert (
        tick(fixed, instance, third.cursor.to_json(), time.time() + 10 * BACKOFF_MAX_SECONDS).run_requests
        == []
    )
    assert day_runs(instance) == [
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.SUCCESS,
    ]
    assert_equals_clean_load(duckdb_url, writable_lake.url, tmp_path)


RUN_IN_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from dagster import AssetKey, DagsterInstance
from sparkify_assets.runner import QUIET
from sparkify_assets_tests.helpers import make_defs
_, _, warehouse, lake, home, request = sys.argv
request = json.loads(request)
make_defs(warehouse, lake).resolve_job_def("sparkify_lake_updates").execute_in_process(
    instance=DagsterInstance.from_config(home),
    partition_key=request["partition_key"],
    tags=request["tags"],
    asset_selection=[AssetKey.from_user_string(k) for k in request["assets"]],
    run_config=QUIET,
    raise_on_error=False,
)
"""


def test_a_run_terminated_halfway_is_asked_again_and_lands(local_lake, duckdb_url, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = DagsterInstance.from_config(str(home))  # shared with the run's own process
    first = first_load_then_day5(local_lake, duckdb_url, instance)
    defs = make_defs(duckdb_url, local_lake.url)
    asked = ask_day5(defs, instance, first.cursor.to_json())
    request = asked.run_requests[0]
    payload = {
        "partition_key": request.partition_key,
        "tags": request.tags,
        "assets": [k.to_user_string() for k in request.asset_selection],
    }

    # Another process holds the warehouse's run lock: the run starts and waits for it.
    with WarehouseResource(url=duckdb_url).lock(wait=False):
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                RUN_IN_CHILD,
                str(ROOT),
                duckdb_url,
                local_lake.url,
                str(home),
                json.dumps(payload),
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.time() + 120
        while not (
            started := [r for r in instance.get_runs(RunsFilter(tags={"dagster/partition": DAY5}))]
        ) or (started[0].status != DagsterRunStatus.STARTED):
            assert time.time() < deadline and child.poll() is None, "the run did not start"
            time.sleep(0.3)
        # While it is in flight, the sensor asks for nothing more.
        flying = tick(defs, instance, asked.cursor.to_json(), time.time() + BACKOFF_MAX_SECONDS)
        assert (
            flying.run_requests == [] and f"{DAY5} (run {started[0].run_id[:8]} in flight)" in flying.message
        )
        # Terminate, as the UI's Terminate button does: mark it canceling, interrupt its process.
        instance.report_run_canceling(started[0])
        child.send_signal(signal.SIGINT)
        assert child.wait(60) is not None
    assert day_runs(instance) == [DagsterRunStatus.CANCELED]

    retry = tick(defs, instance, flying.cursor.to_json(), time.time() + BACKOFF_FIRST_SECONDS + 1)
    (again,) = retry.run_requests
    assert again.run_key == f"{request.run_key}:a1" and "was cancelled" in retry.message
    landed = run_request(defs, instance, again)
    assert landed.success, failures(landed)
    assert tick(defs, instance, retry.cursor.to_json(), time.time() + BACKOFF_MAX_SECONDS).run_requests == []
    assert day_runs(instance) == [DagsterRunStatus.CANCELED, DagsterRunStatus.SUCCESS]
    assert_equals_clean_load(duckdb_url, local_lake.url, tmp_path)


def test_a_day_that_keeps_failing_backs_off_to_half_an_hour_and_says_why(local_lake, duckdb_url):
    instance = DagsterInstance.ephemeral()
    first = first_load_then_day5(local_lake, duckdb_url, instance)
    typo = make_defs(mistyped(duckdb_url), local_lake.url)
    asked = ask_day5(typo, instance, first.cursor.to_json())
    cursor, request = asked.cursor.to_json(), asked.run_requests[0]
    base = request.run_key
    # Waits after 1, 2, ... failures: 1, 2, 4, 8, 16 minutes, then 30 (the cap), 30.
    expected = [60, 120, 240, 480, 960, 1800, 1800]
    for n, delay in enumerate(expected, start=1):
        result = run_request(typo, instance, request)
        assert not result.success
        end = ended(instance, result)
        wait = tick(typo, instance, cursor, end + delay - 1)
        assert wait.run_requests == []
        assert f"waiting for backoff: {DAY5} waits for attempt {n + 1}" in wait.message
        assert f"run {result.run_id[:8]} failed: Unknown warehouse URL scheme duckbd://" in wait.message
        due = tick(typo, instance, wait.cursor.to_json(), end + delay)
        (request,) = due.run_requests
        assert request.run_key == f"{base}:a{n}" and request.tags["sparkify/attempt"] == str(n + 1)
        cursor = due.cursor.to_json()
    assert day_runs(instance) == [DagsterRunStatus.FAILURE] * len(expected)


def test_a_failed_first_load_is_asked_again_and_covers_every_day(local_lake, duckdb_url, tmp_path):
    put_sample(local_lake, range(1, 4))
    instance = DagsterInstance.ephemeral()
    typo = make_defs(mistyped(duckdb_url), local_lake.url)
    first = tick(typo, instance, None, time.time())
    failed = run_request(typo, instance, first.run_requests[0])
    assert not failed.success
    # No day is asked for on its own while the first load is being retried: it covers them all.
    waiting = tick(typo, instance, first.cursor.to_json(), time.time())
    assert waiting.run_requests == [] and "the first load (2018-11-01 to 2018-11-03) waits" in waiting.message
    defs = make_defs(duckdb_url, local_lake.url)
    retry = tick(defs, instance, waiting.cursor.to_json(), ended(instance, failed) + BACKOFF_FIRST_SECONDS)
    (again,) = retry.run_requests
    assert again.partition_key is None and again.tags["dagster/asset_partition_range_end"] == "2018-11-03"
    assert run_request(defs, instance, again).success
    done = tick(defs, instance, retry.cursor.to_json(), time.time() + BACKOFF_MAX_SECONDS)
    assert done.run_requests == [] and "first_load" not in done.cursor.to_json()
    assert_equals_clean_load(duckdb_url, local_lake.url, tmp_path)


def test_a_failed_catalog_run_is_asked_again_and_lands(local_lake, duckdb_url, tmp_path):
    instance = DagsterInstance.ephemeral()
    first = first_load_then_day5(local_lake, duckdb_url, instance)
    day5 = ask_day5(make_defs(duckdb_url, local_lake.url), instance, first.cursor.to_json()).run_requests[0]
    assert run_request(make_defs(duckdb_url, local_lake.url), instance, day5).success
    local_lake.put(NEW_SONG_KEY, json.dumps(NEW_SONG).encode())
    typo = make_defs(mistyped(duckdb_url), local_lake.url)

    def song_tick(defs, cursor, now):
        days = partition_days(loaded_partitions(defs))
        staged = {
            date.fromisoformat(k) for k in instance.get_materialized_partitions(AssetKey("staging_events"))
        }
        return plan_song_run(
            open_resource(defs, "lake"), cursor, days[-1], staged, set(days), InstanceLedger(instance), now
        )

    # The song sensor's cursor as its first evaluation left it, before the new song file.
    start = SongCursor(fingerprint(open_resource(typo, "lake").song_files()[:-1]), 1).to_json()
    asked = song_tick(typo, start, time.time())
    failed = run_request(typo, instance, asked.run_request)
    assert not failed.success
    waiting = song_tick(typo, asked.cursor.to_json(), ended(instance, failed) + BACKOFF_FIRST_SECONDS - 1)
    assert waiting.run_request is None
    assert f"run {failed.run_id[:8]} failed: Unknown warehouse URL scheme duckbd://" in waiting.message
    defs = make_defs(duckdb_url, local_lake.url)
    retry = song_tick(defs, waiting.cursor.to_json(), ended(instance, failed) + BACKOFF_FIRST_SECONDS)
    assert retry.run_request.run_key == f"{asked.run_request.run_key}:a1"
    assert "songplays" in {k.to_user_string() for k in retry.run_request.asset_selection}
    landed = run_request(defs, instance, retry.run_request)
    assert landed.success, failures(landed)
    done = song_tick(defs, retry.cursor.to_json(), time.time() + BACKOFF_MAX_SECONDS)
    assert done.run_request is None and "pending" not in done.cursor.to_json()
    # The new song matches a play of day 5, staged before the catalog changed.
    assert ("69", "SOSENSORTEST000001") in rows(duckdb_url, "songplays", ["user_id", "song_id"])
    assert_equals_clean_load(duckdb_url, local_lake.url, tmp_path)
