"""Sensors that follow the lake: new or changed daily log files, and changes to the song catalog.

`sparkify_log_sensor` lists `log_data/` from a few days before the last day it has seen (one S3
list call per 1,000 keys returned, whatever the size of the bucket) and asks for one run per new,
late, changed or deleted day. Each run reloads that day's `staging_events` and `songplays`
partitions and rebuilds what follows from them. Its cursor is JSON: the last day seen and the
file version of each day in the look-back window. Its first evaluation asks for one run that
loads everything, as `sparkify run` does.

`sparkify_song_sensor` fingerprints `song_data/` (keys and versions) and, when it changes, asks
for one run that restages the catalog, rebuilds `songs` and `artists`, and re-matches `songplays`
over every staged day: a new song can match plays of any earlier day, and rebuilding the fact
from staging is SQL inside the warehouse (no lake reads), so the tables equal a clean full load.

Nothing is missed: a request is done when it has landed, not when it was asked for. Each tick
compares every day of its cursor with the version Dagster's instance says was last loaded by a
successful run (`lake_versions.LAKE_VERSION` on the day's `staging_events` materialization); a
day whose run failed or was cancelled is asked for again, with exponential backoff (1 min, then
2, 4, … up to 30 min), and the tick log names the day, the run and its error. The first load and
the catalog runs are followed the same way, by their runs' outcome (run_ledger.py).

What each run selects is derived from the asset graph (everything downstream of the staging
asset that changed), so adding an asset needs no change here. Both ask for runs of one job,
`sparkify_lake_updates`, whose selection `load_warehouse` shares. Neither touches the warehouse:
they read the lake and the instance only, so they never hold DuckDB's lock. See docs/sensors.md."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import ClassVar, TypeVar

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    sensor,
)

from sparkify_assets.lake_versions import NO_FILE
from sparkify_assets.partitions import FIRST_DAY, loaded_partitions, partition_days, range_tags
from sparkify_assets.resources.lake import Lake, LakeFile, LakeResource
from sparkify_assets.run_ledger import STAGING_EVENTS, Followed, InstanceLedger, Ledger, attempt_tags, follow

# Late or corrected files are picked up if their day is at most this many days before the last
# day seen; older re-uploads need a manual run of their partition (docs/sensors.md).
LOOKBACK_DAYS = 7
# Log files arrive once a day; a minute keeps the UI lively without listing S3 needlessly.
LOG_INTERVAL_SECONDS = 60
# The version recorded for a day whose file was removed while in the look-back window.
DELETED = NO_FILE
# Listing song_data/ reads the whole catalog (song keys are not dated), so look less often.
SONG_INTERVAL_SECONDS = 300
STAGING_SONGS = AssetKey("staging_songs")
# Derived from the asset graph, not listed: a day's events change everything downstream of
# staging_events (songplays, users, time, the analytics); the catalog everything downstream of
# staging_songs. With no day staged, a catalog run leaves songplays (and what follows) to the
# first load, which builds it from the catalog it stages itself.
EVENT_SELECTION = AssetSelection.assets(STAGING_EVENTS).downstream()
SONG_SELECTION = AssetSelection.assets(STAGING_SONGS).downstream()
SONG_ONLY_SELECTION = SONG_SELECTION - AssetSelection.assets("songplays").downstream()
# Everything the lake feeds: the sensors' job and `load_warehouse` (definitions.py) share it.
LAKE_UPDATES_SELECTION = EVENT_SELECTION | SONG_SELECTION
# Every sensor run carries this tag; a run-queue limit of 1 on it (dagster.yaml) runs them one
# after another, in the order the sensors asked for them (docs/sensors.md).
LAKE_UPDATE_TAG = "sparkify/lake_update"

# One job for both sensors: each request selects the assets it needs (a day's events, the
# catalog, or everything on a first evaluation).
sparkify_lake_updates = define_asset_job(
    "sparkify_lake_updates",
    selection=LAKE_UPDATES_SELECTION,
    description=(
        "Runs asked for by the lake sensors: a day's events (staging_events and what follows from it), "
        "the song catalog (staging_songs and what follows, songplays re-matched), or everything."
    ),
)


@dataclass(frozen=True)
class Selections:
    """The asset keys of each kind of request, resolved from an asset graph."""

    event: list[AssetKey]
    song: list[AssetKey]
    song_only: list[AssetKey]

    @classmethod
    def of(cls, graph) -> Selections:
        return cls(
            *(sorted(s.resolve(graph)) for s in (EVENT_SELECTION, SONG_SELECTION, SONG_ONLY_SELECTION))
        )


def repository_selections(context: SensorEvaluationContext) -> Selections:
    """Resolved against the asset graph of the Definitions the sensor was loaded with."""
    assets = {id(a): a for a in context.repository_def.assets_defs_by_key.values()}
    return Selections.of(list(assets.values()))


@cache
def default_selections() -> Selections:
    """Resolved against the project's assets (for the planners called outside a sensor)."""
    from sparkify_assets.definitions import WAREHOUSE_ASSET_DEFS

    return Selections.of(WAREHOUSE_ASSET_DEFS)


class SensorCursorError(ValueError):
    """A sensor cursor that this code did not write (e.g. typed by hand in the UI)."""


_Cursor = TypeVar("_Cursor", bound="_SensorCursor")


class _SensorCursor:
    """A sensor's cursor, read from the JSON it wrote: `from_data` reads the parsed JSON."""

    SENSOR: ClassVar[str]  # the sensor's name is sparkify_<SENSOR>_sensor
    RESET_DOES: ClassVar[str]  # what resetting the cursor in the UI makes the sensor do

    @classmethod
    def parse(cls: type[_Cursor], raw: str | None) -> _Cursor:
        """The cursor `raw` holds (the default when there is none); a cursor this code did not
        write is refused with how to reset it, and what resetting does."""
        if not raw:
            return cls()
        try:
            return cls.from_data(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            raise SensorCursorError(
                f"The {cls.SENSOR} sensor's cursor {raw[:80]!r} was not written by this sensor: reset it "
                f"in the UI (Automation > sparkify_{cls.SENSOR}_sensor > Reset cursor) to {cls.RESET_DOES}."
            ) from None

    @classmethod
    def from_data(cls: type[_Cursor], data: dict) -> _Cursor:
        raise NotImplementedError


def sensor_partition_days(context: SensorEvaluationContext) -> list[date]:
    """The days that are partitions in the Definitions this sensor was loaded with (the lake's
    days when the code location loaded: partitions.py)."""
    return partition_days(loaded_partitions(context.repository_def))


def last_partition_day(days: list[date]) -> date:
    """The newest day that is a partition already."""
    return days[-1] if days else date.fromisoformat(FIRST_DAY) - timedelta(days=1)


def fingerprint(files: list[LakeFile]) -> str:
    """A digest of keys and versions: changes when any file is added, removed or rewritten."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.key):
        h.update(f"{f.key}\t{f.version}\n".encode())
    return h.hexdigest()


@dataclass
class LogCursor(_SensorCursor):
    """What the log sensor has seen: the last day, {day: (version, revision)} for the window and
    for older days not loaded yet, and the first load while it has not landed.

    The revision counts how often a day's file changed while in the window, so that putting back
    an earlier version (same ETag) still gets a run key of its own.
    """

    last_day: date | None = None
    seen: dict[date, tuple[str, int]] = field(default_factory=dict)
    # The first evaluation's request (key, first day, last day) until one of its runs succeeds.
    first_load: tuple[str, date, date] | None = None

    SENSOR: ClassVar[str] = "log"
    RESET_DOES: ClassVar[str] = "reload every day once"

    @classmethod
    def from_data(cls, data: dict) -> LogCursor:
        first_load = data.get("first_load")
        return cls(
            date.fromisoformat(data["last_day"]),
            {date.fromisoformat(d): (str(v), int(n)) for d, (v, n) in data["seen"].items()},
            (str(first_load[0]), date.fromisoformat(first_load[1]), date.fromisoformat(first_load[2]))
            if first_load
            else None,
        )

    def to_json(self) -> str:
        data: dict = {
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "seen": {d.isoformat(): [v, n] for d, (v, n) in sorted(self.seen.items())},
        }
        if self.first_load:
            key, first, last = self.first_load
            data["first_load"] = [key, first.isoformat(), last.isoformat()]
        return json.dumps(data, separators=(",", ":"))


@dataclass
class LogTick:
    run_requests: list[RunRequest]
    cursor: LogCursor
    listed: int  # log files returned by the listing
    message: str


def request_key(day: date, version: str, revision: int) -> str:
    """A request per (day, version, revision): a retried tick repeats its keys, so Dagster
    launches each run once; a file that changes (even back to an old version) gets a new one."""
    return f"{day.isoformat()}:{version}" + (f":r{revision}" if revision else "")


def plan_log_runs(
    lake: Lake,
    raw_cursor: str | None,
    last_day: date,
    lookback_days: int = LOOKBACK_DAYS,
    partitions: set[date] | None = None,
    ledger: Ledger | None = None,
    now: float | None = None,
    selections: Selections | None = None,
) -> LogTick:
    """Decide which days to (re)load; `last_day` is the newest partition that may be requested and
    `partitions`, when given, the days that are partitions (a file on any other day waits for the
    code location to reload, which makes its day a partition). With a `ledger`, every day the
    cursor holds is compared with what landed, and a request that did not land is asked again
    after its backoff (`now`: POSIX time, default the clock)."""
    cursor = LogCursor.parse(raw_cursor)
    first_day = date.fromisoformat(FIRST_DAY)

    def is_partition(day: date) -> bool:
        return first_day <= day <= last_day and (partitions is None or day in partitions)

    if cursor.last_day is None:
        return _bootstrap(lake, is_partition, lookback_days)

    window = cursor.last_day - timedelta(days=lookback_days)
    since = min([window, *cursor.seen])  # older days stay in the cursor until they land
    listed = lake.log_files(since)
    files = {f.day: f for f in listed if is_partition(f.day)}
    plan = _LogPlan(time.time() if now is None else now, (selections or default_selections()).event)
    first_load = plan.follow_first_load(ledger, cursor.first_load)
    for day in sorted(set(files) | {d for d in cursor.seen if d >= since}):
        version, revision = cursor.seen.get(day, (None, -1))
        f = files.get(day)
        if version != (f.version if f else DELETED):
            plan.changed_day(day, version, revision + 1, f, cursor.last_day)
            continue
        plan.seen[day] = (version, revision)
        if ledger is not None and first_load is None:
            # Else no record to compare with, or the first load (in flight or retried) covers it.
            plan.follow_day(ledger, day, version, revision, f)

    new_last = max([cursor.last_day, *files])
    new_window = new_last - timedelta(days=lookback_days)
    kept = {d: s for d, s in plan.seen.items() if d >= new_window or d in plan.unlanded}
    new_cursor = LogCursor(new_last, kept, first_load)
    message = f"Listed {len(listed)} log files since {since}; " + _summary(plan.notes)
    message += _waiting(listed, files, first_day)
    return LogTick(plan.requests, new_cursor, len(listed), message)


@dataclass
class _LogPlan:
    """One log tick's requests and tick-log notes, built day by day, and the cursor's days."""

    now: float
    keys: list[AssetKey]
    requests: list[RunRequest] = field(default_factory=list)
    notes: dict[str, list[str]] = field(
        default_factory=lambda: {"new": [], "retried": [], "waiting": [], "in flight": []}
    )
    seen: dict[date, tuple[str, int]] = field(default_factory=dict)
    unlanded: set[date] = field(default_factory=set)

    def follow_first_load(
        self, ledger: Ledger | None, first_load: tuple[str, date, date] | None
    ) -> tuple[str, date, date] | None:
        """The first load while it has not landed (asked again when it failed), else None."""
        if not first_load or ledger is None:
            return first_load
        followed = follow(ledger, first_load[0], self.now)
        if followed.state == "landed":
            return None
        what = f"the first load ({first_load[1]} to {first_load[2]})"
        self.notes[_NOTE[followed.state]].append(followed.note(what))
        if followed.state in ("retry", "ask"):
            self.requests.append(_first_load_request(first_load, followed))
        return first_load

    def changed_day(
        self, day: date, version: str | None, revision: int, f: LakeFile | None, last_day: date
    ) -> None:
        """A day whose file is new, late, changed or deleted since the cursor: a run of its own."""
        current = f.version if f else DELETED
        self.seen[day] = (current, revision)
        self.unlanded.add(day)
        if f is None:  # removed: reload the day so its rows go too, as a clean load would
            reason = "deleted"
        else:
            reason = "new" if day > last_day else ("changed" if version else "late")
        request = request_key(day, current, revision)
        self.requests.append(_day_request(day, request, request, 0, reason, f.key if f else "", self.keys))
        self.notes["new"].append(f"{day} ({reason})")

    def follow_day(self, ledger: Ledger, day: date, version: str, revision: int, f: LakeFile | None) -> None:
        """A day the cursor holds unchanged: asked again, after its backoff, until its version lands."""
        landed = ledger.landed(day)
        if landed == version or (version == DELETED and landed in (None, NO_FILE)):
            return
        self.unlanded.add(day)
        request = request_key(day, version, revision)
        followed = follow(ledger, request, self.now, success_lands=False)
        self.notes[_NOTE[followed.state]].append(followed.note(day.isoformat()))
        if followed.state in ("retry", "ask"):
            reason = "retry" if followed.state == "retry" else "not loaded"
            self.requests.append(
                _day_request(
                    day, request, followed.run_key, followed.attempt, reason, f.key if f else "", self.keys
                )
            )


# Which line of the tick log a followed request goes to.
_NOTE = {"in flight": "in flight", "waiting": "waiting", "retry": "retried", "ask": "retried"}


def _summary(notes: dict[str, list[str]]) -> str:
    parts = [f"{len(notes['new'])} day(s) to load: {', '.join(notes['new']) or 'none'}"]
    if notes["retried"]:
        parts.append(f"asked again: {'; '.join(notes['retried'])}")
    if notes["waiting"]:
        parts.append(f"waiting for backoff: {'; '.join(notes['waiting'])}")
    if notes["in flight"]:
        parts.append(f"loading: {'; '.join(notes['in flight'])}")
    return "; ".join(parts)


def _waiting(listed: list[LakeFile], files, first_day: date) -> str:
    """The files whose day is not a partition of the loaded code location (yet)."""
    waiting = sorted(f.day for f in listed if f.day not in files and f.day >= first_day)
    if not waiting:
        return ""
    shown = ", ".join(d.isoformat() for d in waiting[:5]) + (" …" if len(waiting) > 5 else "")
    return (
        f"; {len(waiting)} day(s) in the lake are not partitions yet ({shown}): they load once the code "
        "location reloads (Deployment > Reload, or restart dagster dev), or once their day is over"
    )


def _day_request(
    day: date, request: str, run_key: str, attempt: int, reason: str, key: str, assets: Sequence[AssetKey]
) -> RunRequest:
    tags = {LAKE_UPDATE_TAG: "log", "sparkify/reason": reason, **attempt_tags(request, attempt)}
    if key:
        tags["sparkify/log_key"] = key
    return RunRequest(run_key=run_key, partition_key=day.isoformat(), tags=tags, asset_selection=list(assets))


def _first_load_request(first_load: tuple[str, date, date], followed: Followed) -> RunRequest:
    request, first, last = first_load
    reason = "first evaluation" if followed.state == "ask" else "retry of the first evaluation"
    tags = {
        **range_tags(first, last),
        LAKE_UPDATE_TAG: "all",
        "sparkify/reason": reason,
        **attempt_tags(request, followed.attempt),
    }
    return RunRequest(run_key=followed.run_key or request, tags=tags)


def _bootstrap(lake: Lake, is_partition, lookback_days: int) -> LogTick:
    """No cursor yet: one run loads everything, every day and the catalog (as `sparkify run` does).

    Staging the catalog in the same run means its songplays are matched against it, whatever
    order the song sensor's first run takes.
    """
    listed = lake.log_files()
    files = [f for f in listed if is_partition(f.day)]
    if not files:
        return LogTick([], LogCursor(), len(listed), f"No log files in {lake.url} yet")
    first, last = files[0].day, files[-1].day
    window = last - timedelta(days=lookback_days)
    request = f"all:{first}..{last}:{fingerprint(files)[:16]}"
    cursor = LogCursor(
        last, {f.day: (f.version, 0) for f in files if f.day >= window}, (request, first, last)
    )
    run_request = _first_load_request(cursor.first_load, Followed("ask", run_key=request))
    return LogTick(
        [run_request], cursor, len(listed), f"First evaluation: one run loads everything, {first} to {last}"
    )


@sensor(
    job=sparkify_lake_updates,
    minimum_interval_seconds=LOG_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches log_data/ for new, late, changed or deleted daily files and reloads exactly those "
        f"days (look-back {LOOKBACK_DAYS} days); the first evaluation loads everything in one run. "
        "A day whose run failed or was cancelled is asked for again, with backoff, until it lands."
    ),
)
def sparkify_log_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
    lk = lake.open()
    days = sensor_partition_days(context)
    tick = plan_log_runs(
        lk,
        context.cursor,
        last_partition_day(days),
        partitions=set(days),
        ledger=InstanceLedger(context.instance),
        selections=repository_selections(context),
    )
    calls = getattr(lk, "list_calls", None)
    context.log.info(tick.message + (f" ({calls} S3 list calls)" if calls is not None else ""))
    if tick.run_requests:
        return SensorResult(run_requests=tick.run_requests, cursor=tick.cursor.to_json())
    return SensorResult(skip_reason=tick.message, cursor=tick.cursor.to_json())


@dataclass
class SongCursor(_SensorCursor):
    digest: str = ""
    runs: int = 0  # song runs requested so far: part of the run key, so an old catalog put back reloads
    pending: str = ""  # the last request, until one of its runs succeeds

    SENSOR: ClassVar[str] = "song"
    RESET_DOES: ClassVar[str] = "reload the catalog once"

    @classmethod
    def from_data(cls, data: dict) -> SongCursor:
        return cls(str(data["digest"]), int(data["runs"]), str(data.get("pending") or ""))

    def to_json(self) -> str:
        data: dict = {"digest": self.digest, "runs": self.runs}
        if self.pending:
            data["pending"] = self.pending
        return json.dumps(data, separators=(",", ":"))


@dataclass
class SongTick:
    run_request: RunRequest | None
    cursor: SongCursor
    message: str


def plan_song_run(
    lake: Lake,
    raw_cursor: str | None,
    last_day: date,
    staged_days: set[date],
    partitions: set[date] | None = None,
    ledger: Ledger | None = None,
    now: float | None = None,
    selections: Selections | None = None,
) -> SongTick:
    """One run when the catalog's fingerprint changed: restage songs and re-match songplays; with
    a `ledger`, the last request is followed until one of its runs succeeds (asked again after
    its backoff when it failed or was cancelled).

    The plays re-matched are those of every day already staged (`staged_days`, from Dagster's
    record) or in the lake (a day run asked for earlier may still be waiting), so whichever day
    runs come before or after this run, every play ends up matched against the new catalog.
    With nothing staged yet, songplays is left alone: the first load builds it.
    """
    cursor = SongCursor.parse(raw_cursor)
    now = time.time() if now is None else now
    files = lake.song_files()
    if not files:
        return SongTick(None, cursor, f"No song files in {lake.url} yet")
    digest = fingerprint(files)
    run = _CatalogRun(lake, len(files), last_day, staged_days, partitions, selections)
    if digest == cursor.digest:
        return _follow_catalog_run(cursor, ledger, now, run)
    request_id = f"songs:{digest[:16]}:{cursor.runs + 1}"
    request, scope = run.request(request_id, request_id, 0)
    message = f"The song catalog changed ({len(files)} files): one run restages it {scope}"
    return SongTick(request, SongCursor(digest, cursor.runs + 1, request_id), message)


def _follow_catalog_run(cursor: SongCursor, ledger: Ledger | None, now: float, run: _CatalogRun) -> SongTick:
    """An unchanged catalog: its last request is followed until one of its runs succeeds."""
    unchanged = f"The song catalog is unchanged ({run.n_files} files)"
    if not cursor.pending or ledger is None:
        return SongTick(None, cursor, unchanged)
    followed = follow(ledger, cursor.pending, now)
    if followed.state == "landed":
        return SongTick(None, replace_pending(cursor, ""), unchanged)
    note = followed.note(f"the catalog run {cursor.pending}")
    if followed.state in ("in flight", "waiting"):
        return SongTick(None, cursor, f"{unchanged}; {note}")
    request, scope = run.request(cursor.pending, followed.run_key, followed.attempt)
    return SongTick(request, cursor, f"{unchanged}; asked again: {note}, {scope}")


def replace_pending(cursor: SongCursor, pending: str) -> SongCursor:
    return SongCursor(cursor.digest, cursor.runs, pending)


@dataclass(frozen=True)
class _CatalogRun:
    """What a catalog run covers: the catalog's assets and the plays of every day staged."""

    lake: Lake
    n_files: int
    last_day: date
    staged_days: set[date]
    partitions: set[date] | None
    selections: Selections | None  # None: the project's (default_selections)

    def request(self, request_id: str, run_key: str, attempt: int) -> tuple[RunRequest, str]:
        """The run request, and what it covers for the tick log."""
        selections = self.selections or default_selections()
        tags = {
            LAKE_UPDATE_TAG: "songs",
            "sparkify/reason": f"song catalog changed ({self.n_files} files)" if not attempt else "retry",
            **attempt_tags(request_id, attempt),
        }
        days = self.days()
        if days:
            request = RunRequest(
                run_key=run_key,
                tags={**tags, **range_tags(days[0], days[-1])},
                asset_selection=selections.song,
            )
            return request, f"and re-matches songplays {days[0]} to {days[-1]}"
        return RunRequest(
            run_key=run_key, tags=tags, asset_selection=selections.song_only
        ), "(no day staged yet)"

    def days(self) -> list[date]:
        """The partitions staged or in the lake; none while nothing is staged."""
        if not self.staged_days:
            return []
        first_day = date.fromisoformat(FIRST_DAY)
        return sorted(
            d
            for d in self.staged_days | set(self.lake.days())
            if first_day <= d <= self.last_day and (self.partitions is None or d in self.partitions)
        )


@sensor(
    job=sparkify_lake_updates,
    minimum_interval_seconds=SONG_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches song_data/ and, when song files are added, changed or removed, restages the catalog, "
        "rebuilds songs and artists, and re-matches every day's songplays; a failed catalog run is "
        "asked for again, with backoff."
    ),
)
def sparkify_song_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
    staged = context.instance.get_materialized_partitions(STAGING_EVENTS)
    days = sensor_partition_days(context)
    tick = plan_song_run(
        lake.open(),
        context.cursor,
        last_partition_day(days),
        {date.fromisoformat(k) for k in staged},
        partitions=set(days),
        ledger=InstanceLedger(context.instance),
        selections=repository_selections(context),
    )
    context.log.info(tick.message)
    if tick.run_request:
        return SensorResult(run_requests=[tick.run_request], cursor=tick.cursor.to_json())
    return SensorResult(skip_reason=tick.message, cursor=tick.cursor.to_json())


SENSORS = [sparkify_log_sensor, sparkify_song_sensor]
SENSOR_JOBS = [sparkify_lake_updates]
