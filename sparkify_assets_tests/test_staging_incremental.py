"""staging_songs restages only the song files that changed: after every add, modify, delete and bad
file, staging_songs (with its rejects and file rows), songs and artists equal a clean load of the
same lake into a fresh warehouse, the metadata counts what changed, and the checks pass. A run
that fails leaves the tables as they were. On DuckDB and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

from sparkify_assets.assets import staging
from sparkify_assets.resources.lake import sample_lake_path
from sparkify_assets.runner import QUIET, failures
from sparkify_assets.tables import TABLES
from sparkify_assets_tests.helpers import check_results, make_defs, put, rows

SONG_ASSETS = ["staging_songs", "songs", "artists"]
SAMPLE_SONG_FILES = 71  # find song_data -name '*.json' | wc -l, in the shipped sample
COUNTS = ("files_unchanged", "files_added", "files_changed", "files_removed")

FIRST_SONG = "song_data/A/A/A/TRAAAAW128F429D538.json"  # "I Didn't Mean To" by Casual
SECOND_SONG = "song_data/A/A/A/TRAAABD128F429CF47.json"
NEW_SONG_KEY = "song_data/Z/Z/Z/TRINCREMENTAL0001.json"
NEW_SONG = {
    "num_songs": 1,
    "artist_id": "ARINCREMENTAL00001",
    "artist_latitude": 51.5,
    "artist_longitude": -0.12,
    "artist_location": "London",
    "artist_name": "Incremental Band",
    "song_id": "SOINCREMENTAL00001",
    "title": "Only What Changed",
    "duration": 201.5,
    "year": 2024,
}
BAD_KEY = "song_data/Z/Z/Y/TRBADFILE00000001.json"


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def lake(tmp_path) -> Path:
    root = tmp_path / "lake"
    sample = sample_lake_path()
    shutil.copytree(sample / "song_data", root / "song_data")
    shutil.copytree(sample / "log_data", root / "log_data")
    return root


def materialize(warehouse_url: str, lake: Path) -> dict:
    """staging_songs, songs and artists with their checks; returns staging_songs' metadata."""
    defs = make_defs(warehouse_url, str(lake))
    job = define_asset_job("songs_only", selection=AssetSelection.assets(*SONG_ASSETS))
    songs_defs = Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources, jobs=[job]
    )
    result = songs_defs.resolve_job_def("songs_only").execute_in_process(
        instance=DagsterInstance.ephemeral(), run_config=QUIET, raise_on_error=False
    )
    assert result.success, failures(result)
    checks = check_results(result)
    assert checks and all(checks.values()), checks
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "staging_songs"
    ]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def all_rows(url: str, table: str, where: str = "TRUE") -> list[tuple]:
    cols = [c.name for c in TABLES[table].columns]
    return [r for r in rows(url, table, cols) if where == "TRUE" or r[0] == where]


def snapshot(url: str) -> dict[str, list[tuple]]:
    return {
        "staging_songs": all_rows(url, "staging_songs"),
        "staging_rejects": all_rows(url, "staging_rejects", "staging_songs"),
        "staging_files": all_rows(url, "staging_files", "staging_songs"),
        "songs": all_rows(url, "songs"),
        "artists": all_rows(url, "artists"),
    }


def assert_equals_clean_load(url: str, lake: Path, tmp_path: Path) -> None:
    clean = f"duckdb://{tmp_path / f'clean-{uuid.uuid4().hex[:6]}.duckdb'}"
    meta = materialize(clean, lake)
    assert meta["restage"] == "full"
    got, want = snapshot(url), snapshot(clean)
    for table in want:
        assert got[table] == want[table], table


def counts(meta: dict) -> tuple[int, ...]:
    return tuple(meta[k] for k in COUNTS)


def test_song_catalog_restages_only_what_changed(warehouse_url, lake, tmp_path):
    # First load: every file is new, the catalog is staged whole.
    meta = materialize(warehouse_url, lake)
    assert meta["restage"] == "full"
    assert counts(meta) == (0, SAMPLE_SONG_FILES, 0, 0)
    assert meta["rows_staged"] == SAMPLE_SONG_FILES and meta["dagster/row_count"] == SAMPLE_SONG_FILES
    assert_equals_clean_load(warehouse_url, lake, tmp_path)

    # Nothing changed: nothing is parsed, nothing moves.
    before = snapshot(warehouse_url)
    meta = materialize(warehouse_url, lake)
    assert meta["restage"] == "incremental"
    assert counts(meta) == (SAMPLE_SONG_FILES, 0, 0, 0)
    assert meta["files"] == 0 and meta["rows_staged"] == 0
    assert meta["dagster/row_count"] == SAMPLE_SONG_FILES
    assert snapshot(warehouse_url) == before

    # One new song file.
    put(lake, NEW_SONG_KEY, json.dumps(NEW_SONG).encode())
    meta = materialize(warehouse_url, lake)
    assert counts(meta) == (SAMPLE_SONG_FILES, 1, 0, 0)
    assert meta["files"] == 1 and meta["rows_staged"] == 1
    assert meta["dagster/row_count"] == SAMPLE_SONG_FILES + 1
    assert_equals_clean_load(warehouse_url, lake, tmp_path)

    # One song retitled (a longer title, so the size changes too).
    song = json.loads((lake / FIRST_SONG).read_bytes())
    song["title"] = "I Didn't Mean To (Incremental Remix)"
    put(lake, FIRST_SONG, json.dumps(song).encode())
    meta = materialize(warehouse_url, lake)
    assert counts(meta) == (SAMPLE_SONG_FILES, 0, 1, 0)
    assert meta["files"] == 1 and meta["rows_staged"] == 1
    titles = {r[1] for r in rows(warehouse_url, "songs", ["song_id", "title"])}
    assert "I Didn't Mean To (Incremental Remix)" in titles and "I Didn't Mean To" not in titles
    assert_equals_clean_load(warehouse_url, lake, tmp_path)

    # One song file deleted.
    (lake / SECOND_SONG).unlink()
    meta = materialize(warehouse_url, lake)
    assert counts(meta) == (SAMPLE_SONG_FILES, 0, 0, 1)
    assert meta["files"] == 0 and meta["dagster/row_count"] == SAMPLE_SONG_FILES
    assert_equals_clean_load(warehouse_url, lake, tmp_path)

    # A bad file: one good object, then a line that is not JSON; its reject is kept for that file.
    good = dict(NEW_SONG, song_id="SOINCREMENTAL00002", title="Half Good")
    put(lake, BAD_KEY, json.dumps(good).encode() + b"\n{this is not json\n")
    meta = materialize(warehouse_url, lake)
    # 71 sample files + the new one - the deleted one = 71 unchanged.
    assert counts(meta) == (SAMPLE_SONG_FILES, 1, 0, 0)
    assert meta["files"] == 1 and meta["rows_rejected"] == 1
    rejects = all_rows(warehouse_url, "staging_rejects", "staging_songs")
    assert [r[1] for r in rejects] == [BAD_KEY]
    assert_equals_clean_load(warehouse_url, lake, tmp_path)

    # The bad file repaired: its reject goes with its old rows.
    put(lake, BAD_KEY, json.dumps(good).encode() + b"\n")
    meta = materialize(warehouse_url, lake)
    assert counts(meta) == (SAMPLE_SONG_FILES, 0, 1, 0)
    assert meta["rows_rejected"] == 0
    assert all_rows(warehouse_url, "staging_rejects", "staging_songs") == []
    assert_equals_clean_load(warehouse_url, lake, tmp_path)


def test_failed_incremental_run_leaves_the_tables_as_they_were(lake, tmp_path, monkeypatch):
    url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    materialize(url, lake)
    before = snapshot(url)
    song = json.loads((lake / FIRST_SONG).read_bytes())
    put(lake, FIRST_SONG, json.dumps(dict(song, title="Never Committed")).encode())
    (lake / SECOND_SONG).unlink()

    def broken(tx, lk, table, files):  # the deletes have run by now, inside the transaction
        raise RuntimeError("parser crashed")

    monkeypatch.setattr(staging, "stage_files", broken)
    with pytest.raises(AssertionError, match="parser crashed"):
        materialize(url, lake)
    assert snapshot(url) == before

    monkeypatch.undo()
    meta = materialize(url, lake)
    assert counts(meta) == (SAMPLE_SONG_FILES - 2, 0, 1, 1)  # 70 files left, one of them changed
    assert_equals_clean_load(url, lake, tmp_path)


def test_inconsistent_bookkeeping_restages_whole(lake, tmp_path):
    """Rows that staging_files does not account for (e.g. loaded by Redshift's COPY, or by hand)
    make the next run restage the catalog whole rather than trust the file rows."""
    url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    materialize(url, lake)
    from sparkify_assets.resources.warehouse import open_warehouse

    with open_warehouse(url).transaction() as tx:
        tx.execute("DELETE FROM staging_songs WHERE source_key = " + f"'{FIRST_SONG}'")
    meta = materialize(url, lake)
    assert meta["restage"] == "full" and meta["files"] == SAMPLE_SONG_FILES
    assert counts(meta) == (SAMPLE_SONG_FILES, 0, 0, 0)
    assert_equals_clean_load(url, lake, tmp_path)


def test_most_files_stale_restages_whole(lake, tmp_path):
    """Above half the loaded files stale, one DELETE and a full parse beat thousands of keyed
    deletes; the result is the same."""
    url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    materialize(url, lake)
    songs = sorted((lake / "song_data").rglob("*.json"))
    for path in songs[:40]:  # 40 of 71 removed: more than half
        path.unlink()
    meta = materialize(url, lake)
    assert meta["restage"] == "full" and meta["files"] == SAMPLE_SONG_FILES - 40
    assert counts(meta) == (SAMPLE_SONG_FILES - 40, 0, 0, 40)
    assert_equals_clean_load(url, lake, tmp_path)
