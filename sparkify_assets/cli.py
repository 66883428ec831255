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
    counts = []
    with warehouse.transaction() as tx:
        for table in ALL_TABLES:
            tx.ensure(table)
            counts.append((table.name, tx.scalar(f"SELECT COUNT(*) FROM {table.name}")))
    return counts


def print_counts(warehouse) -> None:
    print(f"warehouse: {warehouse.describe()}")
    for name, count in table_counts(warehouse):
        print(f"  {name:<16}{count:>12,}")


def cmd_run(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from sparkify_assets.definitions import defs

    resources = defs.resources
    lake = resources["lake"].open()
    days = lake.days()
    if not days:
        lake.check()
        print(f"error: the lake {lake.url} holds no log files under log_data/", file=sys.stderr)
        return 1
    first, last = args.start or days[0].isoformat(), args.end or days[-1].isoformat()
    print(f"lake: {lake.url} ({len(days)} days of logs, {first} to {last})")
    job = defs.resolve_job_def("load_warehouse")
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = job.execute_in_process(instance=instance, tags=tags, run_config=quiet, raise_on_error=False)
    warehouse = resources["warehouse"].open()
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                error = event.step_failure_data.error
                print(
                    f"error in {event.step_key}: {error.message.strip() if error else 'step failed'}",
                    file=sys.stderr,
                )
        for event in result.all_events:
            if (
                event.event_type_value == "ASSET_CHECK_EVALUATION"
                and not event.event_specific_data.evaluation.passed
            ):
                ev = event.event_specific_data.evaluation
                print(f"check failed: {ev.asset_key.to_user_string()} {ev.check_name}", file=sys.stderr)
        return 1
    print_counts(warehouse)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from sparkify_assets.definitions import defs

    print_counts(defs.resources["warehouse"].open())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkify", description="Sparkify's lake to star-schema warehouse.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="load every day of the lake into the warehouse, in one run")
    run.add_argument("--start", help="first day to load (YYYY-MM-DD; default: the lake's first)")
    run.add_argument("--end", help="last day to load (YYYY-MM-DD; default: the lake's last)")
    run.set_defaults(func=cmd_run)

    tables = sub.add_parser("tables", help="print the row count of each table")
    tables.set_defaults(func=cmd_tables)
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
