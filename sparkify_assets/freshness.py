"""Lateness of the daily logs: is the last day that is due in the warehouse?

The log of day D is due by D+1 at SPARKIFY_LOG_DEADLINE_HOUR:00 UTC (default 03:00). The check
`log_on_time` on `staging_events` passes when the last due day's log file is in the lake and that
day's partition of `staging_events` is materialized, and fails (severity WARN) otherwise, saying
which day is late and whether its file has not arrived or has arrived but is not loaded yet.

Dagster's own freshness tools judge something else: `FreshnessPolicy` looks at the asset's last
materialization of any partition (a re-uploaded old day would make a missing new day look
fresh), and `build_time_partition_freshness_checks` expects the partitions to run to the
present, while ours are the lake's days (partitions.py). So the verdict is computed here, for
an explicit `now` (tests pass a fixed clock), and reported two ways:
- `lateness_sensor` (every 5 minutes, no run) records the check's result whenever the verdict
  changes, so the asset turns late in the UI at the deadline and back once the day is loaded;
- the check itself, in any run that asks for it (the sensors' runs, `audit_warehouse`, the UI's
  "Execute checks"), with the clock of that run.
See docs/sensors.md, "Lateness".
"""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset_check,
    sensor,
)

from sparkify_assets import env_settings
from sparkify_assets.resources.lake import Lake, LakeResource
from sparkify_assets.resources.warehouse import POOL

CHECK_NAME = "log_on_time"
ASSET = AssetKey("staging_events")
# Lateness moves by the hour; a listing of the last days every 5 minutes is cheap on any lake.
LATENESS_INTERVAL_SECONDS = 300


def due_day(now: datetime, deadline_hour: int) -> date:
    """The last day whose log file is due at `now`: day D is due at D+1, deadline_hour:00 UTC."""
    return (now.astimezone(UTC) - timedelta(hours=deadline_hour)).date() - timedelta(days=1)


def deadline_of(day: date, deadline_hour: int) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(deadline_hour), tzinfo=UTC)


@dataclass(frozen=True)
class Lateness:
    """The verdict for the last due day."""

    day: date
    deadline: datetime
    arrived: bool
    loaded: bool
    newest: date | None  # the lake's newest log day, for the message

    @property
    def on_time(self) -> bool:
        return self.arrived and self.loaded

    @property
    def description(self) -> str:
        due = f"due by {self.deadline:%Y-%m-%d %H:%M} UTC"
        if self.on_time:
            next_deadline = self.deadline + timedelta(days=1)
            return (
                f"on time: the log of {self.day} ({due}) is loaded; "
                f"the next one is due by {next_deadline:%Y-%m-%d %H:%M} UTC"
            )
        if self.arrived:
            return (
                f"late: the log of {self.day} ({due}) is in the lake but not loaded yet: see the log "
                "sensor's ticks (a day that is not a partition yet loads once the code location reloads)"
            )
        newest = f"the lake's newest log is {self.newest}" if self.newest else "the lake holds no log"
        return f"late: the log of {self.day} ({due}) has not arrived; {newest}"

    @property
    def metadata(self) -> dict:
        return {
            "due_day": self.day.isoformat(),
            "deadline": self.deadline.isoformat(),
            "arrived": self.arrived,
            "loaded": self.loaded,
            "newest_log_day": self.newest.isoformat() if self.newest else "none",
        }

    @property
    def state(self) -> str:
        """What the sensor compares between ticks (times are absolute, so it changes only when
        the verdict does)."""
        return json.dumps(self.metadata, sort_keys=True)

    def evaluation(self) -> AssetCheckEvaluation:
        return AssetCheckEvaluation(
            asset_key=ASSET,
            check_name=CHECK_NAME,
            passed=self.on_time,
            severity=AssetCheckSeverity.WARN,
            description=self.description,
            metadata=self.metadata,
        )


def judge(now: datetime, deadline_hour: int, lake: Lake, instance: DagsterInstance) -> Lateness:
    """Lateness at `now`: one listing of the lake from the due day on, and one look at the
    instance for that day's partition of staging_events."""
    day = due_day(now, deadline_hour)
    since = lake.log_files(start=day)
    arrived = any(f.day == day for f in since)
    newest = since[-1].day if since else max(lake.days(), default=None)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=ASSET, asset_partitions=[day.isoformat()]), limit=1
    ).records
    return Lateness(day, deadline_of(day, deadline_hour), arrived, bool(records), newest)


@asset_check(
    asset=ASSET,
    name=CHECK_NAME,
    blocking=False,
    # It reads only the lake and the instance, but every check is in the warehouse pool.
    pool=POOL,
    description="The last day whose log file is due (by SPARKIFY_LOG_DEADLINE_HOUR:00 UTC the next "
    "day, default 03:00) is in the lake and loaded; a warning names the late day.",
)
def log_on_time(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
    verdict = judge(datetime.now(UTC), env_settings.log_deadline_hour(), lake.open(), context.instance)
    return AssetCheckResult(
        passed=verdict.on_time,
        severity=AssetCheckSeverity.WARN,
        description=verdict.description,
        metadata=verdict.metadata,
    )


@sensor(
    name="sparkify_lateness_sensor",
    minimum_interval_seconds=LATENESS_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Every 5 minutes, judges whether the last due day's log is loaded and records the "
    "log_on_time check of staging_events when that changes (no run).",
)
def lateness_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult | SkipReason:
    verdict = judge(datetime.now(UTC), env_settings.log_deadline_hour(), lake.open(), context.instance)
    if context.cursor == verdict.state:
        return SkipReason(f"unchanged: {verdict.description}")
    context.log.info(verdict.description)
    # No run: the tick says what it recorded (without a message it would read "empty result").
    return SensorResult(
        asset_events=[verdict.evaluation()],
        cursor=verdict.state,
        skip_reason=f"recorded: {verdict.description}",
    )
