"""Asset checks, derived from the table declarations, in dbt's vocabulary, run write-audit-publish.

- `unique_<key>` and `not_null_<key>` for every primary key (blocking),
- `has_rows` for every staging and star table (blocking),
- `relationships_<column>__<table>` for every declared reference (blocking), on the referencing
  table; `covers_<table>_<column>` on the referenced table instead when that table is built from
  the referencing one (time covers every songplays.start_time),
- `reconcile_records` for each staging table: raw records read = rows staged + rows rejected,
  file by file (blocking),
- `reconcile_nextsong_events` for songplays: each day's plays equal the NextSong events staged
  for that day (blocking),
- `lake_inventory` for each staging table: every object under its lake folder is loaded; the
  summary names the first objects rejected as whole files or ignored (not blocking, a warning).
  It reads the lake as well as the warehouse, so it stays an `@asset_check` of its own (a step
  after its asset), like the checks before issue 18.

The checks are declared on their asset (`check_specs`, so the UI lists them next to it) and run
inside the asset's step, on its open transaction, after the writes and before the commit
(`audit`): a failing blocking check raises `AuditFailed`, which rolls the transaction back, so
the table keeps exactly what it held; the step then reports every check result and fails with
the first failure's sentence (`publish`). Asked for without their asset (the UI's "Execute
checks", `dagster asset check`, a job selecting only checks), the same step only audits the
tables as they are (`audit_only`).

A run that writes some days of a partitioned table audits those days (and for a key, those
days' rows against the whole table); `time`, refreshed by difference, audits the start_times of
the run's plays, and `covers_songplays_start_time` the run's plays; a check that needs only what the step already counted
(`has_rows`, the records `reconcile_records` reports) costs no query.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset_check,
)

from sparkify_assets.metadata import markdown_table
from sparkify_assets.parsing import WHOLE_FILE_LINE
from sparkify_assets.partitions import date_filter, partition_dates
from sparkify_assets.resources.lake import LakeResource
from sparkify_assets.resources.warehouse import POOL, Session, WarehouseResource
from sparkify_assets.tables import (
    SONGPLAYS,
    STAGING_EVENTS,
    STAGING_FILES,
    STAGING_REJECTS,
    STAGING_SONGS,
    STAR_TABLES,
    TIME,
    Reference,
    Table,
)

SAMPLE = 5


@dataclass(frozen=True)
class Scope:
    """What an audit covers and what the step already counted.

    `days`: the days a run wrote on a partitioned table (None: the whole table). `table_rows`:
    the table's rows after the writes. `file_totals`: files, records_read and rows_rejected of
    the files the run staged, when they are exactly the files the audit covers.
    """

    days: tuple[date, date] | None = None
    table_rows: int | None = None
    file_totals: dict[str, int] | None = None

    def where(self, table: Table, alias: str = "") -> str:
        """The rows the run wrote: its days of a partitioned table; of `time`, the start_times of
        the run's plays (time is refreshed by difference from songplays); else the whole table."""
        if table.partition_column and self.days:
            return date_filter(f"{alias}{table.partition_column}", *self.days)
        if table.name == TIME.name and self.days:
            plays = date_filter("source_date", *self.days)
            return f"{alias}start_time IN (SELECT start_time FROM {SONGPLAYS.name} WHERE {plays})"
        return "TRUE"


def run_scope(context: AssetExecutionContext, **counted) -> Scope:
    """The run's days when it has a partition or a range of them (a sensor's run for one day has
    a partition key and no range; a check run alone usually has neither)."""
    partitioned = context.has_partition_key_range or context.has_partition_key
    days = partition_dates(context) if partitioned else None
    return Scope(days=days, **counted)


# --- The SQL of each check: a SELECT of the failing rows (empty when the check passes) ---------


def unique_sql(table: Table, where: str = "TRUE") -> str:
    """Keys held more than once. With a run's `where`, only its rows' keys, counted over the
    whole table (a day's row may collide with one of another day)."""
    key = ", ".join(table.primary_key)
    if where == "TRUE":
        return f"SELECT {key}, COUNT(*) AS n FROM {table.name} GROUP BY {key} HAVING COUNT(*) > 1"
    (column,) = table.primary_key  # partitioned tables have a one-column key (songplays)
    return (
        f"SELECT {key}, COUNT(*) AS n FROM {table.name} "
        f"WHERE {column} IN (SELECT {column} FROM {table.name} WHERE {where}) "
        f"GROUP BY {key} HAVING COUNT(*) > 1"
    )


def not_null_sql(table: Table, where: str = "TRUE") -> str:
    cond = " OR ".join(f"{c} IS NULL" for c in table.primary_key)
    if where != "TRUE":
        cond = f"({cond}) AND {where}"
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
    """Every check's SQL, whole table and one run's days, for the dialect tests."""
    day = date_filter("source_date", date(2018, 11, 2), date(2018, 11, 2))
    sqls = [reconcile_nextsong_sql(), reconcile_nextsong_sql(day)]
    sqls += [reconcile_records_sql(t) for t in (STAGING_EVENTS, STAGING_SONGS)]
    sqls += [whole_file_rejects_sql(t) for t in (STAGING_EVENTS, STAGING_SONGS)]
    for table in STAR_TABLES:
        sqls += [unique_sql(table), not_null_sql(table)]
        sqls += [relationship_sql(table, ref) for ref in table.references]
    sqls += [unique_sql(SONGPLAYS, day), not_null_sql(SONGPLAYS, day)]
    days = Scope(days=(date(2018, 11, 2), date(2018, 11, 2)))
    sqls += [
        unique_sql(TIME, days.where(TIME)),
        relationship_sql(SONGPLAYS, SONGPLAYS.references[1], days.where(SONGPLAYS, "c.")),
    ]
    return sqls


# --- Evaluating one check on an open transaction --------------------------------------------


def failing_rows(tx: Session, sql: str, **meta) -> AssetCheckResult:
    """Run a failing-rows query: the check passes when it returns none. Its metadata counts them
    and shows the first few; its description names the first in words, so the run log and
    `sparkify run` say what failed, not only that."""
    count = tx.scalar(f"SELECT COUNT(*) FROM ({sql}) failing")
    sample = tx.query(f"SELECT * FROM ({sql}) failing LIMIT {SAMPLE}") if count else []
    columns = tx.columns() if sample else []
    metadata = {"failing_rows": count, **meta}
    description = None
    if sample:
        metadata["failing_sample"] = MetadataValue.md(markdown_table(columns, sample))
        description = f"{count} failing row(s), first: " + ", ".join(
            f"{c}={v}" for c, v in zip(columns, sample[0], strict=True)
        )
    return AssetCheckResult(passed=count == 0, metadata=metadata, description=description)


Evaluate = Callable[[Session, Scope], AssetCheckResult]


@dataclass(frozen=True)
class Check:
    """One check: what the UI shows (`spec`) and how it is evaluated in the asset's transaction."""

    spec: AssetCheckSpec
    evaluate: Evaluate = field(compare=False)

    @property
    def name(self) -> str:
        return self.spec.name


def _spec(asset: str, name: str, description: str, blocking: bool, deps: tuple[str, ...] = ()):
    return AssetCheckSpec(
        name=name, asset=asset, description=description, blocking=blocking, additional_deps=list(deps)
    )


def key_check(table: Table, rule: str) -> Check:
    """dbt's `unique` or `not_null` on the table's primary key; blocking."""
    key = ", ".join(table.primary_key)
    sql, description = {
        "unique": (unique_sql, f"{key} is unique in {table.name}"),
        "not_null": (not_null_sql, f"{key} is never NULL in {table.name}"),
    }[rule]
    name = f"{rule}_{'_'.join(table.primary_key)}"

    def evaluate(tx: Session, scope: Scope) -> AssetCheckResult:
        # A NULL key is in no run's set of keys: a table scoped by key (time) checks NULLs whole.
        scoped = rule == "unique" or table.partition_column
        return failing_rows(tx, sql(table, scope.where(table) if scoped else "TRUE"))

    return Check(_spec(table.name, name, description, True), evaluate)


def has_rows_check(table: Table) -> Check:
    def evaluate(tx: Session, scope: Scope) -> AssetCheckResult:
        rows = scope.table_rows
        if rows is None:
            rows = int(tx.scalar(f"SELECT COUNT(*) FROM {table.name}") or 0)
        return AssetCheckResult(
            passed=rows > 0,
            metadata={"rows": rows},
            description=None if rows else f"{table.name} has no rows",
        )

    return Check(_spec(table.name, "has_rows", f"{table.name} is not empty", True), evaluate)


def relationship_check(table: Table, ref: Reference) -> Check:
    # On the referencing table, built after the referenced dimension; or on the referenced table
    # when that one is built from this one (time from songplays). Either way a run checks its own
    # days' rows (time adds what any day's plays lack, so those are what a run changed).
    if ref.built_from_here:
        asset, name, upstream = ref.table, f"covers_{table.name}_{ref.column}", table.name
    else:
        asset, name, upstream = table.name, f"relationships_{ref.column}__{ref.table}", ref.table

    def evaluate(tx: Session, scope: Scope) -> AssetCheckResult:
        return failing_rows(tx, relationship_sql(table, ref, scope.where(table, "c.")))

    description = f"every non-NULL {table.name}.{ref.column} exists in {ref.table}.{ref.to_column}"
    return Check(_spec(asset, name, description, True, (upstream,)), evaluate)


def reconcile_records_check(table: Table) -> Check:
    """Raw records read (as the loader counted them) = rows in the table + rejects, per file."""

    def evaluate(tx: Session, scope: Scope) -> AssetCheckResult:
        where = scope.where(table, "f.")
        totals = scope.file_totals
        if totals is None:
            files, read, rejected = tx.query(
                f"SELECT COUNT(*), SUM(records_read), SUM(rows_rejected) FROM {STAGING_FILES.name} f "
                f"WHERE target_table = '{table.name}' AND {where}"
            )[0]
            totals = {"files": files, "records_read": read, "rows_rejected": rejected}
        counts = {k: int(totals[k] or 0) for k in ("files", "records_read", "rows_rejected")}
        return failing_rows(tx, reconcile_records_sql(table, where), **counts)

    description = f"for every file, records read = rows in {table.name} + rows in staging_rejects"
    return Check(_spec(table.name, "reconcile_records", description, True), evaluate)


RECONCILE_NEXTSONG = Check(
    _spec(
        SONGPLAYS.name,
        "reconcile_nextsong_events",
        "for each day, the songplays rows equal the NextSong events staged for that day",
        True,
    ),
    lambda tx, scope: failing_rows(tx, reconcile_nextsong_sql(scope.where(SONGPLAYS))),
)


def _core_checks() -> dict[str, list[Check]]:
    by_asset: dict[str, list[Check]] = {}
    for table in (STAGING_EVENTS, STAGING_SONGS):
        by_asset[table.name] = [has_rows_check(table), reconcile_records_check(table)]
    for table in STAR_TABLES:
        by_asset.setdefault(table.name, [])
        by_asset[table.name] += [
            key_check(table, "unique"),
            key_check(table, "not_null"),
            has_rows_check(table),
        ]
    for table in STAR_TABLES:
        for ref in table.references:
            check = relationship_check(table, ref)
            by_asset[check.spec.asset_key.to_user_string()].append(check)
    by_asset[SONGPLAYS.name].append(RECONCILE_NEXTSONG)
    return by_asset


CHECKS: dict[str, list[Check]] = _core_checks()


def check_specs(checks: list[Check]) -> list[AssetCheckSpec]:
    return [c.spec for c in checks]


# --- Write, audit, publish ------------------------------------------------------------------


class AuditFailed(Exception):
    """A blocking check failed inside the asset's transaction: raised there, it rolls it back."""

    def __init__(self, asset: str, results: list[AssetCheckResult], failed: list[AssetCheckResult]):
        self.asset, self.results, self.failed = asset, results, failed
        super().__init__(self.reason())

    def reason(self) -> str:
        first = self.failed[0]
        more = f" (and {len(self.failed) - 1} more blocking check(s))" if len(self.failed) > 1 else ""
        what = f": {first.description}" if first.description else ""
        return (
            f"Check {self.asset} {first.check_name} failed{what}{more}. Nothing was committed: "
            f"{self.asset} keeps what it held before this run."
        )

    def failure(self) -> Failure:
        return Failure(description=self.reason(), metadata=dict(self.failed[0].metadata or {}))


def selected_checks(context: AssetExecutionContext, asset: str, checks: list[Check]) -> list[Check]:
    """The asset's checks this run asked for (a job may select an asset without some checks)."""
    selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == AssetKey(asset)}
    return [c for c in checks if c.name in selected]


def evaluate(
    tx: Session, asset: str, checks: list[Check], scope: Scope, blocking: bool = True
) -> list[AssetCheckResult]:
    """Run the checks on the open transaction. With `blocking`, a failing blocking check raises
    AuditFailed (so the transaction rolls back) once all of them have run."""
    results = []
    for check in checks:
        got = check.evaluate(tx, scope)
        results.append(
            AssetCheckResult(
                asset_key=asset,
                check_name=check.name,
                passed=got.passed,
                metadata=got.metadata,
                description=got.description,
                severity=got.severity,
            )
        )
    failed = [
        r
        for r, c in zip(results, checks, strict=True)
        if c.spec.blocking and not r.passed and r.severity == AssetCheckSeverity.ERROR
    ]
    if blocking and failed:
        raise AuditFailed(asset, results, failed)
    return results


def audit(
    context: AssetExecutionContext, tx: Session, asset: str, scope: Scope, checks: list[Check] | None = None
) -> list[AssetCheckResult]:
    """The asset's selected checks, inside its transaction before the commit."""
    chosen = selected_checks(context, asset, CHECKS[asset] if checks is None else checks)
    return evaluate(tx, asset, chosen, scope)


def publish(step: Callable[[], MaterializeResult]) -> Iterator[AssetCheckResult | MaterializeResult]:
    """Run the asset's step; when its audit failed, report every check result (the UI shows them
    failed, with their metadata), publish no materialization and fail with the first failure's
    sentence. The step's transaction was already rolled back."""
    try:
        result = step()
    except AuditFailed as failed:
        yield from failed.results
        raise failed.failure() from None
    yield result


def checks_only(context: AssetExecutionContext) -> bool:
    """The run asked for this asset's checks, not for the asset."""
    return not context.selected_asset_keys


def audit_only(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    asset: str,
    checks: list[Check] | None = None,
) -> Iterator[AssetCheckResult]:
    """The selected checks alone, on the warehouse as it is: nothing is written, and a failing
    check is reported (a blocking one fails the step, as Dagster does for any blocking check)."""
    chosen = selected_checks(context, asset, CHECKS[asset] if checks is None else checks)
    scope = run_scope(context)
    yield from warehouse.open().run(lambda tx: evaluate(tx, asset, chosen, scope, blocking=False))


def audit_or_publish(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    asset: str,
    step: Callable[[], MaterializeResult],
    checks: list[Check] | None = None,
) -> Iterator[AssetCheckResult | MaterializeResult]:
    """An asset's body: asked only for its checks, audit the table as it is (`audit_only`);
    otherwise run its step, audited before commit, and publish it (`publish`)."""
    if checks_only(context):
        yield from audit_only(context, warehouse, asset, checks)
    else:
        yield from publish(step)


# --- The lake inventory: a check of its own ------------------------------------------------


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


def build_checks() -> list[AssetChecksDefinition]:
    """The checks defined apart from their asset (each a step of its own): the lake inventories."""
    return [
        lake_inventory_check(STAGING_EVENTS, "log_data"),
        lake_inventory_check(STAGING_SONGS, "song_data"),
    ]
