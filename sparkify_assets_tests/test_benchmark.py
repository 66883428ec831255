"""benchmarks/run.py on a tiny lake: the plumbing of every measurement, never its timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sparkify_assets.generate import LakeSpec, generate_lake
from sparkify_assets.generator_output import LocalSink

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
ASSETS = {"staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time"}


def test_benchmark_script_measures_every_loader_on_a_tiny_lake(tmp_path):
    lake = tmp_path / "lake"
    generate_lake(LakeSpec(events=600, songs=40, users=10, days=3, seed=5), LocalSink(lake))
    nextsong = sum(
        1
        for path in lake.rglob("*-events.json")
        for line in path.read_text().split("\n")
        if json.loads(line)["page"] == "NextSong"
    )
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--lake", str(lake), "--json", str(out), "--workdir", str(tmp_path),
            "--baseline-songs", "10", "--baseline-events", "100",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(out.read_text())

    assert r["lake"]["events"] == 600 and r["lake"]["songs"] == 40 and r["lake"]["log_files"] == 3
    assert r["floor"]["events"] == 600 and r["floor"]["songs"] == 40
    for backend in ("duckdb", "postgres"):
        run = r[backend]
        assert run["success"] and run["failures"] == []
        assert run["counts"]["staging_events"] == 600
        assert run["counts"]["staging_songs"] == 40
        assert run["counts"]["songplays"] == nextsong
        assert ASSETS <= set(run["steps"])
        assert run["peak_rss_mib"] > 50  # Dagster alone is bigger than this
    b = r["baseline"]
    assert b["songs_sampled"] == 10 and b["songs_total"] == 40 and b["songs_rows"] == 40
    assert b["events_sampled"] == 100 and b["extrapolated"] is True
    assert b["songplays_rows"] == b["songplays_inserted"] > 0
    # The sensors' runs: the last day on the loaded warehouse and into one without events (the
    # same steps on both sides), then the song sensor's run on an unchanged catalog.
    day_events = sum(1 for line in sorted(lake.rglob("*-events.json"))[-1].read_text().split("\n") if line)
    assert r["lake"]["last_day_events"] == day_events
    for key in ("incremental", "one_day_alone"):
        run = r[key]
        # The tiny lake's days are in 2018, so the day run's lateness check (WARN) rightly says
        # the last due day has not arrived; nothing else may fail.
        assert run["success"] and len(run["failures"]) == 1, (key, run["failures"])
        assert run["failures"][0].startswith("check failed: staging_events log_on_time (late: the log of "), (
            key
        )
        assert {"staging_events", "songplays", "users", "time"} <= set(run["steps"]), key
        assert "staging_songs" not in run["steps"], key
    assert set(r["incremental"]["steps"]) == set(r["one_day_alone"]["steps"])
    same = r["catalog_unchanged"]
    assert same["success"] and set(same["steps"]) >= {"staging_songs", "songs", "artists"}
    meta = same["staging_songs_metadata"]
    assert meta["restage"] == "incremental" and meta["files_unchanged"] == 40 and meta["files"] == 0
    assert "one new day:" in done.stdout and "catalog unchanged:" in done.stdout
    assert "ratio DuckDB pipeline / floor" in done.stdout
    # The end-to-end floor builds the same tables as the run, with the same row counts.
    e2e = r["floor_e2e"]["counts"]
    assert e2e["staging_events"] == 600 and e2e["songplays"] == nextsong
    assert {name: r["duckdb"]["counts"][name] for name in e2e} == e2e
    assert "ratio DuckDB pipeline / end-to-end floor" in done.stdout
    assert "ratio row-by-row / PostgreSQL pipeline" in done.stdout
    assert "staging_events" in done.stdout
    # The scratch folder is removed: no generated warehouse is left behind.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("sparkify-bench-")] == []
