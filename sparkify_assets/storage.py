"""Where the assets' data lives, read from the resources the definitions are built with.

`build_defs(warehouse, lake)` labels its assets from these: the warehouse's kind (duckdb,
postgres, redshift) and `dagster/storage_kind`, each table's fully qualified
`dagster/table_name`, and the lake's kind and `dagster/uri`. Nothing here connects to anything:
the URLs are parsed only (an `EnvVar` is read from the environment, as the run would).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dagster import AssetsDefinition, AssetSpec, EnvVar

from sparkify_assets.resources.lake import LakeResource, sample_lake_path
from sparkify_assets.resources.warehouse import (
    DuckDBWarehouse,
    PostgresWarehouse,
    WarehouseError,
    WarehouseResource,
    open_warehouse,
)

# Tables are created unqualified, so they land in the default schema of each backend.
DEFAULT_SCHEMA = {"duckdb": "main", "postgres": "public", "redshift": "public"}


def _value(setting: str | None) -> str:
    return (setting.get_value() if isinstance(setting, EnvVar) else setting) or ""


@dataclass(frozen=True)
class Storage:
    warehouse_kind: str | None  # None when the URL does not parse: the run reports that error
    database: str | None
    lake_kind: str  # "s3", or "json" for a folder of JSON files
    lake_uri: str

    def table_name(self, table: str) -> str:
        if not self.warehouse_kind or not self.database:
            return table
        return f"{self.database}.{DEFAULT_SCHEMA[self.warehouse_kind]}.{table}"

    def lake_folder_uri(self, folder: str) -> str:
        return f"{self.lake_uri.rstrip('/')}/{folder}"


def storage_of(warehouse: WarehouseResource, lake: LakeResource) -> Storage:
    kind = database = None
    try:
        wh = open_warehouse(_value(warehouse.url))
    except WarehouseError:
        pass
    else:
        kind = wh.dialect
        if isinstance(wh, DuckDBWarehouse):
            database = wh.path.stem  # DuckDB names the catalog after the file
        elif isinstance(wh, PostgresWarehouse):
            database = wh.database
    url = _value(lake.url).strip()
    if urlsplit(url).scheme.lower() == "s3":
        return Storage(kind, database, "s3", url.rstrip("/"))
    if url.lower().startswith("file://"):
        url = urlsplit(url).path
    folder = Path(url).expanduser() if url else sample_lake_path()
    return Storage(kind, database, "json", folder.absolute().as_uri())


def _label(spec: AssetSpec, storage: Storage) -> AssetSpec:
    """Kinds and storage metadata for one asset, by its layer (the `layer` tag)."""
    layer = spec.tags.get("layer")
    kinds = set(spec.kinds)
    metadata = dict(spec.metadata)
    if layer == "lake":
        kinds.add(storage.lake_kind)
        metadata["dagster/uri"] = storage.lake_folder_uri(spec.key.path[-1])
    else:
        if layer == "staging":
            kinds.add(storage.lake_kind)
        if storage.warehouse_kind:
            kinds.add(storage.warehouse_kind)
            metadata["dagster/storage_kind"] = storage.warehouse_kind
        metadata["dagster/table_name"] = storage.table_name(spec.key.path[-1])
    return spec.replace_attributes(kinds=kinds, metadata=metadata)


def label_assets(
    assets: list[AssetsDefinition | AssetSpec], warehouse: WarehouseResource, lake: LakeResource
) -> list[AssetsDefinition | AssetSpec]:
    storage = storage_of(warehouse, lake)
    return [
        a.map_asset_specs(lambda spec: _label(spec, storage))
        if isinstance(a, AssetsDefinition)
        else _label(a, storage)
        for a in assets
    ]
