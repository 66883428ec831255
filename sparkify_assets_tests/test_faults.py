"""Faults and configuration mistakes end in one clear sentence, after bounded retries where a
retry can help, and a run killed at any point leaves tables a re-run makes equal to a clean run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from sparkify_assets.resources.lake import LakeError, open_lake
from sparkify_assets.resources.warehouse import WarehouseError, open_warehouse
from sparkify_assets_tests.conftest import SAMPLE, free_port
from sparkify_assets_tests.helpers import WAREHOUSE_FIXTURES, load, rows
from sparkify_assets_tests.test_sample_duckdb import CONTRACT

TABLES = list(CONTRACT)


def _quick_retries(url: str, **options):
    """The warehouse at `url`, retrying 10 ms apart rather than half a second."""
    wh = open_warehouse(url, **options)
    wh.backoff_seconds = 0.01
    return wh


def test_lost_connection_is_retried_in_a_new_transaction(pg_url):
    wh = _quick_retries(pg_url)
    attempts = []

    def work(tx):
        attempts.append(1)
        tx.execute("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")
        tx.execute("INSERT INTO probe VALUES (1)")
        if len(attempts) == 1:
            # The server drops this session mid-transaction, as a failover or network cut would.
            tx.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return tx.query("SELECT COUNT(*) FROM probe")

    assert wh.run(work) == [(1,)]  # the first attempt's insert was rolled back with it
    assert len(attempts) == 2


def test_connection_lost_every_time_gives_up_with_one_sentence(pg_url):
    wh = _quick_retries(pg_url)
    calls = []

    def work(tx):
        calls.append(1)
        tx.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(WarehouseError) as info:
        wh.run(work)
    assert len(calls) == 3
    assert str(info.value).startswith("Lost the connection to the warehouse postgresql://postgres@127.0.0.1:")
    assert "3 times" in str(info.value) and "\n" not in str(info.value)


def test_unreachable_host_is_retried_then_explained():
    port = free_port()  # nothing listens there
    wh = _quick_retries(f"postgresql://sparkify@127.0.0.1:{port}/dwh", password="pw-never-shown")
    with pytest.raises(WarehouseError) as info:
        wh.query("SELECT 1")
    message = str(info.value)
    assert message.startswith(
        f"Cannot connect to the warehouse postgresql://sparkify@127.0.0.1:{port}/dwh after 3 attempts"
    )
    assert "pw-never-shown" not in message


def test_missing_database_fails_at_once(pg_server):
    url = f"postgresql://postgres@127.0.0.1:{pg_server['port']}/no_such_db?sslmode=disable"
    with pytest.raises(WarehouseError) as info:
        open_warehouse(url).query("SELECT 1")
    assert "after" not in str(info.value)
    assert 'database "no_such_db" does not exist' in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://me@db/x", "Unknown warehouse URL scheme mysql://"),
        ("postgresql://db.example.com/x", "needs a user, a host and a database"),
        ("duckdb://", "needs a file path"),
    ],
)
def test_bad_warehouse_urls(url, expected):
    with pytest.raises(WarehouseError, match=expected):
        open_warehouse(url)


def test_missing_bucket_and_unknown_lake_scheme(aws_env):
    lake = open_lake(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/lake")
    with pytest.raises(LakeError, match="does not exist: check SPARKIFY_LAKE_URL"):
        lake.log_files()
    with pytest.raises(LakeError, match="Unknown lake URL scheme ftp://"):
        open_lake("ftp://host/lake")


def test_duckdb_locked_by_another_process_names_the_lock(tmp_path):
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(WarehouseError) as info:
            open_warehouse(f"duckdb://{path}").query("SELECT 1")
        message = str(info.value)
        assert f"The DuckDB warehouse {path} is locked by another process" in message
        assert str(holder.pid) in message
    finally:
        holder.kill()
        holder.wait()


def test_cli_reports_a_bad_url_in_one_line(tmp_path):
    env = {**os.environ, "SPARKIFY_WAREHOUSE_URL": "mysql://me@db/x"}
    proc = subprocess.run(
        [sys.executable, "-m", "sparkify_assets.cli", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "Unknown warehouse URL scheme mysql://" in proc.stderr
    assert "Traceback" not in proc.stderr


# Runs a full load in a child process and stops it dead (the parent SIGKILLs it) right after
# rows went into `target` inside that asset's open transaction, on either backend.
_LOADER = textwrap.dedent(
    """
    import sys, time
    from sparkify_assets.resources import warehouse as w
    from sparkify_assets_tests.helpers import load

    target = sys.argv[2]

    def pause_after(method):
        def wrapped(self, first, *args):
            method(self, first, *args)
            name = getattr(first, "name", None) or str(first)
            if name == target or name.startswith(f"INSERT INTO {target} "):
                print("inside", target, flush=True)
                time.sleep(120)
        return wrapped

    for session in (w._DuckDBSession, w._PostgresSession):
        session.append = pause_after(session.append)
        session.execute = pause_after(session.execute)
    load(sys.argv[1])
    print("done", flush=True)
    """
)

# Kill with SIGKILL (no cleanup at all) in the middle of these transactions, one after another
# in the order a run reaches them (so each kill is the first to reach its table), with the
# tables whose own transaction must have committed before that point: staging, a dimension,
# the fact table, and the last dimension.
KILL_POINTS = {
    "staging_events": set(),
    "users": {"staging_events"},
    "songplays": {"staging_events", "staging_songs"},
    "time": {"songplays"},
}


@pytest.fixture(scope="module")
def clean_tables(tmp_path_factory) -> dict[str, list[tuple]]:
    """Every contract table after one clean load of the sample (equal on every backend, as
    test_backends_equal shows)."""
    url = f"duckdb://{tmp_path_factory.mktemp('clean') / 'clean.duckdb'}"
    load(url)
    return {t: rows(url, t) for t in TABLES}


def _older_lake(tmp_path) -> str:
    """What an earlier run saw: the first ten days of logs and every other song file."""
    lake = tmp_path / "older_lake"
    for path in sorted((SAMPLE / "log_data").rglob("*.json"))[:10]:
        dest = lake / path.relative_to(SAMPLE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    for path in sorted((SAMPLE / "song_data").rglob("*.json"))[::2]:
        dest = lake / path.relative_to(SAMPLE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    return str(lake)


def _snapshot(url: str) -> dict[str, list[tuple]]:
    wh = open_warehouse(url)
    return {t: rows(url, t) if wh.table_exists(t) else [] for t in TABLES}


@pytest.mark.parametrize("start", ["empty", "loaded"])
@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_killed_runs_leave_no_half_written_table(request, tmp_path, clean_tables, backend, start):
    """Into an empty warehouse, and as a reload over tables an earlier run (of an older, smaller
    lake) filled: after each kill every table is as it was before that run or as a completed
    run leaves it, and a re-run gives exactly the tables of a clean run."""
    url = request.getfixturevalue(WAREHOUSE_FIXTURES[backend])
    if start == "loaded":
        load(url, _older_lake(tmp_path))
        older = _snapshot(url)
        # The earlier run differs from a full one in every table, so "before" and "completed"
        # can be told apart everywhere.
        assert all(older[t] and older[t] != clean_tables[t] for t in TABLES), TABLES
    for target, done in KILL_POINTS.items():
        before = _snapshot(url)
        proc = subprocess.Popen(
            [sys.executable, "-c", _LOADER, url, target], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout.readline().split() == ["inside", target]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        after = _snapshot(url)
        for table in TABLES:
            # Each asset replaces its rows in one transaction: all of them or none.
            assert after[table] in (before[table], clean_tables[table]), table
            if table in done:
                assert after[table] == clean_tables[table], table
        # The interrupted transaction itself left its table exactly as it was.
        assert after[target] == before[target], target
        if start == "loaded":
            assert before[target] != clean_tables[target], target
    load(url)
    assert _snapshot(url) == clean_tables
