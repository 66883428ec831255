"""Sparkify's lake loaded into a star-schema warehouse, as Dagster software-defined assets."""

import warnings

from dagster import BetaWarning, PreviewWarning

# BackfillPolicy and asset-check partitions are marked beta/preview; the project relies on them
# knowingly (DESIGN.md section 5), so their warnings would only bury real ones.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

from sparkify_assets.definitions import defs  # noqa: E402

__all__ = ["defs"]
