"""The same pipeline on PostgreSQL (a real server the suite starts) and with the lake in S3 (moto's
server on 127.0.0.1) gives the contract's counts and tables equal row for row to DuckDB's."""

from __future__ import annotations

import pytest

from sparkify_assets.tables import ALL_TABLES, TABLES
from sparkify_assets_tests.helpers import check_results, count, load, rows
from sparkify_assets_tests.test_sample_duckdb import CONTRACT

COMPARED = [t.name for t in ALL_TABLES if t.name not in ("staging_files",)]


@pytest.fixture(scope="module")
def duckdb_reference(tmp_path_factory):
    url = f"duckdb://{tmp_path_factory.mktemp('ref') / 'ref.duckdb'}"
    load(url)
    return url


def _assert_same_as_reference(url: str, reference: str) -> None:
    assert {t: count(url, t) for t in CONTRACT} == CONTRACT
    for table in COMPARED:
        assert rows(url, table) == rows(reference, table), table
    # Lineage keys are relative to the lake root, so they match across lakes too.
    assert rows(url, "staging_files", ["source_key", "records_read", "rows_staged"]) == rows(
        reference, "staging_files", ["source_key", "records_read", "rows_staged"]
    )


def test_postgres_equals_duckdb(pg_url, duckdb_reference):
    result = load(pg_url)
    assert all(check_results(result).values())
    _assert_same_as_reference(pg_url, duckdb_reference)
    assert TABLES["songplays"].contract_columns[0] == "songplay_id"


def test_s3_lake_on_duckdb(s3_sample_lake, tmp_path, duckdb_reference):
    url = f"duckdb://{tmp_path / 's3.duckdb'}"
    load(url, s3_sample_lake)
    _assert_same_as_reference(url, duckdb_reference)


def test_s3_lake_on_postgres(s3_sample_lake, pg_url, duckdb_reference):
    load(pg_url, s3_sample_lake)
    _assert_same_as_reference(pg_url, duckdb_reference)
