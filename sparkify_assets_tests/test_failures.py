"""Failures are loud and leave the warehouse as it was: a load error names the file and line,
a broken key fails its (blocking) check and stops what is built downstream."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import psycopg2

from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets.runner import failures
from sparkify_assets_tests.conftest import SAMPLE
from sparkify_assets_tests.helpers import check_results, count, load, rows

DAY1 = dt.date(2018, 11, 1)
DAY3 = dt.date(2018, 11, 3)


def test_postgres_copy_error_names_file_and_line_and_keeps_the_table(pg_url):
    load(pg_url, first=DAY1, last=DAY3)
    before = rows(pg_url, "staging_events")
    assert len(before) > 0
    # A rule the parser does not know, so PostgreSQL's COPY itself rejects a row: the first event
    # of 2018-11-01 (line 1) has sessionId 38.
    con = psycopg2.connect(pg_url.split("?")[0].replace("postgresql://", "postgresql://", 1))
    with con, con.cursor() as cur:
        cur.execute(
            "ALTER TABLE staging_events ADD CONSTRAINT no_session_38 CHECK (session_id <> 38) NOT VALID"
        )
    con.close()

    result = load(pg_url, first=DAY1, last=DAY3, expect_success=False)
    assert not result.success
    errors = [line for line in failures(result) if line.startswith("error in staging_events")]
    assert len(errors) == 1
    assert "log_data/2018/11/2018-11-01-events.json line 1" in errors[0]
    assert "no_session_38" in errors[0]
    assert "\n" not in errors[0]
    # The failed run rolled back: the table holds exactly what it held before.
    assert rows(pg_url, "staging_events") == before


def _tiny_lake(tmp_path, duplicate_line: bool):
    lake = tmp_path / "lake"
    shutil.copytree(SAMPLE / "song_data", lake / "song_data")
    src = (SAMPLE / "log_data/2018/11/2018-11-03-events.json").read_text().splitlines()
    nextsong = next(line for line in src if json.loads(line)["page"] == "NextSong")
    lines = src + ([nextsong] if duplicate_line else [])
    target = lake / "log_data/2018/11/2018-11-03-events.json"
    target.parent.mkdir(parents=True)
    target.write_text("\n".join(lines))
    return lake


def test_duplicate_event_fails_the_blocking_key_check_and_blocks_time(tmp_path, duckdb_url):
    lake = _tiny_lake(tmp_path, duplicate_line=True)
    result = load(duckdb_url, str(lake), expect_success=False)
    checks = check_results(result)
    assert checks["songplays:unique_songplay_id"] is False
    assert checks["songplays:not_null_songplay_id"] is True
    # Blocking, and audited before the commit: songplays rolled back (it held nothing before this
    # first run, and holds nothing now), so it was not materialized, nor time built from it.
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "songplays" not in materialized and "time" not in materialized
    assert count(duckdb_url, "songplays") == 0
    assert not open_warehouse(duckdb_url).table_exists("time") or count(duckdb_url, "time") == 0


def test_clean_tiny_lake_passes_every_check(tmp_path, duckdb_url):
    lake = _tiny_lake(tmp_path, duplicate_line=False)
    result = load(duckdb_url, str(lake))
    assert all(check_results(result).values())
    # 2018-11-03 in the sample: NextSong events of that day only.
    assert count(duckdb_url, "songplays") == count(duckdb_url, "staging_events", "page = 'NextSong'") > 0
