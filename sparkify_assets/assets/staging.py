"""Staging assets: the lake's raw JSON, parsed and loaded as it is (plus lineage columns).

Each run replaces exactly what it loads (a partition's days, or the whole song catalog) in one
transaction, so a failed run leaves the warehouse as it was, and a re-run gives the same rows.
Records that cannot be staged go to `staging_rejects` with their reason, and every file's counts
to `staging_files`, which the reconciliation checks compare with what was actually staged.

Every object of the lake is accounted for (`Lake.inventory`): an object that is not a loadable
file (a stray or misplaced name, a named pipe, a broken link) is a whole-file reject (line 0), and
ignored objects (hidden, README-like) are counted and named in the metadata. Objects under
log_data/ that are not a day's log file belong to no partition (source_date NULL): every
staging_events run restates them from a listing of the whole of log_data/.
"""

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
)

from sparkify_assets import progress, redshift
from sparkify_assets.assets.lake import LOG_DATA, SONG_DATA
from sparkify_assets.assets.table_asset import single_asset, table_spec
from sparkify_assets.checks import (
    CHECKS,
    audit,
    audit_or_publish,
    check_specs,
    run_scope,
    whole_file_rejects_sql,
)
from sparkify_assets.dialect import batches, placeholders
from sparkify_assets.env_settings import parse_workers
from sparkify_assets.failures import one_line_failure
from sparkify_assets.lake_versions import LAKE_VERSION, day_versions
from sparkify_assets.metadata import (
    layer_tags,
    markdown_table,
    materialization_metadata,
    partition_row_counts,
    report_partition_rows,
)
from sparkify_assets.parsing import PARALLEL_MIN_BYTES, StreamTotals, parse_stream
from sparkify_assets.partitions import DAILY, date_filter, partition_dates
from sparkify_assets.resources.lake import Inventory, Lake, LakeError, LakeFile, LakeResource
from sparkify_assets.resources.warehouse import Session, WarehouseResource
from sparkify_assets.tables import (
    ALL_TABLES,
    STAGING_EVENTS,
    STAGING_FILES,
    STAGING_REJECTS,
    STAGING_SONGS,
    Table,
)
from sparkify_assets.worker_lifetime import die_with_parent

REJECT_SAMPLE = 10
INVENTORY_SAMPLE = 10

# The warehouse's and the lake's kinds are added by build_defs, from the resources in use.
KINDS = {"python"}


def _workers() -> int:
    """Parser processes: SPARKIFY_PARSE_WORKERS, else one per core (at most 2: the main process
    reads files and inserts into the warehouse meanwhile); validated in env_settings."""
    return parse_workers()


@contextmanager
def _parse_pool(table: Table, files: list[LakeFile]) -> Iterator[tuple[ProcessPoolExecutor | None, int]]:
    """A process pool when the log files are big enough to repay starting one (spawned, not
    forked: the parent holds a DuckDB connection and its threads). Never for song files: pickling
    thousands of tiny files to a worker and their rows back costs more than parsing them here
    (300k files: 77 s wall with two workers, 11 s without; benchmarks/README.md)."""
    workers = _workers()
    if workers < 2 or table is not STAGING_EVENTS or sum(f.size for f in files) < PARALLEL_MIN_BYTES:
        yield None, 1
        return
    # Workers die with this process, whatever kills it (worker_lifetime).
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        yield pool, workers


def stage_files(tx: Session, lake: Lake, table: Table, files: Iterable[LakeFile]) -> dict[str, int]:
    """Parse lake files and bulk-load their rows, rejects and file counts; return the totals.
    Files stream through in segments of a few MiB, so memory follows the segment, not the lake."""
    files = list(files)
    totals = StreamTotals()
    reads = progress.track(f"staging {table.name}", lake.read_many(files), sum(f.size for f in files))
    with _parse_pool(table, [f for f in files if f.reject is None]) as (pool, workers):
        for target, rows in parse_stream(table, reads, totals, pool, workers):
            tx.append(target, rows)
    return dict(totals)


def _copy_settings(warehouse: WarehouseResource, lake: Lake) -> redshift.CopySettings:
    """Redshift reads S3 itself: it needs the role, the region and the logs' JSONPaths file."""
    return redshift.CopySettings(
        iam_role=warehouse.iam_role or "",
        region=redshift.copy_region(lake, warehouse.region),
        jsonpaths_url=redshift.ensure_jsonpaths(lake, warehouse.log_jsonpath),
    )


def _inventory_metadata(tx: Session, table: Table, inventory: Inventory | None, where: str) -> dict:
    """Counts and the first few of the objects not loaded: whole-file rejects and ignored objects."""
    # Undated whole-file rejects (objects under log_data/ that are no day's file) belong to every run.
    scope = f"({where} OR source_date IS NULL)" if table.partition_column else where
    rejected = tx.query(f"{whole_file_rejects_sql(table)} AND {scope} ORDER BY source_key")
    ignored = inventory.ignored if inventory else []
    meta: dict = {"objects_rejected": len(rejected), "objects_ignored": len(ignored)}
    named = sorted([(k, "rejected", r) for k, r in rejected] + [(k, "ignored", r) for k, r in ignored])
    if named:
        meta["objects_not_loaded"] = MetadataValue.md(
            markdown_table(["source_key", "outcome", "why"], named[:INVENTORY_SAMPLE])
        )
    return meta


def _load_metadata(
    tx: Session, table: Table, totals: dict[str, int], where: str, inventory: Inventory | None = None
) -> dict:
    meta = materialization_metadata(tx, table, totals["rows_staged"], where)
    meta.update({k: v for k, v in totals.items() if k != "rows_staged"})
    meta.update(_inventory_metadata(tx, table, inventory, where))
    rejects = tx.query(
        f"SELECT source_key, source_line, reason FROM {STAGING_REJECTS.name} "
        f"WHERE target_table = '{table.name}' AND {where} ORDER BY source_key, source_line LIMIT {REJECT_SAMPLE}"
    )
    if rejects:
        meta["rejects_sample"] = MetadataValue.md(
            markdown_table(["source_key", "source_line", "reason"], rejects)
        )
    return meta


def _restate_undated(tx: Session, dialect: str, lk: Lake, table: Table, inventory: Inventory) -> None:
    """The whole-file rejects that belong to no day (objects under log_data/ that are no day's
    file), replaced by those of the current listing."""
    for t in (STAGING_REJECTS, STAGING_FILES):
        tx.execute(f"DELETE FROM {t.name} WHERE target_table = '{table.name}' AND source_date IS NULL")
    if inventory.rejected and dialect == "redshift":
        redshift.insert_whole_file_rejects(tx, table, inventory.rejected)
    elif inventory.rejected:
        stage_files(tx, lk, table, inventory.rejected)


def replace_staging(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    lk: Lake,
    table: Table,
    files: list[LakeFile],
    scope: str,
    inventory: Inventory | None = None,
    days: tuple[date, date] | None = None,
) -> MaterializeResult:
    """Replace the rows of `table` (and its rejects and file counts) within `scope` by the
    contents of `files`, in one transaction, retried as a whole if the connection is lost.
    `inventory` (staging_events): the whole of log_data/, whose undated rejects are restated.
    `days` (first, last): each of the run's partitions gets its own row count, counted in the
    same transaction (no second connection).
    The table's checks audit it in that transaction: a failing blocking check rolls it all back."""
    wh = warehouse.open()

    def work(tx: Session) -> tuple[dict[str, int], dict, list, dict[str, int]]:
        tx.ensure(*ALL_TABLES)
        tx.execute(f"DELETE FROM {table.name} WHERE {scope}")
        for t in (STAGING_REJECTS, STAGING_FILES):
            tx.execute(f"DELETE FROM {t.name} WHERE target_table = '{table.name}' AND {scope}")
        if wh.dialect == "redshift":
            copy = redshift.copy_events if table is STAGING_EVENTS else redshift.copy_songs
            totals = copy(tx, lk, files, _copy_settings(warehouse, lk))
        else:
            totals = stage_files(tx, lk, table, files)
        if inventory is not None and table.partition_column:
            _restate_undated(tx, wh.dialect, lk, table, inventory)
        meta = _load_metadata(tx, table, totals, scope, inventory)
        # A day's files are the files the audit of those days covers: their counts need no query.
        # (Redshift stages song_data/ as one staging_files row, not one per file counted.)
        totals_audited = totals if table.partition_column else None
        counted = run_scope(context, table_rows=meta["table_rows"], file_totals=totals_audited)
        per_day = partition_row_counts(tx, table, *days) if days else {}
        return totals, meta, audit(context, tx, table.name, counted), per_day

    totals, meta, results, per_day = wh.run(work)
    if days:
        report_partition_rows(context, per_day)
    context.log.info(
        f"{table.name}: staged {totals['rows_staged']}, rejected {totals['rows_rejected']}, "
        f"from {totals['files']} files ({wh.describe()})"
    )
    return MaterializeResult(metadata=meta, check_results=results)


LoadStep = Callable[[AssetExecutionContext, WarehouseResource, LakeResource], MaterializeResult]


def _staging_asset(table: Table, source: str, lake_folder: AssetKey, **kwargs):
    """A staging table's asset (`single_asset`) whose body is the decorated load step, audited
    before commit (`audit_or_publish`)."""

    def decorate(step: LoadStep):
        @single_asset(
            table_spec(
                table, group="staging", tags=layer_tags("staging", source), deps=[lake_folder], kinds=KINDS
            ),
            check_specs(CHECKS[table.name]),
            **kwargs,
        )
        def _asset(
            context: AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
        ) -> Iterator:
            def load() -> MaterializeResult:
                with one_line_failure(table.name):
                    return step(context, warehouse, lake)

            yield from audit_or_publish(context, warehouse, table.name, load)

        return _asset

    return decorate


@_staging_asset(STAGING_EVENTS, "log_data", LOG_DATA, partitions_def=DAILY)
def staging_events(
    context: AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
) -> MaterializeResult:
    first, last = partition_dates(context)
    lk = lake.open()
    # The whole of log_data/, so that every object is accounted for (one listing per 1,000 keys on S3).
    inventory = lk.inventory("log_data")
    files = [f for f in inventory.loaded if first <= f.day <= last]
    if not inventory.loaded:
        raise LakeError(
            f"The lake {lk.url} holds no log files (log_data/YYYY/MM/YYYY-MM-DD-events.json)"
            + _not_loaded_hint(inventory)
        )
    context.log.info(f"Staging {len(files)} log files for {first} to {last} from {lk.url}")
    _log_not_loaded(context, "log_data", inventory)
    result = replace_staging(
        context,
        warehouse,
        lk,
        STAGING_EVENTS,
        files,
        date_filter("source_date", first, last),
        inventory,
        # One run may load many days: each day's materialization gets its own row count.
        days=(first, last),
    )
    # The file version each day was loaded from: what the log sensor compares the lake with.
    for key, version in day_versions(files, context.partition_keys).items():
        context.add_asset_metadata({LAKE_VERSION: version}, partition_key=key)
    return result


@_staging_asset(STAGING_SONGS, "song_data", SONG_DATA)
def staging_songs(
    context: AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
) -> MaterializeResult:
    lk = lake.open()
    inventory = lk.inventory("song_data")
    if not inventory.loaded:
        lk.check()
        raise LakeError(
            f"The lake {lk.url} holds no song files (song_data/**/*.json)" + _not_loaded_hint(inventory)
        )
    _log_not_loaded(context, "song_data", inventory)
    # Rejected objects are staged as whole-file rejects, with a staging_files row like any file.
    files = sorted(inventory.loaded + inventory.rejected, key=lambda f: f.key)
    if warehouse.open().dialect == "redshift":
        # One COPY reads song_data/ whole (redshift.copy_songs): no per-file restaging there.
        context.log.info(f"Staging {len(files)} song files from {lk.url}")
        return replace_staging(context, warehouse, lk, STAGING_SONGS, files, "TRUE", inventory)
    return restage_changed_songs(context, warehouse, lk, files, inventory)


def _not_loaded_hint(inventory: Inventory) -> str:
    named = inventory.named(3)
    if not named:
        return "."
    shown = "; ".join(f"{key} ({why})" for key, _, why in named)
    return f"; not loaded: {shown}."


def _log_not_loaded(context: AssetExecutionContext, area: str, inventory: Inventory) -> None:
    """One warning naming the first objects of the area that are not loaded."""
    if inventory.rejected or inventory.ignored:
        shown = "; ".join(f"{key}: {outcome}, {why}" for key, outcome, why in inventory.named(5))
        context.log.warning(
            f"{area}/: {len(inventory.rejected)} object(s) rejected as whole files and "
            f"{len(inventory.ignored)} ignored; first: {shown}"
        )


# Above STALE_SHARE of the loaded files, a full restage (DELETE … IN (…) per dialect.BATCH keys else).
STALE_SHARE = 0.5


@dataclass
class SongChanges:
    """The lake's song files against the staging_files rows of staging_songs."""

    added: list[LakeFile]
    changed: list[LakeFile]
    removed: list[str]
    unchanged: int
    full: bool  # restage the whole catalog (first load, bookkeeping out of step, most files stale)

    @property
    def to_stage(self) -> list[LakeFile]:
        return sorted(self.added + self.changed, key=lambda f: f.key)

    @property
    def stale_keys(self) -> list[str]:
        return sorted([f.key for f in self.changed] + self.removed)


def song_changes(tx: Session, files: list[LakeFile]) -> SongChanges:
    """Compare (key, version) of the lake's song files with what staging_files says was loaded.
    A file without a version (or loaded without one) counts as changed. When the staged rows or
    rejects do not add up to the file rows (a table loaded some other way, e.g. by Redshift's
    COPY), the catalog is restaged whole."""
    name = STAGING_SONGS.name
    loaded = dict(
        tx.query(f"SELECT source_key, version FROM {STAGING_FILES.name} WHERE target_table = '{name}'")
    )
    in_lake = {f.key for f in files}
    added = [f for f in files if f.key not in loaded]
    changed = [f for f in files if f.key in loaded and (not f.version or loaded[f.key] != f.version)]
    removed = sorted(k for k in loaded if k not in in_lake)
    unchanged = len(files) - len(added) - len(changed)
    consistent = tx.scalar(
        f"SELECT (SELECT COUNT(*) FROM {name}) = (SELECT COALESCE(SUM(rows_staged), 0) FROM {STAGING_FILES.name} "
        f"WHERE target_table = '{name}') AND (SELECT COUNT(*) FROM {STAGING_REJECTS.name} WHERE target_table = "
        f"'{name}') = (SELECT COALESCE(SUM(rows_rejected), 0) FROM {STAGING_FILES.name} WHERE target_table = '{name}')"
    )
    stale = len(changed) + len(removed)
    full = not loaded or not consistent or stale > STALE_SHARE * len(loaded)
    return SongChanges(added, changed, removed, unchanged, full)


def _drop_stale_songs(tx: Session, changes: SongChanges, files: list[LakeFile]) -> list[LakeFile]:
    """Delete the rows, rejects and file rows the restage replaces (all of them for a full
    restage, else those of removed or changed files); return the files to parse."""
    table = STAGING_SONGS
    if changes.full:
        tx.execute(f"DELETE FROM {table.name}")
        for t in (STAGING_REJECTS, STAGING_FILES):
            tx.execute(f"DELETE FROM {t.name} WHERE target_table = '{table.name}'")
        return files
    stale = changes.stale_keys
    for chunk in batches(stale):
        keys = placeholders(chunk)
        tx.execute(f"DELETE FROM {table.name} WHERE source_key IN ({keys})", chunk)
        for t in (STAGING_REJECTS, STAGING_FILES):
            tx.execute(
                f"DELETE FROM {t.name} WHERE target_table = '{table.name}' AND source_key IN ({keys})",
                chunk,
            )
    return changes.to_stage


def restage_changed_songs(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    lk: Lake,
    files: list[LakeFile],
    inventory: Inventory | None = None,
) -> MaterializeResult:
    """staging_songs from the song files that changed since the last load: in one transaction,
    the rows, rejects and file rows of removed or changed files go, and only added or changed
    files are parsed. Unchanged files keep their rows, so the table equals a full load of the
    lake as it is now; with nothing changed, nothing is staged."""
    wh = warehouse.open()
    table = STAGING_SONGS

    def work(tx: Session) -> tuple[SongChanges, dict[str, int], dict, list]:
        tx.ensure(*ALL_TABLES)
        changes = song_changes(tx, files)
        stage = _drop_stale_songs(tx, changes, files)
        totals = stage_files(tx, lk, table, stage) if stage else dict(StreamTotals())
        meta = _load_metadata(tx, table, totals, "TRUE", inventory)
        # The asset's row count is the whole table; rows_staged is what this run parsed.
        meta["dagster/row_count"] = meta["table_rows"]
        meta["rows_staged"] = totals["rows_staged"]
        meta.update(
            restage="full" if changes.full else "incremental",
            files_unchanged=changes.unchanged,
            files_added=len(changes.added),
            files_changed=len(changes.changed),
            files_removed=len(changes.removed),
        )
        # The audit covers every file, not only those staged now: records read are queried.
        results = audit(context, tx, table.name, run_scope(context, table_rows=meta["table_rows"]))
        return changes, totals, meta, results

    changes, totals, meta, results = wh.run(work)
    context.log.info(
        f"staging_songs ({meta['restage']}): {len(files)} song files in {lk.url}, "
        f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed, "
        f"{changes.unchanged} unchanged; staged {totals['rows_staged']}, rejected "
        f"{totals['rows_rejected']} from {totals['files']} files ({wh.describe()})"
    )
    return MaterializeResult(metadata=meta, check_results=results)
