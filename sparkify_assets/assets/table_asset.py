"""The multi_asset of one warehouse table built by the project's own steps (staging, star)."""

from dagster import AssetDep, AssetKey, AssetSpec, BackfillPolicy, multi_asset

from sparkify_assets.checks import CHECKS, POOL, check_specs
from sparkify_assets.metadata import ENGINEERING_OWNERS, definition_metadata
from sparkify_assets.tables import Table


def table_asset(
    table: Table,
    *,
    group: str,
    tags: dict[str, str],
    deps: list[AssetKey | AssetDep],
    kinds: set[str],
    metadata: dict | None = None,
    **kwargs,
):
    """A one-asset multi_asset for `table` with its checks (`can_subset` lets the checks run
    without it), one run per backfill, in the warehouse's pool."""
    return multi_asset(
        name=table.name,
        specs=[
            AssetSpec(
                table.name,
                description=table.description,
                group_name=group,
                owners=ENGINEERING_OWNERS,
                tags=tags,
                deps=deps,
                kinds=kinds,
                metadata={**definition_metadata(table), **(metadata or {})},
            )
        ],
        check_specs=check_specs(CHECKS[table.name]),
        can_subset=True,
        backfill_policy=BackfillPolicy.single_run(),
        pool=POOL,
        **kwargs,
    )
