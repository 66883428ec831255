"""What the lake-day partitions cost when the Definitions load, on a three-year S3 lake.

Starts moto's S3 server on 127.0.0.1, writes one small log file a day from 2018-11-01 for
`--days` days (1,096 by default: three years), optionally leaving every `--gap`-th day out, then
times `build_defs` (what `dagster dev`, `dagster asset materialize` and `sparkify run` do when
they load the code location) against the lake, split into the listing of log_data/ and the
rest, and the same `build_defs` with the partitions taken from a lake folder holding no file
(the fixed cost of building Definitions). Prints the figures; asserts nothing.

    python benchmarks/partitions_load.py [--days 1096] [--gap 0] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _moto_s3() -> Iterator[None]:
    """moto's S3 server on a free 127.0.0.1 port, with the environment pointing boto3 at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-west-2",
        AWS_REGION="us-west-2",
    )
    try:
        yield
    finally:
        server.stop()


def _write_days(count: int, gap: int) -> list[date]:
    """One small log file a day from 2018-11-01, leaving out every `gap`-th day (0: none)."""
    import boto3

    client = boto3.client("s3")
    client.create_bucket(
        Bucket="sparkify-bench", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    days = [date(2018, 11, 1) + timedelta(days=i) for i in range(count)]
    if gap:
        days = [d for i, d in enumerate(days) if (i + 1) % gap]
    body = json.dumps({"ts": 0, "userId": "1", "page": "Home", "sessionId": 1, "itemInSession": 0}).encode()

    def put(day: date) -> None:
        key = f"lake/log_data/{day:%Y/%m}/{day.isoformat()}-events.json"
        client.put_object(Bucket="sparkify-bench", Key=key, Body=body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, days))
    return days


def _time_loads(repeat: int) -> tuple[list[float], list[float], list[float], int]:
    """build_defs on the S3 lake and on an empty folder, `repeat` times each: their seconds, the
    seconds of each listing of the lake, and the partitions the S3 lake gave."""
    from sparkify_assets.definitions import build_defs
    from sparkify_assets.partitions import loaded_partitions
    from sparkify_assets.resources.lake import LakeResource, S3Lake
    from sparkify_assets.resources.warehouse import WarehouseResource

    listing: list[float] = []
    real = S3Lake._list

    def timed(self, prefix, start_after=None):
        started = time.perf_counter()
        try:
            return real(self, prefix, start_after)
        finally:
            listing.append(time.perf_counter() - started)

    S3Lake._list = timed
    warehouse = WarehouseResource(url="duckdb:///tmp/never-opened-by-the-benchmark.duckdb")
    empty = tempfile.mkdtemp()
    s3_total, empty_total, partitions = [], [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        defs = build_defs(warehouse, LakeResource(url="s3://sparkify-bench/lake"))
        s3_total.append(time.perf_counter() - started)
        partitions = len(loaded_partitions(defs).get_partition_keys())
        started = time.perf_counter()
        build_defs(warehouse, LakeResource(url=empty))
        empty_total.append(time.perf_counter() - started)
    return s3_total, empty_total, listing, partitions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1096)
    parser.add_argument("--gap", type=int, default=0, help="leave out every Nth day (0: none)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with _moto_s3():
        days = _write_days(args.days, args.gap)
        s3_total, empty_total, listing, partitions = _time_loads(args.repeat)
        per_load = sum(listing) / args.repeat
        print(f"lake: {len(days)} daily log files on moto S3 (127.0.0.1), {partitions} partitions")
        print(f"build_defs on the S3 lake:    median {statistics.median(s3_total):.3f} s over {args.repeat}")
        print(f"  of which listing log_data/: {per_load:.3f} s per load")
        print(f"build_defs on an empty lake:  median {statistics.median(empty_total):.3f} s")
        print(
            f"cost of the lake's days:      {statistics.median(s3_total) - statistics.median(empty_total):.3f} s"
        )


if __name__ == "__main__":
    main()
