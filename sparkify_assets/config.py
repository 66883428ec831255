"""Configuration (DESIGN.md section 3), read once where Definitions are built.

Each setting comes from, in order: its environment variable; the Redshift cluster that
`sparkify infra up` saved (.sparkify/redshift.json); a seed-style dwh.cfg (SPARKIFY_DWH_CFG or
./dwh.cfg), so users of the classic scripts keep their file; the embedded default.

Every setting is validated when it is read: a bad value ends in one sentence naming the variable
and the forms it takes (`check_settings` reads them all, for `sparkify run` to refuse at once).

Secrets stay out of the Dagster config: passwords reach the resources as `EnvVar`s (the UI shows
the variable's name, never its value) or are read from dwh.cfg only when a connection is opened.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from dagster import EnvVar

from sparkify_assets import env_settings
from sparkify_assets.infra.settings import dwh_cfg_path, read_dwh_cfg, saved_iam_role, saved_warehouse_url
from sparkify_assets.resources.lake import LakeResource
from sparkify_assets.resources.warehouse import DEFAULT_DUCKDB_PATH, WarehouseResource, open_warehouse

WAREHOUSE_URL = "SPARKIFY_WAREHOUSE_URL"
WAREHOUSE_PASSWORD = "SPARKIFY_WAREHOUSE_PASSWORD"
LAKE_URL = "SPARKIFY_LAKE_URL"
REDSHIFT_IAM_ROLE = "SPARKIFY_REDSHIFT_IAM_ROLE"
LOG_JSONPATH = "SPARKIFY_LOG_JSONPATH"
LAKE_REGION = "SPARKIFY_LAKE_REGION"  # COPY's REGION; default: the bucket's own (redshift.copy_region)


def _env(name: str) -> EnvVar | None:
    return EnvVar(name) if os.environ.get(name) else None


def _cfg() -> dict[tuple[str, str], str]:
    return read_dwh_cfg(dwh_cfg_path())


def _cfg_warehouse_url(cfg: dict[tuple[str, str], str]) -> str | None:
    host = cfg.get(("CLUSTER", "HOST"))
    if not host:
        return None
    user = cfg.get(("CLUSTER", "DB_USER"), "sparkify")
    port = cfg.get(("CLUSTER", "DB_PORT"), "5439")
    return f"redshift://{user}@{host}:{port}/{cfg.get(('CLUSTER', 'DB_NAME'), 'dev')}"


def _cfg_lake_url(cfg: dict[tuple[str, str], str]) -> str | None:
    """The lake root that holds dwh.cfg's LOG_DATA and SONG_DATA (s3://bucket/log_data -> s3://bucket)."""
    logs, songs = cfg.get(("S3", "LOG_DATA")), cfg.get(("S3", "SONG_DATA"))
    if not logs or not songs:
        return None
    root, root_songs = logs.rstrip("/").rsplit("/", 1)[0], songs.rstrip("/").rsplit("/", 1)[0]
    return root if root == root_songs else None


def warehouse_url() -> str:
    """The warehouse URL in force (no password in it unless the user put one there), checked for
    a form open_warehouse takes (a WarehouseError naming the accepted forms if not)."""
    url = (
        os.environ.get(WAREHOUSE_URL)
        or saved_warehouse_url()
        or _cfg_warehouse_url(_cfg())
        or f"duckdb://{DEFAULT_DUCKDB_PATH}"
    )
    open_warehouse(url)  # parses only: nothing is opened or created
    return url


def check_settings() -> None:
    """Read every setting a run uses, so a bad one stops `sparkify run` in one line before any step."""
    warehouse_url()
    env_settings.parse_workers()
    env_settings.duckdb_memory_limit()
    env_settings.log_deadline_hour()


def warehouse_resource() -> WarehouseResource:
    cfg = _cfg()
    path = dwh_cfg_path()
    warehouse_url()  # validated when read, even though the resource reads it again through EnvVar
    return WarehouseResource(
        url=_env(WAREHOUSE_URL) or warehouse_url(),
        password=_env(WAREHOUSE_PASSWORD),
        dwh_cfg=str(path) if path and not os.environ.get(WAREHOUSE_PASSWORD) else None,
        iam_role=_env(REDSHIFT_IAM_ROLE) or saved_iam_role() or cfg.get(("IAM_ROLE", "ARN")),
        log_jsonpath=_env(LOG_JSONPATH) or cfg.get(("S3", "LOG_JSONPATH")),
        region=_env(LAKE_REGION),
    )


def lake_resource() -> LakeResource:
    return LakeResource(url=_env(LAKE_URL) or _cfg_lake_url(_cfg()) or "")


def warehouse_kind() -> str:
    """The warehouse's kind tag for the UI: duckdb, postgres or redshift."""
    scheme = urlsplit(warehouse_url()).scheme.lower()
    return {"postgresql": "postgres", "postgres": "postgres", "redshift": "redshift"}.get(scheme, "duckdb")


def lake_kind() -> str:
    url = os.environ.get(LAKE_URL) or _cfg_lake_url(_cfg()) or ""
    return "s3" if url.lower().startswith("s3://") else "json"
