"""One run at a time per warehouse: an OS file lock (`flock`) that the kernel releases when its
holder dies, however it dies (SIGKILL, the OOM killer, a closed laptop).

DuckDB allows one writer, and a run is many steps, each its own transaction: two runs
interleaving their steps on one warehouse make each other fail, or check another run's
half-finished work. A Dagster pool cannot prevent that across instances (`sparkify run` without
DAGSTER_HOME uses a throwaway one), and a run killed with SIGKILL keeps its pool slot for good.
So the whole run holds this lock: `WarehouseResource` takes it when a run initialises the
resource and releases it when the run ends, and `sparkify run` takes it before starting the run.

The lock file holds one line about its holder (process, host, run, command). The holder empties it
on release, so a non-empty file that nobody holds names a run that died holding the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sparkify_assets.errors import UserError

POLL_SECONDS = 0.2


class WarehouseBusy(UserError, RuntimeError):
    """Another process holds the warehouse lock and the caller asked not to wait."""


class LockError(UserError, RuntimeError):
    """The lock file cannot be created or opened (a read-only folder, a full disk)."""


@dataclass
class Holder:
    """Who holds (or last held) a warehouse lock."""

    pid: int
    host: str
    command: str
    run_id: str | None = None

    def describe(self) -> str:
        run = f", Dagster run {self.run_id}" if self.run_id else ""
        return f"process {self.pid} on {self.host} ({self.command}{run})"

    @staticmethod
    def me(run_id: str | None = None) -> Holder:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:3]]) if sys.argv and sys.argv[0] else "python"
        return Holder(os.getpid(), socket.gethostname(), command, run_id)


@dataclass
class _Held:
    fd: int
    depth: int
    holder: Holder


# Re-entrant within one thread (`sparkify run` holds the lock, then the run's resource asks for it
# again); another thread of the same process opens its own descriptor and waits like any process.
_local = threading.local()


def _held() -> dict[str, _Held]:
    if not hasattr(_local, "held"):
        _local.held = {}
    return _local.held


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lock file, or None (empty, missing, or half written)."""
    try:
        return Holder(**json.loads(path.read_text() or "null"))
    except (OSError, ValueError, TypeError):
        return None


def _write(fd: int, holder: Holder | None) -> None:
    """Record the holder (None: a clean release). Only advisory, so a full disk is no error here:
    the lock itself is the kernel's, not the file's contents."""
    try:
        os.ftruncate(fd, 0)
        if holder is not None:
            os.pwrite(fd, (json.dumps(holder.__dict__) + "\n").encode(), 0)
    except OSError:
        pass


@contextmanager
def _interruptible() -> Iterator[None]:
    """While waiting, Ctrl-C and SIGTERM stop the wait, whatever handler a Dagster run installed
    (it defers interrupts to its step boundaries, and a wait is not a step)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in saved:
        signal.signal(sig, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _wait_for(fd: int, path: Path, what: str, wait: bool, say: Callable[[str], None] | None) -> None:
    """Another process holds the lock: wait for it (telling `say` once), or refuse (WarehouseBusy)."""
    other = read_holder(path)
    who = other.describe() if other else "another process"
    if not wait:
        raise WarehouseBusy(f"The warehouse {what} is in use by {who}; not waiting (lock file {path}).")
    if say:
        say(f"waiting: the warehouse {what} is in use by {who}; this run starts when it finishes")
    with _interruptible():
        while not _try_lock(fd):
            time.sleep(POLL_SECONDS)


@contextmanager
def hold(
    path: Path,
    what: str,
    *,
    wait: bool = True,
    say: Callable[[str], None] | None = None,
    run_id: str | None = None,
) -> Iterator[Holder | None]:
    """Hold the lock at `path` for the warehouse `what` (a URL without password) while the block
    runs. If another process holds it: wait (telling `say` once) or, with wait=False, raise
    WarehouseBusy. Yields the previous holder when it died holding the lock, else None."""
    key = str(path.absolute())
    held = _held().get(key)
    if held is not None:
        held.depth += 1
        if run_id and held.holder.run_id != run_id:
            held.holder.run_id = run_id
            _write(held.fd, held.holder)
        try:
            yield None
        finally:
            held.depth -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise LockError(
            f"Cannot create the lock file {path} for the warehouse {what}: {exc.strerror or exc}."
        ) from None
    try:
        if not _try_lock(fd):
            _wait_for(fd, path, what, wait, say)
        previous = read_holder(path)
        me = Holder.me(run_id)
        _write(fd, me)
        _held()[key] = _Held(fd, 1, me)
        try:
            yield previous
        finally:
            del _held()[key]
            _write(fd, None)  # a clean release: nobody died holding it
    finally:
        os.close(fd)  # closing the descriptor releases the lock
