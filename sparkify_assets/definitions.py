"""The code location's one Definitions object: assets, checks, resources, jobs and sensors."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from sparkify_assets import config
from sparkify_assets.assets.staging import staging_events, staging_songs
from sparkify_assets.assets.star import artists, songplays, songs, time, users
from sparkify_assets.checks import build_checks

ASSETS = [staging_events, staging_songs, songplays, users, songs, artists, time]

load_warehouse = define_asset_job(
    "load_warehouse",
    selection=AssetSelection.assets(*ASSETS),
    description="Stage the lake and build the star schema (every asset, with its checks).",
)

defs = Definitions(
    assets=ASSETS,
    asset_checks=build_checks(),
    jobs=[load_warehouse],
    resources={"warehouse": config.warehouse_resource(), "lake": config.lake_resource()},
    # DuckDB allows one writer: steps run one after another in the run's process.
    executor=in_process_executor,
)
