"""Step failures that lead with their one-line reason.

The project's own errors (`LakeError`, `WarehouseError`) already end in one sentence that says
what is wrong and how to fix it. Raised as they are, Dagster shows them under the framework's
traceback; re-raised as `dagster.Failure` with that sentence as the description, the run view in
the UI and `dagster asset materialize` lead with it, and the metadata names the error's kind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from dagster import Failure, MetadataValue

from sparkify_assets.resources.lake import LakeError
from sparkify_assets.resources.warehouse import WarehouseError

F = TypeVar("F", bound=Callable)


def one_line_failures(fn: F) -> F:
    """Wrap an asset's compute function: its LakeError or WarehouseError becomes a Failure whose
    description is the error's sentence (the original stays chained, for the full trace)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (LakeError, WarehouseError) as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise Failure(
                description=reason,
                metadata={
                    "reason": MetadataValue.text(reason),
                    "error": MetadataValue.text(type(exc).__name__),
                    "step": MetadataValue.text(fn.__name__),
                },
            ) from exc

    return wrapper  # type: ignore[return-value]
