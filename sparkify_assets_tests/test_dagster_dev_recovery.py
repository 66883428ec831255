"""Issue 16's "done when", end to end: a person starts `dagster dev` once (daemon, sensors, the
project's dagster.yaml with run retries on) while an analyst's DuckDB session holds the
warehouse file open, so the first load fails; the session then ends, and without anyone touching
anything the warehouse ends up holding every day of the lake, loaded by exactly one successful
run per request (Dagster's run retries or the sensor's own retry, whichever got there first)."""

import signal
import subprocess
import sys
import time
from collections import defaultdict

from dagster import DagsterRunStatus

from sparkify_assets.instance import project_instance
from sparkify_assets.run_ledger import FINISHED, REQUEST_TAG, InstanceLedger, backoff_seconds
from sparkify_assets_tests.test_instance import _dagster_dev, _project, _sensor, _stop
from sparkify_assets_tests.test_sensors import assert_equals_clean_load
from sparkify_assets_tests.ui_support import wait_for

# A request's runs before the sensor's backoff takes over: the first and Dagster's two retries
# (dagster/max_retries: 2); the sensor then waits backoff_seconds(3) before asking again.
LONGEST_WAIT = backoff_seconds(3)


def _runs():
    with project_instance() as instance:
        return list(reversed(instance.get_runs()))  # oldest first


def _summary() -> str:
    return ", ".join(f"{r.run_id[:8]} {r.status.value} {r.tags.get(REQUEST_TAG)}" for r in _runs())


def _load_failed():
    """The failed runs of the log sensor's first load (Dagster's retries carry its tags too). The
    song sensor's first run may come first in the queue and fail alone: the lock is held until
    the load itself has failed."""
    return [
        r
        for r in _runs()
        if r.status == DagsterRunStatus.FAILURE and r.tags.get("sparkify/reason") == "first evaluation"
    ]


def _settled():
    """Both sensors' first requests (the log sensor's load, the song sensor's catalog restage) and
    every later one have a successful run, and no run is queued or in flight."""
    runs = _runs()
    by_request = defaultdict(list)
    for r in runs:
        by_request[r.tags.get(REQUEST_TAG)].append(r)
    done = (
        len(by_request) >= 2
        and all(r.status in FINISHED for r in runs)
        and all(any(r.status == DagsterRunStatus.SUCCESS for r in rs) for rs in by_request.values())
    )
    return by_request if done else None


def test_dagster_dev_started_on_a_locked_warehouse_loads_the_whole_lake_once_it_is_free(
    tmp_path, monkeypatch
):
    project = _project(tmp_path / "project")
    monkeypatch.chdir(project)  # the test reads the instance as `dagster dev` here opens it
    warehouse = project / ".sparkify" / "sparkify.duckdb"  # the default warehouse (README)
    warehouse.parent.mkdir()
    # An analyst's session: another process holding DuckDB's own lock on the file.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "time.sleep(3600)",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    started = time.time()
    try:
        assert holder.stdout.readline().strip() == "open"
        with _dagster_dev(project, "dev.log") as dev:
            failed = wait_for("the first load to fail", _load_failed, 600, 1, describe=_summary)
            holder.kill()  # the analyst closes the session: nobody touches anything else
            holder.wait(30)
            freed = time.time()
            assert not [r for r in _runs() if r.status == DagsterRunStatus.SUCCESS]

            by_request = wait_for(
                "every request to land",
                _settled,
                600 + LONGEST_WAIT,
                3,
                describe=lambda: f"{_summary()}\n{dev.log_tail()}",
            )
            # One more log sensor tick after that: nothing left to ask for.
            settled = time.time()
            wait_for(
                "a log sensor tick after the load",
                lambda: [t for t in _sensor("sparkify_log_sensor")[1] if t.timestamp > settled],
                300,
                3,
                describe=dev.log_tail,
            )
            runs = _runs()
            _stop(dev, signal.SIGTERM)  # the warehouse file is free for the comparison below
    finally:
        holder.kill()
        holder.wait(30)

    assert len(runs) == sum(len(rs) for rs in by_request.values())  # no run after settling
    assert None not in by_request, "every run carries the request it belongs to"
    first_load = [rs for rs in by_request.values() if rs[0].tags.get("sparkify/reason") == "first evaluation"]
    assert len(first_load) == 1, _summary()
    with project_instance() as instance:
        ledger = InstanceLedger(instance)
        records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
        for request, rs in by_request.items():
            statuses = [r.status for r in rs]
            # Exactly one run landed the request, the last one; every other failed.
            assert statuses[-1] == DagsterRunStatus.SUCCESS and statuses.count(DagsterRunStatus.SUCCESS) == 1
            assert set(statuses[:-1]) <= {DagsterRunStatus.FAILURE}, statuses
            # Nothing landed while the file was held; a failure says why, in the ledger's words.
            assert records[rs[-1].run_id].end_time > freed
            for attempt in ledger.attempts(request)[:-1]:
                assert "is locked by another process" in attempt.error, attempt
    [load_runs] = first_load
    assert load_runs[0].run_id == failed[0].run_id, _summary()
    assert len(load_runs) >= 2  # the first load failed, and something retried it without a person
    # The daemon retried the failed run at once (run_retries in dagster.yaml, dagster/max_retries
    # on the sensor's run), before the sensor's backoff; whatever of the chain is left after the
    # lock is gone lands, by a retry of the daemon's or by the sensor's next attempt.
    assert load_runs[1].tags.get("dagster/parent_run_id") == load_runs[0].run_id, load_runs[1].tags
    last = load_runs[-1]
    assert "dagster/parent_run_id" in last.tags or int(last.tags["sparkify/attempt"]) > 1, last.tags
    retried_by_daemon = sum("dagster/parent_run_id" in r.tags for r in runs)
    print(
        f"\n{len(runs)} runs: {sum(r.status == DagsterRunStatus.FAILURE for r in runs)} failed, "
        f"{sum(r.status == DagsterRunStatus.SUCCESS for r in runs)} succeeded, "
        f"{retried_by_daemon} launched by Dagster's run retries; "
        f"first load {[(r.status.value, r.tags.get('sparkify/attempt'), 'dagster/parent_run_id' in r.tags) for r in load_runs]}; "
        f"{time.time() - started:.0f}s"
    )
    assert_equals_clean_load(f"duckdb://{warehouse}", str(project / "lake"), tmp_path)
