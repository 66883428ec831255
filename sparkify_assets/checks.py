"""Asset checks, derived from the table declarations, in dbt's vocabulary.

- `unique_<key>` and `not_null_<key>` for every primary key (blocking: a duplicate key would be
  copied into every table built from this one),
- `has_rows` for every staging and star table (blocking),
- `relationships_<column>__<table>` for every declared reference (not blocking), on the
  referencing table; `covers_<table>_<column>` on the referenced table instead when that table
  is built from the referencing one (time covers every songplays.start_time),
- `reconcile_records` for each staging table: raw records read = rows staged + rows rejected,
  file by file (blocking),
- `reconcile_nextsong_events` for songplays: each day's plays equal the NextSong events staged
  for that day (blocking),
- `lake_inventory` for each staging table: every object under its lake folder is loaded; the
  summary names the first objects rejected as whole files or ignored (not blocking, a warning).
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from sparkify_assets.metadata import markdown_table
from sparkify_assets.parsing import WHOLE_FILE_LINE
from sparkify_assets.partitions import date_filter, partition_dates
from sparkify_assets.resources.lake import LakeResource
from sparkify_assets.resources.warehouse import Session, WarehouseResource
from sparkify_assets.tables import (
    SONGPLAYS,
    STAGING_EVENTS,
    STAGING_FILES,
    STAGING_REJECTS,
    STAGING_SONGS,
    STAR_TABLES,
    Reference,
    Table,
)

SAMPLE = 5
# Every check reads the warehouse: in the same pool as the assets (dagster.yaml), so a check never
# opens DuckDB while another run's step holds its one writer lock.
POOL = "sparkify_warehouse"


def _run_filter(context: AssetCheckExecutionContext, table: Table, alias: str = "") -> str:
    """Limit a check on a partitioned table to the partitions of this run, when it has some."""
    if table.partition_column and context.has_partition_key_range:
        return date_filter(f"{alias}{table.partition_column}", *partition_dates(context))
    return "TRUE"


# --- The SQL of each check: a SELECT of the failing rows (empty when the check passes) ---------


def unique_sql(table: Table) -> str:
    key = ", ".join(table.primary_key)
    return f"SELECT {key}, COUNT(*) AS n FROM {table.name} GROUP BY {key} HAVING COUNT(*) > 1"


def not_null_sql(table: Table) -> str:
    cond = " OR ".join(f"{c} IS NULL" for c in table.primary_key)
    return f"SELECT {', '.join(table.primary_key)} FROM {table.name} WHERE {cond}"


def relationship_sql(table: Table, ref: Reference, where: str = "TRUE") -> str:
    return (
        f"SELECT DISTINCT c.{ref.column} FROM {table.name} c "
        f"LEFT JOIN {ref.table} r ON c.{ref.column} = r.{ref.to_column} "
        f"WHERE c.{ref.column} IS NOT NULL AND r.{ref.to_column} IS NULL AND {where}"
    )


def reconcile_records_sql(table: Table, where: str = "TRUE") -> str:
    """Per file: records the loader read, rows staged and rejected; failing where they differ."""
    return f"""SELECT * FROM (
    SELECT f.source_key, f.records_read, COALESCE(s.n, 0) AS staged, COALESCE(r.n, 0) AS rejected
    FROM {STAGING_FILES.name} f
    LEFT JOIN (SELECT source_key, COUNT(*) AS n FROM {table.name} GROUP BY source_key) s
        ON s.source_key = f.source_key
    LEFT JOIN (
        SELECT source_key, COUNT(*) AS n FROM {STAGING_REJECTS.name}
        WHERE target_table = '{table.name}' GROUP BY source_key
    ) r ON r.source_key = f.source_key
    WHERE f.target_table = '{table.name}' AND {where}
) files WHERE records_read <> staged + rejected"""


def reconcile_nextsong_sql(where: str = "TRUE") -> str:
    """Per day: NextSong events staged and songplays built; failing where they differ."""
    return f"""SELECT * FROM (
    SELECT COALESCE(e.source_date, p.source_date) AS day, COALESCE(e.n, 0) AS events, COALESCE(p.n, 0) AS plays
    FROM (SELECT source_date, COUNT(*) AS n FROM {STAGING_EVENTS.name}
          WHERE page = 'NextSong' AND {where} GROUP BY source_date) e
    FULL OUTER JOIN (SELECT source_date, COUNT(*) AS n FROM {SONGPLAYS.name}
          WHERE {where} GROUP BY source_date) p
        ON e.source_date = p.source_date
) days WHERE events <> plays"""


def whole_file_rejects_sql(table: Table) -> str:
    """Lake objects rejected as a whole for `table` (line 0): not lake files, or not UTF-8 JSON."""
    return (
        f"SELECT source_key, reason FROM {STAGING_REJECTS.name} "
        f"WHERE target_table = '{table.name}' AND source_line = {WHOLE_FILE_LINE}"
    )


def all_check_sql() -> list[str]:
    """Every check's SQL, for the dialect tests."""
    sqls = [reconcile_nextsong_sql(), *(reconcile_records_sql(t) for t in (STAGING_EVENTS, STAGING_SONGS))]
    sqls += [whole_file_rejects_sql(t) for t in (STAGING_EVENTS, STAGING_SONGS)]
    for table in STAR_TABLES:
        sqls += [unique_sql(table), not_null_sql(table)]
        sqls += [relationship_sql(table, ref) for ref in table.references]
    return sqls


# --- The checks --------------------------------------------------------------------------


def _failing(warehouse: WarehouseResource, sql: str, **meta) -> AssetCheckResult:
    """Run a failing-rows query: the check passes when it returns none."""

    def work(tx: Session) -> tuple[int, list[tuple], list[str]]:
        count = tx.scalar(f"SELECT COUNT(*) FROM ({sql}) failing")
        sample = tx.query(f"SELECT * FROM ({sql}) failing LIMIT {SAMPLE}") if count else []
        return count, sample, tx.columns() if count else []

    count, sample, columns = warehouse.open().run(work)
    metadata = {"failing_rows": count, **meta}
    if sample:
        metadata["failing_sample"] = MetadataValue.md(markdown_table(columns, sample))
    # The first failing row, in words, so the run log and `sparkify run` say what failed, not only that.
    description = (
        f"{count} failing row(s), first: "
        + ", ".join(f"{c}={v}" for c, v in zip(columns, sample[0], strict=True))
        if sample
        else None
    )
    return AssetCheckResult(
        passed=count == 0, metadata=metadata, severity=AssetCheckSeverity.ERROR, description=description
    )


def key_check(table: Table, rule: str) -> AssetChecksDefinition:
    """dbt's `unique` or `not_null` on the table's primary key; blocking."""
    key = ", ".join(table.primary_key)
    sql, description = {
        "unique": (unique_sql(table), f"{key} is unique in {table.name}"),
        "not_null": (not_null_sql(table), f"{key} is never NULL in {table.name}"),
    }[rule]

    @asset_check(
        pool=POOL,
        asset=table.name,
        name=f"{rule}_{'_'.join(table.primary_key)}",
        description=description,
        blocking=True,
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        return _failing(warehouse, sql)

    return _check


def has_rows_check(table: Table) -> AssetChecksDefinition:
    @asset_check(
        asset=table.name, name="has_rows", description=f"{table.name} is not empty", blocking=True, pool=POOL
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        with warehouse.open().transaction() as tx:
            rows = tx.scalar(f"SELECT COUNT(*) FROM {table.name}")
        return AssetCheckResult(passed=rows > 0, metadata={"rows": rows})

    return _check


def relationship_check(table: Table, ref: Reference) -> AssetChecksDefinition:
    # A check runs after both tables exist: on this table, after the referenced dimension, or on
    # the referenced table when that one is built from this one (time from songplays).
    if ref.built_from_here:
        asset, name, upstream = ref.table, f"covers_{table.name}_{ref.column}", table.name
    else:
        asset, name, upstream = table.name, f"relationships_{ref.column}__{ref.table}", ref.table

    @asset_check(
        pool=POOL,
        asset=asset,
        name=name,
        description=f"every non-NULL {table.name}.{ref.column} exists in {ref.table}.{ref.to_column}",
        additional_deps=[upstream],
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        where = "TRUE" if ref.built_from_here else _run_filter(context, table, "c.")
        return _failing(warehouse, relationship_sql(table, ref, where))

    return _check


def reconcile_records_check(table: Table) -> AssetChecksDefinition:
    """Raw records read (as the loader counted them) = rows in the table + rejects, per file."""

    @asset_check(
        pool=POOL,
        asset=table.name,
        name="reconcile_records",
        description=f"for every file, records read = rows in {table.name} + rows in staging_rejects",
        blocking=True,
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        where = _run_filter(context, table, "f.")
        with warehouse.open().transaction() as tx:
            files, read, rejected = tx.query(
                f"SELECT COUNT(*), SUM(records_read), SUM(rows_rejected) FROM {STAGING_FILES.name} f "
                f"WHERE target_table = '{table.name}' AND {where}"
            )[0]
        return _failing(
            warehouse,
            reconcile_records_sql(table, where),
            files=int(files or 0),
            records_read=int(read or 0),
            rows_rejected=int(rejected or 0),
        )

    return _check


def lake_inventory_check(table: Table, area: str) -> AssetChecksDefinition:
    """Every object under `area`/ is loaded: a warning (not blocking) that names the first objects
    rejected as whole files (from staging_rejects) and ignored by a documented rule (the lake's
    own listing), so nothing in the lake goes unnoticed."""

    @asset_check(
        pool=POOL,
        asset=table.name,
        name="lake_inventory",
        description=f"every object under {area}/ is loaded, or named here as rejected or ignored",
        blocking=False,
    )
    def _check(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> AssetCheckResult:
        ignored = lake.open().inventory(area).ignored
        with warehouse.open().transaction() as tx:
            rejected = [tuple(r) for r in tx.query(whole_file_rejects_sql(table) + " ORDER BY source_key")]
        named = sorted([(k, "rejected", r) for k, r in rejected] + [(k, "ignored", r) for k, r in ignored])
        metadata = {"objects_rejected": len(rejected), "objects_ignored": len(ignored)}
        if named:
            metadata["sample"] = MetadataValue.md(
                markdown_table(["source_key", "outcome", "why"], named[:SAMPLE])
            )
        description = (
            f"{len(rejected)} object(s) under {area}/ rejected as whole files, {len(ignored)} ignored; first: "
            + "; ".join(f"{k} {outcome}: {why}" for k, outcome, why in named[:3])
            if named
            else f"every object under {area}/ is loaded"
        )
        return AssetCheckResult(
            passed=not rejected, severity=AssetCheckSeverity.WARN, metadata=metadata, description=description
        )

    return _check


@asset_check(
    pool=POOL,
    asset=SONGPLAYS.name,
    name="reconcile_nextsong_events",
    description="for each day, the songplays rows equal the NextSong events staged for that day",
    blocking=True,
)
def reconcile_nextsong_events(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    return _failing(warehouse, reconcile_nextsong_sql(_run_filter(context, SONGPLAYS)))


def build_checks() -> list[AssetChecksDefinition]:
    checks: list[AssetChecksDefinition] = [reconcile_nextsong_events]
    for table, area in ((STAGING_EVENTS, "log_data"), (STAGING_SONGS, "song_data")):
        checks += [has_rows_check(table), reconcile_records_check(table), lake_inventory_check(table, area)]
    for table in STAR_TABLES:
        checks += [key_check(table, "unique"), key_check(table, "not_null"), has_rows_check(table)]
        checks += [relationship_check(table, ref) for ref in table.references]
    return checks
