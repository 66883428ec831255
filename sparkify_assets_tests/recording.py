"""A Redshift warehouse that records instead of connecting, for driving the project's real code.

`RecordingRedshift` is the production `RedshiftWarehouse` (its transaction, retry and
`_PostgresSession`, i.e. the Session that redshift.py uses) with only `connect()` replaced by a
DB-API connection that records every statement, COMMIT and ROLLBACK, answers queries with
hand-made rows, and can reject a COPY as Redshift does. Like PostgreSQL and Redshift, after a
failed statement it refuses everything but ROLLBACK, so a missing rollback shows.

`emitted_redshift_statements()` runs every asset, check and command that talks to the warehouse
against it, so the list is what the project emits, not a copy of its strings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from types import SimpleNamespace

import psycopg2

from sparkify_assets.resources.lake import LakeFile, LakeResource, S3Lake
from sparkify_assets.resources.warehouse import RedshiftWarehouse, WarehouseError

ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"
REDSHIFT_COPY_ERROR = (
    "Load into table 'staging_events_load' failed.  Check 'stl_load_errors' system table for details.\n"
)


def default_answer(sql: str) -> list[tuple]:
    """Plausible rows for the queries the project sends: one row of counts, else none; no
    failing rows for a check (so its asset's transaction commits)."""
    if sql.startswith("SELECT COUNT(*) FROM (") and sql.endswith(") failing"):
        return [(0,)]
    if sql.startswith("SELECT COUNT(*), SUM(records_read), SUM(rows_rejected)"):
        return [(1, 3, 0)]
    if sql.startswith(("SELECT COUNT(*)", "SELECT COALESCE(SUM(", "SELECT SUM(")):
        return [(3,)]
    if sql.startswith("SELECT table_name FROM information_schema.tables WHERE table_name IN ("):
        return [(name,) for name in re.findall(r"'(\w+)'", sql)]  # every table asked for exists
    if " UNION ALL " in sql and sql.startswith("SELECT '"):  # sparkify tables: (name, count) per table
        return [(name, 3) for name in re.findall(r"SELECT '(\w+)', COUNT", sql)]
    return []


class RedshiftAnswers:
    """Hand-made answers that follow COPY as Redshift does: COPY FROM a URL reads every object
    whose URL starts with it, and stl_load_commits then names each with its lines scanned.
    `objects` gives the objects there are (URL -> lines); other queries go to `rest`."""

    def __init__(
        self,
        objects: Callable[[], dict[str, int]],
        rest: Callable[[str], list[tuple]] = default_answer,
    ) -> None:
        self.objects, self.rest = objects, rest
        self.copied_from = ""

    def __call__(self, sql: str) -> list[tuple]:
        if sql.startswith("COPY "):
            self.copied_from = sql.split("\nFROM '", 1)[1].split("'", 1)[0]
        if sql.startswith("SELECT TRIM(filename), lines_scanned FROM stl_load_commits"):
            return [(url, n) for url, n in self.objects().items() if url.startswith(self.copied_from)]
        return self.rest(sql)


class RecordingConnection:
    def __init__(self, log: list[str], answer: Callable[[str], list[tuple]], fail: Callable[[str], bool]):
        self.log, self.answer, self.fail = log, answer, fail
        self.closed = 0
        self.aborted = False

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self)

    def commit(self) -> None:
        self.log.append("COMMIT")

    def rollback(self) -> None:
        self.log.append("ROLLBACK")
        self.aborted = False

    def close(self) -> None:
        self.closed = 1

    def set_session(self, **kwargs) -> None:
        pass


class RecordingCursor:
    def __init__(self, con: RecordingConnection) -> None:
        self.con = con
        self.rows: list[tuple] = []
        self.description = None

    def __enter__(self) -> RecordingCursor:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def execute(self, sql: str, params: tuple | None = None) -> None:
        if params is not None:
            # What psycopg2 sends: it quotes each value and puts it in its `%s` (client side).
            sql = sql % tuple(psycopg2.extensions.adapt(p).getquoted().decode() for p in params)
        con = self.con
        con.log.append(sql)
        if con.aborted:
            raise psycopg2.InternalError(
                "current transaction is aborted, commands ignored until end of transaction block"
            )
        if con.fail(sql):
            con.aborted = True
            raise psycopg2.InternalError(REDSHIFT_COPY_ERROR)
        self.rows = con.answer(sql)
        width = len(self.rows[0]) if self.rows else 1
        self.description = [(f"c{i}",) for i in range(width)]

    def fetchall(self) -> list[tuple]:
        return self.rows


class RecordingRedshift(RedshiftWarehouse):
    def __init__(
        self,
        answer: Callable[[str], list[tuple]] = default_answer,
        fail: Callable[[str], bool] = lambda sql: False,
    ) -> None:
        super().__init__("cluster.example", 5439, "sparkify", "dev", None, "require")
        self.log: list[str] = []
        self.answer, self.fail = answer, fail

    def connect(self) -> RecordingConnection:
        return RecordingConnection(self.log, self.answer, self.fail)

    @property
    def statements(self) -> list[str]:
        return [s for s in self.log if s not in ("COMMIT", "ROLLBACK")]


class RecordingResource:
    """Stands in for WarehouseResource: what the assets and checks read from it."""

    def __init__(
        self, warehouse: RecordingRedshift, log_jsonpath: str | None = None, region: str | None = None
    ) -> None:
        self.warehouse = warehouse
        self.iam_role, self.log_jsonpath, self.region = ROLE, log_jsonpath, region

    def open(self) -> RecordingRedshift:
        return self.warehouse


class RunContext:
    """What the assets and checks read from their Dagster context: one run over daily partitions
    (Dagster's direct-invocation context has no partition time window), every asset and check
    selected (or, with `checks_only`, only the checks), a log, and metadata sinks."""

    def __init__(self, first: dt.date, last: dt.date, checks_only: bool = False) -> None:
        start = dt.datetime.combine(first, dt.time())
        end = dt.datetime.combine(last, dt.time()) + dt.timedelta(days=1)
        self.partition_time_window = SimpleNamespace(start=start, end=end)
        days = (last - first).days + 1
        self.partition_keys = [(first + dt.timedelta(days=i)).isoformat() for i in range(days)]
        # A check run alone (the UI's "Execute checks") has no partition: it audits whole tables.
        self.has_partition_key_range = not checks_only
        self.has_partition_key = False  # a range, not the log sensor's single partition
        from sparkify_assets.definitions import defs

        self.selected_asset_check_keys = {
            k for a in defs.assets if hasattr(a, "check_keys") for k in a.check_keys
        }
        self.selected_asset_keys = (
            set() if checks_only else {k for a in defs.assets if hasattr(a, "keys") for k in a.keys}
        )
        self.log = SimpleNamespace(info=_ignore, warning=_ignore, debug=_ignore)
        self.metadata: list[tuple] = []

    def add_asset_metadata(self, *args, **kwargs) -> None:
        self.metadata.append((args, kwargs))

    def add_output_metadata(self, *args, **kwargs) -> None:
        self.metadata.append((args, kwargs))


def _ignore(*args, **kwargs) -> None:
    pass


def run_context(day: dt.date = dt.date(2018, 11, 2), checks_only: bool = False) -> RunContext:
    return RunContext(day, day, checks_only)


def emitted_redshift_statements() -> list[str]:
    """Every statement the project sends to Redshift, recorded from its own code: staging (COPY
    path), star and analytics assets with their checks, every check run alone, `sparkify tables`
    and `sparkify query`."""
    from sparkify_assets import checks, cli, query
    from sparkify_assets.assets import staging
    from sparkify_assets.assets.analytics import ANALYTICS_ASSETS, analysis_names
    from sparkify_assets.assets.star import artists, songplays, songs, time_dimension, users
    from sparkify_assets.partitions import date_filter
    from sparkify_assets.tables import STAGING_EVENTS, STAGING_SONGS

    day = dt.date(2018, 11, 2)
    # Only COPY reads the lake, by URL: no client is needed with the JSONPaths URL configured.
    lake = S3Lake(None, "sparkify-lake", "lake")
    log = LakeFile(f"log_data/2018/11/{day.isoformat()}-events.json", 1234, "etag-1", day)
    songs_files = [LakeFile("song_data/A/A/TRAAA.json", 250, "etag-2")]
    in_s3 = {f"s3://sparkify-lake/lake/{log.key}": 3, f"s3://sparkify-lake/lake/{songs_files[0].key}": 1}
    wh = RecordingRedshift(answer=RedshiftAnswers(lambda: in_s3))
    resource = RecordingResource(wh, log_jsonpath="s3://sparkify-lake/lake/log_json_path.json")
    ctx = run_context()
    staging.replace_staging(ctx, resource, lake, STAGING_EVENTS, [log], date_filter("source_date", day, day))
    staging.replace_staging(ctx, resource, lake, STAGING_SONGS, songs_files, "TRUE")
    for asset in (songplays, users, songs, artists, time_dimension, *ANALYTICS_ASSETS):
        list(asset.op.compute_fn.decorated_fn(ctx, resource))
    # The checks alone (e.g. `dagster asset check`): each asset's step, asked only for its checks.
    alone = run_context(checks_only=True)
    for asset in (staging.staging_events, staging.staging_songs):
        list(asset.op.compute_fn.decorated_fn(alone, resource, None))
    for asset in (songplays, users, songs, artists, time_dimension, *ANALYTICS_ASSETS):
        list(asset.op.compute_fn.decorated_fn(alone, resource))
    # The checks defined apart (the lake inventories) also list a lake: the shipped sample.
    for check in checks.build_checks():
        check.node_def.compute_fn.decorated_fn(ctx, resource, lake=LakeResource())
    cli.table_counts(wh)
    wh.table_exists("songplays")
    for name in analysis_names():
        query.query_analysis(wh, name)
    # A rejected COPY adds the stl_load_errors report.
    failing = RecordingRedshift(fail=lambda sql: sql.startswith("COPY "))
    resource.warehouse = failing
    try:
        staging.replace_staging(ctx, resource, lake, STAGING_SONGS, songs_files, "TRUE")
    except WarehouseError:
        pass
    return list(dict.fromkeys(wh.statements + failing.statements))  # in order, each once
