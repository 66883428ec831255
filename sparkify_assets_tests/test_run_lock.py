"""Runs as people run them, through the real `sparkify` command: killed with SIGKILL, started two
or three at once, stopped with SIGTERM or Ctrl-C, killed while the parser workers run. Each time
the next run works and every table equals a clean run's (or stays as it was)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sparkify_assets.instance import project_settings, settings_without_storage
from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets.resources.warehouse_lock import hold
from sparkify_assets_tests.helpers import load, rows
from sparkify_assets_tests.test_sample_duckdb import CONTRACT

ROOT = Path(__file__).resolve().parents[1]
SPARKIFY = str(Path(sys.executable).parent / "sparkify")
TABLES = list(CONTRACT)


@pytest.fixture(scope="module")
def clean_tables(tmp_path_factory) -> dict[str, list[tuple]]:
    url = f"duckdb://{tmp_path_factory.mktemp('clean') / 'clean.duckdb'}"
    load(url)
    return {t: rows(url, t) for t in TABLES}


def _snapshot(url: str) -> dict[str, list[tuple]]:
    wh = open_warehouse(url)
    return {t: rows(url, t) if wh.table_exists(t) else [] for t in TABLES}


def _env(url: str, home: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DAGSTER_HOME"))}
    env["SPARKIFY_WAREHOUSE_URL"] = url
    if home is not None:
        env["DAGSTER_HOME"] = str(home)
    env.update(extra)
    return env


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [SPARKIFY, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _lock_holder(lock: Path) -> dict | None:
    try:
        return json.loads(lock.read_text() or "null")
    except (OSError, ValueError):
        return None


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.1)


# A DAGSTER_HOME with the project's dagster.yaml; and one with a pool limit of 1, the setting a
# SIGKILLed run used to block for good (its slot was never freed).
POOL_LIMIT_YAML = "concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n"


def _home(tmp_path: Path, instance: str) -> Path | None:
    if instance == "ephemeral":
        return None
    home = tmp_path / "dagster_home"
    home.mkdir()
    if instance == "project dagster.yaml":
        # The project's settings; its storage paths left out, so the instance stays in this home.
        settings = settings_without_storage(project_settings(ROOT))
        (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    else:
        (home / "dagster.yaml").write_text(POOL_LIMIT_YAML)
    return home


@pytest.mark.parametrize("instance", ["ephemeral", "project dagster.yaml", "pool limit 1"])
def test_a_run_killed_holding_the_warehouse_never_blocks_the_next(tmp_path, clean_tables, instance):
    """SIGKILL a `sparkify run` while its Dagster run holds the warehouse (and, with an instance,
    a pool slot): a new run starts within seconds and completes, and the tables equal a clean
    run's. On a persistent instance the killed run is then marked failed, not left "started"."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    lock = tmp_path / "w.duckdb.lock"
    home = _home(tmp_path, instance)
    env = _env(url, home)
    first = _start(["run"], env, tmp_path)
    try:
        # The lock names the Dagster run once a step of it holds the warehouse, so the run has
        # started and that step has its pool slot: kill it then. (It used to wait 2 s more, but
        # the sample's whole load now ends about 2.3 s after that point, and CI caught one run
        # that had finished and released the lock before the kill.)
        _wait_for(lambda: (_lock_holder(lock) or {}).get("run_id"), 240, "the first run holds the lock")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    holder = _lock_holder(lock)
    assert holder and holder.get("run_id"), "the first run had ended before it was killed"
    killed_run = holder["run_id"]
    second = _start(["run"], env, tmp_path)
    try:
        # It starts: its own Dagster run takes the lock (nobody holds it: the kernel released it).
        _wait_for(
            lambda: (_lock_holder(lock) or {}).get("run_id") not in (None, killed_run),
            120,
            "the second run holds the lock",
        )
        out, err = second.communicate(timeout=600)
    finally:
        second.kill()
    assert second.returncode == 0, err[-3000:]
    assert "waiting" not in out  # a dead holder is no holder
    assert _snapshot(url) == clean_tables
    if home is not None:
        from dagster import DagsterInstance, DagsterRunStatus

        with DagsterInstance.from_config(str(home)) as dagster_instance:
            assert dagster_instance.get_run_by_id(killed_run).status == DagsterRunStatus.FAILURE


# (runs, seconds between starts): a few trials, each a bounded CI cost.
TRIALS = [(2, 0.4), (3, 0.0)]


@pytest.mark.parametrize(("runs", "gap"), TRIALS, ids=[f"{n}runs-{g}s" for n, g in TRIALS])
def test_runs_started_together_wait_for_each_other(tmp_path, clean_tables, runs, gap):
    """Two or three `sparkify run`s on one DuckDB file, started together: each succeeds (the later
    ones say once that they wait), none fails because of another, and the tables equal a clean
    run's."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    env = _env(url)
    rng = random.Random(runs * 10 + gap)
    procs = []
    for _ in range(runs):
        procs.append(_start(["run"], env, tmp_path))
        time.sleep(gap + rng.uniform(0, 0.3))
    results = [p.communicate(timeout=900) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert out.count("waiting: the warehouse") <= 1, out
        assert "is locked by another process" not in err
    assert sum("waiting: the warehouse" in out for out, _ in results) >= 1  # they did overlap
    assert _snapshot(url) == clean_tables


def test_no_wait_refuses_in_one_line_while_another_holds_the_warehouse(tmp_path):
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    with hold(tmp_path / "w.duckdb.lock", url):
        proc = subprocess.run(
            [SPARKIFY, "run", "--no-wait"],
            env=_env(url),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        f"error: The warehouse duckdb://{tmp_path / 'w.duckdb'} is in use by process {os.getpid()}"
    )
    assert "not waiting" in lines[0]
    assert not (tmp_path / "w.duckdb").exists()  # nothing was opened


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_waiting_run_stops_on_a_signal(tmp_path, sig):
    """A run waiting for the warehouse stops within seconds on Ctrl-C or SIGTERM, having touched
    nothing."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    with hold(tmp_path / "w.duckdb.lock", url):
        proc = _start(["run"], _env(url), tmp_path)
        line = proc.stdout.readline()
        assert line.startswith("waiting: the warehouse"), line + proc.stderr.read()
        sent = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)  # a generous liveness bound
        finally:
            proc.kill()
    assert time.monotonic() - sent < 15
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr.read()
    assert not (tmp_path / "w.duckdb").exists()


# --- a lake big enough for the parser's worker processes ------------------------------------


@pytest.fixture(scope="module")
def big_lake(tmp_path_factory) -> Path:
    """A generated lake of about 90 MB of logs: above parsing.PARALLEL_MIN_BYTES (64 MiB), so
    staging_events is parsed by a pool of worker processes, for several seconds."""
    out = tmp_path_factory.mktemp("big") / "lake"
    subprocess.run(
        [SPARKIFY, "generate", "--events", "200000", "--songs", "500", "--users", "300", "--days", "3"]
        + ["--seed", "7", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert sum(p.stat().st_size for p in (out / "log_data").rglob("*.json")) > 64 * 1024 * 1024
    return out


def _processes() -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, state)} of every process, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[int(entry.name)] = (int(fields[1]), fields[0])
    return found


def _descendants(pid: int) -> set[int]:
    procs, found, frontier = _processes(), set(), [pid]
    while frontier:
        parent = frontier.pop()
        children = {p for p, (ppid, _) in procs.items() if ppid == parent}
        found |= children
        frontier.extend(children)
    return found


def _alive(pids: set[int]) -> set[int]:
    procs = _processes()
    return {p for p in pids if p in procs and procs[p][1] != "Z"}


def test_sigkill_during_a_parallel_parse_leaves_no_process(tmp_path, big_lake):
    """Kill only the main process while its parser workers (and multiprocessing's resource
    tracker) run: none of them survives 10 s."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    proc = _start(["run"], _env(url, SPARKIFY_LAKE_URL=str(big_lake), SPARKIFY_PARSE_WORKERS="2"), tmp_path)
    try:
        # Two workers and the resource tracker.
        _wait_for(lambda: len(_descendants(proc.pid)) >= 3, 240, "the parser workers started")
        time.sleep(1)
        children = _descendants(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(children) >= 3
    deadline = time.monotonic() + 10
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(children) == set()


def test_sigterm_during_a_run_stops_it_with_the_tables_as_before(tmp_path, big_lake, clean_tables):
    """SIGTERM while staging_events is being parsed: the command ends within seconds, the step's
    transaction rolled back (staging_events and what is built from it are as before), no worker
    survives, and the next run equals a clean run."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    load(url)
    before = _snapshot(url)
    proc = _start(["run"], _env(url, SPARKIFY_LAKE_URL=str(big_lake), SPARKIFY_PARSE_WORKERS="2"), tmp_path)
    try:
        _wait_for(lambda: len(_descendants(proc.pid)) >= 3, 240, "staging_events is being parsed")
        children = _descendants(proc.pid)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)  # a generous liveness bound
    finally:
        proc.kill()
    assert time.monotonic() - sent < 30
    assert proc.returncode != 0
    time.sleep(2)
    assert _alive(children) == set()
    after = _snapshot(url)
    for table in ("staging_events", "songplays", "users", "time"):
        assert after[table] == before[table], table
    proc = subprocess.run(
        [SPARKIFY, "run"], env=_env(url), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _snapshot(url) == clean_tables


_STUCK = """
import signal, time
from sparkify_assets.graceful_stop import stop_on_signals

with stop_on_signals(2.0):
    # What a Dagster run does outside its steps: interrupts only set a flag (capture_interrupts),
    # so a run spinning there, or stuck in C, never sees one.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    print("inside", flush=True)
    for _ in range(600):
        time.sleep(0.1)
print("returned")
"""


def test_a_statement_that_never_returns_to_python_still_stops():
    """Inside a Dagster run, interrupts are deferred to step boundaries (and a long statement holds
    the main thread in C): SIGTERM still ends the command, after the grace period, with 128 + 15."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _STUCK], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "inside"
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)  # a generous liveness bound
    finally:
        proc.kill()
    assert time.monotonic() - sent < 30
    assert proc.returncode == 128 + signal.SIGTERM
    assert "returned" not in out
    assert "stopping (SIGTERM)" in err


def test_dagster_asset_materialize_waits_for_the_warehouse_too(tmp_path):
    """Runs started outside `sparkify run` (here `dagster asset materialize`; the UI and the
    sensors launch runs the same way) take the lock in the warehouse resource, at the run's start:
    while another process holds it the run waits, saying so in its log, then completes."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    home = tmp_path / "home"
    home.mkdir()
    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "sparkify_assets"]
    cmd += ["--select", "staging_songs"]
    with hold(tmp_path / "w.duckdb.lock", url):
        proc = subprocess.Popen(
            cmd, env=_env(url, home), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "waiting: the warehouse" in line:
                break
        assert any("waiting: the warehouse" in line for line in seen), "".join(seen)[-3000:]
        assert f"in use by process {os.getpid()}" in seen[-1]
        time.sleep(1)
        assert proc.poll() is None  # still waiting, not failed
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-3000:]
    assert open_warehouse(url).query("SELECT COUNT(*) FROM staging_songs") == [(CONTRACT["staging_songs"],)]
