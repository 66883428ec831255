"""Schema drift: the warehouse's tables against their declarations in tables.py.

`Table.ddl` is `CREATE TABLE IF NOT EXISTS`, so a warehouse built by an older version of the
project keeps its old columns. Every asset opens its tables through `Session.ensure`, which calls
`reconcile` on each: a table that lacks only new nullable columns at the end of its declaration
gets them (`ALTER TABLE … ADD COLUMN`, rows untouched, NULL in the new columns); any other
difference (a column of another type or nullability, a column missing in the middle or NOT NULL,
an undeclared column, another order) stops the step with one sentence naming the table, the
difference and the command that rebuilds it. The step's transaction rolls back, so nothing is
written into a table whose columns differ from what the code declares.

An undeclared (extra) column fails rather than being tolerated: DuckDB's bulk load writes the
declared columns by position, an extra NOT NULL column would reject every insert, and the checks,
docs and column schema would describe a table that is not the one there.
New columns are added only at the end for the same reason: by position, every load still lines up.
"""

from __future__ import annotations

from sparkify_assets.errors import UsageError
from sparkify_assets.resources.warehouse import LiveColumn, Session, WarehouseError
from sparkify_assets.tables import LIVE_TYPES, TYPES, Column, Table


class SchemaDriftError(WarehouseError):
    """A live table whose columns differ from its declaration in a way that is not safe to fix."""


def rebuild_command(table: str) -> str:
    return f"sparkify run --rebuild {table}"


def _nullness(nullable: bool) -> str:
    return "NULL allowed" if nullable else "NOT NULL"


def differences(table: Table, live: list[LiveColumn], dialect: str) -> tuple[list[Column], list[str]]:
    """The declared columns to add, and the differences that cannot be fixed in place."""
    declared = {c.name: c for c in table.columns}
    by_name = {c.name: c for c in live}
    problems: list[str] = []
    for col in live:
        want = declared.get(col.name)
        if want is None:
            problems.append(f"column {col.name} ({col.type}) is not declared")
            continue
        expected = LIVE_TYPES[want.type][dialect]
        if col.type.lower() != expected.lower():
            problems.append(f"column {col.name} is {col.type} where tables.py declares {expected}")
        elif col.nullable == want.not_null:
            problems.append(
                f"column {col.name} is {_nullness(col.nullable)} where tables.py declares "
                f"{_nullness(not want.not_null)}"
            )
    missing = [c for c in table.columns if c.name not in by_name]
    kept = [c.name for c in live if c.name in declared]
    if kept != [n for n in table.column_names if n in by_name]:
        problems.append(f"its columns are in another order ({', '.join(kept)})")
    # Safe to add: nullable, and after every live column (the live table is a prefix).
    prefix = kept == table.column_names[: len(kept)]
    for col in missing:
        if col.not_null:
            problems.append(f"column {col.name} (NOT NULL) is missing")
        elif not prefix:
            problems.append(f"column {col.name} is missing before existing columns")
    return ([] if problems else missing), problems


def reconcile(tx: Session, table: Table) -> list[str]:
    """Add the new nullable columns a live table lacks, or raise SchemaDriftError; return the
    names of the columns added."""
    live = tx.live_columns(table.name)
    if not live:  # not visible in the current schema (e.g. a temporary table): nothing to compare
        return []
    to_add, problems = differences(table, live, tx.dialect)
    if problems:
        raise SchemaDriftError(
            f"The warehouse table {table.name} does not match its declaration in tables.py "
            f"({'; '.join(problems)}), so nothing was written: rebuild it from the lake with "
            f"`{rebuild_command(table.name)}`."
        )
    for col in to_add:
        tx.execute(f"ALTER TABLE {table.name} ADD COLUMN {col.name} {TYPES[col.type][tx.dialect]}")
    return [c.name for c in to_add]


def drop_for_rebuild(tx: Session, names: list[str], known: dict[str, Table]) -> None:
    """Drop the named tables, so the run that follows creates them anew from their declaration."""
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise UsageError(
            f"--rebuild: no table {', '.join(unknown)}; the tables are {', '.join(sorted(known))}."
        )
    for name in names:
        tx.execute(f"DROP TABLE IF EXISTS {name}")
