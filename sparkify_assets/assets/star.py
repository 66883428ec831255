"""Star assets: the songplays fact and its four dimensions, built by SQL inside the warehouse.

Each table's SELECT lives in `sql/<table>.sql`; the asset wraps it in one transaction that
replaces the rows it owns (a partition's days for songplays, the whole table for a dimension, the
difference for time),
audits them with the table's checks and commits only when no blocking check failed.
"""

from collections.abc import Callable, Iterator
from typing import TypeVar

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
)

from sparkify_assets.assets.table_asset import single_asset, table_spec
from sparkify_assets.checks import (
    CHECKS,
    Check,
    Scope,
    audit,
    audit_or_publish,
    check_specs,
    run_scope,
)
from sparkify_assets.failures import one_line_failure
from sparkify_assets.metadata import (
    layer_tags,
    materialization_metadata,
    partition_row_counts,
    report_partition_rows,
)
from sparkify_assets.partitions import DAILY, date_filter, partition_dates
from sparkify_assets.resources.warehouse import Session, WarehouseResource
from sparkify_assets.tables import ALL_TABLES, ARTISTS, SONGPLAYS, SONGS, TIME, USERS, Table

# The warehouse's kind is added by build_defs, from the resource the definitions are built with.
KINDS = {"sql"}
T = TypeVar("T")


def insert_sql(table: Table, select: str) -> str:
    """INSERT of a SELECT's rows into `table`, by the declared column names."""
    return f"INSERT INTO {table.name} ({', '.join(table.column_names)})\n{select}"


def rebuild(
    warehouse: WarehouseResource,
    table: Table,
    ensure: tuple[Table, ...],
    report: Callable[[Session], T],
    fill: Callable[[Session], None] | None = None,
) -> T:
    """Replace every row of `table` with its SQL's result in one transaction, and return what
    `report` reads (metadata, the audit's results) in that transaction, before it commits: the
    body of every table rebuilt whole (the catalog dimensions, users, the analytics answers).
    `fill`, when given, writes the rows instead (an answer refreshed by what changed)."""

    def work(tx: Session) -> T:
        tx.ensure(*ensure)
        if fill is not None:
            fill(tx)
        else:
            tx.execute(f"DELETE FROM {table.name}")
            tx.execute_shared(insert_sql(table, table.transform_sql()))
        return report(tx)

    return warehouse.open().run(work)


def rebuild_dimension(
    context: AssetExecutionContext, warehouse: WarehouseResource, table: Table
) -> MaterializeResult:
    """Replace a whole dimension with the result of its SQL, audited, in one transaction."""

    def report(tx: Session) -> tuple[dict, list[AssetCheckResult]]:
        meta = materialization_metadata(tx, table, tx.scalar(f"SELECT COUNT(*) FROM {table.name}"))
        return meta, audit(context, tx, table.name, Scope(table_rows=meta["table_rows"]))

    meta, results = rebuild(warehouse, table, ALL_TABLES, report)
    context.log.info(f"{table.name}: {meta['dagster/row_count']} rows")
    return MaterializeResult(metadata=meta, check_results=results)


# time holds exactly the distinct start_times of songplays, each with fields computed from it alone,
# so a refresh deletes the rows no play has any more and adds those it lacks: what a day's run
# changed, never the other days' rows (rebuilding the whole table was most of a new day's `time`
# step: the calendar fields of every play, benchmarks/README.md). Both are anti-joins on the key,
# against the whole tables, so the result equals a rebuild after any sequence of runs, whichever
# days (or none) changed since the last one.
TIME_ORPHANS = (
    f"DELETE FROM {TIME.name} WHERE NOT EXISTS "
    f"(SELECT 1 FROM {SONGPLAYS.name} sp WHERE sp.start_time = {TIME.name}.start_time)"
)
TIME_MISSING = (
    f"NOT EXISTS (SELECT 1 FROM {TIME.name} known WHERE known.start_time = {SONGPLAYS.name}.start_time)"
)


def refresh_time(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Bring `time` to the distinct start_times of songplays by its difference, audited, in one
    transaction; its checks cover the run's plays when the run has days."""

    def work(tx: Session) -> tuple[dict, list[AssetCheckResult]]:
        tx.ensure(*ALL_TABLES)
        before = tx.scalar(f"SELECT COUNT(*) FROM {TIME.name}")
        tx.execute(TIME_ORPHANS)
        kept = tx.scalar(f"SELECT COUNT(*) FROM {TIME.name}")
        tx.execute_shared(insert_sql(TIME, TIME.transform_sql().format(partition_filter=TIME_MISSING)))
        rows = tx.scalar(f"SELECT COUNT(*) FROM {TIME.name}")
        meta = materialization_metadata(tx, TIME, rows)
        meta.update(rows_deleted=before - kept, rows_added=rows - kept)
        return meta, audit(context, tx, TIME.name, run_scope(context, table_rows=rows))

    meta, results = warehouse.open().run(work)
    context.log.info(
        f"time: {meta['dagster/row_count']} rows ({meta['rows_added']} added, {meta['rows_deleted']} deleted)"
    )
    return MaterializeResult(metadata=meta, check_results=results)


Step = Callable[[AssetExecutionContext, WarehouseResource], MaterializeResult]


def audited_asset(
    spec: AssetSpec, checks: list[AssetCheckSpec], step: Step, alone: list[Check] | None = None, **kwargs
) -> AssetsDefinition:
    """One warehouse table as a one-asset multi_asset whose step audits before it commits; with
    `can_subset` its checks run without it (on `alone`, else the table's declared checks)."""
    name = spec.key.to_user_string()

    @single_asset(spec, checks, **kwargs)
    def _asset(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator:
        with one_line_failure(name):
            yield from audit_or_publish(context, warehouse, name, lambda: step(context, warehouse), alone)

    return _asset


def _star_asset(table: Table, deps: list[str], extra_metadata: dict | None = None, **kwargs):
    """A star table's asset (`audited_asset`), from its declaration."""
    spec = table_spec(
        table,
        group="star",
        tags=layer_tags("star", "sql"),
        deps=[AssetDep(d) for d in deps],
        kinds=KINDS,
        metadata=extra_metadata,
    )
    return lambda step: audited_asset(spec, check_specs(CHECKS[table.name]), step, **kwargs)


# The fact waits for the dimensions it references, so its reference checks, run in its step,
# always see them built (the UI's backfill runs one dependency level after another).
@_star_asset(
    SONGPLAYS,
    ["staging_events", "staging_songs", "users", "songs", "artists"],
    partitions_def=DAILY,
    extra_metadata={
        "match_rate_rule": MetadataValue.md(
            "`matched_plays`: plays of the **whole table** (every day loaded so far, not only the "
            "run's days) whose song is in the catalog; `match_rate` = `matched_plays` / `table_rows`, "
            "rounded to 6 decimals."
        ),
    },
)
def songplays(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    first, last = partition_dates(context)
    where = date_filter("source_date", first, last)
    select = SONGPLAYS.transform_sql().format(partition_filter=date_filter("e.source_date", first, last))

    def work(tx: Session) -> tuple[dict[str, int], int, dict, list[AssetCheckResult]]:
        tx.ensure(*ALL_TABLES)
        tx.execute(f"DELETE FROM {SONGPLAYS.name} WHERE {where}")
        tx.execute_shared(insert_sql(SONGPLAYS, select))
        rows = tx.scalar(f"SELECT COUNT(*) FROM {SONGPLAYS.name} WHERE {where}")
        matched = tx.scalar(f"SELECT COUNT(*) FROM {SONGPLAYS.name} WHERE song_id IS NOT NULL")
        per_day = partition_row_counts(tx, SONGPLAYS, first, last)
        meta = materialization_metadata(tx, SONGPLAYS, rows, where)
        results = audit(context, tx, SONGPLAYS.name, run_scope(context, table_rows=meta["table_rows"]))
        return per_day, matched, meta, results

    per_day, matched, meta, results = warehouse.open().run(work)
    total = meta["table_rows"]
    meta["matched_plays"] = matched
    meta["match_rate"] = round(matched / total, 6) if total else 0.0
    report_partition_rows(context, per_day)
    context.log.info(
        f"songplays {first} to {last}: {meta['run_rows']} plays on {len(per_day)} days; whole table "
        f"{total} plays, {matched} matched to the catalog"
    )
    return MaterializeResult(metadata=meta, check_results=results)


@_star_asset(USERS, ["staging_events"])
def users(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    return rebuild_dimension(context, warehouse, USERS)


@_star_asset(SONGS, ["staging_songs", "artists"])
def songs(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    return rebuild_dimension(context, warehouse, SONGS)


@_star_asset(ARTISTS, ["staging_songs"])
def artists(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    return rebuild_dimension(context, warehouse, ARTISTS)


# Not named `time`, which would shadow the standard library module; the asset key is `time`.
@_star_asset(TIME, ["songplays"])
def time_dimension(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    return refresh_time(context, warehouse)
