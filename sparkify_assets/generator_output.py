"""Where a generated lake goes: a local folder, or an S3 prefix through boto3."""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import urlsplit

from sparkify_assets.errors import UsageError
from sparkify_assets.wire_logs import redact_wire_logs

S3_THREADS = 10  # botocore's default connection pool size
S3_IN_FLIGHT = 100  # bounded, so a large catalog never queues up in memory


class Sink(ABC):
    url: str

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Store one small file."""

    @abstractmethod
    def write_lines(self, key: str, lines: Iterable[str]) -> int:
        """Stream one JSON Lines file (no newline after the last line, as in the real logs);
        return the number of lines."""

    @abstractmethod
    def check_empty(self) -> None:
        """Refuse to mix a new lake into an old one."""

    def close(self) -> None:  # noqa: B027 - optional hook: only sinks with pending writes need it
        """Wait for pending writes."""


def _write_lines(fh, lines: Iterable[str]) -> int:
    n = 0
    for line in lines:
        if n:
            fh.write("\n")
        fh.write(line)
        n += 1
    return n


class LocalSink(Sink):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)
        self._dirs: set[Path] = set()

    def _path(self, key: str) -> Path:
        path = self.root / key
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        return path

    def write(self, key: str, data: bytes) -> None:
        self._path(key).write_bytes(data)

    def write_lines(self, key: str, lines: Iterable[str]) -> int:
        # The lines are ASCII already (\u escapes); a 1 MiB buffer keeps write calls few.
        with open(self._path(key), "w", encoding="ascii", newline="", buffering=1 << 20) as fh:
            return _write_lines(fh, lines)

    def check_empty(self) -> None:
        for part in ("log_data", "song_data"):
            if (self.root / part).exists():
                raise UsageError(f"{self.root / part} already exists: generate into a new folder.")


class S3Sink(Sink):
    def __init__(self, url: str) -> None:
        import boto3

        parts = urlsplit(url)
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        if not self.bucket:
            raise UsageError(f"{url} names no bucket: use s3://bucket/prefix")
        self.url = url
        redact_wire_logs()
        self.s3 = boto3.client("s3")
        self._pool = ThreadPoolExecutor(S3_THREADS)
        self._pending: set[Future] = set()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def write(self, key: str, data: bytes) -> None:
        if len(self._pending) >= S3_IN_FLIGHT:
            done, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()
        self._pending.add(
            self._pool.submit(self.s3.put_object, Bucket=self.bucket, Key=self._key(key), Body=data)
        )

    def write_lines(self, key: str, lines: Iterable[str]) -> int:
        # A day can be hundreds of MB: spool it to disk and let boto3 upload it in parts.
        fd, tmp = tempfile.mkstemp(prefix="sparkify-day-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="ascii", newline="", buffering=1 << 20) as fh:
                n = _write_lines(fh, lines)
            self.s3.upload_file(tmp, self.bucket, self._key(key))
            return n
        finally:
            os.unlink(tmp)

    def check_empty(self) -> None:
        prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            found = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0)
        except self.s3.exceptions.NoSuchBucket:
            raise UsageError(f"The bucket {self.bucket} does not exist: create it first.") from None
        if found:
            raise UsageError(f"{self.url} already holds objects: generate into a new prefix.")

    def close(self) -> None:
        for f in self._pending:
            f.result()
        self._pending.clear()
        self._pool.shutdown()


def open_sink(out: str) -> Sink:
    """`s3://bucket/prefix` or a local folder (also `file://…`)."""
    if out.startswith("s3://"):
        return S3Sink(out)
    if out.startswith("file://"):
        out = urlsplit(out).path
    return LocalSink(Path(out))
