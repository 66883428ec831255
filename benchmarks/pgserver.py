"""A throwaway PostgreSQL server for a benchmark run, started the way the tests' conftest does."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: `apt-get install postgresql`.")
    return path


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root; the postgres system user owns the throwaway cluster.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def version() -> str:
    out = subprocess.run([_bin("postgres"), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@contextmanager
def throwaway_server() -> Iterator[dict]:
    """Yield {'host', 'port', 'user', 'root'} of a fresh server; stop and delete it afterwards.

    fsync and synchronous_commit are off, as in the tests: the benchmark measures the loaders,
    not this virtual disk's flush latency (the same setting helps the row-by-row baseline most).
    """
    root = Path(tempfile.mkdtemp(prefix="sparkify-bench-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        _as_postgres([_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "postgres", "root": str(root)}
    finally:
        subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: dict, name: str) -> str:
    """Create a database; return its warehouse URL."""
    import psycopg2

    con = psycopg2.connect(host=server["host"], port=server["port"], user=server["user"], dbname="postgres")
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    con.close()
    return f"postgresql://{server['user']}@{server['host']}:{server['port']}/{name}?sslmode=disable"
