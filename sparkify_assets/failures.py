"""Step failures that lead with their one-line reason.

The project's own errors (`LakeError`, `WarehouseError`) already end in one sentence that says
what is wrong and how to fix it. Raised as they are, Dagster shows them under the framework's
traceback; re-raised as `dagster.Failure` with that sentence as the description, the run view in
the UI and `dagster asset materialize` lead with it, and the metadata names the error's kind.
A context manager inside the asset's body (not a decorator), so Dagster's code references
still point at the asset's own function.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Failure, MetadataValue

from sparkify_assets.resources.lake import LakeError
from sparkify_assets.resources.warehouse import WarehouseError


@contextmanager
def one_line_failure(step: str) -> Iterator[None]:
    """Re-raise a LakeError or WarehouseError of `step` as a Failure whose description is the
    error's sentence (the original stays chained, for the full trace)."""
    try:
        yield
    except (LakeError, WarehouseError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise Failure(
            description=reason,
            metadata={
                "reason": MetadataValue.text(reason),
                "error": MetadataValue.text(type(exc).__name__),
                "step": MetadataValue.text(step),
            },
        ) from exc
