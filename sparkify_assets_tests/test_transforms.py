"""The star transforms on tiny hand-made lakes, on DuckDB and on PostgreSQL.

Each lake is a few log lines and song files in the real layout (log_data/YYYY/MM/YYYY-MM-DD-events.json,
song_data/A/B/C/TR….json), loaded by the real job. Every expected row below is written out by hand
from the inputs (DESIGN.md section 2), never computed by the code under test.

The same objects are written twice, as lake A and lake B, under different file names that sort in
the opposite order (and with the duplicated song's two copies swapped); B is loaded over A into the
same warehouse: the tables must be exactly the expected ones after each load, so the choices do not
depend on file order or names, and songplay_ids are the same on every run and both backends.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sparkify_assets import tables
from sparkify_assets.assets.analytics import FREE_TO_PAID
from sparkify_assets.dialect import render
from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets_tests.helpers import WAREHOUSE_FIXTURES, load, rows
from sparkify_assets_tests.pgserver import create_database

UA = "Mozilla/5.0 (test)"


def _event(ts, user, level, page="NextSong", song=None, artist=None, length=None, session=0, item=0, **kw):
    first, last, gender = {
        "7": ("Ada", "Lovelace", "F"),
        "8": ("Bob", kw.get("last", "New"), "M"),
        "": (None, None, None),
    }[user]
    return {
        "artist": artist,
        "auth": "Logged In" if user else "Logged Out",
        "firstName": first,
        "gender": gender,
        "itemInSession": item,
        "lastName": last,
        "length": length,
        "level": level,
        "location": {"7": "London, UK", "8": "Oslo, NO"}.get(user),
        "method": "PUT" if page == "NextSong" else "GET",
        "page": page,
        "registration": 1540000000000.0 if user else None,
        "sessionId": session,
        "song": song,
        "status": 200,
        "ts": ts,
        "userAgent": UA if user else None,
        "userId": user,
    }


# log_data: one file per day. Lines are deliberately not in ts order.
LOGS = {
    "2018-11-03": [
        _event(1541275200000, "7", "free", song="Twin", artist="Echo", length=201.0, session=100),
        # A logged-out visitor: empty userId, never a user.
        _event(1541278800000, "", "free", page="Home", session=101),
        # Same title, another artist: no match.
        _event(
            1541289599999,
            "8",
            "paid",
            song="Twin",
            artist="Other Echo",
            length=201.0,
            session=102,
            last="Old",
        ),  # fmt: skip
    ],
    "2018-11-04": [
        # 205 is 5 from both SOM0002 (200) and SOM0001 (210): the smaller song_id wins.
        _event(1541326530500, "7", "paid", song="Twin", artist="Echo", length=205.0, session=103, item=1),
        # Title of a Foxtrot song, artist Echo: no match.
        _event(1541329200000, "8", "paid", song="Solo", artist="Echo", length=100.0, session=104),
        # The only "Solo" by Foxtrot, far from its duration: still the match.
        _event(1541329380000, "8", "paid", song="Solo", artist="Foxtrot", length=150.0, session=104, item=1),
        # No length: every distance is unknown, so the smallest song_id (SOM0001) wins.
        _event(1541336400000, "8", "paid", song="Twin", artist="Echo", length=None, session=107),
        # Length 0.0 is a length, not a missing one: closest is SOM0003 (190).
        _event(1541336460000, "8", "paid", song="Twin", artist="Echo", length=0.0, session=107, item=1),
    ],
    "2018-12-31": [
        # User 7's latest event (greatest ts) is this free play, written before an earlier paid event.
        _event(1546243200250, "7", "free", song="Unknown", artist="Nobody", length=99.5, session=105, item=2),
        _event(1546243140000, "7", "paid", page="Home", session=105, item=1),
        # User 8's latest ts appears on two lines: the later line (level free, "Second") wins.
        _event(1546245000000, "8", "paid", page="Home", session=108, last="First"),
        _event(1546245000000, "8", "free", page="Logout", session=108, item=1, last="Second"),
        # The latest event of all is a logged-out visitor's, at level paid: it belongs to no user.
        _event(1546246800000, "", "paid", page="Home", session=106),
    ],
}


def _song(song_id, title, artist_id, name, location, lat, lon, duration=100.0, year=2000):
    return {
        "num_songs": 1,
        "artist_id": artist_id,
        "artist_latitude": lat,
        "artist_longitude": lon,
        "artist_location": location,
        "artist_name": name,
        "song_id": song_id,
        "title": title,
        "duration": duration,
        "year": year,
    }


ECHO = ("ARE", "Echo", "Reykjavik", 64.1, -21.9)
SONGS = [
    _song("SOM0002", "Twin", *ECHO, duration=200.0, year=0),
    _song("SOM0001", "Twin", *ECHO, duration=210.0, year=2004),
    _song("SOM0003", "Twin", *ECHO, duration=190.0, year=1999),
    _song("SOM0004", "Solo", "ARF", "Foxtrot", "", None, None, duration=100.0, year=2010),
    # AR1: three names and places. SOAAA01 has the smallest song_id but only its name is known;
    # SOAAA02 and SOAAA03 know all four values: the smaller song_id of the two wins.
    _song("SOAAA03", "A three", "AR1", "Alpha (live)", "Lyon", 45.76, 4.83),
    _song("SOAAA01", "A one", "AR1", "Alpha", "", None, None),
    _song("SOAAA02", "A two", "AR1", "Alpha & Friends", "Paris, France", 48.85, 2.35),
    # AR2: one song in two files, all four values known in both: the smaller location wins.
    _song("SOBBB01", "B one", "AR2", "Beta", "Oslo", 59.91, 10.75),
    _song("SOBBB01", "B one", "AR2", "Beta", "Bergen", 60.39, 5.32),
    # AR3: name, location and latitude known beat name only, though the song_id is larger.
    _song("SOCCC01", "C one", "AR3", "Gamma", "", None, None),
    _song("SOCCC02", "C two", "AR3", "Gamma", "Rome", 41.9, None),
]


def write_lake(root: Path, reverse: bool) -> Path:
    """Lake A names its song files in list order; lake B in the opposite order, in other folders."""
    for day, events in LOGS.items():
        path = root / "log_data" / day[:4] / day[5:7] / f"{day}-events.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
    for i, song in enumerate(SONGS):
        n = len(SONGS) - i if reverse else i
        folder = ("Z/Y/X" if reverse else "A/B/C") + ("/D" if n % 2 else "")
        path = root / "song_data" / folder / f"TR{n:04d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(song))
    return root


# --- Expected rows, written from the inputs above ------------------------------------------

T = dt.datetime
SONGPLAYS = [
    # songplay_id = md5("ts|user_id|session_id|item_in_session")
    ("1bb67d1c7153deb4c3695658fc0d47e8", T(2018, 11, 3, 20, 0, 0), "7", "free", "SOM0002", "ARE", 100, "London, UK", UA),
    ("9af5d60179466e936816a56c1636bc59", T(2018, 11, 3, 23, 59, 59, 999000), "8", "paid", None, None, 102, "Oslo, NO", UA),
    ("9f43b7c7f0d9fe594e11b983e7d05a79", T(2018, 11, 4, 10, 15, 30, 500000), "7", "paid", "SOM0001", "ARE", 103, "London, UK", UA),
    ("9747e595127b8ee63011406df900ac41", T(2018, 11, 4, 11, 0, 0), "8", "paid", None, None, 104, "Oslo, NO", UA),
    ("c70cd638076de650977e9a8b0cbff17b", T(2018, 11, 4, 11, 3, 0), "8", "paid", "SOM0004", "ARF", 104, "Oslo, NO", UA),
    ("70c465b7eba777cc38e2ec40824a5ac8", T(2018, 11, 4, 13, 0, 0), "8", "paid", "SOM0001", "ARE", 107, "Oslo, NO", UA),
    ("2ff2fbfa3c45953fd5026752694e4d1d", T(2018, 11, 4, 13, 1, 0), "8", "paid", "SOM0003", "ARE", 107, "Oslo, NO", UA),
    ("c6e0b4e49c1f4f28a51a3c016345e7f5", T(2018, 12, 31, 8, 0, 0, 250000), "7", "free", None, None, 105, "London, UK", UA),
]  # fmt: skip

USERS = [
    ("7", "Ada", "Lovelace", "F", "free"),  # free -> paid -> paid (Home) -> free at the greatest ts
    ("8", "Bob", "Second", "M", "free"),  # the later of the two lines at the greatest ts
]

SONGS_TABLE = [
    ("SOAAA01", "A one", "AR1", 2000, 100.0),
    ("SOAAA02", "A two", "AR1", 2000, 100.0),
    ("SOAAA03", "A three", "AR1", 2000, 100.0),
    ("SOBBB01", "B one", "AR2", 2000, 100.0),
    ("SOCCC01", "C one", "AR3", 2000, 100.0),
    ("SOCCC02", "C two", "AR3", 2000, 100.0),
    ("SOM0001", "Twin", "ARE", 2004, 210.0),
    ("SOM0002", "Twin", "ARE", None, 200.0),  # year 0: unknown
    ("SOM0003", "Twin", "ARE", 1999, 190.0),
    ("SOM0004", "Solo", "ARF", 2010, 100.0),
]

ARTISTS = [
    ("AR1", "Alpha & Friends", "Paris, France", 48.85, 2.35),
    ("AR2", "Beta", "Bergen", 60.39, 5.32),
    ("AR3", "Gamma", "Rome", 41.9, None),
    ("ARE", "Echo", "Reykjavik", 64.1, -21.9),
    ("ARF", "Foxtrot", None, None, None),  # empty location: NULL
]

TIME = [
    # start_time, hour, day, ISO week, month, year, weekday (0 = Sunday)
    (T(2018, 11, 3, 20, 0, 0), 20, 3, 44, 11, 2018, 6),  # Saturday; naive week (%U) would be 43
    (T(2018, 11, 3, 23, 59, 59, 999000), 23, 3, 44, 11, 2018, 6),  # still the 3rd in UTC
    (T(2018, 11, 4, 10, 15, 30, 500000), 10, 4, 44, 11, 2018, 0),  # Sunday
    (T(2018, 11, 4, 11, 0, 0), 11, 4, 44, 11, 2018, 0),
    (T(2018, 11, 4, 11, 3, 0), 11, 4, 44, 11, 2018, 0),
    (T(2018, 11, 4, 13, 0, 0), 13, 4, 44, 11, 2018, 0),
    (T(2018, 11, 4, 13, 1, 0), 13, 4, 44, 11, 2018, 0),
    (T(2018, 12, 31, 8, 0, 0, 250000), 8, 31, 1, 12, 2018, 1),  # Monday of ISO week 1 of 2019
]

EXPECTED = {"songplays": SONGPLAYS, "users": USERS, "songs": SONGS_TABLE, "artists": ARTISTS, "time": TIME}


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def loaded(request, tmp_path_factory) -> dict[str, dict[str, list[tuple]]]:
    """The star tables after loading lake A, then after loading lake B over it."""
    tmp = tmp_path_factory.mktemp(f"transforms-{request.param}")
    if request.param == "duckdb":
        url = f"duckdb://{tmp / 'warehouse.duckdb'}"
    else:
        url = create_database(request.getfixturevalue("pg_server"))
    out = {}
    for name, reverse in (("A", False), ("B", True)):
        load(url, str(write_lake(tmp / f"lake_{name}", reverse)))
        out[name] = {table: rows(url, table) for table in EXPECTED}
    return out


def _sorted(expected: list[tuple]) -> list[tuple]:
    return sorted(expected, key=repr)  # the order helpers.rows returns


# Each table, on both lakes, against its hand-made rows; the ids say which rule each one shows.
@pytest.mark.parametrize(
    "table, expected",
    [
        pytest.param("songplays", SONGPLAYS, id="songplays_match_rule_and_stable_ids"),
        pytest.param("users", USERS, id="users_level_from_the_latest_event"),
        pytest.param("songs", SONGS_TABLE, id="songs_year_zero_is_null"),
        pytest.param("artists", ARTISTS, id="artists_documented_choice"),
        pytest.param("time", TIME, id="time_columns"),
    ],
)
@pytest.mark.parametrize("lake", ["A", "B"])
def test_table_equals_its_hand_made_rows(loaded, lake, table, expected):
    assert loaded[lake][table] == _sorted(expected)


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_ties_without_line_numbers_fall_back_to_the_values(request, tmp_path, backend):
    """Redshift stages no line numbers, and one source_key for the whole song_data/ prefix. Staged
    that way, ties are told apart by their values, the same whichever way the rows are stored:
    user 8's two lines at one ts (paid before free: "First" is the latest), a song_id in two files
    with different titles (the smaller title), and free_to_paid's order (free, then paid)."""
    url = request.getfixturevalue(WAREHOUSE_FIXTURES[backend])
    load(url, str(write_lake(tmp_path / "lake", False)))
    wh = open_warehouse(url)

    def as_redshift_stages(tx):
        tx.execute("UPDATE staging_events SET source_line = NULL")
        tx.execute("UPDATE staging_songs SET source_line = NULL, source_key = 'song_data/'")
        tx.execute("UPDATE staging_songs SET title = 'B one (remaster)' WHERE artist_location = 'Oslo'")

    wh.run(as_redshift_stages)
    assert wh.query("SELECT COUNT(*) FROM staging_songs WHERE song_id = 'SOBBB01'") == [(2,)]
    tie_event = ("staging_events", "user_id = '8' AND ts = 1546245000000", "last_name")
    tie_song = ("staging_songs", "song_id = 'SOBBB01'", "title")
    for order in ("ASC", "DESC"):  # the tied rows stored in either order: the same choices

        def restore(tx, order=order):
            for table, where, column in (tie_event, tie_song):
                tx.execute(f"CREATE TEMPORARY TABLE tie AS SELECT * FROM {table} WHERE {where}")
                tx.execute(f"DELETE FROM {table} WHERE {where}")
                tx.execute(f"INSERT INTO {table} SELECT * FROM tie ORDER BY {column} {order}")
                tx.execute("DROP TABLE tie")
            tx.execute("DELETE FROM users")
            tx.execute_shared(f"INSERT INTO users {tables.USERS.transform_sql()}")

        wh.run(restore)
        users = sorted(wh.query("SELECT user_id, first_name, last_name, gender, level FROM users"))
        assert users == [("7", "Ada", "Lovelace", "F", "free"), ("8", "Bob", "First", "M", "paid")], order
        song = [r for r in wh.query(tables.SONGS.transform_sql()) if r[0] == "SOBBB01"]
        assert [(r[0], r[1]) for r in song] == [("SOBBB01", "B one")], order
        conversions = wh.query(
            f"SELECT user_id, last_name, CAST(last_free_at AS TEXT), CAST(converted_at AS TEXT) "
            f"FROM ({render(FREE_TO_PAID.transform_sql(), wh.dialect)}) c ORDER BY user_id",
            [None],  # the bound: every conversion
        )
        assert conversions == [
            ("7", "Lovelace", "2018-11-03 20:00:00", "2018-11-04 10:15:30.5"),
            ("8", "First", "2018-12-31 08:30:00", "2018-12-31 08:30:00"),
        ], order


def test_file_order_and_names_change_nothing(loaded):
    assert loaded["A"] == loaded["B"]


def test_the_lakes_really_differ_in_file_order(tmp_path):
    """Guard on the fixture itself: B lists the songs in the opposite order, duplicate included."""

    def order(root: Path) -> list[tuple[str, str]]:
        songs = [json.loads(p.read_text()) for p in sorted(root.rglob("song_data/**/*.json"))]
        return [(s["song_id"], s["artist_location"]) for s in songs]

    a, b = order(write_lake(tmp_path / "a", False)), order(write_lake(tmp_path / "b", True))
    assert sorted(a) == sorted(b) and a != b
    assert a.index(("SOBBB01", "Oslo")) < a.index(("SOBBB01", "Bergen"))
    assert b.index(("SOBBB01", "Oslo")) > b.index(("SOBBB01", "Bergen"))
