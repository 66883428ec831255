"""Star assets: the songplays fact and its four dimensions, built by SQL inside the warehouse.

Each table's SELECT lives in `sql/<table>.sql`; the asset wraps it in one transaction that
replaces the rows it owns (a partition's days for songplays, the whole table for a dimension).
"""

from dagster import AssetDep, AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from sparkify_assets.failures import one_line_failure
from sparkify_assets.metadata import (
    ENGINEERING_OWNERS,
    definition_metadata,
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


def _insert(table: Table, select: str) -> str:
    return f"INSERT INTO {table.name} ({', '.join(table.column_names)})\n{select}"


def rebuild_dimension(
    context: AssetExecutionContext, warehouse: WarehouseResource, table: Table
) -> MaterializeResult:
    """Replace a whole dimension with the result of its SQL, in one transaction."""
    with one_line_failure(table.name):

        def work(tx: Session) -> dict:
            tx.ensure(*ALL_TABLES)
            tx.execute(f"DELETE FROM {table.name}")
            tx.sql(_insert(table, table.transform_sql()))
            return materialization_metadata(tx, table, tx.scalar(f"SELECT COUNT(*) FROM {table.name}"))

        meta = warehouse.open().run(work)
        context.log.info(f"{table.name}: {meta['dagster/row_count']} rows")
        return MaterializeResult(metadata=meta)


def _star_asset(table: Table, deps: list[str], extra_metadata: dict | None = None, **kwargs):
    return asset(
        name=table.name,
        description=table.description,
        group_name="star",
        owners=ENGINEERING_OWNERS,
        tags=layer_tags("star", "sql"),
        kinds=KINDS,
        deps=[AssetDep(d) for d in deps],
        backfill_policy=BackfillPolicy.single_run(),
        metadata={**definition_metadata(table), **(extra_metadata or {})},
        pool="sparkify_warehouse",
        **kwargs,
    )


# The fact waits for the dimensions it references, so its reference checks, run right after it,
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
    with one_line_failure("songplays"):
        first, last = partition_dates(context)
        where = date_filter("source_date", first, last)
        select = SONGPLAYS.transform_sql().format(partition_filter=date_filter("e.source_date", first, last))

        def work(tx: Session) -> tuple[dict[str, int], int, dict]:
            tx.ensure(*ALL_TABLES)
            tx.execute(f"DELETE FROM {SONGPLAYS.name} WHERE {where}")
            tx.sql(_insert(SONGPLAYS, select))
            rows = tx.scalar(f"SELECT COUNT(*) FROM {SONGPLAYS.name} WHERE {where}")
            matched = tx.scalar(f"SELECT COUNT(*) FROM {SONGPLAYS.name} WHERE song_id IS NOT NULL")
            per_day = partition_row_counts(tx, SONGPLAYS, first, last)
            return per_day, matched, materialization_metadata(tx, SONGPLAYS, rows, where)

        per_day, matched, meta = warehouse.open().run(work)
        total = meta["table_rows"]
        meta["matched_plays"] = matched
        meta["match_rate"] = round(matched / total, 6) if total else 0.0
        report_partition_rows(context, per_day)
        context.log.info(
            f"songplays {first} to {last}: {meta['run_rows']} plays on {len(per_day)} days; whole table "
            f"{total} plays, {matched} matched to the catalog"
        )
        return MaterializeResult(metadata=meta)


@_star_asset(USERS, ["staging_events"])
def users(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    return rebuild_dimension(context, warehouse, USERS)


@_star_asset(SONGS, ["staging_songs", "artists"])
def songs(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    return rebuild_dimension(context, warehouse, SONGS)


@_star_asset(ARTISTS, ["staging_songs"])
def artists(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    return rebuild_dimension(context, warehouse, ARTISTS)


@_star_asset(TIME, ["songplays"])
def time(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    return rebuild_dimension(context, warehouse, TIME)
