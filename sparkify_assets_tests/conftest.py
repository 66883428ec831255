"""Real servers for the tests: a throwaway PostgreSQL from the machine's binaries, and moto's
standalone S3/IAM/Redshift/EC2 server, both on 127.0.0.1 and on ports picked at run time."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkify_assets.resources.lake import sample_lake_path

SAMPLE = sample_lake_path()
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: `apt-get install postgresql` (.ci/run does)."
        )
    return path


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root; the postgres system user owns the throwaway cluster.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def pg_server() -> Iterator[dict]:
    """A PostgreSQL server for the whole session: {'host', 'port', 'user'}."""
    root = Path(tempfile.mkdtemp(prefix="sparkify-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        _as_postgres(
            [_pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "postgres"}
    finally:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's server, as a warehouse URL."""
    import psycopg2

    name = f"t_{uuid.uuid4().hex[:12]}"
    con = psycopg2.connect(host=pg_server["host"], port=pg_server["port"], user="postgres", dbname="postgres")
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    con.close()
    return f"postgresql://postgres@{pg_server['host']}:{pg_server['port']}/{name}?sslmode=disable"


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
def duckdb_url(tmp_path) -> str:
    return f"duckdb://{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
