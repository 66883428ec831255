"""Run the whole load in one Dagster run: every asset, every day of the lake (or a range)."""

from __future__ import annotations

from datetime import date

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from sparkify_assets.definitions import LOAD_JOB
from sparkify_assets.resources.lake import LakeError

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def open_resource(defs: Definitions, key: str):
    """Open the warehouse or lake of `defs` outside a run, resolving its EnvVars as a run would."""
    with defs.resources[key].process_config_and_initialize_cm() as resource:
        return resource.open()


def lake_range(defs: Definitions) -> tuple[date, date]:
    """First and last day that have a log file in the lake."""
    lake = open_resource(defs, "lake")
    days = lake.days()
    if not days:
        lake.check()
        raise LakeError(f"The lake {lake.url} holds no log files (log_data/YYYY/MM/YYYY-MM-DD-events.json).")
    return days[0], days[-1]


def run_load(
    defs: Definitions,
    first: date | None = None,
    last: date | None = None,
    instance: DagsterInstance | None = None,
    quiet: bool = True,
) -> ExecuteInProcessResult:
    """Materialize the load job over the partition range first..last (default: the lake's days)."""
    if first is None or last is None:
        lake_first, lake_last = lake_range(defs)
        first, last = first or lake_first, last or lake_last
    tags = {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }
    return defs.resolve_job_def(LOAD_JOB).execute_in_process(
        instance=instance or DagsterInstance.ephemeral(),
        tags=tags,
        run_config=QUIET if quiet else None,
        raise_on_error=False,
    )


def _root_message(error) -> str:
    """The user's error under Dagster's wrappers, without its class path."""
    if error is None:
        return "step failed"
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    head, _, rest = message.partition(": ")
    # "sparkify_assets.resources.warehouse.WarehouseError: ..." reads as "...".
    return rest if rest and "." in head and " " not in head else message


def failures(result: ExecuteInProcessResult) -> list[str]:
    """One line per failed step or failed check of a run."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            lines.append(f"error in {event.step_key}: {_root_message(event.step_failure_data.error)}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            if not ev.passed:
                detail = f" ({ev.description})" if ev.description else ""
                lines.append(f"check failed: {ev.asset_key.to_user_string()} {ev.check_name}{detail}")
    return lines
