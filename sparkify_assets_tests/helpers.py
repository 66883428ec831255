"""Small helpers shared by the tests: run the pipeline on a given warehouse and lake, read tables."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from dagster import (
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    define_asset_job,
)

from sparkify_assets.definitions import build_defs
from sparkify_assets.resources.lake import LakeResource
from sparkify_assets.resources.warehouse import WarehouseResource, open_warehouse
from sparkify_assets.runner import failures, run_load
from sparkify_assets.tables import TABLES

# The conftest fixture that gives a fresh warehouse URL on each backend.
WAREHOUSE_FIXTURES = {"duckdb": "duckdb_url", "postgres": "pg_url"}


def make_defs(warehouse_url: str, lake_url: str = "", password: str | None = None) -> Definitions:
    return build_defs(WarehouseResource(url=warehouse_url, password=password), LakeResource(url=lake_url))


def load(
    warehouse_url: str,
    lake_url: str = "",
    first: date | None = None,
    last: date | None = None,
    expect_success: bool = True,
) -> ExecuteInProcessResult:
    result = run_load(make_defs(warehouse_url, lake_url), first, last)
    if expect_success:
        assert result.success, failures(result)
    return result


def rows(warehouse_url: str, table: str, columns: list[str] | None = None) -> list[tuple]:
    """All rows of a table's contract columns, sorted, with floats and times normalized."""
    cols = columns or TABLES[table].contract_columns
    got = open_warehouse(warehouse_url).query(f"SELECT {', '.join(cols)} FROM {table}")
    return sorted((tuple(_norm(v) for v in row) for row in got), key=repr)


def _norm(value):
    if isinstance(value, float):
        return round(value, 9)
    if hasattr(value, "quantize"):  # Decimal from PostgreSQL
        return round(float(value), 9)
    return value


def count(warehouse_url: str, table: str, where: str = "TRUE") -> int:
    return open_warehouse(warehouse_url).query(f"SELECT COUNT(*) FROM {table} WHERE {where}")[0][0]


def check_results(result: ExecuteInProcessResult) -> dict[str, bool]:
    """{'asset:check_name': passed} for every check evaluated in a run."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            out[f"{ev.asset_key.to_user_string()}:{ev.check_name}"] = ev.passed
    return out


def check_evaluations(result: ExecuteInProcessResult) -> dict[str, dict]:
    """{'asset:check_name': {'passed': bool, **metadata values}} for every check of a run."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            meta = {k: getattr(v, "value", v) for k, v in ev.metadata.items()}
            out[f"{ev.asset_key.to_user_string()}:{ev.check_name}"] = {"passed": ev.passed, **meta}
    return out


def run_checks(warehouse_url: str, *assets: str, lake_url: str = "") -> ExecuteInProcessResult:
    """Evaluate the checks of `assets` alone (no asset is materialized) against the warehouse as
    it is now, e.g. after a test changed it behind the pipeline's back."""
    defs = make_defs(warehouse_url, lake_url)
    job = define_asset_job("checks_only", selection=AssetSelection.checks_for_assets(*assets))
    only_checks = Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources, jobs=[job]
    )
    return only_checks.resolve_job_def("checks_only").execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False
    )


def put(lake: Path, key: str, body: bytes | str) -> None:
    """Write a lake file so that its version (mtime and size) surely changes."""
    path = lake / key
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000_000))
