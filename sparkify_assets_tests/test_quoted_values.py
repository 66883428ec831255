"""A value with a quote in it reaches every SQL path intact, on DuckDB and on PostgreSQL.

The hand-made lake below holds a song file whose key has `'`, `%` and `?` in it (the SQL quote,
psycopg2's placeholder sign and ours), a title and an artist name with `'`, `%`, `?` and `\\`,
and an object under log_data/ named `o'brien-events.json`, which is no day's file (a whole-file
reject). Loaded by the real job, each value must come back byte for byte from staging, the
star schema, the bookkeeping (staging_files, staging_rejects) and the analytics; changed and
loaded again, the key must find its old rows (the incremental restage deletes them by key), and
the read-only query path must bind it too. The Redshift side, where COPY's options are literals,
is at the end: `quote_literal` read back by a PostgreSQL server that reads literals as Redshift
does (backslash as an escape).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sparkify_assets.query import query_analysis
from sparkify_assets.redshift import quote_literal
from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets_tests.helpers import WAREHOUSE_FIXTURES, load, put

QUOTED_KEY = "song_data/Q/U/O/TRO'BRIEN 100%?.json"
TITLE = "Don't Stop 'Til 100%?"
NEW_TITLE = "It's 50% \\ Over?"
ARTIST = "O'Brien \\ the 'Quotes'"
STRAY_KEY = "log_data/2018/11/o'brien-events.json"
DAY = "2018-11-05"
PLAIN_SONGS = ("song_data/A/A/A/TRPLAIN0001.json", "song_data/A/A/B/TRPLAIN0002.json")


def _song(song_id: str, title: str, artist_id: str, name: str) -> dict:
    return {
        "num_songs": 1,
        "artist_id": artist_id,
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "Dublin's fair city",
        "artist_name": name,
        "song_id": song_id,
        "title": title,
        "duration": 200.0,
        "year": 1979,
    }


def _play(ts: int, song: str, artist: str) -> dict:
    return {
        "artist": artist,
        "auth": "Logged In",
        "firstName": "Siobhán",
        "gender": "F",
        "itemInSession": 0,
        "lastName": "O'Neill",
        "length": 200.0,
        "level": "free",
        "location": "Cork, IE",
        "method": "PUT",
        "page": "NextSong",
        "registration": 1540000000000.0,
        "sessionId": 1,
        "song": song,
        "status": 200,
        "ts": ts,
        "userAgent": "Mozilla/5.0 ('quoted')",
        "userId": "7",
    }


def _lake(root: Path) -> Path:
    put(root, QUOTED_KEY, json.dumps(_song("SOQUOTE0001", TITLE, "ARQUOTE", ARTIST)))
    for i, key in enumerate(PLAIN_SONGS):
        put(root, key, json.dumps(_song(f"SOPLAIN000{i}", f"Plain {i}", "ARPLAIN", "Plain")))
    day_file = f"log_data/2018/11/{DAY}-events.json"
    put(root, day_file, json.dumps(_play(1541419200000, TITLE, ARTIST)) + "\n")
    put(root, STRAY_KEY, json.dumps(_play(1541419300000, TITLE, ARTIST)) + "\n")
    return root


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_a_quote_reaches_every_sql_path_intact(request, tmp_path, backend):
    url = request.getfixturevalue(WAREHOUSE_FIXTURES[backend])
    lake = _lake(tmp_path / "lake")
    load(url, str(lake))
    wh = open_warehouse(url)

    # Staging (bulk load), the star schema (SQL over staging) and the match of a play to the song.
    assert wh.query(
        "SELECT source_key, title, artist_name FROM staging_songs WHERE song_id = 'SOQUOTE0001'"
    ) == [(QUOTED_KEY, TITLE, ARTIST)]
    assert wh.query("SELECT title FROM songs WHERE song_id = 'SOQUOTE0001'") == [(TITLE,)]
    assert wh.query("SELECT name, location FROM artists WHERE artist_id = 'ARQUOTE'") == [
        (ARTIST, "Dublin's fair city")
    ]
    assert wh.query("SELECT song_id, artist_id, user_agent FROM songplays") == [
        ("SOQUOTE0001", "ARQUOTE", "Mozilla/5.0 ('quoted')")
    ]
    assert wh.query("SELECT last_name FROM users") == [("O'Neill",)]
    # The bookkeeping: the song file's row, and the stray object as a whole-file reject.
    assert wh.query("SELECT rows_staged FROM staging_files WHERE source_key = ?", [QUOTED_KEY]) == [(1,)]
    assert wh.query(
        "SELECT target_table, records_read, rows_staged, rows_rejected FROM staging_files WHERE source_key = ?",
        [STRAY_KEY],
    ) == [("staging_events", 1, 0, 1)]
    assert [r[0] for r in wh.query("SELECT source_key FROM staging_rejects")] == [STRAY_KEY]
    # The analytics, read back through `sparkify query`'s read-only path.
    columns, rows = query_analysis(wh, "top_songs")
    assert rows[0][columns.index("title")] == TITLE
    assert rows[0][columns.index("artist_name")] == ARTIST
    # A read-only query binds a value with a quote, beside a literal % that is not a placeholder.
    assert wh.read_only_query(
        "SELECT title, 'a%b?' AS literal FROM songs WHERE title = ? AND artist_id LIKE 'ARQ%'", [TITLE]
    ) == (["title", "literal"], [(TITLE, "a%b?")])

    # The quoted file changes: the incremental restage deletes its rows by key, then stages anew.
    put(lake, QUOTED_KEY, json.dumps(_song("SOQUOTE0001", NEW_TITLE, "ARQUOTE", ARTIST)))
    result = load(url, str(lake))
    (songs_event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "staging_songs"
    ]
    meta = songs_event.materialization.metadata
    assert (meta["restage"].value, meta["files_changed"].value) == ("incremental", 1)
    assert wh.query("SELECT source_key, title FROM staging_songs WHERE song_id = 'SOQUOTE0001'") == [
        (QUOTED_KEY, NEW_TITLE)
    ]
    assert wh.query("SELECT COUNT(*) FROM staging_files WHERE source_key = ?", [QUOTED_KEY]) == [(1,)]
    assert wh.query("SELECT title FROM songs WHERE song_id = 'SOQUOTE0001'") == [(NEW_TITLE,)]
    assert wh.query("SELECT COUNT(*) FROM staging_songs") == [(3,)]


# Text as a COPY option may hold it: no NUL (no SQL literal can), anything else.
_LITERAL_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(text=_LITERAL_TEXT)
@example(text="s3://bucket/it's/log_data/")
@example(text="arn:aws:iam::1:role/a\\'b")
@example(text="\\")
@example(text="''\\\\'")
def test_redshift_literals_read_back_as_written(pg_server, text):
    """Redshift reads string literals as PostgreSQL did before standard_conforming_strings (a
    backslash escapes), so a PostgreSQL session with it off reads quote_literal's text as Redshift
    would: every value must come back unchanged."""
    import psycopg2

    con = psycopg2.connect(
        host=pg_server["host"], port=pg_server["port"], user=pg_server["user"], dbname="postgres"
    )
    try:
        with con.cursor() as cur:
            cur.execute("SET standard_conforming_strings = off; SET escape_string_warning = off")
            cur.execute(f"SELECT {quote_literal(text)}")
            assert cur.fetchone()[0] == text
    finally:
        con.close()
