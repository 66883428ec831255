"""analytics_free_to_paid refreshed from the earliest event a run could have changed.

A conversion is a pair of consecutive events of one user, so an event added or removed at ts x
changes only pairs whose later event has ts >= x: the pairs before the earliest changed ts stay
as they are, and the rest is recomputed with each user's true predecessor (the SQL's bound). The
earliest changed ts covers the rows a run removed as well as those it added: the table
`analytics_free_to_paid_sources` keeps, for each staged log file, its version, rows and first ts
as of the answer's last build, written in the same transaction as the answer. A file whose
version or rows differ, that came or went, or whose day the run staged, has changed; the bound is
the least first ts of those files, before and now. Without that record (the first build, or the
answer's table dropped since) the answer is rebuilt whole. The full load rebuilds it whole too.
"""

import datetime as dt
from collections.abc import Sequence
from datetime import date

from sparkify_assets.assets.star import insert_sql
from sparkify_assets.dialect import batches, placeholders
from sparkify_assets.resources.warehouse import Session
from sparkify_assets.tables import STAGING_EVENTS, STAGING_FILES, Column, Table

SOURCES = Table(
    name="analytics_free_to_paid_sources",
    description="Bookkeeping of analytics_free_to_paid: each staged log file as of its last build.",
    columns=(
        Column("source_key", "text", "Lake key of the log file", not_null=True),
        Column("source_date", "date", "Date of the log file"),
        Column("version", "text", "staging_files.version when the answer was built"),
        Column("rows_staged", "integer", "staging_files.rows_staged when the answer was built"),
        Column("first_ts", "bigint", "Least ts of the file's staged events (NULL: none)"),
    ),
    primary_key=("source_key",),
    diststyle="ALL",
    layout_reason="ALL: one row per log file, read whole by the answer's step.",
)

_STAGED = (
    f"SELECT source_key, source_date, version, rows_staged FROM {STAGING_FILES.name} "
    f"WHERE target_table = '{STAGING_EVENTS.name}'"
)
_EPOCH = dt.datetime(1970, 1, 1)


def _first_ts(tx: Session, keys: Sequence[str]) -> dict[str, int]:
    """The least staged ts of each of these files, by a scan of their days' rows only."""
    if not keys:
        return {}
    marks = placeholders(keys)
    rows = tx.query(
        f"SELECT source_key, MIN(ts) FROM {STAGING_EVENTS.name} WHERE source_date IN "
        f"(SELECT source_date FROM {STAGING_FILES.name} WHERE source_key IN ({marks})) "
        f"AND source_key IN ({marks}) GROUP BY source_key",
        [*keys, *keys],
    )
    return {key: ts for key, ts in rows if ts is not None}


def _record(tx: Session, staged_now: list[tuple], keys: Sequence[str] | None) -> None:
    """Write the sources of these files (None: of every file) as they are staged now."""
    staged = [r for r in staged_now if keys is None or r[0] in keys]
    if keys is None:
        tx.execute(f"DELETE FROM {SOURCES.name}")
        firsts = dict(tx.query(f"SELECT source_key, MIN(ts) FROM {STAGING_EVENTS.name} GROUP BY source_key"))
    else:
        for chunk in batches(list(keys)):
            tx.execute(f"DELETE FROM {SOURCES.name} WHERE source_key IN ({placeholders(chunk)})", chunk)
        firsts = _first_ts(tx, [r[0] for r in staged])
    # Multi-row INSERTs, not one statement per file: a year of days is 365 round trips on a server.
    rows = [(key, day, version, count, firsts.get(key)) for key, day, version, count in staged]
    for chunk in batches(rows):
        marks = ", ".join(f"({placeholders(row)})" for row in chunk)
        tx.execute(
            f"INSERT INTO {SOURCES.name} ({', '.join(SOURCES.column_names)}) VALUES {marks}",
            [value for row in chunk for value in row],
        )


def changed_bound(
    tx: Session, staged_now: list[tuple], days: tuple[date, date] | None
) -> tuple[list[str], int | None]:
    """The files changed since the answer's last build (`staged_now`: the _STAGED rows), and the
    least ts they held then or hold now (None when none of them holds an event)."""
    recorded = {
        r[0]: r[1:] for r in tx.query(f"SELECT {', '.join(SOURCES.column_names)} FROM {SOURCES.name}")
    }
    staged = {r[0]: r[1:] for r in staged_now}

    def changed(key: str) -> bool:
        was, now = recorded.get(key), staged.get(key)
        if was is None or now is None or tuple(was[1:3]) != tuple(now[1:3]):
            return True
        # An undated file (a whole-file reject) belongs to no day.
        return days is not None and now[0] is not None and days[0] <= now[0] <= days[1]

    keys = sorted(k for k in recorded.keys() | staged.keys() if changed(k))
    firsts = [recorded[k][3] for k in keys if k in recorded and recorded[k][3] is not None]
    firsts += _first_ts(tx, [k for k in keys if k in staged]).values()
    return keys, min(firsts) if firsts else None


def refresh(tx: Session, table: Table, days: tuple[date, date] | None, fresh: bool) -> dict:
    """Bring the answer `table` to its SQL's result, recomputing only from the earliest changed
    ts unless `fresh` (its table or its sources are new) or every staged file changed."""
    insert = insert_sql(table, table.transform_sql())
    staged_now = tx.query(_STAGED)
    keys, bound = ([], None) if fresh else changed_bound(tx, staged_now, days)
    if fresh or len(keys) >= len(staged_now):
        tx.execute(f"DELETE FROM {table.name}")
        tx.execute_shared(insert, [None])
        _record(tx, staged_now, None)
        return {"refreshed_from": "a full rebuild"}
    if bound is not None:
        since = _EPOCH + dt.timedelta(milliseconds=bound)
        tx.execute(f"DELETE FROM {table.name} WHERE converted_at >= ?", [since])
        tx.execute_shared(insert, [bound])
    _name_from_users(tx, table)
    _record(tx, staged_now, keys)
    return {"refreshed_from": f"ts {bound}" if bound is not None else "no change", "files_changed": len(keys)}


def _name_from_users(tx: Session, table: Table) -> None:
    """Every conversion's names as its user's now: users may have changed by any day's run."""
    tx.execute(
        f"UPDATE {table.name} SET first_name = u.first_name, last_name = u.last_name FROM users u "
        f"WHERE u.user_id = {table.name}.user_id"
    )
    tx.execute(
        f"UPDATE {table.name} SET first_name = NULL, last_name = NULL "
        f"WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = {table.name}.user_id)"
    )
