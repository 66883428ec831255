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

from sparkify_assets.errors import UsageError
from sparkify_assets.tables import ALL_TABLES


def table_counts(warehouse) -> list[tuple[str, int | None]]:
    """Row counts of every table, read-only: a table not created yet counts as None (nothing is
    created); NothingLoaded when none of them exists, or the DuckDB file itself does not."""
    from sparkify_assets.assets.analytics import ANALYTICS_TABLES
    from sparkify_assets.query import loaded_tables, run_sql

    tables = [t.name for t in (*ALL_TABLES, *ANALYTICS_TABLES)]
    present = loaded_tables(warehouse, tables)
    # One read-only statement for every table present (one connection, one snapshot).
    sql = " UNION ALL ".join(f"SELECT '{name}', COUNT(*) FROM {name}" for name in tables if name in present)
    found = dict(run_sql(warehouse, sql)[1])
    return [(name, found.get(name)) for name in tables]


def print_counts(warehouse, header: bool = True) -> None:
    counts = table_counts(warehouse)
    if header:
        print(f"warehouse: {warehouse.describe()}")
    for name, count in counts:
        print(f"  {name:<30}{'not loaded' if count is None else f'{count:,}':>12}")


def day(text: str):
    """An argparse type: a YYYY-MM-DD date, or a one-line error saying so."""
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2018-11-05") from None


def rebuild_tables(warehouse, names: list[str], partial: bool) -> None:
    """Drop tables whose columns differ from their declaration (drift.py), before a full load
    recreates them from the lake."""
    from sparkify_assets.assets.analytics import ANALYTICS_TABLES
    from sparkify_assets.drift import drop_for_rebuild

    if partial:
        raise UsageError("--rebuild reloads every day of the lake: leave out --start and --end.")
    with warehouse.transaction() as tx:
        drop_for_rebuild(tx, names, {t.name: t for t in (*ALL_TABLES, *ANALYTICS_TABLES)})
    print(f"dropped {', '.join(names)}: the run recreates them from the lake")


def cmd_run(args: argparse.Namespace) -> int:
    from sparkify_assets.graceful_stop import stop_on_signals

    # Ctrl-C and SIGTERM stop a waiting or running load within seconds (graceful_stop).
    with stop_on_signals():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from sparkify_assets import config, progress
    from sparkify_assets.definitions import defs
    from sparkify_assets.instance import project_instance
    from sparkify_assets.runner import (
        failures,
        hold_warehouse,
        lake_range,
        load_days,
        open_resource,
        run_load,
    )

    # Configuration mistakes (a bad setting, URL or lake) end here in one line, not once per step.
    config.check_settings()
    warehouse = open_resource(defs, "warehouse")
    lake_first, lake_last = lake_range(defs)
    first, last, days = load_days(defs, args.start, args.end)  # before the warehouse is touched
    # The run is recorded in the instance `dagster dev` uses here (instance.py), so the UI shows it.
    # One run at a time per warehouse, whoever started the other (resources/warehouse_lock.py).
    with (
        project_instance() as instance,
        hold_warehouse(defs, instance, wait=not args.no_wait, say=lambda line: print(line, flush=True)),
    ):
        warehouse.query("SELECT 1")  # unreachable, refused or locked: one line now, not a trace per step
        if args.rebuild:
            rebuild_tables(warehouse, args.rebuild, partial=bool(args.start or args.end))
        print(
            f"lake: {open_resource(defs, 'lake').url} (logs from {lake_first} to {lake_last}); "
            f"loading {first} to {last} ({days} day{'' if days == 1 else 's'} with a log file)"
        )
        print(f"warehouse: {warehouse.describe()}", flush=True)
        # A bar over the bytes staged when a person watches; plain lines in a log or a pipe.
        progress.show_bars(sys.stdout if sys.stdout.isatty() else None)
        try:
            result = run_load(defs, first, last, instance, progress=sys.stdout)
        finally:
            progress.show_bars(None)
        for line in failures(result):
            print(line, file=sys.stderr)
        if not result.success:
            return 1
        print_counts(warehouse, header=False)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from sparkify_assets.definitions import defs
    from sparkify_assets.runner import open_resource

    print_counts(open_resource(defs, "warehouse"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkify", description="Sparkify's lake to star-schema warehouse.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="load every day of the lake into the warehouse, in one run",
        description="Stage the lake (SPARKIFY_LAKE_URL), build the star schema and the analytics tables "
        "in the warehouse (SPARKIFY_WAREHOUSE_URL), with every check, in one Dagster run over the lake's "
        "days (or --start/--end). Prints a line as each step finishes, then each table's row count.",
    )
    run.add_argument("--start", type=day, help="first day to load (YYYY-MM-DD; default: the lake's first)")
    run.add_argument("--end", type=day, help="last day to load (YYYY-MM-DD; default: the lake's last)")
    run.add_argument(
        "--rebuild",
        action="append",
        metavar="TABLE",
        help="drop TABLE first and rebuild it from the lake (for a table whose columns differ from tables.py)",
    )
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="if another run is writing the warehouse, stop at once (exit 1) instead of waiting for it",
    )
    run.set_defaults(func=cmd_run)

    tables = sub.add_parser(
        "tables",
        help="print the row count of each table",
        description="Print the row count of each warehouse table (SPARKIFY_WAREHOUSE_URL), read-only: "
        "nothing is created; a warehouse not loaded yet says how to load it.",
    )
    tables.set_defaults(func=cmd_tables)

    # Each of these modules owns its subcommand.
    from sparkify_assets import generate, query
    from sparkify_assets.infra import cli as infra_cli

    for module in (query, generate, infra_cli):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sparkify_assets.errors import UserError
    from sparkify_assets.query import NothingLoaded

    try:
        return args.func(args)
    except NothingLoaded as exc:
        print(exc, file=sys.stderr)
        return 1
    except UserError as exc:  # a problem the user can act on; anything else keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped: no run was left half-done; every table is whole", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped early (`sparkify query ... | head`) and had what it wanted. Point
        # stdout at /dev/null so the interpreter's last flush does not fail on the closed pipe too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
