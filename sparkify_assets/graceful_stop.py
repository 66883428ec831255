"""Ctrl-C and SIGTERM stop `sparkify run` within seconds, whatever it is doing.

A Dagster run defers interrupts to its step boundaries, and a long warehouse statement does not
return to Python until it ends, so a Python signal handler alone may run late or never. Here
SIGTERM is made to interrupt like Ctrl-C, and a watcher thread learns of each signal the moment
it arrives (Python's wakeup fd, written by the C-level handler even while the main thread is
busy in C): the main thread is interrupted as usual (the step's transaction rolls back, Dagster
skips the steps after it), and if the command has not finished GRACE_SECONDS later, the watcher
ends the process. Every step is one transaction, so the tables stay whole either way, and the
parser workers die with the process (worker_lifetime).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

GRACE_SECONDS = 5.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _next_signal(read_end: int, done: threading.Event, timeout: float | None) -> int | None:
    """The next SIGINT or SIGTERM on the wakeup fd within `timeout` seconds, or None (also once
    `done`)."""
    while not done.is_set():
        ready, _, _ = select.select([read_end], [], [], 0.2 if timeout is None else min(timeout, 0.2))
        if timeout is not None:
            timeout -= 0.2
        if ready:
            for byte in os.read(read_end, 64):
                if byte in SIGNALS:
                    return byte
        elif timeout is not None and timeout <= 0:
            return None
    return None


def _watch(read_end: int, done: threading.Event, grace_seconds: float) -> None:
    """The watcher thread: after the first signal, end the process if the block is not done
    `grace_seconds` later or a second signal comes."""
    first = _next_signal(read_end, done, None)
    if first is None:
        return
    name = signal.Signals(first).name
    print(f"stopping ({name}): the step in progress rolls back; every table stays whole", file=sys.stderr)
    again = _next_signal(read_end, done, grace_seconds)
    if not done.is_set():
        how = "a second signal" if again else f"{grace_seconds:g} s"
        print(f"stopped ({name}) after {how}, ending the process", file=sys.stderr, flush=True)
        os._exit(128 + first)


@contextmanager
def stop_on_signals(grace_seconds: float = GRACE_SECONDS) -> Iterator[None]:
    """Within the block, SIGINT or SIGTERM raise KeyboardInterrupt in the main thread (Dagster's
    own interrupt inside a run) and, if the block is still running `grace_seconds` later or a
    second signal comes, the process exits with 128 + the signal number."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    done = threading.Event()
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, signal.default_int_handler)
    old_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    watcher = threading.Thread(
        target=_watch, args=(read_end, done, grace_seconds), name="signal-watcher", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        watcher.join(1.0)
        os.close(read_end)
        os.close(write_end)
