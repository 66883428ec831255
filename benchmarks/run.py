"""Benchmark one lake on this machine, in one run:

  1. the floor: DuckDB read_json CTAS of the logs + plain Python parse of the song files
  2. `sparkify run` on DuckDB, the real command configured by SPARKIFY_LAKE_URL and
     SPARKIFY_WAREHOUSE_URL (wall time, peak RSS, time of each step from its DAGSTER_HOME);
     then what daily operation costs: the log sensor's run for the last day on top of the loaded
     days, the same run into a warehouse without events, and the song sensor's run on an
     unchanged catalog
  3. `sparkify run` on PostgreSQL (a throwaway server)
  4. the classic row-by-row psycopg2 INSERT loader (sampled and extrapolated on big lakes)

    sparkify generate --events 1000000 --songs 100000 --users 5000 --out /tmp/lake1m
    nice -n 10 python benchmarks/run.py --lake /tmp/lake1m --json /tmp/bench1m.json

Every measurement runs in a child process: wall time is the child's whole life (imports
included) and peak memory its maximum resident set size (os.wait4). Nothing is asserted here;
the figures go to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSETS = ("staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time")


# --- children -----------------------------------------------------------------------------


def _child_floor(args: argparse.Namespace) -> dict:
    import floor

    return floor.run(Path(args.lake), Path(args.workdir))


def _child_floor_e2e(args: argparse.Namespace) -> dict:
    import floor

    return floor.run_end_to_end(Path(args.lake), Path(args.workdir) / "floor-e2e.duckdb")


def _steps(instance, run_id: str) -> dict[str, float]:
    return {
        s.step_key: s.end_time - s.start_time
        for s in instance.get_run_step_stats(run_id)
        if s.end_time and s.start_time
    }


def _child_runinfo(args: argparse.Namespace) -> dict:
    """After `sparkify run` exited: its run's status, duration and step times from the instance
    in DAGSTER_HOME, and the warehouse's row counts (not timed)."""
    from dagster import DagsterInstance, DagsterRunStatus

    from sparkify_assets.cli import table_counts
    from sparkify_assets.resources.warehouse import open_warehouse

    instance = DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    stats = instance.get_run_stats(run.run_id)
    success = run.status == DagsterRunStatus.SUCCESS
    return {
        "run_id": run.run_id,
        "success": success,
        "load_seconds": (stats.end_time or 0) - (stats.start_time or 0),
        "steps": _steps(instance, run.run_id),
        "counts": dict(table_counts(open_warehouse(args.warehouse))) if success else {},
    }


def _child_sensor_run(args: argparse.Namespace) -> dict:
    """What a lake sensor's RunRequest costs, run as the daemon would (test_sensors.py `execute`):
    job sparkify_lake_updates with the sensor's asset selection, for one day's partition (the log
    sensor: a day's events) or unpartitioned (the song sensor's catalog-only request)."""
    from dagster import DagsterInstance

    from sparkify_assets.definitions import build_defs
    from sparkify_assets.resources.lake import LakeResource
    from sparkify_assets.resources.warehouse import WarehouseResource
    from sparkify_assets.runner import QUIET, failures
    from sparkify_assets.sensors import default_selections, sparkify_lake_updates

    defs = build_defs(WarehouseResource(url=args.warehouse), LakeResource(url=args.lake))
    chosen = default_selections()
    assets = chosen.event if args.selection == "events" else chosen.song_only
    instance = DagsterInstance.get()
    t0 = time.perf_counter()
    result = defs.resolve_job_def(sparkify_lake_updates.name).execute_in_process(
        instance=instance,
        partition_key=args.start if args.selection == "events" else None,
        asset_selection=assets,
        run_config=QUIET,
        raise_on_error=False,
    )
    seconds = time.perf_counter() - t0
    meta = {}
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == "staging_songs":
            meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    return {
        "success": result.success,
        "failures": failures(result),
        "load_seconds": seconds,
        "steps": _steps(instance, result.run_id),
        "staging_songs_metadata": {
            k: v for k, v in meta.items() if isinstance(v, int | float | str) and k != "preview"
        },
    }


def _child_baseline(args: argparse.Namespace) -> dict:
    import rowbyrow

    return rowbyrow.run(args.warehouse, Path(args.lake), args.max_songs, args.max_events)


CHILDREN = {
    "_floor": _child_floor,
    "_floor_e2e": _child_floor_e2e,
    "_runinfo": _child_runinfo,
    "_sensor_run": _child_sensor_run,
    "_baseline": _child_baseline,
}


def child_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=sorted(CHILDREN))
    p.add_argument("--lake", required=True)
    p.add_argument("--result", required=True)
    p.add_argument("--workdir")
    p.add_argument("--warehouse")
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("--max-songs", type=int)
    p.add_argument("--max-events", type=int)
    p.add_argument("--selection", choices=["events", "songs"])
    args = p.parse_args(argv)
    out = CHILDREN[args.mode](args)
    Path(args.result).write_text(json.dumps(out, default=str))
    return 0


# --- the parent ----------------------------------------------------------------------------


def _timed(cmd: list[str], env: dict | None) -> tuple[float, float, float]:
    """Run a command; return (wall seconds, peak RSS MiB, CPU seconds) of the process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"exit code {code}: {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def measure(mode: str, scratch: Path, env: dict | None = None, profile: Path | None = None, **opts) -> dict:
    """Run one child; return its result plus wall seconds and peak RSS in MiB."""
    result = scratch / f"{mode}-{time.monotonic_ns()}.json"
    cmd = [sys.executable]
    if profile:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += [str(Path(__file__).resolve()), mode, "--result", str(result)]
    for key, value in opts.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    wall, rss, cpu = _timed(cmd, env)
    out = json.loads(result.read_text())
    out.update(wall_seconds=wall, peak_rss_mib=rss, cpu_seconds=cpu)
    return out


def sparkify_run(scratch: Path, lake: Path, warehouse: str, home: str, profile: Path | None = None) -> dict:
    """The real `sparkify run`, configured the documented way (SPARKIFY_LAKE_URL,
    SPARKIFY_WAREHOUSE_URL, DAGSTER_HOME), timed as a whole process; then its run's step times
    and the row counts, read afterwards from the instance and the warehouse."""
    env = {"SPARKIFY_LAKE_URL": str(lake), "SPARKIFY_WAREHOUSE_URL": warehouse, "DAGSTER_HOME": home}
    sparkify = Path(sys.executable).with_name("sparkify")
    if profile:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), str(sparkify), "run"]
    else:
        cmd = [str(sparkify), "run"]
    wall, rss, cpu = _timed(cmd, env)
    out = measure("_runinfo", scratch, env={"DAGSTER_HOME": home}, lake=lake, warehouse=warehouse)
    out.update(wall_seconds=wall, peak_rss_mib=rss, cpu_seconds=cpu, failures=[])
    return out


def lake_stats(lake: Path) -> dict:
    """Events (lines), log files and song files of a local lake, read once, so that the page
    cache is equally warm for every measurement (a cold first reader would look slower)."""
    events = log_files = log_bytes = day_events = 0
    for path in sorted((lake / "log_data").glob("*/*/*-events.json")):
        data = path.read_bytes()
        log_files += 1
        log_bytes += len(data)
        day_events = sum(1 for line in data.split(b"\n") if line.strip())
        events += day_events
    songs = song_bytes = 0
    days = sorted(p.name[:10] for p in (lake / "log_data").glob("*/*/*-events.json"))
    for dirpath, _dirs, names in os.walk(lake / "song_data"):
        for name in names:
            if name.endswith(".json"):
                songs += 1
                # Read, not just stat: every measurement then starts from the same warm cache.
                with open(os.path.join(dirpath, name), "rb") as fh:
                    song_bytes += len(fh.read())
    return {
        "events": events,
        "log_files": log_files,
        "log_mib": log_bytes / 2**20,
        "songs": songs,
        "song_mib": song_bytes / 2**20,
        "last_day_events": day_events,
        "first_day": days[0] if days else None,
        "last_day": days[-1] if days else None,
    }


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "?",
    )
    mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    import duckdb

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # one pgserver for tests and benchmarks
    from sparkify_assets_tests import pgserver

    try:
        pg = pgserver.version()
    except Exception as exc:  # the report still runs without PostgreSQL (--skip-postgres)
        pg = f"not found ({exc})"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "postgres": pg,
        "kernel": platform.release(),
    }


def _dagster_home(workdir: Path, name: str) -> str:
    home = workdir / name
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return str(home)


def _row(name: str, wall: float, rows: int, rss: float | None, note: str = "") -> str:
    rss_text = f"{rss:9,.0f}" if rss is not None else f"{'-':>9}"
    return f"  {name:<44}{wall:9.2f}{rows / wall if wall else 0:12,.0f}{rss_text}  {note}"


def report(r: dict) -> str:
    """The figures as printed: the lake and the machine, a row per measurement, the ratios to
    their targets, and the time of each step."""
    return "\n".join(
        [*_about(r), *_measurements(r), "", *_pipeline_ratios(r), *_daily_ratios(r), *_step_times(r)]
    )


def _about(r: dict) -> list[str]:
    lake, m = r["lake"], r["machine"]
    return [
        f"lake {r['lake_path']}: {lake['events']:,} events in {lake['log_files']} daily files "
        f"({lake['log_mib']:,.0f} MiB), {lake['songs']:,} song files ({lake['song_mib']:,.0f} MiB)",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; load average at start "
        f"{m['load_average_at_start'][0]:.2f}; Python {m['python']}, DuckDB {m['duckdb']}, {m['postgres']}",
    ]


def _measurements(r: dict) -> list[str]:
    """A row per measurement: wall seconds, rows per second and peak memory."""
    lake, f = r["lake"], r["floor"]
    rows = lake["events"] + lake["songs"]
    out = [f"\n  {'measurement':<44}{'wall s':>9}{'rows/s':>12}{'peak MiB':>9}"]
    out.append(_row("floor: DuckDB read_json CTAS of the logs", f["logs_seconds"], f["events"], None))
    out.append(_row("floor: Python open+json.loads of song files", f["songs_seconds"], f["songs"], None))
    out.append(_row("floor: total (process peak memory)", _floor_seconds(r), rows, f["peak_rss_mib"]))
    if e2e := r.get("floor_e2e"):
        label = "end-to-end floor: plain DuckDB script, all tables"
        out.append(_row(label, e2e["wall_seconds"], rows, e2e["peak_rss_mib"]))
    for key, label in (("duckdb", "sparkify run, DuckDB"), ("postgres", "sparkify run, PostgreSQL")):
        if key in r:
            p = r[key]
            out.append(_row(label + " (whole process)", p["wall_seconds"], rows, p["peak_rss_mib"]))
            out.append(_row(label + " (run_load only)", p["load_seconds"], rows, None))
    for key, label in (
        ("incremental", f"one day ({lake['last_day']}), sensor's job, on all days"),
        ("one_day_alone", "the same day into a warehouse with no events"),
        ("catalog_unchanged", "song sensor's job, catalog unchanged"),
    ):
        if key in r:
            n = lake["songs"] if key == "catalog_unchanged" else lake["last_day_events"]
            out.append(_row(label, r[key]["wall_seconds"], n, r[key]["peak_rss_mib"]))
    if "baseline" in r:
        b = r["baseline"]
        note = (
            f"extrapolated from {b['songs_sampled']:,} song files and {b['events_sampled']:,} events"
            if b["extrapolated"]
            else ""
        )
        label = "row-by-row psycopg2 INSERTs (classic etl.py)"
        out.append(_row(label, b["estimated_seconds"], rows, b["peak_rss_mib"], note))
    return out


def _floor_seconds(r: dict) -> float:
    return r["floor"]["logs_seconds"] + r["floor"]["songs_seconds"]


def _pipeline_ratios(r: dict) -> list[str]:
    """The DuckDB pipeline against the floors, and its song loader against plain Python."""
    if "duckdb" not in r:
        return []
    d, f, e2e = r["duckdb"], r["floor"], r.get("floor_e2e")
    floor_s = _floor_seconds(r)
    out = [
        f"ratio DuckDB pipeline / floor: {d['wall_seconds'] / floor_s:.2f} (whole process), "
        f"{d['load_seconds'] / floor_s:.2f} (run_load only); target <= 2"
    ]
    if e2e:
        same = {k: v for k, v in e2e["counts"].items() if k in d.get("counts", {})}
        differ = {k: (v, d["counts"][k]) for k, v in same.items() if d["counts"][k] != v}
        out.append(
            f"ratio DuckDB pipeline / end-to-end floor: {d['wall_seconds'] / e2e['wall_seconds']:.2f} "
            f"(whole processes; CPU {d['cpu_seconds'] / e2e['cpu_seconds']:.2f}); target <= 2 at 1M, "
            f"1.5 at 10M; floor parts: events {e2e['events_seconds']:.2f} s, songs "
            f"{e2e['songs_seconds']:.2f} s, sql/*.sql {e2e['transforms_seconds']:.2f} s; "
            + (
                f"row counts DIFFER (floor, run): {differ}"
                if differ
                else f"same row counts ({len(same)} tables)"
            )
        )
    if songs_step := d["steps"].get("staging_songs"):
        out.append(
            f"song loader: staging_songs step {songs_step:.2f} s vs plain Python {f['songs_seconds']:.2f} s "
            f"for {f['songs']:,} files: {songs_step / f['songs_seconds']:.2f}x (target <= 1.5)"
        )
    return out


def _daily_ratios(r: dict) -> list[str]:
    """What daily operation costs (a new day, an unchanged catalog) and the row-by-row ratio."""
    lake, out = r["lake"], []
    if "incremental" in r and "one_day_alone" in r:
        inc, alone = r["incremental"], r["one_day_alone"]
        out.append(
            f"one new day: {inc['load_seconds']:.2f} s on {lake['log_files']} loaded days vs "
            f"{alone['load_seconds']:.2f} s into a warehouse with no events "
            f"({inc['load_seconds'] / alone['load_seconds']:.2f}x; target ~1x); whole processes "
            f"{inc['wall_seconds']:.2f} s vs {alone['wall_seconds']:.2f} s"
        )
    if "catalog_unchanged" in r:
        c = r["catalog_unchanged"]
        m = c.get("staging_songs_metadata", {})
        full = r.get("duckdb", {}).get("steps", {}).get("staging_songs")
        out.append(
            f"catalog unchanged: staging_songs step {c['steps'].get('staging_songs', 0):.2f} s "
            f"({m.get('files_unchanged', '?')} files unchanged, {m.get('files', '?')} parsed)"
            + (f" vs {full:.2f} s for the full load's" if full else "")
        )
    if "baseline" in r and "postgres" in r:
        out.append(
            f"ratio row-by-row / PostgreSQL pipeline: {r['baseline']['estimated_seconds'] / r['postgres']['wall_seconds']:.1f}x "
            "(target >= 50)"
        )
    return out


def _step_times(r: dict) -> list[str]:
    """A column per run: each asset's step, the other steps together, and the five slowest of them."""
    runs = [k for k in ("duckdb", "postgres", "incremental", "one_day_alone", "catalog_unchanged") if k in r]
    if not runs:
        return []
    names = sorted({s for k in runs for s in r[k]["steps"]}, key=lambda s: -r[runs[0]]["steps"].get(s, 0))
    assets = [n for n in names if n in ASSETS]
    checks = [n for n in names if n not in ASSETS]
    heads = {"one_day_alone": "day alone", "catalog_unchanged": "catalog same"}

    def cells(seconds: Callable[[dict], float]) -> str:
        return "".join(f"{seconds(r[k]['steps']):14.2f}" for k in runs)

    out = [f"\n  {'time of each step (s)':<50}" + "".join(f"{heads.get(k, k):>14}" for k in runs)]
    out += [f"  {name:<50}" + cells(lambda steps, n=name: steps.get(n, 0)) for name in assets]
    out.append(
        f"  {f'{len(checks)} other steps (analytics; checks if steps)':<50}"
        + cells(lambda steps: sum(steps.get(n, 0) for n in checks))
    )
    slowest = sorted(checks, key=lambda n: -r[runs[0]]["steps"].get(n, 0))[:5]
    out += [f"    {name:<48}" + cells(lambda steps, n=name: steps.get(n, 0)) for name in slowest]
    return out


def print_profile(path: Path, limit: int) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    print(f"\ncProfile of the DuckDB run (cumulative, sparkify_assets functions, top {limit}):")
    stats.sort_stats("cumulative").print_stats(r"sparkify_assets", limit)
    print(f"cProfile of the DuckDB run (own time, top {limit}):")
    stats.sort_stats("tottime").print_stats(limit)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Benchmark a lake: floor, DuckDB, PostgreSQL, row-by-row baseline."
    )
    p.add_argument("--lake", required=True, help="a local lake folder (e.g. from `sparkify generate`)")
    p.add_argument("--json", help="also write every figure to this JSON file")
    p.add_argument("--workdir", help="scratch folder (default: a new temporary folder, deleted after)")
    p.add_argument(
        "--skip-postgres", action="store_true", help="skip the PostgreSQL pipeline and the baseline"
    )
    p.add_argument("--skip-baseline", action="store_true", help="skip the row-by-row baseline")
    p.add_argument("--skip-incremental", action="store_true", help="skip reloading the last day")
    p.add_argument(
        "--baseline-songs", type=int, default=20_000, help="song files the baseline times (default 20,000)"
    )
    p.add_argument(
        "--baseline-events", type=int, default=5_000, help="events the baseline times (default 5,000)"
    )
    p.add_argument("--profile", help="also run the DuckDB pipeline under cProfile, saving the stats here")
    p.add_argument("--profile-lines", type=int, default=30)
    return p


def measure_daily(r: dict, work: Path, lake: Path, duck: str, home: dict) -> None:
    """What a new day costs in daily operation: the log sensor's request (the day's event assets
    for one partition), here the last day again on top of all the loaded days..."""
    day = r["lake"]["last_day"]
    print("2b/4 one day through the sensor's job, on the loaded warehouse", file=sys.stderr)
    day_opts = {"lake": lake, "start": day, "selection": "events"}
    r["incremental"] = measure("_sensor_run", work, env=home, warehouse=duck, **day_opts)
    # ...the song sensor's request on an unchanged catalog (staging_songs restages nothing)...
    r["catalog_unchanged"] = measure(
        "_sensor_run", work, env=home, lake=lake, warehouse=duck, selection="songs"
    )
    # ...and the same day into a warehouse that holds only the song catalog (loaded first,
    # untimed), so that Dagster's fixed cost per run and per step is on both sides.
    alone = f"duckdb://{work / 'one-day.duckdb'}"
    alone_home = {"DAGSTER_HOME": _dagster_home(work, "dagster-one-day")}
    measure("_sensor_run", work, env=alone_home, lake=lake, warehouse=alone, selection="songs")
    r["one_day_alone"] = measure("_sensor_run", work, env=alone_home, warehouse=alone, **day_opts)


def measure_postgres(r: dict, work: Path, lake: Path, args: argparse.Namespace) -> None:
    """`sparkify run` on a throwaway PostgreSQL server, then (unless skipped) the baseline there."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from sparkify_assets_tests import pgserver

    with pgserver.throwaway_server() as server:
        print("3/4 sparkify run on PostgreSQL", file=sys.stderr)
        url = pgserver.create_database(server, "pipeline")
        home = {"DAGSTER_HOME": _dagster_home(work, "dagster-postgres")}
        r["postgres"] = sparkify_run(work, lake, url, home["DAGSTER_HOME"])
        if not args.skip_baseline:
            print("4/4 row-by-row baseline", file=sys.stderr)
            url = pgserver.create_database(server, "baseline")
            b = measure(
                "_baseline",
                work,
                lake=lake,
                warehouse=url,
                max_songs=args.baseline_songs,
                max_events=args.baseline_events,
            )
            r["baseline"] = _extrapolated(b, r["lake"])


def _extrapolated(b: dict, lake: dict) -> dict:
    """The baseline's sample scaled to the whole lake: each part by its own row count, songs by
    files, events by lines."""
    songs_rate = b["songs_sampled"] / b["songs_seconds"] if b["songs_seconds"] else 0
    events_rate = b["events_sampled"] / b["events_seconds"] if b["events_seconds"] else 0
    b["estimated_seconds"] = (lake["songs"] / songs_rate if songs_rate else 0) + (
        lake["events"] / events_rate if events_rate else 0
    )
    b["extrapolated"] = b["songs_sampled"] < lake["songs"] or b["events_sampled"] < lake["events"]
    return b


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CHILDREN:
        return child_main(argv)
    args = _parser().parse_args(argv)

    lake = Path(args.lake).resolve()
    with tempfile.TemporaryDirectory(prefix="sparkify-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        r: dict = {"lake_path": str(lake), "machine": machine(), "lake": lake_stats(lake)}
        print(f"lake: {r['lake']['events']:,} events, {r['lake']['songs']:,} songs", file=sys.stderr)

        print("1/4 floor", file=sys.stderr)
        r["floor"] = measure("_floor", work, lake=lake, workdir=work)

        print("1b/4 end-to-end floor: the same tables by a plain DuckDB script", file=sys.stderr)
        r["floor_e2e"] = measure("_floor_e2e", work, lake=lake, workdir=work)

        print("2/4 sparkify run on DuckDB", file=sys.stderr)
        duck = f"duckdb://{work / 'pipeline.duckdb'}"
        home = {"DAGSTER_HOME": _dagster_home(work, "dagster-duckdb")}
        r["duckdb"] = sparkify_run(work, lake, duck, home["DAGSTER_HOME"])
        if not args.skip_incremental and r["lake"]["last_day"]:
            measure_daily(r, work, lake, duck, home)

        if not args.skip_postgres:
            measure_postgres(r, work, lake, args)

        if args.profile:
            print("profiling the DuckDB pipeline", file=sys.stderr)
            prof_home = {"DAGSTER_HOME": _dagster_home(work, "dagster-profile")}
            prof_wh = f"duckdb://{work / 'profile.duckdb'}"
            sparkify_run(work, lake, prof_wh, prof_home["DAGSTER_HOME"], profile=Path(args.profile))

        print(report(r))
        if args.profile:
            print_profile(Path(args.profile), args.profile_lines)
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
