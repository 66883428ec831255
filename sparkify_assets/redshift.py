"""Staging on Redshift: the cluster reads S3 itself with COPY, in parallel.

Logs are copied one daily file at a time (with the JSONPaths file, in the load table's column
order) into a temporary load table, then inserted into `staging_events` with their lineage: one
COPY per file is what lets every row carry its source key and date. Songs are copied in one COPY
of the whole `song_data/` prefix with `JSON 'auto'`, since a catalog is many thousands of tiny
objects and one COPY spreads them over the slices.

Compression follows the files, as COPY needs to be told: a daily file is copied with `GZIP` when
its name ends in `.gz` or its first bytes are gzip's magic number (one ranged GET per day); the
song catalog is one COPY, so `GZIP` only when every song file is named `.gz` (a mix is refused).
Objects under log_data/ that are no day's file are not copied: they are inserted as whole-file
rejects, as the other backends record them.

Redshift's COPY does not report a row's line number, so `source_line` is NULL there. `TIMEFORMAT
'epochmillisecs'` is not used: `ts` is staged as BIGINT epoch milliseconds (the data contract), so
no column is a timestamp at COPY time; songplays converts it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace

from sparkify_assets.config import LAKE_REGION, LOG_JSONPATH
from sparkify_assets.errors import first_line
from sparkify_assets.parsing import GZIP_MAGIC, RAW_TEXT_LIMIT, WHOLE_FILE_LINE, _camel
from sparkify_assets.resources.lake import LakeError, LakeFile, S3Lake
from sparkify_assets.resources.warehouse import Session, WarehouseError
from sparkify_assets.tables import STAGING_EVENTS, STAGING_FILES, STAGING_REJECTS, STAGING_SONGS, Table

LOAD_ERROR_ROWS = 5


def load_table(table: Table) -> Table:
    """The COPY target for a staging table: its JSON columns only, in JSONPaths order.

    No layout of its own: the staging table's keys may name lineage columns the load table does
    not have (staging_events sorts by source_date), and Redshift rejects a SORTKEY or DISTKEY on a
    missing column. A session-local scratch table needs none: EVEN, unsorted.
    """
    return replace(
        table,
        name=f"{table.name}_load",
        columns=tuple(c for c in table.columns if c.name not in table.lineage_columns),
        lineage_columns=(),
        primary_key=(),
        partition_column=None,
        diststyle="EVEN",
        distkey=None,
        sortkey=(),
    )


EVENTS_LOAD = load_table(STAGING_EVENTS)
SONGS_LOAD = load_table(STAGING_SONGS)


def jsonpaths() -> dict:
    """The JSONPaths document for the logs, derived from the load table's columns (camelCase keys)."""
    return {"jsonpaths": [f"$['{_camel(c.name)}']" for c in EVENTS_LOAD.columns]}


def quote_literal(text: str) -> str:
    """A Redshift string literal, for COPY's options only: COPY is a utility statement that takes
    no bind parameters (its FROM, IAM_ROLE, FORMAT and REGION must be literals), while every
    value in a DML statement goes as a parameter. Redshift reads a backslash in a literal as an
    escape (as PostgreSQL did before standard_conforming_strings), so it is doubled, and so is `'`."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class CopySettings:
    iam_role: str
    region: str
    jsonpaths_url: str

    def __post_init__(self) -> None:
        if not self.iam_role.startswith("arn:aws:iam::"):
            raise WarehouseError(
                "Redshift COPY needs an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME): set "
                "SPARKIFY_REDSHIFT_IAM_ROLE or run `sparkify infra up`."
            )


def temp_load_ddl(load: Table) -> str:
    return load.ddl("redshift", temporary=True)


def copy_sql(load: Table, source: str, settings: CopySettings, json_option: str, gzip: bool = False) -> str:
    """A COPY of S3 JSON into a load table; `gzip`: the objects are gzip-compressed."""
    return (
        f"COPY {load.name} ({', '.join(load.column_names)})\n"
        f"FROM {quote_literal(source)}\n"
        f"IAM_ROLE {quote_literal(settings.iam_role)}\n"
        f"FORMAT AS JSON {quote_literal(json_option)}\n"
        + ("GZIP\n" if gzip else "")
        + f"REGION {quote_literal(settings.region)}\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )


def is_gzip(lake: S3Lake, f: LakeFile) -> bool:
    """Whether COPY must read `f` with GZIP: by its name, else by its magic bytes, as the other
    backends decide. An object whose first bytes cannot be read is taken as plain: COPY will then
    name the real problem."""
    if f.key.endswith(".gz"):
        return True
    if f.size < len(GZIP_MAGIC):
        return False
    try:
        return lake.head(f.key, len(GZIP_MAGIC)) == GZIP_MAGIC
    except LakeError:
        return False


# The lineage values are parameters: source_key, then (events) source_date. `DATE ?` is valid
# because psycopg2 puts the quoted value in place (client side), giving DATE '2018-11-02'.
_EVENT_COLUMNS = [c for c in STAGING_EVENTS.column_names if c not in STAGING_EVENTS.lineage_columns]
_EVENT_SELECT = ", ".join("NULLIF(user_id, '')" if c == "user_id" else c for c in _EVENT_COLUMNS)
INSERT_EVENTS_SQL = (
    f"INSERT INTO {STAGING_EVENTS.name} ({', '.join(_EVENT_COLUMNS)}, source_key, source_line, source_date)\n"
    f"SELECT {_EVENT_SELECT}, ?, NULL, DATE ? FROM {EVENTS_LOAD.name}"
)
INSERT_SONGS_SQL = (
    f"INSERT INTO {STAGING_SONGS.name} ({', '.join(SONGS_LOAD.column_names)}, source_key, source_line)\n"
    f"SELECT {', '.join(SONGS_LOAD.column_names)}, ?, NULL FROM {SONGS_LOAD.name}"
)


LOADED_FILES_SQL = (
    "SELECT TRIM(filename), lines_scanned FROM stl_load_commits WHERE query = pg_last_copy_id()"
)
FILENAME_WIDTH = 256  # stl_load_commits.filename is CHAR(256)
STRAY_SHOWN = 3
LOAD_ERRORS_SQL = (
    "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(err_reason) FROM stl_load_errors "
    f"WHERE session = pg_backend_pid() ORDER BY starttime DESC LIMIT {LOAD_ERROR_ROWS}"
)


def describe_load_errors(rows: list[tuple]) -> str:
    """One readable sentence from stl_load_errors rows (file, line, column, reason)."""
    if not rows:
        return "Redshift COPY failed and stl_load_errors has no rows for this session."
    parts = [f"{f} line {line}, column {col}: {reason}" for f, line, col, reason in rows]
    return f"Redshift COPY rejected the data ({len(rows)} first errors): " + "; ".join(parts)


def _s3_url(lake: S3Lake, key: str) -> str:
    return f"s3://{lake.bucket}/{lake.prefix}{key}"


def _require_s3(lake) -> S3Lake:
    if not isinstance(lake, S3Lake):
        raise WarehouseError(
            "Redshift loads the lake with COPY from S3: set SPARKIFY_LAKE_URL to s3://bucket/prefix."
        )
    return lake


def _copy(tx: Session, sql: str) -> None:
    try:
        tx.execute(sql)
    except WarehouseError:
        raise
    except Exception as exc:
        details = tx.after_error(LOAD_ERRORS_SQL)
        raise WarehouseError(
            describe_load_errors(details) if details is not None else f"COPY failed: {exc}"
        ) from None


def _lines_loaded(tx: Session, source: str, expected: set[str]) -> int:
    """Lines the last COPY scanned, refusing it if it read objects other than the lake's files.

    COPY FROM a key is a prefix match: `…-events.json` also loads `…-events.json.bak`, and
    `song_data/` loads every object under it. Staging those would double or corrupt rows, so the
    transaction is rolled back with the objects named instead.
    """
    rows = tx.query(LOADED_FILES_SQL)
    wanted = {url[:FILENAME_WIDTH] for url in expected}
    stray = sorted({str(name) for name, _ in rows} - wanted)
    if stray:
        shown = ", ".join(stray[:STRAY_SHOWN]) + (
            f" and {len(stray) - STRAY_SHOWN} more" if len(stray) > STRAY_SHOWN else ""
        )
        raise WarehouseError(
            f"Redshift COPY from {source} also read {len(stray)} object(s) that are not lake files "
            f"({shown}): COPY matches every key with that prefix, so move or rename them."
        )
    return sum(int(lines) for _, lines in rows)


def copy_events(tx: Session, lake, files: list[LakeFile], settings: CopySettings) -> dict[str, int]:
    """COPY each daily log file, then insert it with its lineage; returns load totals."""
    lake = _require_s3(lake)
    totals = {"files": 0, "records_read": 0, "rows_staged": 0, "rows_rejected": 0}
    tx.execute(temp_load_ddl(EVENTS_LOAD))
    for f in files:
        source = _s3_url(lake, f.key)
        _copy(tx, copy_sql(EVENTS_LOAD, source, settings, settings.jsonpaths_url, is_gzip(lake, f)))
        read = _lines_loaded(tx, source, {source})
        staged = int(tx.query(f"SELECT COUNT(*) FROM {EVENTS_LOAD.name}")[0][0])
        tx.execute(INSERT_EVENTS_SQL, [f.key, f.day.isoformat()])
        tx.execute(f"DELETE FROM {EVENTS_LOAD.name}")
        _insert_files_row(tx, STAGING_EVENTS, f.key, f.day.isoformat(), f.version, f.size, read, staged)
        totals["files"] += 1
        totals["records_read"] += read
        totals["rows_staged"] += staged
    return totals


def copy_songs(tx: Session, lake, files: list[LakeFile], settings: CopySettings) -> dict[str, int]:
    """One COPY of the whole song_data/ prefix. Objects the lake rejected by name are not in
    `expected`: COPY reads them anyway (a prefix match), so the load stops and names them."""
    lake = _require_s3(lake)
    files = [f for f in files if f.reject is None]
    source = _s3_url(lake, "song_data/")
    compressed = {f.key.endswith(".gz") for f in files}
    if len(compressed) > 1:
        raise WarehouseError(
            f"Redshift reads {source} in one COPY, which takes one compression, but its song files "
            "mix gzip (.gz) and plain JSON: compress all of them or none."
        )
    tx.execute(temp_load_ddl(SONGS_LOAD))
    _copy(tx, copy_sql(SONGS_LOAD, source, settings, "auto", compressed == {True}))
    read = _lines_loaded(tx, source, {_s3_url(lake, f.key) for f in files})
    staged = int(tx.query(f"SELECT COUNT(*) FROM {SONGS_LOAD.name}")[0][0])
    tx.execute(INSERT_SONGS_SQL, ["song_data/"])
    size = sum(f.size for f in files)
    _insert_files_row(tx, STAGING_SONGS, "song_data/", None, f"{len(files)} objects", size, read, staged)
    return {"files": len(files), "records_read": read, "rows_staged": staged, "rows_rejected": 0}


def insert_whole_file_rejects(tx: Session, table: Table, files: list[LakeFile]) -> None:
    """Objects the lake rejected as a whole (never copied): one reject and one file row each, as
    the other backends record them."""
    for f in files:
        reason = (f.reject or "")[:RAW_TEXT_LIMIT]
        tx.execute(
            f"INSERT INTO {STAGING_REJECTS.name} ({', '.join(STAGING_REJECTS.column_names)}) VALUES "
            f"(?, ?, {WHOLE_FILE_LINE}, NULL, ?, '')",
            [table.name, f.key, reason],
        )
        _insert_files_row(tx, table, f.key, None, f.version, f.size, 1, 0, rejected=1)


def _insert_files_row(
    tx: Session,
    table: Table,
    key: str,
    day: str | None,
    version: str,
    size: int,
    read: int,
    staged: int,
    rejected: int = 0,
) -> None:
    counts = [int(size), int(read), int(staged), int(rejected)]
    tx.execute(
        f"INSERT INTO {STAGING_FILES.name} ({', '.join(STAGING_FILES.column_names)}) "
        f"VALUES (?, ?, {'DATE ?' if day else 'NULL'}, ?, ?, ?, ?, ?)",
        [table.name, key, *([day] if day else []), version, *counts],
    )


def jsonpaths_document() -> str:
    return json.dumps(jsonpaths(), indent=4)


def ensure_jsonpaths(lake, configured: str | None) -> str:
    """The JSONPaths file's S3 URL: the configured one, or log_json_path.json next to the data,
    uploaded there (derived from the table declaration) when missing."""
    if configured:
        return configured
    lake = _require_s3(lake)
    key = f"{lake.prefix}log_json_path.json"
    url = f"s3://{lake.bucket}/{key}"
    try:
        lake.client.head_object(Bucket=lake.bucket, Key=key)
    except Exception:
        try:
            lake.client.put_object(Bucket=lake.bucket, Key=key, Body=jsonpaths_document().encode())
        except Exception as exc:
            # A read-only lake is common (the public udacity-dend bucket): say what to do instead
            # of surfacing botocore's exception.
            raise WarehouseError(
                f"Cannot upload the logs' JSONPaths file to {url} ({_s3_reason(exc)}): upload "
                "sparkify_assets/data/log_json_path.json somewhere Redshift can read and set "
                f"{LOG_JSONPATH} to its s3:// URL."
            ) from None
    return url


def _s3_reason(exc: Exception) -> str:
    """botocore's error code (AccessDenied, NoSuchBucket...), else the message's first line."""
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    return code or first_line(exc)


def copy_region(lake, configured: str | None = None) -> str:
    """COPY's REGION: where the bucket is, which may differ from the cluster's region.

    In order: the configured region (the resource's, from SPARKIFY_LAKE_REGION), then
    SPARKIFY_LAKE_REGION itself, then the bucket's location as S3 reports it, then AWS_REGION or
    AWS_DEFAULT_REGION, then us-west-2 (the public Sparkify lake's region).
    """
    explicit = configured or os.environ.get(LAKE_REGION)
    if explicit:
        return explicit
    return (
        _require_s3(lake).bucket_region()
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-west-2"
    )
