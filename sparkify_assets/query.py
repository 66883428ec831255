"""`sparkify query`: analytics results and ad-hoc SQL in the terminal.

    sparkify query               list the analytics results and their questions
    sparkify query top_songs     print one analytics result as an aligned table
    sparkify query --sql "..."   run ad-hoc SQL on the configured warehouse

Queries run read-only where the backend allows it: DuckDB opens the file read_only (so a query
never takes the writer's lock), PostgreSQL and Redshift run in a READ ONLY transaction.
"""

from __future__ import annotations

import argparse
import decimal
from collections.abc import Sequence

from sparkify_assets.dialect import placeholders
from sparkify_assets.errors import UsageError
from sparkify_assets.resources.warehouse import Warehouse, WarehouseError

MAX_CELL = 60


def configured_warehouse() -> Warehouse:
    """The warehouse of the code location's Definitions, with its EnvVars resolved."""
    from sparkify_assets.definitions import defs
    from sparkify_assets.runner import open_resource

    return open_resource(defs, "warehouse")


def run_sql(warehouse: Warehouse, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one statement read-only; return its column names and rows (none for a statement)."""
    return warehouse.read_only_query(sql)


class NothingLoaded(WarehouseError):
    """The warehouse holds none of the project's tables yet (or the DuckDB file does not exist)."""

    def __init__(self, warehouse: Warehouse) -> None:
        super().__init__(
            f"Nothing has been loaded into {warehouse.describe()} yet: load it with `sparkify run` "
            "(or `dagster dev`, whose sensors load the lake on their own)."
        )


def loaded_tables(warehouse: Warehouse, names: Sequence[str]) -> set[str]:
    """Which of `names` exist in the warehouse, read-only (nothing is created, not even a DuckDB
    file); NothingLoaded when none does."""
    if not warehouse.exists():
        raise NothingLoaded(warehouse)
    _, found = warehouse.read_only_query(
        f"SELECT table_name FROM information_schema.tables WHERE table_name IN ({placeholders(names)})",
        list(names),
    )
    present = {row[0] for row in found}
    if not present:
        raise NothingLoaded(warehouse)
    return present


def query_analysis(warehouse: Warehouse, name: str) -> tuple[list[str], list[tuple]]:
    """One analytics result, in reading order, with cells formatted as in the UI."""
    from sparkify_assets.assets.analytics import BY_NAME, analysis_names, display_value, result_sql

    analysis = BY_NAME.get(name)
    if analysis is None:
        raise UsageError(f"no analytics result named {name!r}; choose one of: {', '.join(analysis_names())}")
    table = analysis.table.name
    if table not in loaded_tables(warehouse, [table, "staging_events", "staging_songs"]):
        raise WarehouseError(
            f"{table} is not in the warehouse {warehouse.describe()} yet: materialize the analytics assets "
            "(Dagster UI, or `dagster asset materialize -m sparkify_assets --select 'group:analytics'`)."
        )
    columns, rows = run_sql(warehouse, result_sql(analysis))
    return columns, [tuple(display_value(c, v) for c, v in zip(columns, row, strict=True)) for row in rows]


def _text(value: object) -> str:
    if value is None:
        return "NULL"
    text = str(value).replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | decimal.Decimal):
        return True
    # Formatted numbers ("37", "7.95%") stay right-aligned like the numbers they stand for.
    return isinstance(value, str) and value.replace(",", "").replace("%", "").replace(".", "", 1).isdigit()


def format_table(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    """An aligned plain-text table: numbers to the right, text to the left, a row count below."""
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows) for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        out = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(out).rstrip()

    lines = [line(list(columns)), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in cells]
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines)


def list_analyses() -> str:
    from sparkify_assets.assets.analytics import ANALYSES

    width = max(len(a.short_name) for a in ANALYSES)
    return "\n".join(f"{a.short_name.ljust(width)}  {a.question}" for a in ANALYSES)


def cmd_query(args: argparse.Namespace) -> int:
    if args.sql and args.name:
        raise UsageError("give either an analytics name or --sql, not both")
    if not args.sql and not args.name:
        print(list_analyses())
        return 0
    warehouse = configured_warehouse()
    if not warehouse.exists():
        raise NothingLoaded(warehouse)  # and create no file
    columns, rows = run_sql(warehouse, args.sql) if args.sql else query_analysis(warehouse, args.name)
    if not columns:
        print("(statement returned no rows)")
        return 0
    print(format_table(columns, rows))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `query` subcommand to the `sparkify` parser."""
    query = sub.add_parser(
        "query",
        help="print an analytics result, or run ad-hoc SQL, on the configured warehouse",
        description="Print an analytics result (e.g. top_songs) as an aligned table, or run --sql read-only. "
        "Without arguments, list the analytics results.",
    )
    query.add_argument("name", nargs="?", help="analytics result, e.g. top_songs or analytics_top_songs")
    query.add_argument("--sql", help="ad-hoc SQL to run read-only on the warehouse")
    query.set_defaults(func=cmd_query)
