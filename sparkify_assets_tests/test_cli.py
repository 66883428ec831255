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


def test_dagster_asset_materialize_over_the_partition_range(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    url = f"duckdb://{tmp_path / 'cli.duckdb'}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "SPARKIFY_WAREHOUSE_URL": url}
    env.pop("SPARKIFY_LAKE_URL", None)
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
