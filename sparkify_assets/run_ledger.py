"""What happened to the sensors' requests, as Dagster's instance records it: which version of a
day landed, which runs carried out a request (in flight, failed or cancelled, with the first line
of their error), and when a request that did not land may be asked for again (exponential
backoff). Public DagsterInstance API only. See docs/sensors.md, "When a day fails"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    RunStatusChangeRecordsFilter,
)

from sparkify_assets.lake_versions import LAKE_VERSION

STAGING_EVENTS = AssetKey("staging_events")

# A failed request is asked for again after 1 min, then 2, 4, 8, 16, 30, 30… minutes: a transient
# cause (a locked DuckDB file, a dropped connection) clears itself, and a configuration error
# waiting for a person costs two runs an hour, not one a minute.
BACKOFF_FIRST_SECONDS = 60
BACKOFF_MAX_SECONDS = 1800
# Dagster's run retries (needs `run_retries: enabled: true` in dagster.yaml): a run that fails is
# re-executed whole, at once, this many times before the sensor's backoff takes over.
RUN_RETRY_TAGS = {
    "dagster/max_retries": "2",
    "dagster/retry_on_asset_or_op_failure": "true",
    # Every step again: a day has landed when one successful run staged and matched it.
    "dagster/retry_strategy": "ALL_STEPS",
}

# The request a run carries out (its first run key): every attempt of it carries the same value,
# so the sensors find its runs, in flight or failed, whatever Dagster's retries add.
REQUEST_TAG = "sparkify/request"
ATTEMPT_TAG = "sparkify/attempt"


@dataclass
class Attempt:
    """One run that carried out a request."""

    run_id: str
    status: DagsterRunStatus
    ended: float | None  # POSIX time it finished, None while in flight
    error: str  # first line of its error ("" unless it failed or was cancelled)

    @property
    def in_flight(self) -> bool:
        return self.ended is None and self.status not in FINISHED

    def describe(self) -> str:
        verb = "was cancelled" if self.status == DagsterRunStatus.CANCELED else "failed"
        return (
            f"run {self.run_id[:8]} {verb}: {self.error}" if self.error else f"run {self.run_id[:8]} {verb}"
        )


FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


class Ledger(Protocol):
    """What actually happened, as Dagster's instance records it."""

    def landed(self, day: date) -> str | None:
        """The lake version a successful run last loaded for `day` ("" unrecorded), None if none."""

    def attempts(self, request: str) -> list[Attempt]:
        """The runs that carried out `request`, oldest first."""


class InstanceLedger:
    """The Ledger of a DagsterInstance, through its public API."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self._status: dict[str, DagsterRunStatus | None] = {}

    def _run_status(self, run_id: str) -> DagsterRunStatus | None:
        if run_id not in self._status:
            record = self.instance.get_run_record_by_id(run_id)
            self._status[run_id] = record.dagster_run.status if record else None
        return self._status[run_id]

    def landed(self, day: date) -> str | None:
        found = self.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=STAGING_EVENTS, asset_partitions=[day.isoformat()]), limit=50
        )
        for record in found.records:  # newest first
            if self._run_status(record.run_id) != DagsterRunStatus.SUCCESS:
                continue  # a failed run may have staged the day and then failed downstream of it
            value = record.asset_materialization.metadata.get(LAKE_VERSION)
            return str(value.value) if value is not None else ""
        return None

    def attempts(self, request: str) -> list[Attempt]:
        records = self.instance.get_run_records(RunsFilter(tags={REQUEST_TAG: request}))
        out = []
        for record in sorted(records, key=lambda r: r.create_timestamp):
            run = record.dagster_run
            ended = record.end_time
            if ended is None and run.status in FINISHED:
                ended = record.update_timestamp.timestamp()  # a run marked failed or cancelled by hand
            error = ""
            if run.status == DagsterRunStatus.CANCELED:
                error = "cancelled"
            elif run.status == DagsterRunStatus.FAILURE:
                error = self._error(run.run_id, record.create_timestamp.timestamp())
            out.append(Attempt(run.run_id, run.status, ended, error))
        return out

    def _error(self, run_id: str, created: float) -> str:
        """The first line of the run's first step failure (else of its failure event)."""
        changes = self.instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(DagsterEventType.RUN_FAILURE, after_timestamp=created - 1),
            limit=200,
        )
        for record in changes.records:
            if record.run_id != run_id:
                continue
            event = record.event_log_entry.dagster_event
            data = event.event_specific_data if event else None
            step = getattr(data, "first_step_failure_event", None)
            error = step.step_failure_data.error if step is not None else getattr(data, "error", None)
            if error is not None:
                return root_line(error)
            return (record.event_log_entry.message or "failed").splitlines()[0]
        return ""


class ErrorInfo(Protocol):
    """What this module reads of Dagster's serialized error (a step's or a run's failure)."""

    @property
    def message(self) -> str: ...
    @property
    def cls_name(self) -> str | None: ...
    @property
    def cause(self) -> ErrorInfo | None: ...


def _root_cause(error: ErrorInfo) -> ErrorInfo:
    """The user's error under Dagster's wrappers."""
    while error.cause is not None:
        error = error.cause
    return error


def _without_class_path(message: str) -> str:
    """The message without a class path before it: "sparkify_assets.x.WarehouseError: ..." reads as "..."."""
    head, _, rest = message.partition(": ")
    return rest if rest and "." in head and " " not in head else message


def root_message(error: ErrorInfo) -> str:
    """The message of the user's error under Dagster's wrappers, without its class path."""
    return _without_class_path(_root_cause(error).message.strip())


def root_line(error: ErrorInfo) -> str:
    """root_message's first line (for a tick log): else the error's class name."""
    root = _root_cause(error)
    lines = root.message.strip().splitlines()
    return _without_class_path(lines[0] if lines else root.cls_name or "failed")


def backoff_seconds(failures: int) -> int:
    """How long to wait before attempt `failures` + 1 (failures >= 1)."""
    return min(BACKOFF_FIRST_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)


@dataclass
class Followed:
    """Where a request stands: landed, in flight, waiting for its backoff, or to be asked again."""

    state: str  # "landed" | "in flight" | "waiting" | "retry" | "ask"
    run_key: str = ""
    attempt: int = 0
    last: Attempt | None = None
    due: float = 0.0

    def note(self, what: str) -> str:
        if self.state == "in flight":
            return f"{what} (run {self.last.run_id[:8]} in flight)"
        if self.state == "waiting":
            at = datetime.fromtimestamp(self.due, UTC).strftime("%H:%M:%S UTC")
            return f"{what} waits for attempt {self.attempt + 1} until {at} ({self.last.describe()})"
        if self.state == "retry":
            return f"{what}, attempt {self.attempt + 1} ({self.last.describe()})"
        return f"{what} (asked for before, no run of it found)"


def follow(ledger: Ledger, request: str, now: float, success_lands: bool = True) -> Followed:
    """Follow a request through its runs. A day's request (`success_lands=False`) has landed
    when the instance records its version, which the caller checked first: a run of it that
    succeeded without landing it (the file changed during the run) counts as an attempt, so
    nothing loops tightly."""
    attempts = ledger.attempts(request)
    if success_lands and any(a.status == DagsterRunStatus.SUCCESS for a in attempts):
        return Followed("landed")
    flying = [a for a in attempts if a.in_flight]
    if flying:
        return Followed("in flight", last=flying[-1])
    for a in attempts:
        if a.status == DagsterRunStatus.SUCCESS:
            a.error = "it succeeded, but the version it loaded is not the lake's"
    n = len(attempts)
    if n == 0:
        return Followed("ask", run_key=request)  # asked for, no run yet: the same key again
    last = attempts[-1]
    due = (last.ended or now) + backoff_seconds(n)
    run_key = f"{request}:a{n}"
    if now < due:
        return Followed("waiting", run_key=run_key, attempt=n, last=last, due=due)
    return Followed("retry", run_key=run_key, attempt=n, last=last)


def attempt_tags(request: str, attempt: int) -> dict[str, str]:
    return {REQUEST_TAG: request, ATTEMPT_TAG: str(attempt + 1), **RUN_RETRY_TAGS}
