"""The daily partitions of the event tables: one per log file date in the lake.

The partitions are the lake's days, read once when the Definitions load (one listing of
`log_data/`: about 0.1 s on a three-year S3 lake, see docs/sensors.md): a daily partitions
definition from the first to the last log day, with the days in between that have no file
excluded. So the UI shows exactly the days that hold data, a range such as
`--partition-range 2018-11-01...2018-11-30` works on a fresh instance (no partition has to be
registered first, as dynamic partitions would need), and a single-run backfill over the range
keeps `BackfillPolicy.single_run()` semantics. On a live lake (a file within the last week) the
partitions are open-ended instead, so a new day is a partition as soon as it is over; on an
archive lake a day whose file arrives later becomes a partition when the code location reloads,
and the log sensor says so until then.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    AssetKey,
    DailyPartitionsDefinition,
    Definitions,
    PartitionsDefinition,
    build_resources,
)

FIRST_DAY = "2018-11-01"
# Used while the lake cannot be read at definition load (so the code location still loads and the
# runs report the lake's own error): every day since the app started, as before.
DAILY = DailyPartitionsDefinition(start_date=FIRST_DAY)
# A lake whose last day is at most this many days before today is live: its partitions run on to
# yesterday, so new days need no reload (the log sensor's look-back, sensors.LOOKBACK_DAYS).
LIVE_LAKE_DAYS = 7
# The asset whose partitions the sensors and `sparkify run` read back from loaded Definitions.
PARTITIONED_ASSET = AssetKey("staging_events")
# Dagster's documented run tags for one run over a range of partitions (backfills use them).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

log = logging.getLogger(__name__)


def lake_partitions(days: Iterable[date], today: date | None = None) -> DailyPartitionsDefinition:
    """Daily partitions for the lake's `days` (from FIRST_DAY to yesterday: a day is a partition
    once it is over, as with open-ended daily partitions).

    A live lake (its last day at most LIVE_LAKE_DAYS before today) gets open-ended partitions from
    its first day: each new day becomes a partition at midnight UTC without reloading the code
    location, and a day without a file shows as missing. An archive lake (the 2018 sample) gets
    exactly its days: first to last, the days without a file excluded."""
    today = today or datetime.now(UTC).date()
    first_allowed = date.fromisoformat(FIRST_DAY)
    keep = sorted({d for d in days if first_allowed <= d < today})
    if not keep:
        # No log day yet: an empty set of partitions (start == end).
        return DailyPartitionsDefinition(start_date=FIRST_DAY, end_date=FIRST_DAY)
    if (today - keep[-1]).days <= LIVE_LAKE_DAYS:
        return DailyPartitionsDefinition(start_date=keep[0].isoformat())
    present = set(keep)
    gaps = [
        datetime(d.year, d.month, d.day, tzinfo=UTC)
        for d in (keep[0] + timedelta(days=i) for i in range((keep[-1] - keep[0]).days))
        if d not in present
    ]
    return DailyPartitionsDefinition(
        start_date=keep[0].isoformat(),
        end_date=(keep[-1] + timedelta(days=1)).isoformat(),
        exclusions=gaps or None,
    )


def partitions_for_lake(lake_resource) -> DailyPartitionsDefinition:
    """The partitions of the lake a LakeResource points at; DAILY when it cannot be listed."""
    try:
        with build_resources({"lake": lake_resource}) as resources:
            days = resources.lake.open().days()
    except Exception as exc:  # the runs report the lake's error in one sentence; loading goes on
        log.warning(
            "Could not list the lake's log days (%s): partitions are every day since %s", exc, FIRST_DAY
        )
        return DAILY
    return lake_partitions(days)


def partition_days(partitions_def: PartitionsDefinition) -> list[date]:
    """The days of a daily partitions definition, in order."""
    return [date.fromisoformat(k) for k in partitions_def.get_partition_keys()]


def loaded_partitions(defs_or_repository) -> PartitionsDefinition:
    """The partitions definition the loaded Definitions (or a sensor's repository) use."""
    if isinstance(defs_or_repository, Definitions):
        return defs_or_repository.resolve_assets_def(PARTITIONED_ASSET).partitions_def
    return defs_or_repository.assets_defs_by_key[PARTITIONED_ASSET].partitions_def


def range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run cover the partitions first..last (the assets are single-run): the
    sensors' runs and `sparkify run` both use them."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


def partition_dates(context: AssetExecutionContext | AssetCheckExecutionContext) -> tuple[date, date]:
    """First and last day (inclusive) of the partitions this run materializes."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def date_filter(column: str, first: date, last: date) -> str:
    """A SQL condition on a date column; the dates are date objects, never user text."""
    return f"{column} BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"
