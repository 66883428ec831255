"""analytics_free_to_paid refreshed from the earliest changed ts (assets/conversions.py), on
hand-made staging rows whose conversions are known by hand: a replaced file with a later ts
moves a conversion, a file gone (not one of the run's days) and a same-ts tie in a new day
replace it by another, and an undated whole-file reject in staging_files belongs to no day."""

from datetime import date, datetime, timedelta

import pytest

from sparkify_assets.assets.analytics import FREE_TO_PAID
from sparkify_assets.assets.conversions import SOURCES, refresh
from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets.tables import ALL_TABLES
from sparkify_assets_tests.helpers import WAREHOUSE_FIXTURES

EPOCH = datetime(1970, 1, 1)


def day(n: int) -> date:
    return date(2018, 11, n)


def key(n: int) -> str:
    return f"log_data/2018/11/2018-11-{n:02d}-events.json"


def put(tx, n: int, version: str, events: list[tuple[str, str, int]]) -> None:
    """Stage file `n` as these (user, level, ts) events, in line order, replacing what it held."""
    drop(tx, n)
    for line, (user, level, ts) in enumerate(events, start=1):
        tx.execute(
            "INSERT INTO staging_events (user_id, level, ts, page, session_id, source_key, source_line, source_date) "
            "VALUES (?, ?, ?, 'Home', 1, ?, ?, ?)",
            [user, level, ts, key(n), line, day(n)],
        )
    tx.execute(
        "INSERT INTO staging_files (target_table, source_key, source_date, version, bytes, records_read, "
        "rows_staged, rows_rejected) VALUES ('staging_events', ?, ?, ?, 1, ?, ?, 0)",
        [key(n), day(n), version, len(events), len(events)],
    )


def drop(tx, n: int) -> None:
    tx.execute("DELETE FROM staging_events WHERE source_key = ?", [key(n)])
    tx.execute("DELETE FROM staging_files WHERE source_key = ?", [key(n)])


def conversions(tx) -> list[tuple]:
    return tx.query(
        f"SELECT user_id, first_name, last_free_at, converted_at FROM {FREE_TO_PAID.name} ORDER BY 4"
    )


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_refresh_follows_replaced_removed_and_tied_days(request, backend):
    wh = open_warehouse(request.getfixturevalue(WAREHOUSE_FIXTURES[backend]))

    def work(tx) -> list[list[tuple]]:
        tx.ensure(*ALL_TABLES, FREE_TO_PAID, SOURCES)
        tx.execute("INSERT INTO users (user_id, first_name, level) VALUES ('a', 'Ann', 'paid')")
        tx.execute(
            "INSERT INTO staging_files (target_table, source_key, source_date, version, bytes, records_read, "
            "rows_staged, rows_rejected) VALUES ('staging_events', 'log_data/notes.txt', NULL, '', 1, 1, 0, 1)"
        )
        put(tx, 1, "v1", [("a", "free", 100)])
        put(tx, 2, "v1", [("a", "paid", 200)])
        put(tx, 4, "v1", [("a", "free", 400)])
        seen = [refresh(tx, FREE_TO_PAID, None, fresh=True) and conversions(tx)]
        # Day 2 replaced: its paid event later (the conversion at 200 must go: the old rows' bound).
        put(tx, 2, "v2", [("a", "paid", 250)])
        refresh(tx, FREE_TO_PAID, (day(2), day(2)), fresh=False)
        seen.append(conversions(tx))
        # Day 1 gone (not the run's day) and day 3 new, with free then paid at one ts.
        drop(tx, 1)
        put(tx, 3, "v1", [("a", "free", 300), ("a", "paid", 300)])
        refresh(tx, FREE_TO_PAID, (day(3), day(3)), fresh=False)
        seen.append(conversions(tx))
        return seen

    first, replaced, tied = wh.run(work)
    assert first == [("a", "Ann", at(100), at(200))]
    assert replaced == [("a", "Ann", at(100), at(250))]  # free 100, paid 250, free 400
    assert tied == [("a", "Ann", at(300), at(300))]  # paid 250, free 300, paid 300, free 400
