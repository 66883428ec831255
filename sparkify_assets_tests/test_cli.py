"""The commands a newcomer types: the README's first command is what .ci/run runs, `sparkify run`
prints the contract's counts, and `dagster asset materialize` over the partition range works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sparkify_assets_tests.conftest import CONTRACT
from sparkify_assets_tests.helpers import count
from sparkify_assets_tests.pgserver import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README starts with a bash block of the two commands"
    return block.group(1).splitlines()


def test_readme_first_lines_are_the_two_commands_ci_runs():
    install_and_run, test = _readme_commands()
    assert install_and_run.endswith("sparkify run")
    assert test == "bash .ci/run"
    # .ci/run runs the first command verbatim before the tests.
    assert install_and_run in (ROOT / ".ci" / "run").read_text().splitlines()


def test_sparkify_run_prints_the_contract_counts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DAGSTER_HOME"))}
    proc = subprocess.run(
        [str(BIN / "sparkify"), "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    printed = dict(re.findall(r"^  (\w+)\s+([\d,]+)$", proc.stdout, re.M))
    assert {t: int(printed[t].replace(",", "")) for t in CONTRACT} == CONTRACT
    assert (tmp_path / ".sparkify" / "sparkify.duckdb").exists()


def _dagster_env(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A DuckDB file and a Dagster home of the test's own, the lake the shipped sample."""
    home = tmp_path / "home"
    home.mkdir()
    url = f"duckdb://{tmp_path / 'cli.duckdb'}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "SPARKIFY_WAREHOUSE_URL": url}
    env.pop("SPARKIFY_LAKE_URL", None)
    return url, env


def test_dagster_asset_materialize_over_the_partition_range(tmp_path):
    url, env = _dagster_env(tmp_path)
    cmd = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "sparkify_assets",
        "--select",
        "*",
        "--partition-range",
        "2018-11-01...2018-11-30",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {t: count(url, t) for t in CONTRACT} == CONTRACT


def test_dg_checks_and_launches_the_same_definitions(tmp_path):
    # `dg` finds the project by [tool.dg] in the pyproject.toml of its working directory.
    url, env = _dagster_env(tmp_path)
    check = subprocess.run(
        [str(BIN / "dg"), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert "All definitions loaded successfully" in check.stdout + check.stderr
    launch = subprocess.run(
        # songs' reference check is blocking, so the catalog launches with the artists it names.
        [str(BIN / "dg"), "launch", "--assets", "staging_songs,artists,songs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert launch.returncode == 0, launch.stderr[-3000:]
    assert count(url, "staging_songs") == CONTRACT["staging_songs"]
    assert count(url, "songs") == CONTRACT["songs"]
    assert count(url, "artists") == CONTRACT["artists"]


@pytest.mark.parametrize(
    "url, says",
    [
        ("mysql://me@127.0.0.1/db", "Unknown warehouse URL scheme mysql://"),
        (
            "postgresql://me@127.0.0.1:{port}/db",
            "Cannot connect to the warehouse postgresql://me@127.0.0.1:{port}/db",
        ),
    ],
    ids=["unknown-scheme", "unreachable-host"],
)
def test_a_bad_warehouse_is_one_line_before_any_step(tmp_path, url, says):
    port = free_port()  # nothing listens there
    secret = "Not-The-Real-Password-42"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DAGSTER_HOME"))}
    env.update(SPARKIFY_WAREHOUSE_URL=url.format(port=port), SPARKIFY_WAREHOUSE_PASSWORD=secret)
    proc = subprocess.run(
        [str(BIN / "sparkify"), "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + says.format(port=port)), proc.stderr
    assert "SPARKIFY_WAREHOUSE_URL" in lines[0] or "SPARKIFY_WAREHOUSE_PASSWORD" in lines[0]  # what to do
    assert secret not in proc.stdout + proc.stderr
    assert "STEP_FAILURE" not in proc.stdout + proc.stderr  # no run was launched


# --- What a newcomer sees (issue 19): progress, ranges, an empty warehouse, help, failures ---

SAMPLE_LOGS = ROOT / "sparkify_assets" / "data" / "sparkify_sample" / "log_data" / "2018" / "11"
STEP_LINE = re.compile(r"^\[\s*(\d+)/(\d+)\] (\w+)\s+([\d,]+) rows\s+([\d.]+) s$")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "DAGSTER_HOME"))}
    env.update(extra)
    return env


def _events_in(*days: int) -> int:
    """Event lines of the sample's log files for those November days (non-blank lines)."""
    return sum(
        sum(
            1
            for line in (SAMPLE_LOGS / f"2018-11-{d:02d}-events.json").read_text().splitlines()
            if line.strip()
        )
        for d in days
    )


def test_run_prints_each_step_as_it_finishes_in_plain_lines(tmp_path):
    url = f"duckdb://{tmp_path / 'w' / 'run.duckdb'}"
    proc = subprocess.Popen(
        [str(BIN / "sparkify"), "run", "--start", "2018-11-29"],
        cwd=tmp_path,
        env=_env(tmp_path, SPARKIFY_WAREHOUSE_URL=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, running_at_first_step = [], None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if running_at_first_step is None and STEP_LINE.match(lines[-1]):
            running_at_first_step = proc.poll() is None
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    # The first step's line arrives while the run still has its other steps to do.
    assert running_at_first_step is True
    steps = {m.group(3): m for m in map(STEP_LINE.match, lines) if m}
    assert len(steps) == 14 and {m.group(2) for m in steps.values()} == {"14"}
    assert sorted(int(m.group(1)) for m in steps.values()) == list(range(1, 15))
    assert int(steps["staging_events"].group(4).replace(",", "")) == _events_in(29, 30)
    assert int(steps["staging_songs"].group(4)) == CONTRACT["staging_songs"]
    assert all(float(m.group(5)) >= 0 for m in steps.values())
    out = "\n".join(lines)
    assert "loading 2018-11-29 to 2018-11-30 (2 days with a log file)" in out
    assert out.count("warehouse: ") == 1
    assert "\r" not in out and "B/s" not in out  # no progress bar when stdout is not a terminal
    assert count(url, "staging_events") == _events_in(29, 30)


def test_run_on_a_terminal_draws_a_bar_over_the_bytes_staged(tmp_path):
    import pty

    url = f"duckdb://{tmp_path / 'tty.duckdb'}"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "sparkify"), "run", "--start", "2018-11-30"],
        cwd=tmp_path,
        env=_env(tmp_path, SPARKIFY_WAREHOUSE_URL=url, COLUMNS="120"),
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    os.close(leader)
    out = b"".join(chunks).decode(errors="replace")
    size = (SAMPLE_LOGS / "2018-11-30-events.json").stat().st_size
    assert "staging staging_events" in out and "staging staging_songs" in out
    # The bar's total is the day's file, in bytes (tqdm's k = 1,000).
    totals = re.findall(r"staging staging_events:\s+\d+%\|[^|]*\| [\d.]+k?/([\d.]+)k ", out)
    assert totals and float(totals[0]) == pytest.approx(size / 1000, abs=0.6), out[-2000:]
    lines = [line.strip("\r") for line in out.replace("\r\n", "\n").split("\n")]
    assert any(STEP_LINE.match(line) for line in lines)


@pytest.mark.parametrize(
    "args, code, says",
    [
        (
            ["--start", "2018-11-10", "--end", "2018-11-05"],
            1,
            "error: --start 2018-11-10 is after --end 2018-11-05",
        ),
        (
            ["--start", "2019-01-01"],
            1,
            "error: no log file on or after 2019-01-01: the lake's log files run from 2018-11-01 to 2018-11-30",
        ),
        (
            ["--start", "2018-10-01", "--end", "2018-10-31"],
            1,
            "error: no log file from 2018-10-01 to 2018-10-31: the lake's log files run from 2018-11-01",
        ),
        (["--start", "11/05/2018"], 2, "'11/05/2018' is not a date: use YYYY-MM-DD, e.g. 2018-11-05"),
        (["--end", "2018-11-31"], 2, "'2018-11-31' is not a date: use YYYY-MM-DD"),
    ],
    ids=["reversed", "after-the-lake", "before-the-lake", "us-format", "no-such-day"],
)
def test_a_range_that_cannot_load_is_refused_before_the_warehouse_is_touched(tmp_path, args, code, says):
    warehouse = tmp_path / "never" / "w.duckdb"
    proc = subprocess.run(
        [str(BIN / "sparkify"), "run", *args],
        cwd=tmp_path,
        env=_env(tmp_path, SPARKIFY_WAREHOUSE_URL=f"duckdb://{warehouse}"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == code
    assert says in proc.stderr, proc.stderr
    assert "loading" not in proc.stdout and "STEP" not in proc.stdout + proc.stderr
    assert not warehouse.parent.exists()  # nothing created


@pytest.mark.parametrize("command", [["tables"], ["query", "top_songs"], ["query", "--sql", "SELECT 1"]])
def test_an_unloaded_warehouse_says_how_to_load_it_and_creates_nothing(tmp_path, command):
    warehouse = tmp_path / "not-yet" / "w.duckdb"
    proc = subprocess.run(
        [str(BIN / "sparkify"), *command],
        cwd=tmp_path,
        env=_env(tmp_path, SPARKIFY_WAREHOUSE_URL=f"duckdb://{warehouse}"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"Nothing has been loaded into duckdb://{warehouse} yet: load it with `sparkify run` "
        "(or `dagster dev`, whose sensors load the lake on their own)."
    )
    assert proc.stdout == ""  # no zeros, no warehouse line
    assert not warehouse.parent.exists()


def test_tables_on_a_postgres_database_without_tables_creates_none(pg_url):
    env = {**os.environ, "SPARKIFY_WAREHOUSE_URL": pg_url}
    proc = subprocess.run(
        [str(BIN / "sparkify"), "tables"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1 and "Nothing has been loaded into postgresql://" in proc.stderr
    from sparkify_assets.resources.warehouse import open_warehouse

    assert open_warehouse(pg_url).query(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
    ) == [(0,)]


def test_run_and_tables_have_help_descriptions():
    for command, words in (("run", "Prints a line as each step finishes"), ("tables", "nothing is created")):
        proc = subprocess.run(
            [str(BIN / "sparkify"), command, "--help"], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0
        assert words in " ".join(proc.stdout.split()), proc.stdout
    top = subprocess.run([str(BIN / "sparkify"), "--help"], capture_output=True, text=True, timeout=120)
    assert "load every day of the lake" in top.stdout and "row count of each table" in top.stdout


def test_generate_prints_progress_by_time_not_by_day(tmp_path):
    import time

    started = time.monotonic()
    proc = subprocess.run(
        [
            str(BIN / "sparkify"),
            "generate",
            "--events",
            "3000",
            "--songs",
            "50",
            "--users",
            "20",
            "--days",
            "30",
        ]
        + ["--out", str(tmp_path / "lake")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    from sparkify_assets.generate import PROGRESS_SECONDS

    lines = proc.stderr.strip().splitlines()
    # The last line of each part always, and at most one more per PROGRESS_SECONDS of running.
    assert lines[-1].endswith("log_data: 2018-11-30 done, 3,000/3,000 events (100%)")
    assert any(line.endswith("song_data: 50/50 files") for line in lines)
    assert len(lines) <= 2 + elapsed / PROGRESS_SECONDS < 30
    assert len(list((tmp_path / "lake" / "log_data").rglob("*.json"))) == 30


@pytest.mark.parametrize(
    "lake, warehouse, reason",
    [
        ("{tmp}/no-lake", "duckdb://{tmp}/w.duckdb", "The lake folder {tmp}/no-lake does not exist"),
        ("", "duckdb://{tmp}/not-duckdb.txt", "Cannot open the DuckDB warehouse {tmp}/not-duckdb.txt"),
    ],
    ids=["lake", "warehouse"],
)
def test_dagster_asset_materialize_leads_a_failed_step_with_its_reason(tmp_path, lake, warehouse, reason):
    (tmp_path / "not-duckdb.txt").write_text("a text file where the DuckDB warehouse should be\n" * 200)
    home = tmp_path / "home"
    home.mkdir()
    env = _env(tmp_path, DAGSTER_HOME=str(home), SPARKIFY_WAREHOUSE_URL=warehouse.format(tmp=tmp_path))
    if lake:
        env["SPARKIFY_LAKE_URL"] = lake.format(tmp=tmp_path)
    cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "sparkify_assets", "--select", "staging_songs"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    failed = next(i for i, line in enumerate(lines) if "STEP_FAILURE" in line)
    lead = [line for line in lines[failed + 1 : failed + 4] if line.strip()][0]
    assert lead.startswith("dagster._core.definitions.events.Failure: " + reason.format(tmp=tmp_path)), lead
