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


# --- The end-to-end floor: the same tables as `sparkify run`, by a plain DuckDB script -------

SQL_DIR = Path(__file__).resolve().parent.parent / "sparkify_assets" / "sql"
# The star tables first (analytics read them), in the order `sparkify run` builds them.
STAR = ("songplays", "users", "songs", "artists", "time")
SONG_KEYS = (
    "num_songs",
    "artist_id",
    "artist_latitude",
    "artist_longitude",
    "artist_location",
    "artist_name",
    "song_id",
    "title",
    "duration",
    "year",
)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _song_arrow(lake: Path):
    """Every song file read and json.loads'ed in Python, columns handed to DuckDB as Arrow."""
    import pyarrow as pa

    columns: dict[str, list] = {k: [] for k in (*SONG_KEYS, "source_key", "source_line")}
    root = lake.as_posix() + "/"
    for dirpath, _dirs, names in os.walk(lake / "song_data"):
        for name in names:
            if name.endswith(".json"):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as fh:
                    obj = json.loads(fh.read())
                for k in SONG_KEYS:
                    columns[k].append(obj.get(k))
                columns["source_key"].append(path[len(root) :])
                columns["source_line"].append(1)
    types = {"num_songs": pa.int32(), "year": pa.int32(), "source_line": pa.int32()}
    types |= {k: pa.float64() for k in ("artist_latitude", "artist_longitude", "duration")}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns.items()})


def run_end_to_end(lake: Path, database: Path) -> dict:
    """staging_events (read_json, declared columns), staging_songs (Python parse as Arrow), then
    the project's own sql/*.sql as CREATE TABLE … AS, all in one process, no checks. Returns the
    seconds of each part and every table's row count."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(str(database))
    con.execute("SET enable_progress_bar = false")
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in LOG_COLUMNS.items()) + "}"
    pattern = (lake / "log_data" / "*" / "*" / "*-events.json").as_posix()
    root = lake.as_posix() + "/"
    select = ", ".join(
        f"NULLIF({k}, '') AS user_id" if k == "userId" else f"{k} AS {_snake(k)}" for k in LOG_COLUMNS
    )
    con.execute(
        f"CREATE TABLE staging_events AS SELECT {select}, substr(filename, {len(root) + 1}) AS source_key, "
        "CAST(NULL AS INTEGER) AS source_line, CAST(regexp_extract(filename, '(\\d{4}-\\d{2}-\\d{2})-events', 1) "
        f"AS DATE) AS source_date FROM read_json('{pattern}', format = 'newline_delimited', "
        f"columns = {columns}, filename = true)"
    )
    t1 = time.perf_counter()
    con.register("song_arrow", _song_arrow(lake))
    con.execute("CREATE TABLE staging_songs AS SELECT * FROM song_arrow")
    t2 = time.perf_counter()
    analytics = sorted(p.stem for p in SQL_DIR.glob("analytics_*.sql"))
    for name in (*STAR, *analytics):
        sql = (SQL_DIR / f"{name}.sql").read_text()
        # songplays' and time's row conditions are filled in by their assets: here, every row.
        sql = sql.replace("{partition_filter}", "TRUE")
        # free_to_paid's one parameter is its bound: NULL, every conversion.
        con.execute(f'CREATE TABLE "{name}" AS {sql}', [None] if name == "analytics_free_to_paid" else None)
    t3 = time.perf_counter()
    counts = {
        name: con.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
        for name in ("staging_events", "staging_songs", *STAR, *analytics)
    }
    con.close()
    return {
        "events_seconds": t1 - t0,
        "songs_seconds": t2 - t1,
        "transforms_seconds": t3 - t2,
        "seconds": t3 - t0,
        "counts": counts,
    }
