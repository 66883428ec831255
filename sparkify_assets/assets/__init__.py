"""The assets: the lake's files (external), staging, the star schema and the analytics answers."""

import warnings

from dagster import BetaWarning, PreviewWarning

# `backfill_policy` on @asset is marked beta (Dagster 1.13) and warns at every decoration; the
# project relies on it knowingly (DESIGN.md section 5), so the warnings would only bury real ones.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
