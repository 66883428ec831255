"""Real servers for the tests: a throwaway PostgreSQL from the machine's binaries, and moto's
standalone S3/IAM/Redshift/EC2 server, both on 127.0.0.1 and on ports picked at run time."""

from __future__ import annotations

import ast
import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkify_assets.resources.lake import sample_lake_path
from sparkify_assets_tests.lake_support import LocalTestLake, S3TestLake
from sparkify_assets_tests.pgserver import create_database, free_port, throwaway_server

SAMPLE = sample_lake_path()
# The shipped sample's row counts, from the data contract (DESIGN.md section 2), not from the code.
CONTRACT = {
    "staging_events": 8056,
    "staging_songs": 71,
    "songplays": 6820,
    "users": 97,
    "songs": 71,
    "artists": 69,
    "time": 6813,
}
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# The slow layer, decided here once so that no test file carries a marker of its own: a test is
# `slow` when it starts a server (PostgreSQL, moto), a browser or a child process, runs a Dagster
# job (a whole load into a warehouse, seconds each), or is a Hypothesis property (hundreds of
# examples), and it also gets the marker that says which. `pytest -m "not slow"` runs the rest,
# in under two minutes (README, Tests).
SERVER_FIXTURES = {
    "pg_server": "postgres",
    "pg_password_server": "postgres",
    "moto_server": "moto",
    "strict_s3": "moto",
}
# Tests that pick the server by a parameter and ask for its fixture by name (getfixturevalue).
SERVER_PARAMS = {"postgres": "postgres", "s3": "moto"}
# Whole modules that start child processes (the sparkify and dagster commands, the benchmark
# script) or Chromium.
SLOW_MODULES = {
    "test_cli.py": "process",
    "test_benchmark.py": "process",
    "test_run_lock.py": "process",
    "test_instance.py": "process",
    "test_ui.py": "browser",
}
# What a test, its module's fixtures or its module's helpers call that makes it slow, found in
# their source (so a new test that loads is in the slow layer without a word): a Dagster run
# (the helpers' load and run_load, dagster's materialize, a job's execute_in_process, a sample
# warehouse built by a load), a server of the test's own, or a child process.
SLOW_CALLS = {
    "load": "load",
    "run_load": "load",
    "materialize": "load",
    "execute_in_process": "load",
    "run_request": "load",  # test_sensors' helper: a sensor's RunRequest carried out
    "build_sample_warehouse": "load",
    "throwaway_server": "postgres",
    "ThreadedMotoServer": "moto",
    "subprocess": "process",
    "Popen": "process",
    "fork": "process",
}
# Single tests that SIGKILL, lock from or spawn another process through a helper of another
# module, or that make a lake of tens of thousands of records (`volume`).
SLOW_TESTS = {
    "test_memory_follows_the_day_not_the_event_count": "volume",
    "test_duckdb_locked_by_another_process_names_the_lock": "process",
    "test_cli_reports_a_bad_url_in_one_line": "process",
    "test_killed_runs_leave_no_half_written_table": "process",
    "test_the_real_command": "process",
    "test_importing_needs_no_credentials_or_network": "process",
    "test_worker_processes_give_the_same_rows_in_the_same_order": "process",
    "test_a_day_that_failed_on_a_locked_warehouse_loads_once_the_session_closes": "process",
    "test_a_run_terminated_halfway_is_asked_again_and_lands": "process",
}


@functools.cache
def _module_calls(path: Path) -> dict[str, set[str]]:
    """For each function of a test module (tests, fixtures, helpers): the names it calls or
    uses (`load(...)`, `x.execute_in_process(...)`, `subprocess`)."""
    calls: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            used = calls.setdefault(node.name, set())
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call):
                    func = inner.func
                    used.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
                elif isinstance(inner, ast.Name):
                    used.add(inner.id)
    return calls


def _slow_calls(item: pytest.Item) -> set[str]:
    """The SLOW_CALLS reasons of a test, through the functions of its module it reaches."""
    calls = _module_calls(item.path)
    todo = [getattr(item, "originalname", item.name), *getattr(item, "fixturenames", ())]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in calls:
            continue
        seen.add(name)
        todo += calls[name]
    used = set().union(*(calls[n] for n in seen)) if seen else set()
    # `load` is only the helper called by its bare name, not json.load; module-local helper
    # names that shadow a SLOW_CALLS name (a local materialize) count the same.
    return {SLOW_CALLS[name] for name in used | seen if name in SLOW_CALLS}


def _slow_reasons(item: pytest.Item) -> set[str]:
    reasons = {SERVER_FIXTURES[name] for name in getattr(item, "fixturenames", ()) if name in SERVER_FIXTURES}
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        reasons |= {
            SERVER_PARAMS[v] for v in callspec.params.values() if isinstance(v, str) and v in SERVER_PARAMS
        }
    if item.path.name in SLOW_MODULES:
        reasons.add(SLOW_MODULES[item.path.name])
    name = getattr(item, "originalname", item.name)
    if name in SLOW_TESTS:
        reasons.add(SLOW_TESTS[name])
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        reasons.add("hypothesis")
    return reasons | _slow_calls(item)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reasons = _slow_reasons(item)
        for reason in sorted(reasons):
            item.add_marker(reason)
        if reasons:
            item.add_marker("slow")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[dict]:
    """A PostgreSQL server for the whole session: {'host', 'port', 'user', 'root'}."""
    with throwaway_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's server, as a warehouse URL."""
    return create_database(pg_server)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's standalone server (S3, IAM, Redshift, EC2) on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch) -> str:
    """Point boto3 at the moto server with throwaway credentials; yields the endpoint URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return moto_server


def upload_folder(folder: Path, bucket: str, prefix: str = "") -> int:
    """Upload a local lake folder to s3://bucket/prefix (creating the bucket); returns objects sent."""
    import boto3

    s3 = boto3.client("s3")
    try:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    count = 0
    for path in sorted(folder.rglob("*.json")):
        key = (prefix.strip("/") + "/" if prefix.strip("/") else "") + path.relative_to(folder).as_posix()
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        count += 1
    return count


@pytest.fixture
def s3_sample_lake(aws_env) -> str:
    """The shipped sample uploaded to a fresh bucket on the moto server; yields its s3:// URL."""
    bucket = f"sparkify-{uuid.uuid4().hex[:10]}"
    upload_folder(SAMPLE, bucket, "lake")
    return f"s3://{bucket}/lake"


@pytest.fixture
def local_lake(tmp_path) -> LocalTestLake:
    """An empty lake folder the test writes into."""
    return LocalTestLake(tmp_path / "lake")


@pytest.fixture(params=["local", "s3"])
def writable_lake(request, tmp_path) -> LocalTestLake | S3TestLake:
    """An empty lake the test writes into: a local folder, or a bucket on moto's S3 server on
    127.0.0.1."""
    if request.param == "s3":
        request.getfixturevalue("aws_env")
        return S3TestLake(f"sparkify-{uuid.uuid4().hex[:10]}", "lake")
    return LocalTestLake(tmp_path / "lake")


@pytest.fixture
def duckdb_url(tmp_path) -> str:
    return f"duckdb://{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
