"""The code location's one Definitions object: assets, checks, resources, jobs and sensors."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    Definitions,
    define_asset_job,
    in_process_executor,
    with_source_code_references,
)

from sparkify_assets import config
from sparkify_assets.assets.analytics import ANALYTICS_ASSETS
from sparkify_assets.assets.lake import LAKE_ASSETS
from sparkify_assets.assets.staging import staging_events, staging_songs
from sparkify_assets.assets.star import artists, songplays, songs, time_dimension, users
from sparkify_assets.checks import build_checks
from sparkify_assets.freshness import lateness_sensor, log_on_time
from sparkify_assets.infra.jobs import INFRA_JOBS, INFRA_RESOURCES
from sparkify_assets.partitions import partitions_for_lake
from sparkify_assets.resources.lake import LakeResource
from sparkify_assets.resources.warehouse import WarehouseResource
from sparkify_assets.sensors import LAKE_UPDATES_SELECTION, SENSOR_JOBS, SENSORS
from sparkify_assets.storage import label_assets

# Asset definitions, as declared (unpartitioned): staging and the star schema, and with the
# analytics every asset that writes the warehouse (what `sparkify run` counts, runner.py, and the
# planners' selections resolve against, sensors.py).
CORE_ASSET_DEFS = [staging_events, staging_songs, songplays, users, songs, artists, time_dimension]
WAREHOUSE_ASSET_DEFS = [*CORE_ASSET_DEFS, *ANALYTICS_ASSETS]
DAILY_ASSETS = {"staging_events", "songplays"}
LOAD_JOB = "load_warehouse"
AUDIT_JOB = "audit_warehouse"


def with_lake_partitions(lake: LakeResource) -> list:
    """The core assets, the daily ones partitioned by the lake's own days (partitions.py)."""
    partitions = partitions_for_lake(lake)
    return [
        a.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions))
        if a.key.to_user_string() in DAILY_ASSETS
        else a
        for a in CORE_ASSET_DEFS
    ]


def build_defs(warehouse: WarehouseResource, lake: LakeResource) -> Definitions:
    """Definitions for one warehouse and lake; `defs` below reads them from the environment."""
    load_warehouse = define_asset_job(
        LOAD_JOB,
        # The sensors' selection: everything downstream of the two staging assets (sensors.py).
        # Lateness says nothing about a load's data: `sparkify run` leaves it to lateness_sensor.
        selection=LAKE_UPDATES_SELECTION - AssetSelection.checks(log_on_time),
        description="Stage the lake, build the star schema and the analytics tables; each asset's "
        "checks run in its own step, before it commits (14 asset steps and the 2 lake inventories).",
    )
    # Every check and no asset: each asset's step, asked only for its checks, reads the warehouse
    # as it is and writes nothing (`dagster job execute -j audit_warehouse`).
    audit_warehouse = define_asset_job(
        AUDIT_JOB,
        selection=AssetSelection.all_asset_checks(),
        description="Run every asset check on the warehouse as it is, without materializing anything.",
    )
    return Definitions(
        # Kinds, table names and the lake's URI from these resources; each asset links its
        # Python definition (its SQL file is linked in its metadata already). The daily assets
        # are partitioned by the lake's own days (partitions.py). Every check is
        # declared on its asset (check_specs) and runs in the asset's step.
        assets=with_source_code_references(
            label_assets([*LAKE_ASSETS, *with_lake_partitions(lake), *ANALYTICS_ASSETS], warehouse, lake)
        ),
        # The lake inventories read the lake as well: checks of their own, a step after their asset.
        asset_checks=[*build_checks(), log_on_time],
        jobs=[load_warehouse, audit_warehouse, *SENSOR_JOBS, *INFRA_JOBS],
        sensors=[*SENSORS, lateness_sensor],
        resources={"warehouse": warehouse, "lake": lake, **INFRA_RESOURCES},
        # DuckDB allows one writer: steps run one after another in the run's process.
        executor=in_process_executor,
    )


defs = build_defs(config.warehouse_resource(), config.lake_resource())
