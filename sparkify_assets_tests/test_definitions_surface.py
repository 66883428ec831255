"""What the definitions tell the UI about where data lives and where code is, for the resources
they are built with (not the environment): kinds, dagster/table_name, dagster/storage_kind,
dagster/uri, code references and column constraints. Nothing here connects to a warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, EnvVar, LocalFileCodeReference

import sparkify_assets
from sparkify_assets.definitions import build_defs
from sparkify_assets.resources.lake import LakeResource
from sparkify_assets.resources.warehouse import WarehouseResource
from sparkify_assets_tests.test_definitions_snapshot import ANALYTICS, STAGING, STAR

PACKAGE = Path(sparkify_assets.__file__).parent


def _graph(warehouse_url, lake_url: str):
    return (
        build_defs(WarehouseResource(url=warehouse_url), LakeResource(url=lake_url))
        .get_repository_def()
        .asset_graph
    )


@pytest.fixture
def pg_s3(monkeypatch):
    # The environment says DuckDB and a folder: the resources passed in must win.
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_URL", "duckdb:///tmp/elsewhere.duckdb")
    monkeypatch.delenv("SPARKIFY_LAKE_URL", raising=False)
    return _graph("postgresql://sparkify@127.0.0.1:5432/sparkify", "s3://sparkify-lake/raw")


def test_postgres_and_s3_resources_label_every_asset(pg_s3):
    kinds = {k.to_user_string(): set(pg_s3.get(k).kinds) for k in pg_s3.get_all_asset_keys()}
    assert kinds["lake/log_data"] == kinds["lake/song_data"] == {"s3", "json"}
    for name in STAGING:
        assert kinds[name] == {"postgres", "s3", "python"}, name
    for name in STAR:
        assert kinds[name] == {"postgres", "sql"}, name
    for name in ANALYTICS:
        assert kinds[name] == {"postgres", "sql", "table"}, name
    for name in STAGING + STAR + ANALYTICS:
        meta = pg_s3.get(AssetKey(name)).metadata
        assert meta["dagster/storage_kind"] == "postgres"
        assert meta["dagster/table_name"] == f"sparkify.public.{name}"
    assert (
        pg_s3.get(AssetKey(["lake", "log_data"])).metadata["dagster/uri"] == "s3://sparkify-lake/raw/log_data"
    )
    assert (
        pg_s3.get(AssetKey(["lake", "song_data"])).metadata["dagster/uri"]
        == "s3://sparkify-lake/raw/song_data"
    )


def test_an_envvar_warehouse_and_a_folder_lake(monkeypatch, tmp_path):
    monkeypatch.setenv("SOME_WAREHOUSE", "redshift://dwh@cluster.example:5439/dev")
    graph = _graph(EnvVar("SOME_WAREHOUSE"), str(tmp_path))
    songplays = graph.get(AssetKey("songplays"))
    assert set(songplays.kinds) == {"redshift", "sql"}
    assert songplays.metadata["dagster/table_name"] == "dev.public.songplays"
    assert set(graph.get(AssetKey("staging_events")).kinds) == {"redshift", "json", "python"}
    assert graph.get(AssetKey(["lake", "log_data"])).metadata["dagster/uri"] == f"file://{tmp_path}/log_data"


def test_duckdb_names_the_catalog_after_the_file(tmp_path):
    graph = _graph(f"duckdb://{tmp_path}/dwh.duckdb", "")
    users = graph.get(AssetKey("users"))
    assert set(users.kinds) == {"duckdb", "sql"} and users.metadata["dagster/storage_kind"] == "duckdb"
    assert users.metadata["dagster/table_name"] == "dwh.main.users"


def _refs(node) -> list[LocalFileCodeReference]:
    return list(node.metadata["dagster/code_references"].code_references)


def test_each_asset_links_its_sql_file_and_its_python_definition(pg_s3):
    for name in STAGING + STAR + ANALYTICS:
        refs = _refs(pg_s3.get(AssetKey(name)))
        python = [r for r in refs if r.file_path.endswith(".py")]
        assert len(python) == 1, name
        source = Path(python[0].file_path).read_text().splitlines()
        # The line is the decorated function's (or its decorator's) first line, in the package.
        assert Path(python[0].file_path).is_relative_to(PACKAGE / "assets"), name
        assert source[python[0].line_number - 1].lstrip().startswith(("def ", "@")), name
        sql = [r for r in refs if r.file_path.endswith(".sql")]
        if name in STAGING:
            assert sql == [], name  # loaded by Python from the lake, no SQL file
        else:
            assert [Path(r.file_path) for r in sql] == [PACKAGE / "sql" / f"{name}.sql"], name
            assert Path(sql[0].file_path).read_text().lstrip().startswith(f"-- {name}"), name


def _constraints(graph, table: str) -> dict:
    schema = graph.get(AssetKey(table)).metadata["dagster/column_schema"]
    return {c.name: c.constraints for c in schema.columns}


def test_column_schema_carries_the_declared_constraints(pg_s3):
    songplays = _constraints(pg_s3, "songplays")
    assert (songplays["songplay_id"].nullable, songplays["songplay_id"].unique) == (False, True)
    assert (songplays["song_id"].nullable, songplays["song_id"].unique) == (True, False)
    assert songplays["user_id"].other == ["references users.user_id"]
    assert songplays["start_time"].nullable is False
    users = _constraints(pg_s3, "users")
    assert (users["user_id"].nullable, users["user_id"].unique) == (False, True)
    assert (users["level"].nullable, users["level"].unique) == (True, False)
    # A two-column key makes neither column unique on its own.
    conversions = _constraints(pg_s3, "analytics_free_to_paid")
    assert conversions["user_id"].unique is False and conversions["user_id"].nullable is False
    assert conversions["converted_at"].other == ["part of the primary key (user_id, converted_at)"]
    assert conversions["first_name"].nullable is True and conversions["first_name"].other == []
