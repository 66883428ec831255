"""Run the whole load in one Dagster run: every asset, every day of the lake (or a range)."""

from __future__ import annotations

from datetime import date

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, build_resources

from sparkify_assets.definitions import LOAD_JOB
from sparkify_assets.resources.lake import LakeError
from sparkify_assets.sensors import range_tags

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def open_resource(defs: Definitions, key: str):
    """Open the warehouse or lake of `defs` outside a run, resolving its EnvVars as a run would."""
    with build_resources({key: defs.resources[key]}) as resources:
        return getattr(resources, key).open()


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
    tags = range_tags(first, last)
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
    """One line per failed step, then one per failed check of a run."""
    lines = [
        f"error in {event.step_key}: {_root_message(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure
    ]
    for ev in result.get_asset_check_evaluations():
        if not ev.passed:
            detail = f" ({ev.description})" if ev.description else ""
            lines.append(f"check failed: {ev.asset_key.to_user_string()} {ev.check_name}{detail}")
    return lines
