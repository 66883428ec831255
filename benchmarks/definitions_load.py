"""Time how long the code location's Definitions take to load, as `dagster dev` pays it at start.

Each sample is a fresh interpreter that imports `sparkify_assets.definitions` (building `defs`);
the figures printed are the minimum and median wall time over the samples and the minimum CPU
time (user + system of the child, which a busy machine inflates far less than wall time), with a
bare interpreter's start-up and `import sqlglot` alongside for scale. Nothing is asserted.

    python benchmarks/definitions_load.py [--samples 7]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

PROGRAMS = {
    "python -c pass": "pass",
    "import sqlglot (lineage)": "import sqlglot, sqlglot.lineage",
    "load Definitions": "import sparkify_assets.definitions",
}


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sample(code: str) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running `code`."""
    cpu, start = _child_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start, _child_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    for label, code in PROGRAMS.items():
        walls, cpus = zip(*(sample(code) for _ in range(args.samples)), strict=True)
        print(
            f"{label:<28} wall min {min(walls):6.2f} s  median {statistics.median(walls):6.2f} s"
            f"   cpu min {min(cpus):6.2f} s"
        )


if __name__ == "__main__":
    main()
