"""Time how long the code location's Definitions take to load, as `dagster dev` pays it at start.

Each sample is a fresh interpreter that imports `sparkify_assets.definitions` (building `defs`);
the figure printed is the minimum and median over the samples, with a bare interpreter's start-up
and `import sqlglot` alongside for scale. Nothing is asserted.

    python benchmarks/definitions_load.py [--samples 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PROGRAMS = {
    "python -c pass": "pass",
    "import sqlglot (lineage)": "import sqlglot, sqlglot.lineage",
    "load Definitions": "import sparkify_assets.definitions",
}


def sample(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    for label, code in PROGRAMS.items():
        times = [sample(code) for _ in range(args.samples)]
        print(f"{label:<28} min {min(times):6.2f} s   median {statistics.median(times):6.2f} s")


if __name__ == "__main__":
    main()
