"""stage_files alone (no Dagster run) into a fresh DuckDB (or `--warehouse URL`, e.g. a PostgreSQL
database): the parse and bulk load's cost, with or without orjson.

    python benchmarks/stage_only.py --lake /tmp/lake1m [--no-orjson] [--table staging_events] [--warehouse URL]

Prints one JSON line: table, parser, files, rows, wall and CPU seconds (the whole process,
imports included, and its workers), peak RSS (MiB) of this process.
`--no-orjson` hides orjson before sparkify_assets.parsing is imported, so the stdlib fallback runs, as in a
venv where orjson is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _hide_orjson() -> None:
    """A module named orjson that refuses to import, first on the path of this process and of the
    spawned parser workers (which inherit PYTHONPATH, not sys.modules)."""
    hide = Path(tempfile.mkdtemp(prefix="no-orjson-"))
    (hide / "orjson.py").write_text("raise ImportError('hidden by stage_only.py --no-orjson')\n")
    sys.path.insert(0, str(hide))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")]))


def _stage(lake_url: str, table_name: str, warehouse: str | None) -> tuple[dict, float]:
    """stage_files of every file of the table into a fresh warehouse: its totals and seconds."""
    from sparkify_assets.assets.staging import stage_files
    from sparkify_assets.resources.lake import open_lake
    from sparkify_assets.resources.warehouse import open_warehouse
    from sparkify_assets.tables import ALL_TABLES, TABLES

    table = TABLES[table_name]
    lake = open_lake(lake_url)
    files = lake.log_files() if table.name == "staging_events" else lake.song_files()
    with tempfile.TemporaryDirectory() as tmp:
        wh = open_warehouse(warehouse or f"duckdb://{Path(tmp) / 'w.duckdb'}")

        def work(tx):
            tx.ensure(*ALL_TABLES)
            tx.execute(f"DELETE FROM {table.name}")
            return stage_files(tx, lake, table, files)

        t0 = time.perf_counter()
        totals = wh.run(work)
        return totals, time.perf_counter() - t0


def _cpu_seconds() -> float:
    """CPU of this process and its (joined) parser workers: steadier than wall time on a shared
    machine."""
    usages = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return round(sum(u.ru_utime + u.ru_stime for u in usages), 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True)
    ap.add_argument("--table", default="staging_events", choices=["staging_events", "staging_songs"])
    ap.add_argument("--no-orjson", action="store_true")
    ap.add_argument(
        "--warehouse",
        help="a warehouse URL to stage into (default: a fresh DuckDB file); e.g. postgresql://…",
    )
    args = ap.parse_args()
    if args.no_orjson:
        _hide_orjson()  # before sparkify_assets.parsing is imported
    from sparkify_assets.parsing import fast

    totals, seconds = _stage(args.lake, args.table, args.warehouse)
    figures = {
        "table": args.table,
        "parser": "orjson" if fast._fast_loads is not fast._stdlib_loads else "stdlib json",
        "workers": os.environ.get("SPARKIFY_PARSE_WORKERS", "default"),
        "files": totals["files"],
        "rows": totals["rows_staged"],
        "seconds": round(seconds, 2),
        "cpu_seconds": _cpu_seconds(),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
