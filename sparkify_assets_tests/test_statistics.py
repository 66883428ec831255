"""A table the songplays step filled has planner statistics when the step commits (PostgreSQL):
the next steps' plans read them, not autovacuum's guess. DuckDB keeps its own: nothing to run."""

from __future__ import annotations

from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets.tables import ALL_TABLES, USERS

# Four hand-made users, two of them at level 'paid'.
ROWS = [("u1", "paid"), ("u2", "free"), ("u3", "paid"), ("u4", "free")]


def _fill(tx) -> None:
    tx.ensure(*ALL_TABLES)
    for user_id, level in ROWS:
        tx.execute("INSERT INTO users (user_id, level) VALUES (?, ?)", [user_id, level])


def test_refresh_statistics_analyzes_the_transactions_rows_on_postgres(pg_url) -> None:
    wh = open_warehouse(pg_url)

    def work(tx) -> tuple:
        _fill(tx)
        before = tx.scalar("SELECT reltuples FROM pg_class WHERE relname = 'users'")
        tx.refresh_statistics(USERS)
        after = tx.scalar("SELECT reltuples FROM pg_class WHERE relname = 'users'")
        levels = tx.scalar("SELECT n_distinct FROM pg_stats WHERE tablename = 'users' AND attname = 'level'")
        return before, after, levels

    before, after, levels = wh.run(work)
    assert before == -1  # never analyzed: the planner would guess
    assert after == len(ROWS)
    assert levels is not None and levels != 0  # 'paid' and 'free': a measured distinct count
    # The statistics committed with the step: a later transaction sees them.
    assert wh.query("SELECT reltuples FROM pg_class WHERE relname = 'users'") == [(len(ROWS),)]


def test_refresh_statistics_changes_nothing_on_duckdb(duckdb_url) -> None:
    wh = open_warehouse(duckdb_url)

    def work(tx) -> list:
        _fill(tx)
        tx.refresh_statistics(USERS)
        return tx.query("SELECT user_id, level FROM users ORDER BY user_id")

    assert wh.run(work) == ROWS
