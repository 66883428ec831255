"""The baseline users know: the classic Sparkify etl.py, one psycopg2 statement per row.

As in the Udacity PostgreSQL project: every song file inserts its song and its artist; every
NextSong event inserts its time row and its user, looks its song up with a SELECT on title,
artist name and duration, and inserts the songplay; the connection is in autocommit mode. Lines
are parsed with json.loads rather than pandas, which only makes the baseline faster.

On a big lake it times a bounded sample (the first `max_songs` song files, the first
`max_events` events) and the caller extrapolates. The rest of the catalog is then bulk-copied
untimed, so the sampled song lookups scan a catalog of the full size, as they would for real.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

CREATE = [
    "CREATE TABLE songs (song_id VARCHAR PRIMARY KEY, title VARCHAR, artist_id VARCHAR, year INT, duration FLOAT)",
    "CREATE TABLE artists (artist_id VARCHAR PRIMARY KEY, name VARCHAR, location VARCHAR, latitude FLOAT, longitude FLOAT)",
    "CREATE TABLE users (user_id VARCHAR PRIMARY KEY, first_name VARCHAR, last_name VARCHAR, gender VARCHAR, level VARCHAR)",
    "CREATE TABLE time (start_time TIMESTAMP PRIMARY KEY, hour INT, day INT, week INT, month INT, year INT, weekday INT)",
    "CREATE TABLE songplays (songplay_id SERIAL PRIMARY KEY, start_time TIMESTAMP, user_id VARCHAR, level VARCHAR, "
    "song_id VARCHAR, artist_id VARCHAR, session_id INT, location VARCHAR, user_agent VARCHAR)",
]
SONG_INSERT = "INSERT INTO songs VALUES (%s, %s, %s, %s, %s) ON CONFLICT (song_id) DO NOTHING"
ARTIST_INSERT = "INSERT INTO artists VALUES (%s, %s, %s, %s, %s) ON CONFLICT (artist_id) DO NOTHING"
TIME_INSERT = "INSERT INTO time VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (start_time) DO NOTHING"
USER_INSERT = (
    "INSERT INTO users VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET level = EXCLUDED.level"
)
SONG_SELECT = (
    "SELECT songs.song_id, artists.artist_id FROM songs JOIN artists ON songs.artist_id = artists.artist_id "
    "WHERE songs.title = %s AND artists.name = %s AND songs.duration = %s"
)
SONGPLAY_INSERT = (
    "INSERT INTO songplays (start_time, user_id, level, song_id, artist_id, session_id, location, user_agent) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def song_paths(lake: Path) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(lake / "song_data"):
        out.extend(os.path.join(dirpath, n) for n in names if n.endswith(".json"))
    return sorted(out)


def log_paths(lake: Path) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(lake / "log_data"):
        out.extend(os.path.join(dirpath, n) for n in names if n.endswith("-events.json"))
    return sorted(out)


def _song(path: str) -> dict:
    with open(path, "rb") as fh:
        return json.loads(fh.read())


def _song_row(s: dict) -> tuple:
    return (s["song_id"], s["title"], s["artist_id"], s["year"], s["duration"])


def _artist_row(s: dict) -> tuple:
    return (
        s["artist_id"],
        s["artist_name"],
        s["artist_location"],
        s["artist_latitude"],
        s["artist_longitude"],
    )


def _copy_rest(cur, paths: list[str], seen_artists: set[str]) -> None:
    """Bulk-load the songs outside the timed sample (untimed), first artist row per id wins."""
    songs, artists = io.StringIO(), io.StringIO()
    for path in paths:
        s = _song(path)
        songs.write("\t".join(_tsv(v) for v in _song_row(s)) + "\n")
        if s["artist_id"] not in seen_artists:
            seen_artists.add(s["artist_id"])
            artists.write("\t".join(_tsv(v) for v in _artist_row(s)) + "\n")
    songs.seek(0)
    artists.seek(0)
    cur.copy_expert("COPY songs FROM STDIN", songs)
    cur.copy_expert("COPY artists FROM STDIN", artists)


def _tsv(value) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _insert_songs(cur, paths: list[str], seen_artists: set[str]) -> None:
    """etl.py's process_song_file: an INSERT for each song and one for its artist."""
    for path in paths:
        s = _song(path)
        cur.execute(SONG_INSERT, _song_row(s))
        cur.execute(ARTIST_INSERT, _artist_row(s))
        seen_artists.add(s["artist_id"])


def _events(lake: Path, limit: int) -> Iterator[dict]:
    """The first `limit` events of the lake's logs, file by file, each parsed with json.loads."""
    read = 0
    for path in log_paths(lake):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if read >= limit:
                    return
                if not line.strip():
                    continue
                read += 1
                yield json.loads(line)
        if read >= limit:
            return


def _insert_play(cur, e: dict) -> bool:
    """etl.py's process_log_file for one event: for a NextSong, its time row, its user, the song
    lookup and the songplay; False for any other page."""
    if e["page"] != "NextSong":
        return False
    t = datetime.fromtimestamp(e["ts"] / 1000, tz=timezone.utc).replace(tzinfo=None)
    weekday = (t.weekday() + 1) % 7
    cur.execute(TIME_INSERT, (t, t.hour, t.day, t.isocalendar()[1], t.month, t.year, weekday))
    cur.execute(USER_INSERT, (e["userId"], e["firstName"], e["lastName"], e["gender"], e["level"]))
    cur.execute(SONG_SELECT, (e["song"], e["artist"], e["length"]))
    found = cur.fetchone()
    song_id, artist_id = found if found else (None, None)
    cur.execute(
        SONGPLAY_INSERT,
        (t, e["userId"], e["level"], song_id, artist_id, e["sessionId"], e["location"], e["userAgent"]),
    )
    return True


def run(url: str, lake: Path, max_songs: int, max_events: int) -> dict:
    import psycopg2

    con = psycopg2.connect(url)  # libpq takes the warehouse URL as it is
    con.autocommit = True  # as the classic scripts: conn.set_session(autocommit=True)
    cur = con.cursor()
    for ddl in CREATE:
        cur.execute(ddl)

    paths = song_paths(lake)
    sample, rest = paths[:max_songs], paths[max_songs:]
    seen_artists: set[str] = set()
    t0 = time.perf_counter()
    _insert_songs(cur, sample, seen_artists)
    songs_seconds = time.perf_counter() - t0
    _copy_rest(cur, rest, seen_artists)

    events = plays = 0
    t0 = time.perf_counter()
    for e in _events(lake, max_events):
        events += 1
        plays += _insert_play(cur, e)
    events_seconds = time.perf_counter() - t0
    cur.execute("SELECT (SELECT COUNT(*) FROM songs), (SELECT COUNT(*) FROM songplays)")
    songs_loaded, songplays_loaded = cur.fetchone()
    con.close()
    return {
        "songs_sampled": len(sample),
        "songs_total": len(paths),
        "songs_seconds": songs_seconds,
        "events_sampled": events,
        "events_seconds": events_seconds,
        "songplays_inserted": plays,
        "songs_rows": songs_loaded,
        "songplays_rows": songplays_loaded,
    }
