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
        # A module named orjson that refuses to import, first on the path of this process and of
        # the spawned parser workers (which inherit PYTHONPATH, not sys.modules).
        hide = Path(tempfile.mkdtemp(prefix="no-orjson-"))
        (hide / "orjson.py").write_text("raise ImportError('hidden by stage_only.py --no-orjson')\n")
        sys.path.insert(0, str(hide))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")]))
    from sparkify_assets.assets.staging import stage_files
    from sparkify_assets.parsing import fast
    from sparkify_assets.resources.lake import open_lake
    from sparkify_assets.resources.warehouse import open_warehouse
    from sparkify_assets.tables import ALL_TABLES, TABLES

    table = TABLES[args.table]
    lake = open_lake(args.lake)
    files = lake.log_files() if table.name == "staging_events" else lake.song_files()
    with tempfile.TemporaryDirectory() as tmp:
        wh = open_warehouse(args.warehouse or f"duckdb://{Path(tmp) / 'w.duckdb'}")

        def work(tx):
            tx.ensure(*ALL_TABLES)
            tx.execute(f"DELETE FROM {table.name}")
            return stage_files(tx, lake, table, files)

        t0 = time.perf_counter()
        totals = wh.run(work)
        seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "table": table.name,
                "parser": "orjson" if fast._fast_loads is not fast._stdlib_loads else "stdlib json",
                "workers": os.environ.get("SPARKIFY_PARSE_WORKERS", "default"),
                "files": totals["files"],
                "rows": totals["rows_staged"],
                "seconds": round(seconds, 2),
                # CPU of this process and its (joined) parser workers: steadier than wall time
                # on a shared machine.
                "cpu_seconds": round(
                    sum(
                        u.ru_utime + u.ru_stime
                        for u in (
                            resource.getrusage(resource.RUSAGE_SELF),
                            resource.getrusage(resource.RUSAGE_CHILDREN),
                        )
                    ),
                    2,
                ),
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
