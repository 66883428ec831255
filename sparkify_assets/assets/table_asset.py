"""The multi_asset of one warehouse table built by the project's own steps (staging, star,
analytics): its spec from the table's declaration, and the one-asset multi_asset around it."""

from dagster import AssetCheckSpec, AssetDep, AssetKey, AssetSpec, BackfillPolicy, multi_asset

from sparkify_assets.checks import POOL
from sparkify_assets.metadata import ENGINEERING_OWNERS, definition_metadata
from sparkify_assets.tables import Table


def table_spec(
    table: Table,
    *,
    group: str,
    tags: dict[str, str],
    deps: list[AssetKey | AssetDep],
    kinds: set[str],
    metadata: dict | None = None,
) -> AssetSpec:
    """The asset spec of `table`: its description and definition metadata from the declaration."""
    return AssetSpec(
        table.name,
        description=table.description,
        group_name=group,
        owners=ENGINEERING_OWNERS,
        tags=tags,
        deps=deps,
        kinds=kinds,
        metadata={**definition_metadata(table), **(metadata or {})},
    )


def single_asset(spec: AssetSpec, checks: list[AssetCheckSpec], **kwargs):
    """A one-asset multi_asset with its checks (`can_subset` lets the checks run without it), one
    run per backfill, in the warehouse's pool."""
    return multi_asset(
        name=spec.key.to_user_string(),
        specs=[spec],
        check_specs=checks,
        can_subset=True,
        backfill_policy=BackfillPolicy.single_run(),
        pool=POOL,
        **kwargs,
    )
