"""S3 throttling: a real HTTP proxy on 127.0.0.1 answers 503 SlowDown before passing requests on
to moto, and the lake retries with backoff (botocore's standard mode, through dagster-aws's
S3Resource), then either succeeds or fails with one sentence."""

from __future__ import annotations

import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster_aws.s3 import S3Resource

from sparkify_assets.resources.lake import LakeError, open_lake
from sparkify_assets_tests.conftest import SAMPLE, upload_folder

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class ThrottlingProxy:
    """Answers the first `throttle` GETs of objects with 503 SlowDown, forwards everything else."""

    def __init__(self, upstream: str, throttle: int) -> None:
        self.upstream, self.throttle, self.gets = upstream, throttle, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if method == "GET" and "/log_data/" in self.path:
                    proxy.gets += 1
                    if proxy.gets <= proxy.throttle:
                        self.send_response(503)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(SLOW_DOWN)))
                        self.end_headers()
                        self.wfile.write(SLOW_DOWN)
                        return
                req = urllib.request.Request(proxy.upstream + self.path, data=body, method=method)
                for k, v in self.headers.items():
                    if k.lower() not in ("host", "content-length"):
                        req.add_header(k, v)
                try:
                    with urllib.request.urlopen(req) as resp:
                        status, headers, data = resp.status, resp.headers.items(), resp.read()
                except urllib.error.HTTPError as err:
                    status, headers, data = err.code, err.headers.items(), err.read()
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "server",
                        "date",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_HEAD(self) -> None:
                self._forward("HEAD")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def one_day_bucket(aws_env, tmp_path) -> str:
    lake = tmp_path / "lake"
    day = lake / "log_data/2018/11"
    day.mkdir(parents=True)
    (day / "2018-11-03-events.json").write_bytes(
        (SAMPLE / "log_data/2018/11/2018-11-03-events.json").read_bytes()
    )
    bucket = f"throttled-{uuid.uuid4().hex[:8]}"
    upload_folder(lake, bucket)
    return bucket


def _lake_through(proxy: ThrottlingProxy, bucket: str):
    # path-style addressing so every request reaches the proxy's own host name
    s3 = S3Resource(endpoint_url=proxy.url, max_attempts=5)
    client = s3.get_client()
    client.meta.config.s3 = {"addressing_style": "path"}
    return open_lake(f"s3://{bucket}", s3)


def test_throttled_reads_are_retried_with_backoff(aws_env, one_day_bucket):
    proxy = ThrottlingProxy(aws_env, throttle=2)
    try:
        lake = _lake_through(proxy, one_day_bucket)
        files = lake.log_files()
        data = lake.read(files[0].key)
    finally:
        proxy.close()
    assert data == (SAMPLE / "log_data/2018/11/2018-11-03-events.json").read_bytes()
    assert proxy.gets == 3  # two SlowDowns, then the real object


def test_endless_throttling_fails_with_one_sentence(aws_env, one_day_bucket):
    proxy = ThrottlingProxy(aws_env, throttle=10**6)
    try:
        lake = _lake_through(proxy, one_day_bucket)
        key = lake.log_files()[0].key
        with pytest.raises(LakeError) as info:
            lake.read(key)
    finally:
        proxy.close()
    # max_attempts=5 means 5 retries after the first call (botocore's `retries` semantics,
    # although dagster-aws's field description says the first call counts): 6 GETs in all.
    assert proxy.gets == 6
    assert str(info.value) == (
        f"S3 kept throttling requests to s3://{one_day_bucket}/ (SlowDown) through 6 attempts with "
        "backoff: try again later, or lower the request rate."
    )
