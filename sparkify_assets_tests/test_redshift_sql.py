"""The Redshift path, short of a real cluster: every statement the project emits for Redshift
parses with sqlglot's Redshift dialect, the COPY statements are pinned by a golden text, the
JSONPaths derived from the table declaration equal the public file, and load errors read well."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sparkify_assets import checks, dialect, redshift
from sparkify_assets.assets.analytics import ANALYTICS_TABLES
from sparkify_assets.partitions import date_filter
from sparkify_assets.resources.warehouse import WarehouseError
from sparkify_assets.tables import ALL_TABLES, SONGPLAYS, STAR_TABLES

SHIPPED_JSONPATHS = Path(__file__).resolve().parents[1] / "sparkify_assets" / "data" / "log_json_path.json"
ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"
SETTINGS = redshift.CopySettings(ROLE, "us-west-2", "s3://sparkify-lake/lake/log_json_path.json")


def redshift_statements() -> list[str]:
    """Every statement the project sends to Redshift, rendered for Redshift."""
    stmts = [t.ddl("redshift") for t in (*ALL_TABLES, *ANALYTICS_TABLES)]
    stmts += [redshift.temp_load_ddl(redshift.EVENTS_LOAD), redshift.temp_load_ddl(redshift.SONGS_LOAD)]
    stmts += [
        redshift.copy_sql(
            redshift.EVENTS_LOAD,
            "s3://sparkify-lake/lake/log_data/2018/11/2018-11-01-events.json",
            SETTINGS,
            SETTINGS.jsonpaths_url,
        ),
        redshift.copy_sql(redshift.SONGS_LOAD, "s3://sparkify-lake/lake/song_data/", SETTINGS, "auto"),
        redshift.insert_events_sql("log_data/2018/11/2018-11-01-events.json", "2018-11-01"),
        redshift.insert_songs_sql("song_data/"),
        redshift.LINES_SCANNED_SQL,
        redshift.LOAD_ERRORS_SQL,
    ]
    partition = date_filter("e.source_date", dt.date(2018, 11, 1), dt.date(2018, 11, 30))
    for table in STAR_TABLES:
        select = table.transform_sql()
        if table is SONGPLAYS:
            select = select.format(partition_filter=partition)
        cols = ", ".join(table.column_names)
        stmts.append(dialect.render(f"INSERT INTO {table.name} ({cols})\n{select}", "redshift"))
    stmts += [dialect.render(sql, "redshift") for sql in checks.all_check_sql()]
    return stmts


@pytest.mark.parametrize("sql", redshift_statements(), ids=lambda s: " ".join(s.split())[:60])
def test_statement_parses_as_redshift(sql):
    parsed = sqlglot.parse(sql, read="redshift")
    assert len(parsed) == 1
    # A statement sqlglot does not understand falls back to an opaque Command: not a real parse.
    assert not isinstance(parsed[0], exp.Command), sql


def test_statement_count_covers_every_table():
    stmts = redshift_statements()
    for table in ALL_TABLES:
        assert any(s.startswith(f"CREATE TABLE IF NOT EXISTS {table.name} ") for s in stmts)
    assert sum(s.startswith("COPY ") for s in stmts) == 2


def _layout_columns(create: exp.Create) -> tuple[set[str], list[str]]:
    """A parsed CREATE TABLE's own columns, and every column its DISTKEY and SORTKEY name."""
    columns = {c.name for c in create.this.expressions if isinstance(c, exp.ColumnDef)}
    keyed = []
    for prop in create.args["properties"].expressions:
        if isinstance(prop, exp.DistKeyProperty):
            keyed.append(prop.this.name)
        elif isinstance(prop, exp.SortKeyProperty):
            keyed += [c.name for c in prop.this]
    return columns, keyed


def test_every_distkey_and_sortkey_is_a_column_of_its_table():
    # Redshift rejects a key on a missing column; the temp load tables once copied staging_events'
    # SORTKEY (source_date), a lineage column they do not have, so every COPY failed before it ran.
    creates = [
        p
        for p in (sqlglot.parse_one(s, read="redshift") for s in redshift_statements())
        if isinstance(p, exp.Create)
    ]
    names = {c.this.this.name for c in creates}
    expected = {t.name for t in (*ALL_TABLES, *ANALYTICS_TABLES)} | {
        "staging_events_load",
        "staging_songs_load",
    }
    assert names == expected
    keyed_tables = 0
    for create in creates:
        columns, keyed = _layout_columns(create)
        assert set(keyed) <= columns, (create.this.this.name, keyed)
        keyed_tables += bool(keyed)
    assert keyed_tables >= 5  # the test really saw keys (staging_events, songplays, songs, artists, time)


def test_temp_load_tables_have_no_keys():
    for load in (redshift.EVENTS_LOAD, redshift.SONGS_LOAD):
        create = sqlglot.parse_one(redshift.temp_load_ddl(load), read="redshift")
        assert _layout_columns(create)[1] == []


def test_redshift_ddl_carries_the_design_layout():
    ddl = {t.name: " ".join(t.ddl("redshift").split()) for t in ALL_TABLES}
    assert ddl["songplays"].endswith("DISTSTYLE KEY DISTKEY (song_id) SORTKEY (start_time)")
    assert ddl["songs"].endswith("DISTSTYLE KEY DISTKEY (song_id) SORTKEY (song_id)")
    assert ddl["artists"].endswith("DISTSTYLE KEY DISTKEY (artist_id) SORTKEY (artist_id)")
    assert ddl["users"].endswith("DISTSTYLE ALL")
    assert ddl["time"].endswith("DISTSTYLE ALL SORTKEY (start_time)")
    assert "DISTSTYLE EVEN" in ddl["staging_events"] and "DISTSTYLE EVEN" in ddl["staging_songs"]
    # Doubles stay double precision (DESIGN.md: REAL lost the sample's one song match).
    assert "length DOUBLE PRECISION" in ddl["staging_events"]
    assert "duration DOUBLE PRECISION" in ddl["staging_songs"]


def test_copy_statements_golden():
    events = redshift.copy_sql(
        redshift.EVENTS_LOAD,
        "s3://sparkify-lake/lake/log_data/2018/11/2018-11-01-events.json",
        SETTINGS,
        SETTINGS.jsonpaths_url,
    )
    assert events == (
        "COPY staging_events_load (artist, auth, first_name, gender, item_in_session, last_name, length, "
        "level, location, method, page, registration, session_id, song, status, ts, user_agent, user_id)\n"
        "FROM 's3://sparkify-lake/lake/log_data/2018/11/2018-11-01-events.json'\n"
        "IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-redshift-s3-read'\n"
        "FORMAT AS JSON 's3://sparkify-lake/lake/log_json_path.json'\n"
        "REGION 'us-west-2'\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )
    songs = redshift.copy_sql(redshift.SONGS_LOAD, "s3://sparkify-lake/lake/song_data/", SETTINGS, "auto")
    assert songs == (
        "COPY staging_songs_load (num_songs, artist_id, artist_latitude, artist_longitude, artist_location, "
        "artist_name, song_id, title, duration, year)\n"
        "FROM 's3://sparkify-lake/lake/song_data/'\n"
        "IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-redshift-s3-read'\n"
        "FORMAT AS JSON 'auto'\n"
        "REGION 'us-west-2'\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )


def test_jsonpaths_derived_from_the_declaration_equal_the_public_file():
    assert redshift.jsonpaths() == json.loads(SHIPPED_JSONPATHS.read_text())
    assert len(redshift.jsonpaths()["jsonpaths"]) == 18


def test_copy_quotes_what_it_interpolates():
    evil = redshift.copy_sql(redshift.SONGS_LOAD, "s3://b/it's/", SETTINGS, "auto")
    assert "FROM 's3://b/it''s/'" in evil
    assert len(sqlglot.parse(evil, read="redshift")) == 1


def test_copy_needs_a_role_arn():
    with pytest.raises(WarehouseError, match="IAM role ARN"):
        redshift.CopySettings("", "us-west-2", "s3://b/j.json")


def test_load_errors_become_one_sentence():
    rows = [
        ("s3://b/lake/log_data/2018/11/2018-11-03-events.json", 12, "ts", "Invalid digit, Value 'x', Pos 0"),
        ("s3://b/lake/log_data/2018/11/2018-11-03-events.json", 40, "length", "Invalid float"),
    ]
    text = redshift.describe_load_errors(rows)
    assert text == (
        "Redshift COPY rejected the data (2 first errors): "
        "s3://b/lake/log_data/2018/11/2018-11-03-events.json line 12, column ts: Invalid digit, Value 'x', Pos 0; "
        "s3://b/lake/log_data/2018/11/2018-11-03-events.json line 40, column length: Invalid float"
    )
    assert "\n" not in text
