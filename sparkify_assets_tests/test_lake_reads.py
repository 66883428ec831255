"""How the lake lists and reads: S3 reads run ahead of a slow consumer by a bounded window, in
order; a folder's listing keeps the key, size and version the sensors' run keys are made of."""

from __future__ import annotations

import io
import os
import threading
import time
from datetime import date
from pathlib import Path

from sparkify_assets.resources import lake as lake_module
from sparkify_assets.resources.lake import LakeFile, LocalLake, S3Lake


class _MemoryS3:
    """A hand-made S3 client: get_object returns the key as the body after a short delay."""

    def get_object(self, Bucket: str, Key: str) -> dict:
        time.sleep(0.001)
        return {"Body": io.BytesIO(Key.encode())}


class _CountingLake(S3Lake):
    """Counts objects fetched but not yet consumed, and the most ever seen at once."""

    def __init__(self) -> None:
        super().__init__(_MemoryS3(), "bucket", "lake")
        self.lock = threading.Lock()
        self.fetched = self.consumed = self.most_unconsumed = 0

    def read(self, key: str) -> bytes:
        body = super().read(key)
        with self.lock:
            self.fetched += 1
            self.most_unconsumed = max(self.most_unconsumed, self.fetched - self.consumed)
        return body


def test_s3_read_ahead_is_bounded_for_a_slow_consumer_and_keeps_order():
    lk = _CountingLake()
    files = [LakeFile(f"song_data/A/{i:04d}.json", 10, str(i)) for i in range(120)]
    seen = []
    for f, body in lk.read_many(files):
        time.sleep(0.003)  # slower than the 10 fetch threads together
        seen.append((f.key, body))
        with lk.lock:
            lk.consumed += 1
    assert seen == [(f.key, f"lake/{f.key}".encode()) for f in files]
    # The bound is 2 x 10 threads, the one the consumer holds included; pool.map fetched all 120.
    assert lk.most_unconsumed <= 20
    assert lk.most_unconsumed >= 10  # and it did read ahead, concurrently


def test_s3_read_many_stopped_early_does_not_fetch_the_rest():
    lk = _CountingLake()
    files = [LakeFile(f"song_data/A/{i:04d}.json", 10, str(i)) for i in range(200)]
    reader = lk.read_many(files)
    next(reader)
    reader.close()
    assert lk.fetched <= 20


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_folder_listing_keeps_keys_sizes_and_versions(tmp_path):
    _write(tmp_path / "log_data/2018/10/2018-10-31-events.json", "{}\n")
    _write(tmp_path / "log_data/2018/11/2018-11-01-events.json", '{"a": 1}\n')
    _write(tmp_path / "log_data/2018/11/2018-11-02-events.json", '{"a": 22}\n')
    _write(tmp_path / "log_data/notes.txt", "x")
    _write(tmp_path / "song_data/A/B/C/TRABC.json", '{"song_id": "S1"}')
    _write(tmp_path / "song_data/A/TRA.json", '{"song_id": "S22"}')
    _write(tmp_path / "song_data/README", "not json")
    os.utime(tmp_path / "song_data/A/TRA.json", ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))

    def expected(key: str, day: date | None = None) -> LakeFile:
        st = os.stat(tmp_path / key)  # the version the sensors' run keys were always made of
        return LakeFile(key, st.st_size, f"{st.st_mtime_ns}-{st.st_size}", day)

    lk = LocalLake(tmp_path)
    assert lk.song_files() == [expected("song_data/A/B/C/TRABC.json"), expected("song_data/A/TRA.json")]
    assert lk.song_files()[1].version == "1500000000123456789-18"
    days = [date(2018, 10, 31), date(2018, 11, 1), date(2018, 11, 2)]
    keys = [f"log_data/{d:%Y/%m}/{d.isoformat()}-events.json" for d in days]
    assert lk.log_files() == [expected(k, d) for k, d in zip(keys, days, strict=True)]
    # Since a day: earlier months are pruned, the day itself is included.
    assert lk.log_files(date(2018, 11, 1)) == [
        expected(k, d) for k, d in zip(keys[1:], days[1:], strict=True)
    ]
    assert lk.log_files(date(2018, 11, 2), date(2018, 11, 2)) == [expected(keys[2], days[2])]
    assert lk.ignored_log_keys() == ["log_data/notes.txt"]


def test_listing_skips_symlinked_folders_like_before(tmp_path):
    _write(tmp_path / "elsewhere/X.json", "{}")
    _write(tmp_path / "song_data/A/TRA.json", "{}")
    (tmp_path / "song_data/link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert [f.key for f in LocalLake(tmp_path).song_files()] == ["song_data/A/TRA.json"]


def test_read_ahead_window_constant():
    assert lake_module.S3_READ_AHEAD == 2 * lake_module.S3_FETCH_THREADS
