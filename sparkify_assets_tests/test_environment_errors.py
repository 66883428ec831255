"""The machine gets in the way: a full disk, too little memory, a setting with a bad value, a
password full of URL-reserved characters. Through the real `sparkify` command, each mistake is
one line naming the variable (exit 1) and each warehouse error names its cause; after the cause
is gone, a run equals a clean run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from sparkify_assets.resources.warehouse import WarehouseError, open_warehouse
from sparkify_assets_tests.helpers import load, rows
from sparkify_assets_tests.pgserver import create_database, throwaway_server
from sparkify_assets_tests.test_sample_duckdb import CONTRACT

SPARKIFY = str(Path(sys.executable).parent / "sparkify")
TABLES = list(CONTRACT)


def _run(tmp_path: Path, args: list[str] | None = None, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DAGSTER_HOME"))}
    return subprocess.run(
        [SPARKIFY, *(args or ["run"])],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error")]


@pytest.fixture(scope="module")
def clean_tables(tmp_path_factory) -> dict[str, list[tuple]]:
    url = f"duckdb://{tmp_path_factory.mktemp('clean') / 'clean.duckdb'}"
    load(url)
    return {t: rows(url, t) for t in TABLES}


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 3 MB tmpfs (the sample's warehouse needs about 6 MB); the test may grow it later."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({made.stderr.decode().strip()}); the memory test covers the path"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_named_and_the_next_run_after_freeing_space_is_clean(
    tmp_path, small_disk, clean_tables
):
    url = f"duckdb://{small_disk / 'w.duckdb'}"
    proc = _run(tmp_path, SPARKIFY_WAREHOUSE_URL=url)
    assert proc.returncode == 1
    errors = _error_lines(proc)
    assert errors, proc.stderr[-3000:]
    assert all("the disk is full" in line and "No space left on device" in line for line in errors), errors
    assert "cannot rollback" not in proc.stderr
    # Space comes back: the same warehouse, grown in place, then a run equals a clean run.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    proc = _run(tmp_path, SPARKIFY_WAREHOUSE_URL=url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {t: rows(url, t) for t in TABLES} == clean_tables


def test_too_little_memory_is_named_with_the_setting_to_raise(tmp_path, clean_tables):
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    proc = _run(tmp_path, SPARKIFY_WAREHOUSE_URL=url, SPARKIFY_DUCKDB_MEMORY_LIMIT="2MB")
    assert proc.returncode == 1
    errors = _error_lines(proc)
    assert errors and all("ran out of memory" in e and "SPARKIFY_DUCKDB_MEMORY_LIMIT" in e for e in errors), (
        errors
    )
    assert "cannot rollback" not in proc.stderr
    proc = _run(tmp_path, SPARKIFY_WAREHOUSE_URL=url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {t: rows(url, t) for t in TABLES} == clean_tables


# --- settings with bad values -----------------------------------------------------------------


def _blocked_folder(tmp_path: Path) -> str:
    (tmp_path / "a_file").write_text("not a folder")
    return f"duckdb://{tmp_path / 'a_file' / 'sub' / 'w.duckdb'}"


BAD_SETTINGS = {
    "memory-limit": (
        {"SPARKIFY_DUCKDB_MEMORY_LIMIT": "lots"},
        ["SPARKIFY_DUCKDB_MEMORY_LIMIT", "4GB", "'lots'"],
    ),
    "parse-workers": ({"SPARKIFY_PARSE_WORKERS": "two"}, ["SPARKIFY_PARSE_WORKERS", "whole number", "'two'"]),
    "one-slash-duckdb": (
        {"SPARKIFY_WAREHOUSE_URL": "duckdb:{tmp}/x.duckdb"},
        [
            "SPARKIFY_WAREHOUSE_URL",
            "two slashes",
            "duckdb:///abs/path/file.duckdb",
            "postgresql://user@host:port/db",
        ],
    ),
    "server-url-without-user": (
        {"SPARKIFY_WAREHOUSE_URL": "postgresql://127.0.0.1:5432/db"},
        ["needs a user, a host and a database", "SPARKIFY_WAREHOUSE_PASSWORD"],
    ),
    "server-url-bad-port": (
        {"SPARKIFY_WAREHOUSE_URL": "postgresql://me@127.0.0.1:fivefour/db"},
        ["port", "must be a number"],
    ),
    "folder-cannot-be-created": (
        {"SPARKIFY_WAREHOUSE_URL": "BLOCKED"},
        ["Cannot create the folder", "a_file"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_bad_setting_is_one_line_and_exit_1(tmp_path, case):
    env, says = BAD_SETTINGS[case]
    env = {k: v.format(tmp=tmp_path) for k, v in env.items()}
    if env.get("SPARKIFY_WAREHOUSE_URL") == "BLOCKED":
        env["SPARKIFY_WAREHOUSE_URL"] = _blocked_folder(tmp_path)
    env.setdefault("SPARKIFY_WAREHOUSE_URL", f"duckdb://{tmp_path / 'w.duckdb'}")
    proc = _run(tmp_path, **env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    for words in says:
        assert words in lines[0], lines[0]
    assert "STEP_FAILURE" not in proc.stdout + proc.stderr
    assert not (tmp_path / "duckdb:").exists()  # `duckdb:/x` once made a folder named "duckdb:"


# --- passwords with URL-reserved characters ---------------------------------------------------

RESERVED_PASSWORD = "p/ss#w?rd@x:y%z"


@pytest.fixture(scope="module")
def reserved_pw_server() -> Iterator[dict]:
    with throwaway_server("sparkify-pg-reserved-", password=RESERVED_PASSWORD) as server:
        yield server


def test_a_password_with_reserved_characters_works_from_the_variable_or_the_url(reserved_pw_server):
    url = create_database(reserved_pw_server)  # postgresql://postgres@127.0.0.1:PORT/db?sslmode=disable
    # SPARKIFY_WAREHOUSE_PASSWORD takes the password as it is.
    assert open_warehouse(url, password=RESERVED_PASSWORD).query("SELECT 1") == [(1,)]
    # In the URL it is percent-decoded: percent-encoded, every character works.
    encoded = url.replace("postgres@", f"postgres:{quote(RESERVED_PASSWORD, safe='')}@")
    assert open_warehouse(encoded).query("SELECT 1") == [(1,)]
    # The server really checks: the wrong password is refused, and never shown.
    with pytest.raises(WarehouseError) as info:
        open_warehouse(url, password="p/ss#w?rd@x:y%Z").query("SELECT 1")
    assert "p/ss#w?rd" not in str(info.value)


def test_a_raw_password_with_slash_hash_question_mark_parses():
    """Unencoded, "/", "#", "?" and "@" in a URL's password no longer read as the path, the
    fragment, the query or the host."""
    wh = open_warehouse("postgresql://me:p/ss#w?rd@x@db.example.com:6543/dwh?sslmode=disable")
    assert (wh.user, wh.host, wh.port, wh.database, wh.sslmode) == (
        "me",
        "db.example.com",
        6543,
        "dwh",
        "disable",
    )
    assert wh._password == "p/ss#w?rd@x"
    assert "p/ss" not in wh.describe()


def test_permission_denied_on_the_server_says_so_in_one_line(pg_server):
    """A login that may not create tables (PostgreSQL 15 gives PUBLIC no CREATE on schema public)."""
    import psycopg2

    url = create_database(pg_server)
    database = url.rsplit("/", 1)[1].split("?")[0]
    con = psycopg2.connect(host=pg_server["host"], port=pg_server["port"], user="postgres", dbname=database)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS no_create")
        cur.execute("CREATE ROLE no_create LOGIN")
    con.close()
    with pytest.raises(WarehouseError) as info:
        open_warehouse(url.replace("postgres@", "no_create@")).run(
            lambda tx: tx.execute("CREATE TABLE t (a int)")
        )
    message = str(info.value)
    assert "permission was denied" in message and "permission denied for schema public" in message
    assert "rolled back" in message and "\n" not in message
