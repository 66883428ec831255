"""The Redshift path, short of a real cluster: every statement the project emits for Redshift
parses with sqlglot's Redshift dialect, the COPY statements are pinned by a golden text, the
JSONPaths derived from the table declaration equal the public file, and load errors read well."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sparkify_assets import redshift
from sparkify_assets.assets import conversions
from sparkify_assets.assets.analytics import ANALYTICS_TABLES
from sparkify_assets.resources.warehouse import WarehouseError
from sparkify_assets.tables import ALL_TABLES
from sparkify_assets_tests.recording import emitted_redshift_statements

SHIPPED_JSONPATHS = Path(__file__).resolve().parents[1] / "sparkify_assets" / "data" / "log_json_path.json"
ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"
SETTINGS = redshift.CopySettings(ROLE, "us-west-2", "s3://sparkify-lake/lake/log_json_path.json")


def redshift_statements() -> list[str]:
    """Every statement the project sends to Redshift, recorded while its own assets, checks and
    commands run against a recording Redshift (see recording.py): nothing copied by hand."""
    return emitted_redshift_statements()


@pytest.mark.parametrize("sql", redshift_statements(), ids=lambda s: " ".join(s.split())[:60])
def test_statement_parses_as_redshift(sql):
    parsed = sqlglot.parse(sql, read="redshift")
    assert len(parsed) == 1
    # A statement sqlglot does not understand falls back to an opaque Command: not a real parse.
    assert not isinstance(parsed[0], exp.Command), sql


def test_statement_count_covers_every_table():
    stmts = redshift_statements()
    for table in (*ALL_TABLES, *ANALYTICS_TABLES):
        assert any(s.startswith(f"CREATE TABLE IF NOT EXISTS {table.name} ") for s in stmts)
        # Every table is filled on Redshift, except the rejects: COPY rejects a whole load instead.
        filled = any(s.startswith(f"INSERT INTO {table.name} ") for s in stmts)
        assert filled == (table.name != "staging_rejects"), table.name
    assert sum(s.startswith("COPY ") for s in stmts) == 2


def test_statements_include_what_the_assets_build_inline():
    stmts = redshift_statements()
    day = "BETWEEN DATE '2018-11-02' AND DATE '2018-11-02'"
    expected_prefixes = [
        f"DELETE FROM staging_events WHERE source_date {day}",
        f"DELETE FROM staging_rejects WHERE target_table = 'staging_events' AND source_date {day}",
        f"DELETE FROM staging_files WHERE target_table = 'staging_events' AND source_date {day}",
        "DELETE FROM staging_songs WHERE TRUE",
        "DELETE FROM staging_events_load",
        "INSERT INTO staging_files (target_table, source_key, source_date, version, bytes, records_read, "
        "rows_staged, rows_rejected) VALUES ('staging_events', 'log_data/2018/11/2018-11-02-events.json', "
        "DATE '2018-11-02', 'etag-1', 1234, 3, 3, 0)",
        f"DELETE FROM songplays WHERE source_date {day}",
        "DELETE FROM users",
        "DELETE FROM analytics_top_songs",
        "SELECT songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent "
        f"FROM songplays WHERE source_date {day} ORDER BY songplay_id LIMIT 5",
        "SELECT COUNT(*) FROM songplays",
        # The key check in the asset's step: the run's keys counted over the whole table...
        "SELECT COUNT(*) FROM (SELECT songplay_id, COUNT(*) AS n FROM songplays WHERE songplay_id IN "
        f"(SELECT songplay_id FROM songplays WHERE source_date {day}) GROUP BY songplay_id",
        # ...and run alone, without a partition: the whole table.
        "SELECT COUNT(*) FROM (SELECT songplay_id, COUNT(*) AS n FROM songplays GROUP BY songplay_id",
        "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(err_reason) FROM stl_load_errors",
    ]
    for prefix in expected_prefixes:
        assert any(s.startswith(prefix) for s in stmts), prefix


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
    expected = {t.name for t in (*ALL_TABLES, *ANALYTICS_TABLES, conversions.SOURCES)} | {
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
    # DESIGN.md section 4: not song_id, which is NULL for nearly every play (one slice would hold them).
    assert ddl["songplays"].endswith("DISTSTYLE KEY DISTKEY (user_id) SORTKEY (start_time)")
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


def test_copy_of_gzip_files_golden():
    """Issue 14: gzip-compressed lake files are copied with GZIP (the only difference)."""
    events = redshift.copy_sql(
        redshift.EVENTS_LOAD,
        "s3://sparkify-lake/lake/log_data/2018/11/2018-11-13-events.json.gz",
        SETTINGS,
        SETTINGS.jsonpaths_url,
        gzip=True,
    )
    assert events == (
        "COPY staging_events_load (artist, auth, first_name, gender, item_in_session, last_name, length, "
        "level, location, method, page, registration, session_id, song, status, ts, user_agent, user_id)\n"
        "FROM 's3://sparkify-lake/lake/log_data/2018/11/2018-11-13-events.json.gz'\n"
        "IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-redshift-s3-read'\n"
        "FORMAT AS JSON 's3://sparkify-lake/lake/log_json_path.json'\n"
        "GZIP\n"
        "REGION 'us-west-2'\n"
        "COMPUPDATE OFF STATUPDATE OFF"
    )
    songs = redshift.copy_sql(
        redshift.SONGS_LOAD, "s3://sparkify-lake/lake/song_data/", SETTINGS, "auto", gzip=True
    )
    assert songs.splitlines()[3:5] == ["FORMAT AS JSON 'auto'", "GZIP"]
    for sql in (events, songs):
        parsed = sqlglot.parse(sql, read="redshift")
        assert len(parsed) == 1 and not isinstance(parsed[0], exp.Command), sql


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
