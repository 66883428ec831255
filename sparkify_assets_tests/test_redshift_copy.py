"""The Redshift COPY path run for real, short of a cluster: the staging asset's code drives a
recording Redshift connection (recording.py) over a lake in moto's S3 server on 127.0.0.1. What
is asserted comes from the contract and the hand-made lake below, never from the code under test:
the statements sent for a one-day partition, the JSONPaths upload, the error of a rejected COPY,
and the region COPY is given (the bucket's, not the cluster's)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import boto3
import pytest
import sqlglot
from botocore.stub import Stubber
from sqlglot import exp

from sparkify_assets import config, redshift
from sparkify_assets.assets import staging
from sparkify_assets.checks import AuditFailed
from sparkify_assets.partitions import date_filter
from sparkify_assets.resources.lake import open_lake
from sparkify_assets.resources.warehouse import WarehouseError
from sparkify_assets.tables import STAGING_EVENTS, STAGING_SONGS
from sparkify_assets_tests.recording import (
    ROLE,
    RecordingRedshift,
    RecordingResource,
    RedshiftAnswers,
    run_context,
)

SHIPPED_JSONPATHS = Path(__file__).resolve().parents[1] / "sparkify_assets" / "data" / "log_json_path.json"
DAYS = [dt.date(2018, 11, 1), dt.date(2018, 11, 2), dt.date(2018, 11, 3)]
LAKE_BUCKET_REGION = "eu-central-1"  # not the AWS_REGION (us-west-2) the aws_env fixture sets


def _event(ts: int) -> str:
    return json.dumps({"page": "NextSong", "sessionId": 1, "ts": ts, "userId": "7", "level": "free"})


def _make_bucket(region: str) -> str:
    bucket = f"sparkify-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)  # us-east-1 takes no LocationConstraint
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    return bucket


@pytest.fixture
def lake_bucket(aws_env) -> str:
    """A hand-made lake: three daily log files of 3 events and two song files, in eu-central-1."""
    bucket = _make_bucket(LAKE_BUCKET_REGION)
    s3 = boto3.client("s3")
    for day in DAYS:
        body = "\n".join(_event(1541030400000 + i) for i in range(3)) + "\n"
        s3.put_object(Bucket=bucket, Key=f"lake/log_data/2018/11/{day.isoformat()}-events.json", Body=body)
    for name in ("TRAAA", "TRAAB"):
        s3.put_object(
            Bucket=bucket, Key=f"lake/song_data/A/A/{name}.json", Body=json.dumps({"song_id": name})
        )
    return bucket


def _counts(sql: str) -> list[tuple]:
    """The load tables hold 3 events or 2 songs, and so do the staging tables after the load (a
    one-day run); nothing else is counted (no check finds a failing row)."""
    if (
        sql.startswith("SELECT COUNT(*) FROM staging_events_load")
        or sql == "SELECT COUNT(*) FROM staging_events"
    ):
        return [(3,)]
    if (
        sql.startswith("SELECT COUNT(*) FROM staging_songs_load")
        or sql == "SELECT COUNT(*) FROM staging_songs"
    ):
        return [(2,)]
    if sql.startswith("SELECT COUNT(*), SUM(records_read), SUM(rows_rejected) FROM staging_files"):
        return [(1, 2, 0)]  # the songs' one staging_files row (song_data/): 2 records, none rejected
    if sql.startswith("SELECT COUNT(*)"):
        return [(0,)]
    return []


def _redshift_over(bucket: str) -> RedshiftAnswers:
    """Redshift's answers over the moto bucket: what COPY reads is what S3 holds under its FROM,
    each object with its own count of lines."""

    def objects() -> dict[str, int]:
        s3 = boto3.client("s3")
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        bodies = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}
        return {f"s3://{bucket}/{key}": len(body.splitlines()) for key, body in bodies.items()}

    return RedshiftAnswers(objects, _counts)


def _assert_real_redshift_sql(statements: list[str]) -> None:
    for sql in statements:
        parsed = sqlglot.parse(sql, read="redshift")
        assert len(parsed) == 1 and not isinstance(parsed[0], exp.Command), sql


def _stage_events(
    wh: RecordingRedshift, lake, first: dt.date, last: dt.date | None = None, **options
) -> None:
    """staging_events of the lake's days `first` to `last` (default: that one day) through the
    recorded Redshift `wh`; `options` go to its RecordingResource."""
    last = last or first
    staging.replace_staging(
        run_context(first),
        RecordingResource(wh, **options),
        lake,
        STAGING_EVENTS,
        lake.log_files(first, last),
        date_filter("source_date", first, last),
    )


def test_one_day_partition_copies_only_that_day(lake_bucket):
    lake = open_lake(f"s3://{lake_bucket}/lake")
    day = DAYS[1]
    key = f"log_data/2018/11/{day.isoformat()}-events.json"
    head = boto3.client("s3").head_object(Bucket=lake_bucket, Key=f"lake/{key}")
    wh = RecordingRedshift(answer=_redshift_over(lake_bucket))
    _stage_events(wh, lake, day)

    stmts = wh.statements
    _assert_real_redshift_sql(stmts)
    copies = [s for s in stmts if s.startswith("COPY ")]
    assert len(copies) == 1
    copy = copies[0]
    assert f"\nFROM 's3://{lake_bucket}/lake/{key}'\n" in copy
    assert f"IAM_ROLE '{ROLE}'" in copy
    # The JSONPaths file was uploaded next to the data (no URL configured) and COPY uses it.
    assert f"FORMAT AS JSON 's3://{lake_bucket}/lake/log_json_path.json'" in copy
    uploaded = boto3.client("s3").get_object(Bucket=lake_bucket, Key="lake/log_json_path.json")
    assert json.loads(uploaded["Body"].read()) == json.loads(SHIPPED_JSONPATHS.read_text())

    window = "source_date BETWEEN DATE '2018-11-02' AND DATE '2018-11-02'"
    after_ddl = stmts[stmts.index(f"DELETE FROM staging_events WHERE {window}") :]
    expected_heads = [
        f"DELETE FROM staging_events WHERE {window}",
        f"DELETE FROM staging_rejects WHERE target_table = 'staging_events' AND {window}",
        f"DELETE FROM staging_files WHERE target_table = 'staging_events' AND {window}",
        "CREATE TEMP TABLE IF NOT EXISTS staging_events_load (",
        "COPY staging_events_load (",
        "SELECT TRIM(filename), lines_scanned FROM stl_load_commits WHERE query = pg_last_copy_id()",
        "SELECT COUNT(*) FROM staging_events_load",
        "INSERT INTO staging_events (",
        "DELETE FROM staging_events_load",
        "INSERT INTO staging_files (",
    ]
    assert [s for s, h in zip(after_ddl, expected_heads, strict=False) if s.startswith(h)] == after_ddl[:10]
    insert, files_row = after_ddl[7], after_ddl[9]
    assert insert.endswith(f", '{key}', NULL, DATE '2018-11-02' FROM staging_events_load")
    etag = head["ETag"].strip('"')
    assert files_row.endswith(
        f"VALUES ('staging_events', '{key}', DATE '2018-11-02', '{etag}', {head['ContentLength']}, 3, 3, 0)"
    )
    assert wh.log[-1] == "COMMIT" and "ROLLBACK" not in wh.log
    # The checks ran after the COPY and the inserts, in the same transaction, before its one COMMIT.
    audit = wh.log[wh.log.index(files_row) + 1 : -1]
    assert wh.log.count("COMMIT") == 1
    assert any("records_read <> staged + rejected" in s for s in audit)
    assert all("COMMIT" != s for s in audit)
    # has_rows and reconcile_records' file counts reuse what the step counted: no query of their own.
    assert stmts.count("SELECT COUNT(*) FROM staging_events") == 1  # the metadata's table_rows
    assert not any("SUM(records_read)" in s for s in stmts)


def test_a_failing_check_rolls_back_the_copy(lake_bucket):
    """Redshift says a file's rows do not add up (one failing row of reconcile_records): the COPY
    and the inserts are rolled back, nothing is committed, and the error names the check."""
    lake = open_lake(f"s3://{lake_bucket}/lake")
    day = DAYS[1]
    over = _redshift_over(lake_bucket)

    def answers(sql: str) -> list[tuple]:
        if "records_read <> staged + rejected" in sql:
            return [(1,)] if sql.startswith("SELECT COUNT(*)") else [("log_data/x.json", 3, 2, 0)]
        return over(sql)

    wh = RecordingRedshift(answer=answers)
    with pytest.raises(AuditFailed) as caught:
        _stage_events(wh, lake, day)
    assert str(caught.value).startswith(
        "Check staging_events reconcile_records failed: 1 failing row(s), first: "
    )
    assert any(s.startswith("COPY ") for s in wh.log)
    assert "COMMIT" not in wh.log and wh.log[-1] == "ROLLBACK"


def test_songs_are_one_copy_of_the_prefix(lake_bucket):
    lake = open_lake(f"s3://{lake_bucket}/lake")
    wh = RecordingRedshift(answer=_redshift_over(lake_bucket))
    staging.replace_staging(
        run_context(), RecordingResource(wh), lake, STAGING_SONGS, lake.song_files(), "TRUE"
    )
    stmts = wh.statements
    _assert_real_redshift_sql(stmts)
    copies = [s for s in stmts if s.startswith("COPY ")]
    assert len(copies) == 1
    assert f"FROM 's3://{lake_bucket}/lake/song_data/'" in copies[0]
    assert "FORMAT AS JSON 'auto'" in copies[0]
    size = len(json.dumps({"song_id": "TRAAA"})) + len(json.dumps({"song_id": "TRAAB"}))
    # Two one-line files: 2 lines scanned (stl_load_commits), 2 rows loaded.
    assert any(
        s.endswith(f"VALUES ('staging_songs', 'song_data/', NULL, '2 objects', {size}, 2, 2, 0)")
        for s in stmts
    )


@pytest.mark.parametrize(
    ("table", "stray_key"),
    [
        (STAGING_EVENTS, "lake/log_data/2018/11/2018-11-02-events.json.bak"),
        (STAGING_SONGS, "lake/song_data/A/A/notes.txt"),
    ],
)
def test_a_copy_that_reads_objects_beyond_the_lake_files_is_refused(lake_bucket, table, stray_key):
    """COPY FROM a key loads every object with that prefix: a stray object beside the lake's
    files would be staged twice over (a .bak of a day) or as songs; the run stops, names it and
    commits nothing."""
    boto3.client("s3").put_object(Bucket=lake_bucket, Key=stray_key, Body=_event(1541030400000) + "\n")
    lake = open_lake(f"s3://{lake_bucket}/lake")
    wh = RecordingRedshift(answer=_redshift_over(lake_bucket))
    day = DAYS[1]
    if table is STAGING_EVENTS:
        files, where, source = lake.log_files(day, day), date_filter("source_date", day, day), stray_key[:-4]
    else:
        files, where, source = lake.song_files(), "TRUE", "lake/song_data/"
    assert stray_key not in {f"lake/{f.key}" for f in files}  # the lake's own listing skips it
    with pytest.raises(WarehouseError) as caught:
        staging.replace_staging(run_context(day), RecordingResource(wh), lake, table, files, where)
    assert str(caught.value) == (
        f"Redshift COPY from s3://{lake_bucket}/{source} also read 1 object(s) that are not lake "
        f"files (s3://{lake_bucket}/{stray_key}): COPY matches every key with that prefix, so move "
        "or rename them."
    )
    assert "COMMIT" not in wh.log and wh.log[-1] == "ROLLBACK"


def test_rejected_copy_is_one_readable_error_after_a_rollback(lake_bucket):
    bad = f"s3://{lake_bucket}/lake/log_data/2018/11/2018-11-02-events.json"
    load_errors = [
        (bad, 2, "ts", "Invalid digit, Value 'x', Pos 0, Type: Long"),
        (bad, 3, "session_id", "Missing data for not-null field"),
    ]

    redshift_answers = _redshift_over(lake_bucket)

    def answers(sql: str) -> list[tuple]:
        return load_errors if "FROM stl_load_errors" in sql else redshift_answers(sql)

    lake = open_lake(f"s3://{lake_bucket}/lake")
    wh = RecordingRedshift(answer=answers, fail=lambda sql: sql.startswith("COPY "))
    day = DAYS[1]
    with pytest.raises(WarehouseError) as caught:
        _stage_events(wh, lake, day, log_jsonpath="s3://elsewhere/log_json_path.json")
    assert str(caught.value) == (
        "Redshift COPY rejected the data (2 first errors): "
        f"{bad} line 2, column ts: Invalid digit, Value 'x', Pos 0, Type: Long; "
        f"{bad} line 3, column session_id: Missing data for not-null field"
    )
    log = wh.log
    copy_at = next(i for i, s in enumerate(log) if s.startswith("COPY "))
    # The failed transaction is rolled back before stl_load_errors is read (Redshift refuses any
    # other statement in it), nothing is staged or committed, and the run's transaction ends.
    assert log[copy_at + 1] == "ROLLBACK"
    assert "FROM stl_load_errors" in log[copy_at + 2]
    assert "COMMIT" not in log and log[-1] == "ROLLBACK"
    assert not any(s.startswith(("INSERT INTO staging_events ", "INSERT INTO staging_files ")) for s in log)


def test_ensure_jsonpaths_uploads_once_and_respects_a_configured_url(lake_bucket):
    s3 = boto3.client("s3")
    lake = open_lake(f"s3://{lake_bucket}/lake")
    assert redshift.ensure_jsonpaths(lake, "s3://other/paths.json") == "s3://other/paths.json"
    assert "Contents" not in s3.list_objects_v2(Bucket=lake_bucket, Prefix="lake/log_json_path.json")
    url = redshift.ensure_jsonpaths(lake, None)
    assert url == f"s3://{lake_bucket}/lake/log_json_path.json"
    body = s3.get_object(Bucket=lake_bucket, Key="lake/log_json_path.json")["Body"].read()
    assert json.loads(body) == json.loads(SHIPPED_JSONPATHS.read_text())
    # A file already there (perhaps edited by the team) is left alone.
    s3.put_object(Bucket=lake_bucket, Key="lake/log_json_path.json", Body=b'{"jsonpaths": ["kept"]}')
    assert redshift.ensure_jsonpaths(lake, None) == url
    assert (
        s3.get_object(Bucket=lake_bucket, Key="lake/log_json_path.json")["Body"].read()
        == b'{"jsonpaths": ["kept"]}'
    )


def test_ensure_jsonpaths_upload_refused_is_one_sentence(lake_bucket):
    lake = open_lake(f"s3://{lake_bucket}/lake")
    # A read-only lake (such as the public udacity-dend bucket): S3 answers HEAD 404, PUT 403.
    with Stubber(lake.client) as stub:
        stub.add_client_error("head_object", "404", "Not Found", 404)
        stub.add_client_error("put_object", "AccessDenied", "Access Denied", 403)
        with pytest.raises(WarehouseError) as caught:
            redshift.ensure_jsonpaths(lake, None)
    assert str(caught.value) == (
        f"Cannot upload the logs' JSONPaths file to s3://{lake_bucket}/lake/log_json_path.json "
        "(AccessDenied): upload sparkify_assets/data/log_json_path.json somewhere Redshift can read and "
        "set SPARKIFY_LOG_JSONPATH to its s3:// URL."
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# --- COPY's REGION: the bucket's, not the cluster's ------------------------------------------------


def test_copy_region_is_the_buckets_location(lake_bucket, monkeypatch):
    monkeypatch.delenv("SPARKIFY_LAKE_REGION", raising=False)
    assert redshift.copy_region(open_lake(f"s3://{lake_bucket}/lake")) == "eu-central-1"
    # us-east-1 buckets report an empty LocationConstraint.
    east = _make_bucket("us-east-1")
    assert redshift.copy_region(open_lake(f"s3://{east}/lake")) == "us-east-1"


def test_copy_region_order(aws_env, monkeypatch):
    missing = open_lake("s3://no-such-sparkify-bucket/lake")  # its location cannot be read
    monkeypatch.delenv("SPARKIFY_LAKE_REGION", raising=False)
    assert redshift.copy_region(missing) == "us-west-2"  # AWS_REGION from aws_env
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ca-central-1")
    assert redshift.copy_region(missing) == "ca-central-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert redshift.copy_region(missing) == "us-west-2"
    # SPARKIFY_LAKE_REGION wins over the bucket's location; the resource's region over both.
    lake = open_lake(f"s3://{_make_bucket('eu-central-1')}/lake")
    monkeypatch.setenv("SPARKIFY_LAKE_REGION", "ap-south-1")
    assert redshift.copy_region(lake) == "ap-south-1"
    assert redshift.copy_region(lake, "sa-east-1") == "sa-east-1"


def test_lake_region_setting_reaches_the_warehouse_resource(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for var in ("SPARKIFY_DWH_CFG", "SPARKIFY_REDSHIFT_STATE", "SPARKIFY_LAKE_REGION"):
        monkeypatch.delenv(var, raising=False)
    assert config.warehouse_resource().region is None
    monkeypatch.setenv("SPARKIFY_LAKE_REGION", "eu-central-1")
    region = config.warehouse_resource().region
    assert region.env_var_name == "SPARKIFY_LAKE_REGION"  # an EnvVar, resolved when the run starts


def test_gzip_days_are_copied_with_gzip_by_name_or_by_magic_bytes(lake_bucket):
    """Issue 14: COPY must be told a file is gzip-compressed; the other backends decide by the
    magic bytes, so Redshift's COPY gets GZIP for a .json.gz day and for gzip under a .json name."""
    import gzip

    s3 = boto3.client("s3")
    body = ("\n".join(_event(1541030400000 + i) for i in range(3)) + "\n").encode()
    s3.delete_object(Bucket=lake_bucket, Key="lake/log_data/2018/11/2018-11-02-events.json")
    s3.put_object(
        Bucket=lake_bucket, Key="lake/log_data/2018/11/2018-11-02-events.json.gz", Body=gzip.compress(body)
    )
    s3.put_object(
        Bucket=lake_bucket, Key="lake/log_data/2018/11/2018-11-03-events.json", Body=gzip.compress(body)
    )
    lake = open_lake(f"s3://{lake_bucket}/lake")
    wh = RecordingRedshift(answer=_redshift_over(lake_bucket))
    first, last = DAYS[0], DAYS[-1]
    _stage_events(wh, lake, first, last)
    copies = [s for s in wh.statements if s.startswith("COPY ")]
    _assert_real_redshift_sql(copies)
    gzip_by_source = {
        c.split("\nFROM '", 1)[1].split("'", 1)[0].rsplit("/", 1)[1]: "\nGZIP\n" in c for c in copies
    }
    assert gzip_by_source == {
        "2018-11-01-events.json": False,
        "2018-11-02-events.json.gz": True,
        "2018-11-03-events.json": True,
    }


def test_song_files_mixing_gzip_and_plain_are_refused_in_one_sentence(lake_bucket):
    boto3.client("s3").put_object(
        Bucket=lake_bucket, Key="lake/song_data/A/A/TRAAC.json.gz", Body=b"\x1f\x8b"
    )
    lake = open_lake(f"s3://{lake_bucket}/lake")
    wh = RecordingRedshift(answer=_redshift_over(lake_bucket))
    with pytest.raises(WarehouseError) as caught:
        staging.replace_staging(
            run_context(), RecordingResource(wh), lake, STAGING_SONGS, lake.song_files(), "TRUE"
        )
    assert str(caught.value) == (
        f"Redshift reads s3://{lake_bucket}/lake/song_data/ in one COPY, which takes one compression, but "
        "its song files mix gzip (.gz) and plain JSON: compress all of them or none."
    )
    assert "COMMIT" not in wh.log


def test_objects_under_log_data_that_are_no_day_are_whole_file_rejects_on_redshift(lake_bucket):
    """Not copied (no COPY reads them): inserted as rejects with line 0, as DuckDB and PostgreSQL
    record them, after the undated rows of the last run are deleted."""
    s3 = boto3.client("s3")
    s3.put_object(Bucket=lake_bucket, Key="lake/log_data/notes.txt", Body=b"it's here")
    s3.put_object(Bucket=lake_bucket, Key="lake/log_data/2018/11/.DS_Store", Body=b"\x00")
    lake = open_lake(f"s3://{lake_bucket}/lake")
    wh = RecordingRedshift(answer=_redshift_over(lake_bucket))
    day = DAYS[0]
    inventory = lake.inventory("log_data")
    assert [f.key for f in inventory.rejected] == ["log_data/notes.txt"]
    staging.replace_staging(
        run_context(day),
        RecordingResource(wh),
        lake,
        STAGING_EVENTS,
        [f for f in inventory.loaded if f.day == day],
        date_filter("source_date", day, day),
        inventory,
    )
    stmts = wh.statements
    _assert_real_redshift_sql(stmts)
    reason = "not a daily log file (log_data/YYYY/MM/YYYY-MM-DD-events.json or .json.gz)"
    assert (
        "INSERT INTO staging_rejects (target_table, source_key, source_line, source_date, reason, raw_text) "
        f"VALUES ('staging_events', 'log_data/notes.txt', 0, NULL, '{reason}', '')"
    ) in stmts
    deletes = [
        "DELETE FROM staging_rejects WHERE target_table = 'staging_events' AND source_date IS NULL",
        "DELETE FROM staging_files WHERE target_table = 'staging_events' AND source_date IS NULL",
    ]
    at = [stmts.index(d) for d in deletes]
    assert at[0] < at[1] < next(i for i, s in enumerate(stmts) if s.startswith("INSERT INTO staging_rejects"))
    assert any(
        s.endswith("VALUES ('staging_events', 'log_data/notes.txt', NULL, '', 9, 1, 0, 1)") for s in stmts
    )
    assert wh.log[-1] == "COMMIT"
