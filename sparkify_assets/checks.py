"""Asset checks, derived from the table declarations, in dbt's vocabulary.

- `unique_<key>` and `not_null_<key>` for every primary key (blocking: a duplicate key would be
  copied into every table built from this one),
- `has_rows` for every staging and star table (blocking),
- `relationships_<column>__<table>` for every declared reference (not blocking: the referenced
  dimension is built after the fact, so the check runs once it exists),
- `reconcile_records` for each staging table: raw records read = rows staged + rows rejected,
  file by file (blocking),
- `reconcile_nextsong_events` for songplays: each day's plays equal the NextSong events staged
  for that day (blocking).
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
from sparkify_assets.partitions import date_filter, partition_dates
from sparkify_assets.resources.warehouse import WarehouseResource
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


def _run_filter(context: AssetCheckExecutionContext, table: Table, alias: str = "") -> str:
    """Limit a check on a partitioned table to the partitions of this run, when it has some."""
    if table.partition_column and context.has_partition_key_range:
        return date_filter(f"{alias}{table.partition_column}", *partition_dates(context))
    return "TRUE"


def _result(
    passed: bool, count: int, sample_cols: list[str], sample: list[tuple], **meta
) -> AssetCheckResult:
    metadata = {"failing_rows": count, **meta}
    if sample:
        metadata["failing_sample"] = MetadataValue.md(markdown_table(sample_cols, sample))
    return AssetCheckResult(passed=passed, metadata=metadata, severity=AssetCheckSeverity.ERROR)


def unique_check(table: Table) -> AssetChecksDefinition:
    key = ", ".join(table.primary_key)

    @asset_check(
        asset=table.name,
        name=f"unique_{'_'.join(table.primary_key)}",
        description=f"{key} is unique in {table.name}",
        blocking=True,
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        sql = f"SELECT {key}, COUNT(*) AS n FROM {table.name} GROUP BY {key} HAVING COUNT(*) > 1"
        with warehouse.open().transaction() as tx:
            count = tx.scalar(f"SELECT COUNT(*) FROM ({sql}) d")
            sample = tx.query(f"{sql} ORDER BY n DESC LIMIT {SAMPLE}") if count else []
        return _result(count == 0, count, [*table.primary_key, "n"], sample)

    return _check


def not_null_check(table: Table) -> AssetChecksDefinition:
    cond = " OR ".join(f"{c} IS NULL" for c in table.primary_key)

    @asset_check(
        asset=table.name,
        name=f"not_null_{'_'.join(table.primary_key)}",
        description=f"{', '.join(table.primary_key)} is never NULL in {table.name}",
        blocking=True,
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        with warehouse.open().transaction() as tx:
            count = tx.scalar(f"SELECT COUNT(*) FROM {table.name} WHERE {cond}")
        return _result(count == 0, count, [], [])

    return _check


def has_rows_check(table: Table) -> AssetChecksDefinition:
    @asset_check(asset=table.name, name="has_rows", description=f"{table.name} is not empty", blocking=True)
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        with warehouse.open().transaction() as tx:
            rows = tx.scalar(f"SELECT COUNT(*) FROM {table.name}")
        return AssetCheckResult(passed=rows > 0, metadata={"rows": rows})

    return _check


def relationship_check(table: Table, ref: Reference) -> AssetChecksDefinition:
    @asset_check(
        asset=table.name,
        name=f"relationships_{ref.column}__{ref.table}",
        description=f"every non-NULL {table.name}.{ref.column} exists in {ref.table}.{ref.to_column}",
        additional_deps=[ref.table],
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        orphans = (
            f"FROM {table.name} c LEFT JOIN {ref.table} r ON c.{ref.column} = r.{ref.to_column} "
            f"WHERE c.{ref.column} IS NOT NULL AND r.{ref.to_column} IS NULL AND {_run_filter(context, table, 'c.')}"
        )
        with warehouse.open().transaction() as tx:
            count = tx.scalar(f"SELECT COUNT(*) {orphans}")
            sample = tx.query(f"SELECT DISTINCT c.{ref.column} {orphans} LIMIT {SAMPLE}") if count else []
        return _result(count == 0, count, [ref.column], sample)

    return _check


def reconcile_records_check(table: Table) -> AssetChecksDefinition:
    """Raw records read (as the loader counted them) = rows in the table + rejects, per file."""

    @asset_check(
        asset=table.name,
        name="reconcile_records",
        description=f"for every file, records read = rows in {table.name} + rows in staging_rejects",
        blocking=True,
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        where = _run_filter(context, table, "f.")
        sql = f"""
            SELECT f.source_key, f.records_read, COALESCE(s.n, 0) AS staged, COALESCE(r.n, 0) AS rejected
            FROM {STAGING_FILES.name} f
            LEFT JOIN (SELECT source_key, COUNT(*) AS n FROM {table.name} GROUP BY source_key) s
                ON s.source_key = f.source_key
            LEFT JOIN (
                SELECT source_key, COUNT(*) AS n FROM {STAGING_REJECTS.name}
                WHERE target_table = '{table.name}' GROUP BY source_key
            ) r ON r.source_key = f.source_key
            WHERE f.target_table = '{table.name}' AND {where}
        """
        with warehouse.open().transaction() as tx:
            totals = tx.query(
                f"SELECT COUNT(*), SUM(records_read), SUM(staged), SUM(rejected) FROM ({sql}) t"
            )[0]
            bad = tx.query(f"SELECT * FROM ({sql}) t WHERE records_read <> staged + rejected LIMIT {SAMPLE}")
        files, read, staged, rejected = (int(v or 0) for v in totals)
        return _result(
            not bad,
            len(bad),
            ["source_key", "records_read", "staged", "rejected"],
            bad,
            files=files,
            records_read=read,
            rows_staged=staged,
            rows_rejected=rejected,
        )

    return _check


@asset_check(
    asset=SONGPLAYS.name,
    name="reconcile_nextsong_events",
    description="for each day, the songplays rows equal the NextSong events staged for that day",
    blocking=True,
)
def reconcile_nextsong_events(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    sql = f"""
        SELECT COALESCE(e.source_date, p.source_date) AS day, COALESCE(e.n, 0) AS events, COALESCE(p.n, 0) AS plays
        FROM (SELECT source_date, COUNT(*) AS n FROM {STAGING_EVENTS.name}
              WHERE page = 'NextSong' AND {_run_filter(context, STAGING_EVENTS)} GROUP BY source_date) e
        FULL OUTER JOIN (SELECT source_date, COUNT(*) AS n FROM {SONGPLAYS.name}
              WHERE {_run_filter(context, SONGPLAYS)} GROUP BY source_date) p
            ON e.source_date = p.source_date
    """
    with warehouse.open().transaction() as tx:
        days = tx.query(f"SELECT * FROM ({sql}) t ORDER BY day")
    bad = [d for d in days if d[1] != d[2]]
    return _result(
        not bad,
        len(bad),
        ["day", "nextsong_events", "songplays"],
        bad[:SAMPLE],
        days=len(days),
        plays=sum(d[2] for d in days),
    )


def build_checks() -> list[AssetChecksDefinition]:
    checks: list[AssetChecksDefinition] = [reconcile_nextsong_events]
    for table in (STAGING_EVENTS, STAGING_SONGS):
        checks += [has_rows_check(table), reconcile_records_check(table)]
    for table in STAR_TABLES:
        checks += [unique_check(table), not_null_check(table), has_rows_check(table)]
        checks += [relationship_check(table, ref) for ref in table.references]
    return checks
