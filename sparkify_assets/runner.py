"""Run the whole load in one Dagster run: every asset, every day of the lake (or a range)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TextIO

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, build_resources

from sparkify_assets.definitions import LOAD_JOB, WAREHOUSE_ASSET_DEFS
from sparkify_assets.errors import UsageError
from sparkify_assets.partitions import DAILY, loaded_partitions, partition_days, range_tags
from sparkify_assets.progress import step_hooks
from sparkify_assets.resources.lake import LakeError
from sparkify_assets.run_ledger import root_message

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def open_resource(defs: Definitions, key: str):
    """Open the warehouse or lake of `defs` outside a run, resolving its EnvVars as a run would."""
    with build_resources({key: defs.resources[key]}) as resources:
        return getattr(resources, key).open()


@contextmanager
def hold_warehouse(
    defs: Definitions,
    instance: DagsterInstance | None,
    wait: bool = True,
    say: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the warehouse's run lock around a whole run started here (the run's own resource
    takes it again, re-entrantly): waiting happens before the run, where Ctrl-C can stop it."""
    with build_resources({"warehouse": defs.resources["warehouse"]}) as resources:
        with resources.warehouse.lock(wait=wait, say=say, instance=instance):
            yield


def lake_range(defs: Definitions) -> tuple[date, date]:
    """First and last day that have a log file in the lake."""
    lake = open_resource(defs, "lake")
    days = lake.days()
    if not days:
        lake.check()
        raise LakeError(f"The lake {lake.url} holds no log files (log_data/YYYY/MM/YYYY-MM-DD-events.json).")
    return days[0], days[-1]


def load_days(defs: Definitions, first: date | None, last: date | None) -> tuple[date, date, int]:
    """The first and last partition (lake day) within first..last, and how many days that holds;
    a reversed range, or one that holds no log file, is refused in one sentence."""
    if first and last and first > last:
        raise UsageError(f"--start {first} is after --end {last}: give the earlier day as --start")
    partitions = loaded_partitions(defs)
    if partitions is DAILY:
        # The lake could not be listed when the Definitions loaded: its error now, in one sentence
        # (or, readable again, its days).
        lake_range(defs)
        days = [d for d in open_resource(defs, "lake").days() if partitions.has_partition_key(d.isoformat())]
    else:
        days = partition_days(partitions)
    if not days:
        lake_range(defs)  # raises the lake's own error (no log files, unreadable)
    chosen = [d for d in days if (first is None or d >= first) and (last is None or d <= last)]
    if not chosen:
        asked = (
            f"from {first} to {last}"
            if first and last
            else f"on or {'after' if first else 'before'} {first or last}"
        )
        raise UsageError(
            f"no log file {asked}: the lake's log files run from {days[0]} to {days[-1]} ({len(days)} days)"
        )
    return chosen[0], chosen[-1], len(chosen)


def run_load(
    defs: Definitions,
    first: date | None = None,
    last: date | None = None,
    instance: DagsterInstance | None = None,
    quiet: bool = True,
    progress: TextIO | None = None,
) -> ExecuteInProcessResult:
    """Materialize the load job over the lake days in first..last (default: all of them); with
    `progress`, print a line there as each step finishes."""
    first, last, _ = load_days(defs, first, last)
    job = defs.resolve_job_def(LOAD_JOB)
    if progress is not None:
        names = {key.to_user_string() for a in WAREHOUSE_ASSET_DEFS for key in a.keys}
        job = job.with_hooks(step_hooks(names, len(names), progress))
    tags = range_tags(first, last)
    return job.execute_in_process(
        instance=instance or DagsterInstance.ephemeral(),
        tags=tags,
        run_config=QUIET if quiet else None,
        raise_on_error=False,
    )


def _root_message(error) -> str:
    """The user's error under Dagster's wrappers, without its class path."""
    if error is None:
        return "step failed"
    if error.cls_name == "DagsterExecutionInterruptedError":
        return "interrupted (Ctrl-C or SIGTERM); its transaction was rolled back"
    return root_message(error)


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
