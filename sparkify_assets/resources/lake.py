"""The lake: a local folder or an S3 prefix holding log_data/ and song_data/, read the same way.

Log files are found by their dated layout (`log_data/YYYY/MM/YYYY-MM-DD-events.json`, or
`.json.gz`), so a date range is listed by its month prefixes only, never by walking the whole lake.

The inventory (`Lake.inventory`) accounts for every object under log_data/ and song_data/: it is
loaded, rejected as a whole file with a reason (a stray or misplaced name, a named pipe, a broken
or looping symbolic link, a folder that cannot be listed), or ignored by a documented rule
(`ignore_rule`). Nothing is skipped silently, and listing never opens a file, so a named pipe
cannot hang it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from itertools import islice
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from sparkify_assets.errors import UserError
from sparkify_assets.wire_logs import redact_wire_logs

LOG_KEY = re.compile(r"^log_data/(\d{4})/(\d{2})/(\d{4})-(\d{2})-(\d{2})-events\.json(\.gz)?$")
LOG_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-events\.json(\.gz)?$")
SONG_SUFFIXES = (".json", ".json.gz")
# Names that are documentation, checksums or tool markers, never data: ignored, and reported.
DOC_NAME = re.compile(
    r"^(readme|license|licence|notice|changelog|sha256sums|sha1sums|md5sums)(\..*)?$|\.(md|sha256|md5|crc)$",
    re.IGNORECASE,
)
THROTTLING_CODES = ("SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503")
S3_FETCH_THREADS = 10  # botocore's default connection pool size
S3_READ_AHEAD = 2 * S3_FETCH_THREADS  # keeps every thread busy while the consumer catches up


class LakeError(UserError, RuntimeError):
    """A lake problem a person can act on."""


@dataclass(frozen=True)
class LakeFile:
    key: str  # relative to the lake root, always with "/"
    size: int
    version: str  # changes when the file's content changes (ETag on S3, mtime and size locally)
    day: date | None = None
    # Why the object cannot be loaded, when the listing or the read already knows (never read then).
    reject: str | None = None


@dataclass
class Inventory:
    """Every object under one area of the lake (log_data/ or song_data/), each in one list."""

    loaded: list[LakeFile] = field(default_factory=list)
    rejected: list[LakeFile] = field(default_factory=list)  # each with its `reject` reason
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (key, the rule)

    def named(self, limit: int) -> list[tuple[str, str, str]]:
        """The first `limit` objects not loaded: (key, "rejected" or "ignored", why)."""
        out = [(f.key, "rejected", f.reject or "") for f in self.rejected]
        out += [(key, "ignored", rule) for key, rule in self.ignored]
        return sorted(out)[:limit]


HIDDEN = "hidden (a name starting with a dot)"


def ignore_rule(key: str) -> str | None:
    """The documented rule by which an object is not data, or None: hidden names (a path part
    starting with "."), folder markers (S3 keys ending in "/"), tool markers (a name starting with
    "_", such as Spark's _SUCCESS) and documentation or checksum files (README*, LICENSE*,
    SHA256SUMS, *.md, *.md5, *.sha256, *.crc)."""
    # String tests, not a split into parts: this runs once per object (300k song files).
    path = key.rstrip("/")
    if "/." in path:  # a part after the area's own name starts with a dot
        return HIDDEN
    if key.endswith(("/", "_$folder$")):
        return "folder marker"
    name = path.rsplit("/", 1)[1] if "/" in path else ""
    if name.startswith("_"):
        return "tool marker (a name starting with an underscore)"
    if DOC_NAME.search(name):
        return "documentation or checksum file"
    return None


def _log_reject(key: str) -> str:
    """Why an object under log_data/ that is not a daily log file in its place is not loaded."""
    name = key.rsplit("/", 1)[-1]
    m = LOG_NAME.fullmatch(name)
    if m:
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return f"not a daily log file: {m.group(1)}-{m.group(2)}-{m.group(3)} is not a date"
        return f"misplaced log file: the log of {day} belongs at log_data/{day:%Y/%m}/{name}"
    return "not a daily log file (log_data/YYYY/MM/YYYY-MM-DD-events.json or .json.gz)"


def log_day(key: str) -> date | None:
    """The date of a log file from its key, or None when the key is not a daily log file."""
    m = LOG_KEY.match(key)
    if not m or m.group(1, 2) != m.group(3, 4):
        return None
    try:
        return date(int(m.group(3)), int(m.group(4)), int(m.group(5)))
    except ValueError:
        return None


def _day_key_floor(day: date) -> str:
    """A key that sorts after every log key of earlier days and before the log key of `day`."""
    return f"log_data/{day.year:04d}/{day.month:02d}/{day.isoformat()}"


def _months(start: date, end: date) -> Iterator[tuple[int, int]]:
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


class Lake(ABC):
    url: str

    @abstractmethod
    def _list(self, prefix: str, start_after: str | None = None) -> list[LakeFile]:
        """Every file whose key starts with `prefix` (and sorts after `start_after`)."""

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    @abstractmethod
    def check(self) -> None:
        """Raise LakeError when the lake cannot be read at all."""

    def read_many(self, files: Iterable[LakeFile]) -> Iterator[tuple[LakeFile, bytes]]:
        for f in files:
            yield f, (b"" if f.reject else self.read(f.key))

    def log_files(self, start: date | None = None, end: date | None = None) -> list[LakeFile]:
        """Daily log files with start <= day <= end, in date order."""
        if start is None:
            found = self._list("log_data/")
        elif end is None:
            # Keys sort in date order, so one listing that starts after the day before `start`
            # costs one call per 1,000 new keys, however many years the lake holds before it and
            # however many empty months lie between the last file and today.
            found = self._list("log_data/", _day_key_floor(start))
        else:
            found = []
            for y, m in _months(start, end):
                prefix = f"log_data/{y:04d}/{m:02d}/"
                after = f"{prefix}{start.isoformat()}" if (y, m) == (start.year, start.month) else None
                found.extend(self._list(prefix, after))
        files = []
        for f in found:
            day = log_day(f.key)
            if day and (start is None or day >= start) and (end is None or day <= end):
                files.append(LakeFile(f.key, f.size, f.version, day, f.reject))
        return [f for f in _one_per_day(sorted(files, key=lambda f: f.key))[0] if f.reject is None]

    def inventory(self, area: str) -> Inventory:
        """Every object under `area` ("log_data" or "song_data"): loaded, rejected or ignored."""
        inv = Inventory()
        for f in sorted(self._list(f"{area}/"), key=lambda f: f.key):
            rule = ignore_rule(f.key)
            # A hidden name is ignored whatever it is; otherwise a problem the listing found wins
            # over the other rules (a broken link named README is still reported as broken).
            if rule and (rule == HIDDEN or not f.reject):
                inv.ignored.append((f.key, rule))
            elif f.reject:
                inv.rejected.append(f)
            elif area == "log_data" and log_day(f.key):
                inv.loaded.append(replace(f, day=log_day(f.key)))
            elif area == "log_data":
                inv.rejected.append(replace(f, version="", reject=_log_reject(f.key)))
            elif f.key.endswith(SONG_SUFFIXES):
                inv.loaded.append(f)
            else:
                inv.rejected.append(
                    replace(f, version="", reject="not a song file (song_data/**/*.json or .json.gz)")
                )
        if area == "log_data":
            inv.loaded, extra = _one_per_day(inv.loaded)
            inv.rejected = sorted(inv.rejected + extra, key=lambda f: f.key)
        return inv

    def ignored_log_keys(self) -> list[str]:
        """Keys under log_data/ that are not loaded (rejected or ignored), to report rather than
        skip silently."""
        inv = self.inventory("log_data")
        return sorted([f.key for f in inv.rejected] + [key for key, _ in inv.ignored])

    def song_files(self) -> list[LakeFile]:
        return self.inventory("song_data").loaded

    def days(self) -> list[date]:
        return sorted({f.day for f in self.log_files()})


def _one_per_day(files: list[LakeFile]) -> tuple[list[LakeFile], list[LakeFile]]:
    """Sorted log files with at most one per day: a day's `.json` sorts (and wins) before its
    `.json.gz`; the other copy is rejected, since loading both would stage the day twice."""
    kept: dict[date, LakeFile] = {}
    extra = []
    for f in files:
        if f.day in kept and f.reject is None and kept[f.day].reject is None:
            extra.append(
                # Undated, like every object under log_data/ that is no day's file.
                replace(
                    f,
                    day=None,
                    version="",
                    reject=f"another log file of {f.day} is loaded: {kept[f.day].key}",
                )
            )
        elif f.day not in kept or kept[f.day].reject is not None:
            kept[f.day] = f
    return sorted(kept.values(), key=lambda f: f.key), extra


def _safe_name(name: str) -> tuple[str, bool]:
    """A file name as a key any warehouse can store, and whether it was valid UTF-8. A local file
    name of undecodable bytes arrives with surrogate escapes (PEP 383): keep them as \\xNN text."""
    if name.isascii():  # almost every name: no encoding to try
        return name, True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"), False
    return name, True


def _os_problem(exc: OSError, is_link: bool) -> str:
    """A listing error in words."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(exc, FileNotFoundError):
        return "broken symbolic link (its target does not exist)" if is_link else "vanished while listing"
    return f"cannot be read ({exc.strerror or exc})"


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
_FILE_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):  # almost always: answer at once (twice per file: listing and read)
        return None
    for test, what in _FILE_KINDS:
        if test(mode):
            return f"not a regular file but {what} (never opened)"
    return None if stat.S_ISREG(mode) else "not a regular file"


def _sorts_before(folder: str, key: str) -> bool:
    """True when every key under `folder` (ending in "/") sorts at or before `key`."""
    return folder < key and not key.startswith(folder)


def _add_entry(entry: os.DirEntry, rel: str, start_after: str | None, out: list, folders: list) -> None:
    """One scandir entry of `rel`: a LakeFile appended to `out` (a reject or an ignored folder
    when it is no loadable file), or a folder to enter appended to `folders`."""
    name, valid = _safe_name(entry.name)
    key = f"{rel}/{name}"
    is_link = False
    try:
        is_link = entry.is_symlink()
        is_dir = entry.is_dir()
    except OSError as exc:
        out.append(LakeFile(key, 0, "", reject=_os_problem(exc, is_link)))
        return
    if is_dir:
        # Skip folders whose every key sorts before start_after (e.g. earlier
        # months), so a listing since a recent day reads only the recent folders.
        if start_after and _sorts_before(key + "/", start_after):
            return
        if name.startswith("."):
            out.append(LakeFile(key + "/", 0, ""))  # hidden: ignored, not entered
        elif is_link:
            out.append(LakeFile(key + "/", 0, "", reject="symbolic link to a folder (not followed)"))
        elif not valid:
            out.append(LakeFile(key + "/", 0, "", reject="folder name is not valid UTF-8"))
        else:
            folders.append((entry.path, key))
        return
    if start_after and key <= start_after:
        return
    try:
        st = entry.stat()
    except OSError as exc:
        out.append(LakeFile(key, 0, "", reject=_os_problem(exc, is_link)))
        return
    reject = _not_regular(st.st_mode) or (None if valid else "file name is not valid UTF-8")
    version = "" if reject else f"{st.st_mtime_ns}-{st.st_size}"
    out.append(LakeFile(key, st.st_size, version, reject=reject))


class LocalLake(Lake):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)
        self._prefix = os.path.join(self.url, "")  # keys are relative, with "/"

    def check(self) -> None:
        if not self.root.is_dir():
            raise LakeError(
                f"The lake folder {self.root} does not exist: set SPARKIFY_LAKE_URL to a folder (or "
                "s3://bucket/prefix) that holds log_data/ and song_data/."
            )

    def _list(self, prefix: str, start_after: str | None = None) -> list[LakeFile]:
        self.check()
        base = self.root / prefix
        if not base.is_dir():
            return []
        # One os.scandir pass with keys built as strings: the os.walk version built two Path
        # objects and a relative_to() per file, most of its 4.8 s on 100k song files. Symlinked
        # folders are not entered (each is a reject that names it), entries' stat follows links,
        # so keys, sizes and versions (hence the sensors' run keys) are what they always were.
        # Whatever the file system holds becomes an entry: nothing here raises or opens a file.
        out = []
        folders = [(str(base), base.relative_to(self.root).as_posix())]
        while folders:
            folder, rel = folders.pop()
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError as exc:
                reason = f"folder cannot be listed ({exc.strerror or exc}): its files are not loaded"
                out.append(LakeFile(f"{rel}/", 0, "", reject=reason))
                continue
            for entry in entries:
                _add_entry(entry, rel, start_after, out, folders)
        return out

    def read(self, key: str) -> bytes:
        # A string path, not root / key: building 100k Path objects cost 0.3-0.5 s of 1.5 s
        # to read 100k song files. O_NONBLOCK: a file swapped for a named pipe after the
        # listing must not block the open; it is refused by its type instead.
        path = self._prefix + key
        fd = os.open(path, _READ_FLAGS)
        try:
            st = os.fstat(fd)
            problem = _not_regular(st.st_mode)
            if problem:
                raise LakeError(f"{path}: {problem}")
            # os.read, not a file object: a song file is one read. Asking one byte more than its
            # size tells the end of the file (a short read of a regular file) from a file that
            # grew since the fstat, which is then read to its end.
            want = st.st_size + 1
            data = os.read(fd, want)
            if len(data) < want:
                return data
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read_many(self, files: Iterable[LakeFile]) -> Iterator[tuple[LakeFile, bytes]]:
        """Files in order; one that cannot be read becomes a whole-file reject (with no version,
        so the next run tries it again) instead of failing the load."""
        for f in files:
            if f.reject:
                yield f, b""
                continue
            try:
                data = self.read(f.key)
            except (OSError, LakeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                yield replace(f, version="", reject=f"file cannot be read ({reason})"), b""
            else:
                yield f, data


class S3Lake(Lake):
    def __init__(self, client, bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        self.list_calls = 0  # counted so the sensors' listing cost can be measured

    def _errors(self, exc: Exception) -> LakeError:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            return LakeError(
                f"No AWS credentials to read {self.url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE)."
            )
        if isinstance(exc, EndpointConnectionError):
            return LakeError(
                f"Cannot reach the S3 endpoint for {self.url}: check AWS_ENDPOINT_URL and the network."
            )
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                return LakeError(f"The bucket of {self.url} does not exist: check SPARKIFY_LAKE_URL.")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                return LakeError(f"Access to {self.url} was denied ({code}): check the AWS credentials.")
            if code in THROTTLING_CODES:
                # botocore's standard retry mode already backed off and retried before giving up.
                tries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
                return LakeError(
                    f"S3 kept throttling requests to {self.url} ({code}) through {tries} attempts with "
                    "backoff: try again later, or lower the request rate."
                )
            return LakeError(f"S3 error on {self.url}: {code or exc}")
        return LakeError(f"Cannot read {self.url}: {exc}")

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise self._errors(exc) from None

    def bucket_region(self) -> str | None:
        """The bucket's region (S3 GetBucketLocation), or None when it cannot be read: the
        caller may lack s3:GetBucketLocation, or the store (MinIO, moto) may not say."""
        try:
            constraint = self.client.get_bucket_location(Bucket=self.bucket).get("LocationConstraint")
        except Exception:
            return None
        # S3 reports us-east-1 as no constraint, and eu-west-1 as "EU" for the oldest buckets.
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)

    def _list(self, prefix: str, start_after: str | None = None) -> list[LakeFile]:
        kwargs = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                self.list_calls += 1
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix) :]
                    out.append(LakeFile(key, obj["Size"], obj["ETag"].strip('"')))
        except Exception as exc:
            raise self._errors(exc) from None
        return out

    def read(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except Exception as exc:
            raise self._errors(exc) from None

    def _read_unless_rejected(self, f: LakeFile) -> bytes:
        return b"" if f.reject else self.read(f.key)

    def head(self, key: str, size: int) -> bytes:
        """The first `size` bytes of an object (one ranged GET), e.g. to see gzip's magic bytes."""
        try:
            body = self.client.get_object(
                Bucket=self.bucket, Key=self.prefix + key, Range=f"bytes=0-{size - 1}"
            )
            return body["Body"].read()[:size]
        except Exception as exc:
            raise self._errors(exc) from None

    def read_many(self, files: Iterable[LakeFile]) -> Iterator[tuple[LakeFile, bytes]]:
        """Many tiny song objects: fetch them concurrently, yield them in order.

        At most S3_READ_AHEAD objects are fetched or in flight beyond what the consumer has taken
        (the one it holds included): pool.map submits every GET at once, so with a consumer
        slower than S3 every body of the lake piled up in memory.
        """
        pending = iter(files)
        window: deque[tuple[LakeFile, Future[bytes]]] = deque()
        pool = ThreadPoolExecutor(max_workers=S3_FETCH_THREADS)
        try:
            for f in islice(pending, S3_READ_AHEAD):
                window.append((f, pool.submit(self._read_unless_rejected, f)))
            while window:
                f, future = window.popleft()
                yield f, future.result()
                # Refill only once the consumer asks for the next object: it is done with this one.
                for nxt in islice(pending, 1):
                    window.append((nxt, pool.submit(self._read_unless_rejected, nxt)))
        finally:
            # A consumer that stops early (or a failed GET) does not wait for the rest of the window.
            pool.shutdown(wait=True, cancel_futures=True)


def sample_lake_path() -> Path:
    """The Sparkify sample shipped inside the package: the default lake."""
    return Path(str(resources.files("sparkify_assets").joinpath("data/sparkify_sample")))


def open_lake(url: str, s3: S3Resource | None = None) -> Lake:
    """Build the lake named by a URL; `s3` (dagster-aws) supplies the client for s3:// lakes."""
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise LakeError(f"{url!r} names no bucket: use s3://bucket/prefix.")
        redact_wire_logs()
        # boto3 reads AWS_ENDPOINT_URL, AWS_REGION and the keys itself; S3Resource adds retries.
        return S3Lake((s3 or S3Resource()).get_client(), parts.netloc, unquote(parts.path))
    if scheme == "file":
        return LocalLake(Path(unquote(parts.path)))
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return LocalLake(Path(url).expanduser())
    raise LakeError(
        f"Unknown lake URL scheme {scheme}://: SPARKIFY_LAKE_URL takes a folder, file://… or s3://bucket/prefix."
    )


class LakeResource(ConfigurableResource):
    """Where the raw JSON lives: a local folder or s3://bucket/prefix (default: the shipped sample)."""

    url: str = Field(
        default="", description="A folder, file://… or s3://bucket/prefix; empty: the shipped sample"
    )
    s3: S3Resource = Field(default_factory=S3Resource, description="S3 client settings for an s3:// lake")

    def open(self) -> Lake:
        return open_lake(self.url or str(sample_lake_path()), self.s3)
