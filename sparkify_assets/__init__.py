"""Sparkify's lake loaded into a star-schema warehouse, as Dagster software-defined assets.

`defs` is built on first access (PEP 562), not when the package is imported: the parser worker
processes import `sparkify_assets.parsing` and need none of Dagster, which took ~2 s of each
worker's start-up. Dagster finds `defs` all the same (`-m sparkify_assets` reads the module's
members through `dir()` and `getattr`).
"""

__all__ = ["defs"]


def __getattr__(name: str) -> object:
    if name == "defs":
        from sparkify_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'sparkify_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "defs"})
