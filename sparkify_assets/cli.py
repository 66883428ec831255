"""The `sparkify` command.

    sparkify run        materialize every asset for every day in the lake, in one run
    sparkify tables     print the row count of each warehouse table

Warehouse and lake come from SPARKIFY_WAREHOUSE_URL and SPARKIFY_LAKE_URL, read when the
Definitions load, exactly as `dagster dev` reads them; errors end in one sentence, not a stack trace.
"""

from __future__ import annotations

import argparse
import os
import sys

from sparkify_assets.tables import ALL_TABLES


def table_counts(warehouse) -> list[tuple[str, int | None]]:
    from sparkify_assets.assets.analytics import ANALYTICS_TABLES

    counts = []
    with warehouse.transaction() as tx:
        for table in (*ALL_TABLES, *ANALYTICS_TABLES):
            tx.ensure(table)
            counts.append((table.name, tx.scalar(f"SELECT COUNT(*) FROM {table.name}")))
    return counts


def print_counts(warehouse) -> None:
    print(f"warehouse: {warehouse.describe()}")
    for name, count in table_counts(warehouse):
        print(f"  {name:<30}{count:>12,}")


def rebuild_tables(warehouse, names: list[str], partial: bool) -> None:
    """Drop tables whose columns differ from their declaration (drift.py), before a full load
    recreates them from the lake."""
    from sparkify_assets.assets.analytics import ANALYTICS_TABLES
    from sparkify_assets.drift import drop_for_rebuild

    if partial:
        raise ValueError("--rebuild reloads every day of the lake: leave out --start and --end.")
    with warehouse.transaction() as tx:
        drop_for_rebuild(tx, names, {t.name: t for t in (*ALL_TABLES, *ANALYTICS_TABLES)})
    print(f"dropped {', '.join(names)}: the run recreates them from the lake")


def cmd_run(args: argparse.Namespace) -> int:
    from datetime import date

    from dagster import DagsterInstance

    from sparkify_assets.definitions import defs
    from sparkify_assets.runner import failures, lake_range, open_resource, run_load

    # Configuration mistakes (a bad URL scheme, a missing lake) end here in one line, not once per step.
    warehouse = open_resource(defs, "warehouse")
    warehouse.query("SELECT 1")  # unreachable, refused or locked: one line now, not a trace per step
    lake_first, lake_last = lake_range(defs)
    if args.rebuild:
        rebuild_tables(warehouse, args.rebuild, partial=bool(args.start or args.end))
    first = date.fromisoformat(args.start) if args.start else lake_first
    last = date.fromisoformat(args.end) if args.end else lake_last
    print(
        f"lake: {open_resource(defs, 'lake').url} (logs from {lake_first} to {lake_last}); loading {first} to {last}"
    )
    print(f"warehouse: {warehouse.describe()}")
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    result = run_load(defs, first, last, instance)
    for line in failures(result):
        print(line, file=sys.stderr)
    if not result.success:
        return 1
    print_counts(warehouse)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from sparkify_assets.definitions import defs
    from sparkify_assets.runner import open_resource

    print_counts(open_resource(defs, "warehouse"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkify", description="Sparkify's lake to star-schema warehouse.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="load every day of the lake into the warehouse, in one run")
    run.add_argument("--start", help="first day to load (YYYY-MM-DD; default: the lake's first)")
    run.add_argument("--end", help="last day to load (YYYY-MM-DD; default: the lake's last)")
    run.add_argument(
        "--rebuild",
        action="append",
        metavar="TABLE",
        help="drop TABLE first and rebuild it from the lake (for a table whose columns differ from tables.py)",
    )
    run.set_defaults(func=cmd_run)

    tables = sub.add_parser("tables", help="print the row count of each table")
    tables.set_defaults(func=cmd_tables)

    # Each of these modules owns its subcommand.
    from sparkify_assets import generate, query
    from sparkify_assets.infra import cli as infra_cli

    for module in (query, generate, infra_cli):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sparkify_assets.resources.lake import LakeError
    from sparkify_assets.resources.warehouse import WarehouseError

    try:
        return args.func(args)
    except (LakeError, WarehouseError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
