"""Configuration from the environment (DESIGN.md section 3), read once where Definitions are built.

Secrets stay in the environment: the resources receive `EnvVar`s, so the Dagster UI shows the
variable's name, never its value.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from dagster import EnvVar

from sparkify_assets.resources.lake import LakeResource
from sparkify_assets.resources.warehouse import DEFAULT_DUCKDB_PATH, WarehouseResource

WAREHOUSE_URL = "SPARKIFY_WAREHOUSE_URL"
REDSHIFT_IAM_ROLE = "SPARKIFY_REDSHIFT_IAM_ROLE"
LOG_JSONPATH = "SPARKIFY_LOG_JSONPATH"
WAREHOUSE_PASSWORD = "SPARKIFY_WAREHOUSE_PASSWORD"
LAKE_URL = "SPARKIFY_LAKE_URL"


def _env_or(name: str, default: str | None):
    return EnvVar(name) if os.environ.get(name) else default


def warehouse_resource() -> WarehouseResource:
    return WarehouseResource(
        url=_env_or(WAREHOUSE_URL, f"duckdb://{DEFAULT_DUCKDB_PATH}"),
        password=_env_or(WAREHOUSE_PASSWORD, None),
        iam_role=_env_or(REDSHIFT_IAM_ROLE, None),
        log_jsonpath=_env_or(LOG_JSONPATH, None),
    )


def lake_resource() -> LakeResource:
    return LakeResource(url=_env_or(LAKE_URL, ""))


def warehouse_kind() -> str:
    """The warehouse's kind tag for the UI: duckdb, postgres or redshift."""
    scheme = urlsplit(os.environ.get(WAREHOUSE_URL, "duckdb://")).scheme.lower()
    return {"postgresql": "postgres", "postgres": "postgres", "redshift": "redshift"}.get(scheme, "duckdb")


def lake_kind() -> str:
    return "s3" if os.environ.get(LAKE_URL, "").lower().startswith("s3://") else "json"
