"""The floor: the fastest plain load of a lake on this machine, with nothing but the readers.

Logs: one DuckDB `CREATE TABLE … AS SELECT * FROM read_json(…)` over every log file, with the
columns declared (type detection is unstable across lakes, DESIGN.md section 5). Songs: plain
Python open, read and json.loads of every song file, since DuckDB's glob reader is slow on many
tiny files.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

LOG_COLUMNS = {
    "artist": "VARCHAR",
    "auth": "VARCHAR",
    "firstName": "VARCHAR",
    "gender": "VARCHAR",
    "itemInSession": "INTEGER",
    "lastName": "VARCHAR",
    "length": "DOUBLE",
    "level": "VARCHAR",
    "location": "VARCHAR",
    "method": "VARCHAR",
    "page": "VARCHAR",
    "registration": "DOUBLE",
    "sessionId": "INTEGER",
    "song": "VARCHAR",
    "status": "INTEGER",
    "ts": "BIGINT",
    "userAgent": "VARCHAR",
    "userId": "VARCHAR",
}


def load_logs(lake: Path, database: Path) -> tuple[int, float]:
    """CTAS every log file into a DuckDB file; return (rows, seconds)."""
    import duckdb

    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in LOG_COLUMNS.items()) + "}"
    pattern = (lake / "log_data" / "*" / "*" / "*-events.json").as_posix()
    con = duckdb.connect(str(database))
    t0 = time.perf_counter()
    con.execute(
        f"CREATE TABLE staging_events AS SELECT * FROM read_json('{pattern}', "
        f"format = 'newline_delimited', columns = {columns})"
    )
    seconds = time.perf_counter() - t0
    rows = con.execute("SELECT COUNT(*) FROM staging_events").fetchone()[0]
    con.close()
    return rows, seconds


def parse_songs(lake: Path) -> tuple[int, float]:
    """Open, read and parse every song file; return (objects, seconds)."""
    t0 = time.perf_counter()
    n = 0
    for dirpath, _dirs, names in os.walk(lake / "song_data"):
        for name in names:
            if name.endswith(".json"):
                with open(os.path.join(dirpath, name), "rb") as fh:
                    json.loads(fh.read())
                n += 1
    return n, time.perf_counter() - t0


def run(lake: Path, workdir: Path) -> dict:
    songs, songs_s = parse_songs(lake)
    events, logs_s = load_logs(lake, workdir / "floor.duckdb")
    return {"events": events, "logs_seconds": logs_s, "songs": songs, "songs_seconds": songs_s}
