"""Tuning settings read from the environment, each validated where it is read: a bad value is
one sentence naming the variable and the forms it accepts, not a traceback from deep inside."""

from __future__ import annotations

import os
import re

from sparkify_assets.errors import UsageError

PARSE_WORKERS = "SPARKIFY_PARSE_WORKERS"
DUCKDB_MEMORY_LIMIT = "SPARKIFY_DUCKDB_MEMORY_LIMIT"
DEFAULT_DUCKDB_MEMORY_LIMIT = "1GB"
MAX_PARSE_WORKERS = 64
LOG_DEADLINE_HOUR = "SPARKIFY_LOG_DEADLINE_HOUR"
DEFAULT_LOG_DEADLINE_HOUR = 3

_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.I)


class SettingError(UsageError):
    """A setting with a value the project cannot use; the message names the variable."""


def parse_workers() -> int:
    """Parser processes: SPARKIFY_PARSE_WORKERS, else one per core, at most 2 (the main process
    reads files and inserts into the warehouse meanwhile)."""
    value = os.environ.get(PARSE_WORKERS, "").strip()
    if not value:
        return min(2, os.cpu_count() or 1)
    if not value.isdigit() or not 1 <= int(value) <= MAX_PARSE_WORKERS:
        raise SettingError(
            f"{PARSE_WORKERS} must be a whole number of parser processes from 1 to {MAX_PARSE_WORKERS} "
            f"(1 parses in the main process), or unset for one per core; got {value!r}."
        )
    return int(value)


def duckdb_memory_limit() -> str:
    """DuckDB's memory cap: SPARKIFY_DUCKDB_MEMORY_LIMIT, default 1GB (DuckDB's own default is
    80% of the machine)."""
    value = os.environ.get(DUCKDB_MEMORY_LIMIT, "").strip()
    if not value:
        return DEFAULT_DUCKDB_MEMORY_LIMIT
    if not _MEMORY.match(value):
        raise SettingError(
            f"{DUCKDB_MEMORY_LIMIT} must be an amount of memory: a number and a unit (B, KB, MB, GB, TB, "
            f"KiB, MiB, GiB or TiB), e.g. 512MB or 4GB; got {value!r}."
        )
    return value.replace(" ", "")


def log_deadline_hour() -> int:
    """The hour (UTC) of the day after a log day by which its file is due: SPARKIFY_LOG_DEADLINE_HOUR,
    a whole number 0 to 23, default 3 (the 2018-11-05 log is late from 2018-11-06 03:00 UTC)."""
    value = os.environ.get(LOG_DEADLINE_HOUR, "").strip()
    if not value:
        return DEFAULT_LOG_DEADLINE_HOUR
    if not value.isdigit() or not 0 <= int(value) <= 23:
        raise SettingError(
            f"{LOG_DEADLINE_HOUR} must be an hour of the day in UTC, a whole number from 0 to 23 (the hour "
            f"after midnight by which the day's log file is due), or unset for {DEFAULT_LOG_DEADLINE_HOUR}; "
            f"got {value!r}."
        )
    return int(value)
