"""The few places where the backends' SQL differs, kept together.

The SQL files under `sql/` are written in the common subset of DuckDB, PostgreSQL and Redshift,
plus `epoch_ms(<column>)`, which DuckDB has natively and the other two spell differently.

Values reach SQL as bind parameters written `?` (DuckDB's own style); `pyformat` turns them into
psycopg2's `%s` for PostgreSQL and Redshift.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

_EPOCH_MS = re.compile(r"epoch_ms\(([A-Za-z_][A-Za-z_0-9.]*)\)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z_0-9]{0,62}$")
# A quoted literal, a quoted identifier or a line comment (where `?` is text), else `?` or `%`.
_PLACEHOLDER_OR_PERCENT = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*)|(\?)|(%)""")


# Bind parameters per statement at most: a long IN list is cut into statements of this many.
BATCH = 500


def placeholders(values: Sequence) -> str:
    """One `?` per value, comma-separated: an IN list or a VALUES row."""
    return ", ".join("?" for _ in values)


def batches(items: Sequence[T], size: int = BATCH) -> list[Sequence[T]]:
    """`items` cut into runs of at most `size`, for statements that bind one value per item."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def render(sql: str, dialect: str) -> str:
    """Rewrite the shared SQL text for one backend."""
    if dialect == "duckdb":
        return sql
    # PostgreSQL and Redshift: TIMESTAMP 'epoch' plus an interval keeps the milliseconds.
    return _EPOCH_MS.sub(r"(TIMESTAMP 'epoch' + \1 * INTERVAL '1 millisecond')", sql)


def identifier(name: str) -> str:
    """Validate an identifier that comes from configuration before it reaches SQL."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a valid SQL identifier (letters, digits and _ only)")
    return name


def pyformat(sql: str) -> str:
    """`?` placeholders as psycopg2's `%s`. psycopg2 reads every `%` of a statement that has
    parameters as the start of one, so a literal `%` (in `LIKE 'a%'` too) is doubled."""

    def swap(found: re.Match) -> str:
        quoted, placeholder, _ = found.groups()
        if quoted is not None:
            return quoted.replace("%", "%%")
        return "%s" if placeholder else "%%"

    return _PLACEHOLDER_OR_PERCENT.sub(swap, sql)
