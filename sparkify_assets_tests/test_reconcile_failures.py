"""The reconciliation checks fail loudly when rows go missing: records read per file against
rows staged + rejected (reconcile_records), and each day's NextSong events against its
songplays (reconcile_nextsong_events). The warehouse is changed behind the pipeline's back,
after a load on DuckDB and, on PostgreSQL, by triggers that silently drop or alter rows during
the load itself; the failing check names the file or day and both counts."""

from __future__ import annotations

import datetime as dt
import json

import psycopg2

from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets.runner import failures
from sparkify_assets_tests.conftest import SAMPLE
from sparkify_assets_tests.helpers import check_evaluations, load, rows, run_checks

DAY1, DAY3 = dt.date(2018, 11, 1), dt.date(2018, 11, 3)
EVENTS_2 = "log_data/2018/11/2018-11-02-events.json"
SONG = "song_data/A/A/A/TRAAAAW128F429D538.json"


def _lines(key: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLE / key).read_text().splitlines() if line.strip()]


# From the input files themselves: 2018-11-02 holds 171 events, line 2 is a "Home" page view.
READ_2 = len(_lines(EVENTS_2))
assert READ_2 == 171 and _lines(EVENTS_2)[1]["page"] == "Home"
NEXTSONG_3 = sum(e["page"] == "NextSong" for e in _lines("log_data/2018/11/2018-11-03-events.json"))


def _row(*cells) -> str:
    """A row of the markdown table the checks put in failing_sample."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _execute(url: str, *statements: str) -> None:
    with open_warehouse(url).transaction() as tx:
        for sql in statements:
            tx.execute(sql)


# --- After a load, on DuckDB: the checks alone, against the changed tables ------------------


def test_a_staged_row_deleted_fails_reconcile_records(duckdb_url):
    load(duckdb_url, first=DAY1, last=DAY3)
    _execute(duckdb_url, f"DELETE FROM staging_events WHERE source_key = '{EVENTS_2}' AND source_line = 2")
    checks = check_evaluations(run_checks(duckdb_url, "staging_events", "songplays"))
    failed = checks["staging_events:reconcile_records"]
    assert failed["passed"] is False
    assert failed["failing_rows"] == 1 and failed["files"] == 3
    assert _row(EVENTS_2, READ_2, READ_2 - 1, 0) in failed["failing_sample"]
    # A page view is gone, not a play: the other checks still pass.
    assert checks["songplays:reconcile_nextsong_events"]["passed"] is True
    assert checks["staging_events:has_rows"]["passed"] is True


def test_records_read_bumped_fails_reconcile_records_for_songs(duckdb_url):
    load(duckdb_url, first=DAY1, last=DAY3)
    _execute(
        duckdb_url, f"UPDATE staging_files SET records_read = records_read + 1 WHERE source_key = '{SONG}'"
    )
    checks = check_evaluations(run_checks(duckdb_url, "staging_songs", "staging_events"))
    failed = checks["staging_songs:reconcile_records"]
    assert failed["passed"] is False and failed["failing_rows"] == 1
    assert _row(SONG, 2, 1, 0) in failed["failing_sample"]  # one song object per file
    assert checks["staging_events:reconcile_records"]["passed"] is True


def test_a_missing_songplay_fails_reconcile_nextsong_events(duckdb_url):
    load(duckdb_url, first=DAY1, last=DAY3)
    _execute(
        duckdb_url,
        "DELETE FROM songplays WHERE songplay_id = "
        "(SELECT MIN(songplay_id) FROM songplays WHERE source_date = DATE '2018-11-03')",
    )
    checks = check_evaluations(run_checks(duckdb_url, "songplays", "staging_events"))
    failed = checks["songplays:reconcile_nextsong_events"]
    assert failed["passed"] is False and failed["failing_rows"] == 1
    assert _row("2018-11-03", NEXTSONG_3, NEXTSONG_3 - 1) in failed["failing_sample"]
    assert checks["staging_events:reconcile_records"]["passed"] is True


# --- During a load, on PostgreSQL: triggers lose rows inside the pipeline's own transaction ---


def _psql(url: str, sql: str) -> None:
    con = psycopg2.connect(url.replace("?sslmode=disable", ""))
    with con, con.cursor() as cur:
        cur.execute(sql)
    con.close()


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_a_row_lost_during_a_postgres_load_fails_the_run(pg_url):
    load(pg_url, first=DAY1, last=DAY3)  # creates the tables the trigger goes on
    before = rows(pg_url, "staging_events")
    _psql(
        pg_url,
        f"""
        CREATE FUNCTION lose_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER lose_line_2 BEFORE INSERT ON staging_events FOR EACH ROW
            WHEN (NEW.source_key = '{EVENTS_2}' AND NEW.source_line = 2) EXECUTE FUNCTION lose_row();
        """,
    )
    result = load(pg_url, first=DAY1, last=DAY3, expect_success=False)
    checks = check_evaluations(result)
    failed = checks["staging_events:reconcile_records"]
    assert failed["passed"] is False and failed["failing_rows"] == 1
    assert _row(EVENTS_2, READ_2, READ_2 - 1, 0) in failed["failing_sample"]
    # The run's one-line summary names the file and its counts, not only the check.
    assert (
        f"check failed: staging_events reconcile_records (1 failing row(s), first: source_key={EVENTS_2}, "
        f"records_read={READ_2}, staged={READ_2 - 1}, rejected=0)"
    ) in failures(result)
    # Blocking, audited before the commit: the short staging table was rolled back (it holds the
    # previous load's rows, line 2 included), not materialized, and nothing was built from it.
    assert "staging_events" not in _materialized(result) and "songplays" not in _materialized(result)
    assert rows(pg_url, "staging_events") == before


def test_a_play_lost_during_a_postgres_load_fails_the_run(pg_url):
    load(pg_url, first=DAY1, last=DAY3)
    before = rows(pg_url, "songplays")
    _psql(
        pg_url,
        """
        CREATE TABLE lost (n INTEGER);
        CREATE FUNCTION lose_first_play() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM lost) THEN RETURN NEW; END IF;
            INSERT INTO lost VALUES (1);
            RETURN NULL;
        END $$;
        CREATE TRIGGER lose_a_play BEFORE INSERT ON songplays FOR EACH ROW
            WHEN (NEW.source_date = DATE '2018-11-03') EXECUTE FUNCTION lose_first_play();
        """,
    )
    result = load(pg_url, first=DAY1, last=DAY3, expect_success=False)
    checks = check_evaluations(result)
    failed = checks["songplays:reconcile_nextsong_events"]
    assert failed["passed"] is False and failed["failing_rows"] == 1
    assert _row("2018-11-03", NEXTSONG_3, NEXTSONG_3 - 1) in failed["failing_sample"]
    assert checks["staging_events:reconcile_records"]["passed"] is True
    assert (
        "check failed: songplays reconcile_nextsong_events (1 failing row(s), first: day=2018-11-03, "
        f"events={NEXTSONG_3}, plays={NEXTSONG_3 - 1})"
    ) in failures(result)
    assert "songplays" not in _materialized(result) and "time" not in _materialized(result)
    assert rows(pg_url, "songplays") == before
