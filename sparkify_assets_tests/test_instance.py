"""The persistent instance (dagster.yaml, instance.py): a real `dagster dev` started in a project
folder (a copy of the project's dagster.yaml and workspace.yaml, a small lake, the default DuckDB
warehouse under .sparkify/), stopped with SIGTERM and once with SIGKILL, and started again; and
`sparkify run` recording into the instance that `dagster dev` opens there."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import AssetCheckKey, AssetKey, DagsterEventType, DagsterRunStatus

from sparkify_assets.instance import project_instance
from sparkify_assets.resources.lake import sample_lake_path
from sparkify_assets_tests.test_definitions_snapshot import ASSETS as SNAPSHOT_ASSETS
from sparkify_assets_tests.ui_support import (
    REPO_ROOT,
    DagsterDev,
    _default_sigint,
    _kill_group,
    _location_ready,
    wait_for,
)

SAMPLE = sample_lake_path()
DAYS = ["2018-11-01", "2018-11-02", "2018-11-03"]
# Every asset of the load: the daily ones get one materialization per day (README).
DAILY = {"staging_events", "songplays"}
# Every asset of the load (the contract's list, as the definitions snapshot holds it) but the lake.
ASSETS = SNAPSHOT_ASSETS - {"lake/log_data", "lake/song_data"}
BIN = Path(sys.executable).parent


def _project(root: Path) -> Path:
    """A project folder as a user has it: the checkout's instance and workspace files, a lake."""
    root.mkdir()
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copyfile(REPO_ROOT / name, root / name)
    lake = root / "lake"
    shutil.copytree(SAMPLE / "song_data", lake / "song_data")
    (lake / "log_data" / "2018" / "11").mkdir(parents=True)
    for day in DAYS:
        name = f"log_data/2018/11/{day}-events.json"
        shutil.copyfile(SAMPLE / name, lake / name)
    return root


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DAGSTER_HOME"))}
    env.update(SPARKIFY_LAKE_URL=str(project / "lake"), PYTHONUNBUFFERED="1")
    return env


def _sparkify_run(project: Path) -> subprocess.CompletedProcess:
    """`sparkify run` as a person types it in the project folder."""
    return subprocess.run(
        [str(BIN / "sparkify"), "run"],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _dagster_dev(project: Path, log_name: str) -> Iterator[DagsterDev]:
    """`dagster dev` started in `project` as the README says (no DAGSTER_HOME), in its own process
    group; killed at the end whatever happened."""
    port = _free_port()
    log_path = project / log_name
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=project,
            env=_env(project),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
    dev = DagsterDev(f"http://127.0.0.1:{port}", project, "", log_path, proc)
    try:
        wait_for(
            "dagster dev to load the code location", lambda: _location_ready(dev), 240, describe=dev.log_tail
        )
        yield dev
    finally:
        _kill_group(proc)


def _stop(dev: DagsterDev, sig: signal.Signals) -> None:
    os.killpg(os.getpgid(dev.proc.pid), sig)
    dev.proc.wait(timeout=120)


def _runs() -> dict[str, tuple[DagsterRunStatus, str | None]]:
    with project_instance() as instance:
        return {r.run_id: (r.status, r.tags.get("sparkify/reason")) for r in instance.get_runs()}


def _sensor(name: str):
    with project_instance() as instance:
        state = next(s for s in instance.all_instigator_state() if s.instigator_name == name)
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
        return state.instigator_data.cursor, ticks


def _lake_seen(cursor: str) -> tuple:
    """What the log sensor's cursor says it has seen of the lake (its other keys, such as a
    pending first load, may settle after a restart)."""
    data = json.loads(cursor)
    return data["last_day"], data["seen"]


def _ticked_since(name: str, since: float):
    # Only finished ticks: a tick is stored as STARTED before its evaluation ends.
    return [t for t in _sensor(name)[1] if t.timestamp > since and t.status.value != "STARTED"]


def _all_done(expected: int):
    runs = _runs()
    done = len(runs) >= expected and all(s == DagsterRunStatus.SUCCESS for s, _ in runs.values())
    return runs if done else None


def test_a_restarted_dagster_dev_keeps_runs_and_cursors(tmp_path, monkeypatch):
    project = _project(tmp_path / "project")
    monkeypatch.chdir(project)  # the test reads the instance as `dagster dev` here opens it
    with _dagster_dev(project, "dev-1.log") as dev:
        # The first ticks: one run loads the lake, one restages the catalog.
        first = wait_for("the first load to succeed", lambda: _all_done(2), 600, 3, describe=dev.log_tail)
        assert "first evaluation" in {reason for _, reason in first.values()}
        cursor, _ = _sensor("sparkify_log_sensor")
        assert '"last_day":"2018-11-03"' in cursor.replace(" ", "")
        # Lateness is recorded on staging_events: this 2018 lake's newest log is long overdue.
        check = AssetCheckKey(AssetKey("staging_events"), "log_on_time")
        with project_instance() as instance:
            # By the lateness sensor: an evaluation of no run.
            [by_sensor, *_] = wait_for(
                "the lateness sensor to record the check",
                lambda: [
                    e
                    for e in instance.event_log_storage.get_asset_check_execution_history(check, limit=20)
                    if not e.run_id
                ],
                300,
                3,
            )
        assert by_sensor.evaluation.passed is False
        assert by_sensor.evaluation.description.endswith(
            "has not arrived; the lake's newest log is 2018-11-03"
        )
        _stop(dev, signal.SIGTERM)
    assert (project / ".sparkify" / "dagster" / "history" / "runs.db").is_file()
    assert not list(project.glob(".tmp_dagster_home_*"))  # dagster dev's own temporary folder is gone

    restarted = time.time()
    with _dagster_dev(project, "dev-2.log") as dev:
        # A tick after the restart compares with the kept cursor: nothing to load, no full reload.
        [tick, *_] = wait_for(
            "a log sensor tick after the restart",
            lambda: _ticked_since("sparkify_log_sensor", restarted),
            300,
            3,
            describe=dev.log_tail,
        )
        assert tick.status.value == "SKIPPED", tick
        assert _runs() == first
        assert _lake_seen(_sensor("sparkify_log_sensor")[0]) == _lake_seen(cursor)

        # `sparkify run` at the same time, in the same folder: recorded in the same instance.
        proc = _sparkify_run(project)
        assert proc.returncode == 0, proc.stderr[-3000:]
        [cli_run] = set(_runs()) - set(first)
        assert _runs()[cli_run][0] == DagsterRunStatus.SUCCESS
        # The UI lists it.
        data = dev.graphql("{ runsOrError { ... on Runs { results { runId } } } }")
        assert cli_run in {r["runId"] for r in data["runsOrError"]["results"]}
        after_cli = _runs()
        _stop(dev, signal.SIGKILL)

    killed = time.time()
    with _dagster_dev(project, "dev-3.log") as dev:
        wait_for(
            "a log sensor tick after the SIGKILL",
            lambda: _ticked_since("sparkify_log_sensor", killed),
            300,
            3,
            describe=dev.log_tail,
        )
        assert _runs() == after_cli
        assert _lake_seen(_sensor("sparkify_log_sensor")[0]) == _lake_seen(cursor)


def test_sparkify_run_records_into_the_instance_dagster_dev_opens(tmp_path, monkeypatch):
    project = _project(tmp_path / "project")
    proc = _sparkify_run(project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    monkeypatch.chdir(project)
    with project_instance() as instance:
        [run] = instance.get_runs()
        assert run.status == DagsterRunStatus.SUCCESS
        records = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
        ).records
        materialized = Counter(r.event_log_entry.dagster_event.asset_key.to_user_string() for r in records)
        assert materialized == {a: len(DAYS) if a in DAILY else 1 for a in ASSETS}
        partitions = {
            r.event_log_entry.dagster_event.partition
            for r in records
            if r.event_log_entry.dagster_event.asset_key == AssetKey("staging_events")
        }
        assert partitions == set(DAYS)


def test_without_a_dagster_yaml_sparkify_run_keeps_no_instance(tmp_path):
    """A folder that is no project (no dagster.yaml): `dagster dev` there would use a temporary
    instance, and `sparkify run` an in-memory one; nothing is written under .sparkify/dagster."""
    project = _project(tmp_path / "project")
    (project / "dagster.yaml").unlink()
    proc = _sparkify_run(project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (project / ".sparkify" / "sparkify.duckdb").is_file()
    assert not (project / ".sparkify" / "dagster").exists()
