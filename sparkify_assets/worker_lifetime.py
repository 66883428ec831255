"""Parser worker processes die with the process that started them, however it dies.

A pool's workers outlive a parent killed with SIGKILL (about 130 MB each, with the resource
tracker). Each worker asks Linux to send it SIGKILL when its parent dies (prctl
PR_SET_PDEATHSIG), and a watchdog thread exits if the parent changes anyway (another OS, or a
parent that died before the prctl took effect).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: exit as soon as `parent_pid` is gone."""
    # Ctrl-C reaches the whole process group: the parent stops the work; a worker's own
    # KeyboardInterrupt would only print a traceback per worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # the parent may block it
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still ends the worker
    if os.getppid() != parent_pid:  # the parent died before the prctl
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
