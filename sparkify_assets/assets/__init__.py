"""The assets: the lake's files (external), staging, the star schema and the analytics answers."""

import warnings

from dagster import BetaWarning

# Dagster marks these beta (1.13) and warns at every use; the project relies on them knowingly
# (DESIGN.md section 5: backfill_policy; the UI's links to each asset's SQL and Python). Only
# these are silenced: any other beta or preview feature still warns. pyproject.toml's pytest
# filterwarnings lists the same ones.
KNOWN_BETA = (
    r"Parameter `backfill_policy` of function `asset` is currently in beta",
    r"Function `with_source_code_references` is currently in beta",
    r"Class `LocalFileCodeReference` is currently in beta",
    r"Class `CodeReferencesMetadataValue` is currently in beta",
)
for message in KNOWN_BETA:
    warnings.filterwarnings("ignore", message=message, category=BetaWarning)
