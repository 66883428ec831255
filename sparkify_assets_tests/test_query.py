"""`sparkify query` on the sample: aligned analytics results, read-only ad-hoc SQL, and the real
command in a subprocess with the warehouse named by SPARKIFY_WAREHOUSE_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparkify_assets.query import format_table, query_analysis, run_sql
from sparkify_assets.resources.warehouse import WarehouseError, open_warehouse
from sparkify_assets_tests.helpers import count
from sparkify_assets_tests.test_analytics import build_sample_warehouse

SPARKIFY = Path(sys.executable).with_name("sparkify")


@pytest.fixture(scope="module")
def sample_url(tmp_path_factory) -> str:
    url = f"duckdb://{tmp_path_factory.mktemp('query') / 'sample.duckdb'}"
    build_sample_warehouse(url)
    return url


def test_format_table_aligns_numbers_right_and_text_left():
    out = format_table(["id", "name", "share"], [(1, "Ann", "7.95%"), (10, None, "22.68%")])
    assert out.splitlines() == [
        "id  name   share",
        "--  ----  ------",
        " 1  Ann    7.95%",
        "10  NULL  22.68%",
        "(2 rows)",
    ]


def test_format_table_cuts_long_cells():
    out = format_table(["t"], [("x" * 70,)])
    assert out.splitlines()[2] == "x" * 59 + "…"
    assert out.splitlines()[-1] == "(1 row)"


def test_top_songs_as_printed(sample_url):
    lines = format_table(*query_analysis(open_warehouse(sample_url), "top_songs")).splitlines()
    assert lines[0].split() == ["song_rank", "title", "artist_name", "plays", "listeners"]
    assert lines[2][: len("song_rank")] == "        1"  # the rank right-aligned under its header
    assert lines[2].split() == ["1", "You're", "The", "One", "Dwight", "Yoakam", "37", "22"]
    assert lines[11].split()[0] == "10" and lines[11].split()[-2:] == ["14", "11"]
    assert lines[-1] == "(10 rows)"
    # Every row has the same width up to the last column, so the columns line up.
    plays_at = lines[0].index("plays") + len("plays")
    assert all(line[plays_at - 2 : plays_at].strip().isdigit() for line in lines[2:12])


def test_named_results_accept_the_table_name_and_format_shares(sample_url):
    columns, rows = query_analysis(open_warehouse(sample_url), "analytics_users_by_level")
    assert columns == ["level", "users", "share_of_users"]
    assert rows == [("free", "75", "77.32%"), ("paid", "22", "22.68%")]


def test_unknown_name_lists_the_choices(sample_url):
    with pytest.raises(ValueError, match="top_songs, top_artists, users_by_level"):
        query_analysis(open_warehouse(sample_url), "top_albums")


def test_a_result_not_built_yet_says_how_to_build_it(tmp_path):
    url = f"duckdb://{tmp_path / 'empty.duckdb'}"
    with open_warehouse(url).transaction() as tx:
        tx.execute("CREATE TABLE staging_events (x INTEGER)")  # something loaded, not the answers
    with pytest.raises(WarehouseError, match="materialize the analytics assets"):
        query_analysis(open_warehouse(url), "daily_plays")


def test_adhoc_sql_as_printed(sample_url):
    sql = "SELECT level, COUNT(*) AS n FROM users GROUP BY level ORDER BY level"
    out = format_table(*run_sql(open_warehouse(sample_url), sql))
    assert out.splitlines() == ["level   n", "-----  --", "free   75", "paid   22", "(2 rows)"]


def test_adhoc_sql_is_read_only_on_duckdb(sample_url):
    assert run_sql(open_warehouse(sample_url), "SELECT COUNT(*) AS plays FROM songplays") == (
        ["plays"],
        [(6820,)],
    )
    with pytest.raises(WarehouseError, match="read-only"):
        run_sql(open_warehouse(sample_url), "DELETE FROM songplays")
    assert count(sample_url, "songplays") == 6820


def test_adhoc_sql_is_read_only_on_postgres(pg_url):
    with open_warehouse(pg_url).transaction() as tx:
        tx.execute("CREATE TABLE t (x INTEGER)")
        tx.execute("INSERT INTO t VALUES (1), (2)")
    assert run_sql(open_warehouse(pg_url), "SELECT SUM(x) AS total FROM t") == (["total"], [(3,)])
    with pytest.raises(WarehouseError, match="read-only transaction"):
        run_sql(open_warehouse(pg_url), "DELETE FROM t")
    assert count(pg_url, "t") == 2


def _sparkify(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARKIFY_WAREHOUSE_URL": url}
    return subprocess.run(
        [str(SPARKIFY), "query", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_real_command(sample_url):
    top = _sparkify(sample_url, "most_active_users")
    assert top.returncode == 0, top.stderr
    lines = top.stdout.splitlines()
    assert lines[0].split() == [
        "user_rank",
        "user_id",
        "first_name",
        "last_name",
        "level",
        "plays",
        "sessions",
    ]
    assert lines[2].split() == ["1", "49", "Chloe", "Cuevas", "paid", "689", "42"]
    assert lines[-1] == "(10 rows)"


def test_a_reader_that_stops_early_ends_the_command_quietly(sample_url):
    """`sparkify query ... | head`: head exits after its lines and the pipe closes under a table far
    larger than the pipe's buffer; the command stops without a traceback and exits 0."""
    env = {**os.environ, "SPARKIFY_WAREHOUSE_URL": sample_url}
    sql = "SELECT range AS n FROM range(300000)"  # about 2 MB of table: many pipe buffers
    query = subprocess.Popen(
        [str(SPARKIFY), "query", "--sql", sql], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    head = subprocess.Popen(["head", "-n", "3"], stdin=query.stdout, stdout=subprocess.PIPE, text=True)
    assert query.stdout is not None and query.stderr is not None
    query.stdout.close()  # head alone holds the read end, as in a shell pipeline
    shown, _ = head.communicate(timeout=120)
    errors = query.stderr.read().decode()
    assert query.wait(timeout=120) == 0, errors
    assert errors == ""
    assert shown.splitlines() == ["     n", "------", "     0"]
