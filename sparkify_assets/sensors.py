"""Sensors that follow the lake: new or changed daily log files, and changes to the song catalog.

`sparkify_log_sensor` lists `log_data/` from a few days before the last day it has seen (one S3
list call per 1,000 keys returned, whatever the size of the bucket) and asks for one run per new,
late, changed or deleted day. Each run reloads that day's `staging_events` and `songplays`
partitions and rebuilds `users` and `time`, which are built from every day. Its cursor is JSON:
the last day seen and the file version of each day in the look-back window. Its first
evaluation asks for one run that loads everything, as `sparkify run` does.

`sparkify_song_sensor` fingerprints `song_data/` (keys and versions) and, when it changes, asks
for one run that restages the catalog, rebuilds `songs` and `artists`, and re-matches `songplays`
over every staged day: a new song can match plays of any earlier day, and rebuilding the fact
from staging is SQL inside the warehouse (no lake reads), so the tables equal a clean full load.

Every run that changes songplays also rebuilds the analytics tables, which are read from the
star schema, so after any sequence of sensor runs every table equals a clean `sparkify run`.

Both ask for runs of one job, `sparkify_lake_updates`, each selecting the assets it needs.
Neither touches the warehouse: they read the lake only, so they never hold DuckDB's lock.
See docs/sensors.md."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, timedelta

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

from sparkify_assets.assets.analytics import ANALYTICS_TABLES
from sparkify_assets.partitions import FIRST_DAY, loaded_partitions, partition_days
from sparkify_assets.resources.lake import Lake, LakeFile, LakeResource

# Late or corrected files are picked up if their day is at most this many days before the last
# day seen; older re-uploads need a manual run of their partition (docs/sensors.md).
LOOKBACK_DAYS = 7
# Log files arrive once a day; a minute keeps the UI lively without listing S3 needlessly.
LOG_INTERVAL_SECONDS = 60
# The version recorded for a day whose file was removed while in the look-back window.
DELETED = "deleted"
# Listing song_data/ reads the whole catalog (song keys are not dated), so look less often.
SONG_INTERVAL_SECONDS = 300

CORE_ASSETS = ["staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time"]
# The answers are SQL over the star schema: whatever changes songplays or users changes them.
ANALYTICS_ASSETS = [t.name for t in ANALYTICS_TABLES]
EVENT_ASSETS = ["staging_events", "songplays", "users", "time", *ANALYTICS_ASSETS]
SONG_ASSETS = ["staging_songs", "songs", "artists", "songplays", "time", *ANALYTICS_ASSETS]
SONG_ONLY_ASSETS = ["staging_songs", "songs", "artists"]
# Dagster's documented run tags for one run over a range of partitions (backfills use them).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# Every sensor run carries this tag; a run-queue limit of 1 on it (dagster.yaml) runs them one
# after another, in the order the sensors asked for them (docs/sensors.md).
LAKE_UPDATE_TAG = "sparkify/lake_update"

# One job for both sensors: each request selects the assets it needs (a day's events, the
# catalog, or everything on a first evaluation).
sparkify_lake_updates = define_asset_job(
    "sparkify_lake_updates",
    selection=AssetSelection.assets(*CORE_ASSETS, *ANALYTICS_ASSETS),
    description=(
        "Runs asked for by the lake sensors: a day's events (staging_events, songplays, users, time), "
        "the song catalog (staging_songs, songs, artists, and songplays re-matched), or everything; "
        "each rebuilds the analytics tables when songplays changed."
    ),
)


class SensorCursorError(ValueError):
    """A sensor cursor that this code did not write (e.g. typed by hand in the UI)."""


def range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run cover the partitions first..last (the job's assets are single-run)."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


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
class LogCursor:
    """What the log sensor has seen: the last day, and {day: (version, revision)} for the window.

    The revision counts how often a day's file changed while in the window, so that putting back
    an earlier version (same ETag) still gets a run key of its own.
    """

    last_day: date | None = None
    seen: dict[date, tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> "LogCursor":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(
                date.fromisoformat(data["last_day"]),
                {date.fromisoformat(d): (str(v), int(n)) for d, (v, n) in data["seen"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SensorCursorError(
                f"The log sensor's cursor {raw[:80]!r} was not written by this sensor: reset it in the UI "
                "(Automation > sparkify_log_sensor > Reset cursor) to reload every day once."
            ) from None

    def to_json(self) -> str:
        return json.dumps(
            {
                "last_day": self.last_day.isoformat() if self.last_day else None,
                "seen": {d.isoformat(): [v, n] for d, (v, n) in sorted(self.seen.items())},
            },
            separators=(",", ":"),
        )


@dataclass
class LogTick:
    run_requests: list[RunRequest]
    cursor: LogCursor
    listed: int  # log files returned by the listing
    message: str


def plan_log_runs(
    lake: Lake,
    raw_cursor: str | None,
    last_day: date,
    lookback_days: int = LOOKBACK_DAYS,
    partitions: set[date] | None = None,
) -> LogTick:
    """Decide which days to reload; `last_day` is the newest partition that may be requested and
    `partitions`, when given, the days that are partitions (a file on any other day waits for the
    code location to reload, which makes its day a partition)."""
    cursor = LogCursor.parse(raw_cursor)
    first_day = date.fromisoformat(FIRST_DAY)

    def is_partition(day: date) -> bool:
        return first_day <= day <= last_day and (partitions is None or day in partitions)

    if cursor.last_day is None:
        return _bootstrap(lake, is_partition, lookback_days)

    since = cursor.last_day - timedelta(days=lookback_days)
    listed = lake.log_files(since)
    files = {f.day: f for f in listed if is_partition(f.day)}
    requests, seen = [], {}
    for day in sorted(set(files) | {d for d in cursor.seen if d >= since}):
        version, revision = cursor.seen.get(day, (None, -1))
        f = files.get(day)
        now = f.version if f else DELETED
        if version == now:
            seen[day] = (version, revision)
            continue
        # A run key per (day, version, revision): a retried tick repeats its keys, so Dagster
        # launches each run once; a file that changes (even back to an old version) gets a new one.
        revision += 1
        seen[day] = (now, revision)
        if f is None:  # removed: reload the day so its rows go too, as a clean load would
            reason = "deleted"
        else:
            reason = "new" if day > cursor.last_day else ("changed" if version else "late")
        requests.append(_day_request(day, now, revision, reason, f.key if f else ""))

    new_last = max([cursor.last_day, *files])
    window = new_last - timedelta(days=lookback_days)
    new_cursor = LogCursor(new_last, {d: s for d, s in seen.items() if d >= window})
    message = (
        f"Listed {len(listed)} log files since {since}; "
        f"{len(requests)} day(s) to load: {', '.join(r.partition_key for r in requests) or 'none'}"
    ) + _waiting(listed, files, first_day)
    return LogTick(requests, new_cursor, len(listed), message)


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


def _day_request(day: date, version: str, revision: int, reason: str, key: str) -> RunRequest:
    run_key = f"{day.isoformat()}:{version}" + (f":r{revision}" if revision else "")
    tags = {LAKE_UPDATE_TAG: "log", "sparkify/reason": reason}
    if key:
        tags["sparkify/log_key"] = key
    return RunRequest(
        run_key=run_key,
        partition_key=day.isoformat(),
        tags=tags,
        asset_selection=[AssetKey(a) for a in EVENT_ASSETS],
    )


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
    cursor = LogCursor(last, {f.day: (f.version, 0) for f in files if f.day >= window})
    run_key = f"all:{first}..{last}:{fingerprint(files)[:16]}"
    tags = {**range_tags(first, last), LAKE_UPDATE_TAG: "all", "sparkify/reason": "first evaluation"}
    request = RunRequest(run_key=run_key, tags=tags)
    return LogTick(
        [request], cursor, len(listed), f"First evaluation: one run loads everything, {first} to {last}"
    )


@sensor(
    job=sparkify_lake_updates,
    minimum_interval_seconds=LOG_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches log_data/ for new, late, changed or deleted daily files and reloads exactly those "
        f"days (look-back {LOOKBACK_DAYS} days); the first evaluation loads everything in one run."
    ),
)
def sparkify_log_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
    lk = lake.open()
    days = sensor_partition_days(context)
    tick = plan_log_runs(lk, context.cursor, last_partition_day(days), partitions=set(days))
    calls = getattr(lk, "list_calls", None)
    context.log.info(tick.message + (f" ({calls} S3 list calls)" if calls is not None else ""))
    if tick.run_requests:
        return SensorResult(run_requests=tick.run_requests, cursor=tick.cursor.to_json())
    return SensorResult(skip_reason=tick.message, cursor=tick.cursor.to_json())


@dataclass
class SongCursor:
    digest: str = ""
    runs: int = 0  # song runs requested so far: part of the run key, so an old catalog put back reloads

    @classmethod
    def parse(cls, raw: str | None) -> "SongCursor":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(str(data["digest"]), int(data["runs"]))
        except (ValueError, KeyError, TypeError):
            raise SensorCursorError(
                f"The song sensor's cursor {raw[:80]!r} was not written by this sensor: reset it in the UI "
                "(Automation > sparkify_song_sensor > Reset cursor) to reload the catalog once."
            ) from None

    def to_json(self) -> str:
        return json.dumps({"digest": self.digest, "runs": self.runs}, separators=(",", ":"))


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
) -> SongTick:
    """One run when the catalog's fingerprint changed: restage songs and re-match songplays.

    The plays re-matched are those of every day already staged (`staged_days`, from Dagster's
    record) or in the lake (a day run asked for earlier may still be waiting), so whichever day
    runs come before or after this run, every play ends up matched against the new catalog.
    With nothing staged yet, songplays is left alone: the first load builds it.
    """
    cursor = SongCursor.parse(raw_cursor)
    files = lake.song_files()
    if not files:
        return SongTick(None, cursor, f"No song files in {lake.url} yet")
    digest = fingerprint(files)
    if digest == cursor.digest:
        return SongTick(None, cursor, f"The song catalog is unchanged ({len(files)} files)")
    first_day = date.fromisoformat(FIRST_DAY)
    run_key = f"songs:{digest[:16]}:{cursor.runs + 1}"
    tags = {LAKE_UPDATE_TAG: "songs", "sparkify/reason": f"song catalog changed ({len(files)} files)"}
    days = (
        sorted(
            d
            for d in staged_days | set(lake.days())
            if first_day <= d <= last_day and (partitions is None or d in partitions)
        )
        if staged_days
        else []
    )
    if days:
        request = RunRequest(
            run_key=run_key,
            tags={**tags, **range_tags(days[0], days[-1])},
            asset_selection=[AssetKey(a) for a in SONG_ASSETS],
        )
        scope = f"and re-matches songplays {days[0]} to {days[-1]}"
    else:
        request = RunRequest(
            run_key=run_key, tags=tags, asset_selection=[AssetKey(a) for a in SONG_ONLY_ASSETS]
        )
        scope = "(no day staged yet)"
    message = f"The song catalog changed ({len(files)} files): one run restages it {scope}"
    return SongTick(request, SongCursor(digest, cursor.runs + 1), message)


@sensor(
    job=sparkify_lake_updates,
    minimum_interval_seconds=SONG_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches song_data/ and, when song files are added, changed or removed, restages the catalog, "
        "rebuilds songs and artists, and re-matches every day's songplays."
    ),
)
def sparkify_song_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
    staged = context.instance.get_materialized_partitions(AssetKey("staging_events"))
    days = sensor_partition_days(context)
    tick = plan_song_run(
        lake.open(),
        context.cursor,
        last_partition_day(days),
        {date.fromisoformat(k) for k in staged},
        partitions=set(days),
    )
    context.log.info(tick.message)
    if tick.run_request:
        return SensorResult(run_requests=[tick.run_request], cursor=tick.cursor.to_json())
    return SensorResult(skip_reason=tick.message, cursor=tick.cursor.to_json())


SENSORS = [sparkify_log_sensor, sparkify_song_sensor]
SENSOR_JOBS = [sparkify_lake_updates]
