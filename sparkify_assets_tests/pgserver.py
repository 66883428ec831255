"""A throwaway PostgreSQL server from the machine's binaries, for the tests and the benchmarks."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A port nobody listens on now (fixed ports collided on these machines)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: `apt-get install postgresql` (.ci/run does)."
        )
    return path


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root; the postgres system user owns the throwaway cluster.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def version() -> str:
    out = subprocess.run([pg_bin("postgres"), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@contextmanager
def throwaway_server(prefix: str = "sparkify-pg-", password: str | None = None) -> Iterator[dict]:
    """Yield {'host', 'port', 'user', 'root', 'password'} of a fresh server on 127.0.0.1; stop and
    delete it after.

    Without `password` every connection is trusted. With one, the cluster is initialized with
    scram-sha-256 authentication for every connection (socket and TCP) and the superuser
    `postgres` gets that password, so a wrong one is refused as on a real server.

    fsync and synchronous_commit are off: the server is thrown away, and flushing this virtual
    disk would only slow every test (and the row-by-row baseline most).
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    auth = ["-A", "trust"]
    pwfile = root / "pwfile"
    if password is not None:
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
    try:
        subprocess.run(
            _as_postgres([pg_bin("initdb"), "-D", str(data), *auth, "-U", "postgres", "--no-sync"]),
            check=True,
            capture_output=True,
        )
    finally:
        pwfile.unlink(missing_ok=True)  # the password lives only in the cluster's catalog
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        _as_postgres([pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "postgres", "root": str(root), "password": password}
    finally:
        subprocess.run(
            _as_postgres([pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: dict, name: str | None = None) -> str:
    """Create an empty database (a fresh name by default); return its warehouse URL (never with
    the server's password in it: pass that separately, as SPARKIFY_WAREHOUSE_PASSWORD does)."""
    import psycopg2

    name = name or f"t_{uuid.uuid4().hex[:12]}"
    con = psycopg2.connect(
        host=server["host"],
        port=server["port"],
        user=server["user"],
        dbname="postgres",
        password=server.get("password"),
    )
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    con.close()
    return f"postgresql://{server['user']}@{server['host']}:{server['port']}/{name}?sslmode=disable"
