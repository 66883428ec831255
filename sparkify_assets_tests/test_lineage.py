"""Column lineage of the star and analytics assets, as the UI's column view shows it.

The expected upstream columns are read off the SQL files by hand and written here; the code under
test derives them with sqlglot. lineage.json (what the definitions load) must equal a fresh
derivation, so a SQL change without `python -m sparkify_assets.lineage` fails here.
"""

from __future__ import annotations

import pytest
from dagster import AssetKey

from sparkify_assets.lineage import LINEAGE_FILE, derive, render
from sparkify_assets_tests.helpers import make_defs


def _same_name(asset: str, *columns: str) -> dict[str, set[tuple[str, str]]]:
    """Columns that come from the column of the same name of one upstream asset."""
    return {column: {(asset, column)} for column in columns}


# {column: {(upstream asset, upstream column), ...}}, from reading sql/<table>.sql.
EXPECTED = {
    "songplays": {
        "songplay_id": {
            ("staging_events", "ts"),
            ("staging_events", "user_id"),
            ("staging_events", "session_id"),
            ("staging_events", "item_in_session"),
        },
        "start_time": {("staging_events", "ts")},
        # song_id and artist_id through the title and artist-name match of the candidates CTE.
        **_same_name("staging_songs", "song_id", "artist_id"),
        **_same_name(
            "staging_events", "user_id", "level", "session_id", "location", "user_agent", "source_date"
        ),
    },
    "users": _same_name("staging_events", "user_id", "first_name", "last_name", "gender", "level"),
    "artists": {
        "artist_id": {("staging_songs", "artist_id")},
        "name": {("staging_songs", "artist_name")},
        "location": {("staging_songs", "artist_location")},
        "latitude": {("staging_songs", "artist_latitude")},
        "longitude": {("staging_songs", "artist_longitude")},
    },
    "analytics_top_songs": {
        # ROW_NUMBER() OVER (ORDER BY plays DESC, listeners DESC, title, artist_name)
        "song_rank": {
            ("staging_events", "song"),
            ("staging_events", "artist"),
            ("staging_events", "user_id"),
        },
        "title": {("staging_events", "song")},
        "artist_name": {("staging_events", "artist")},
        "listeners": {("staging_events", "user_id")},
        # plays is COUNT(*): computed from no column, so it has no entry.
    },
    "analytics_most_active_users": {
        "user_rank": {("songplays", "user_id"), ("songplays", "session_id")},
        "user_id": {("songplays", "user_id")},
        **_same_name("users", "first_name", "last_name", "level"),
        "sessions": {("songplays", "session_id")},
    },
}


@pytest.fixture(scope="module")
def asset_graph():
    return make_defs("duckdb:///tmp/unused.duckdb").get_repository_def().asset_graph


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_definitions_carry_the_columns_each_column_comes_from(asset_graph, table):
    lineage = asset_graph.get(AssetKey(table)).metadata["dagster/column_lineage"]
    got = {
        column: {(dep.asset_key.to_user_string(), dep.column_name) for dep in deps}
        for column, deps in lineage.deps_by_column.items()
    }
    assert got == EXPECTED[table]


def test_every_upstream_column_is_a_column_of_an_upstream_asset(asset_graph):
    """No lineage points at a column or an asset that is not there."""
    checked = 0
    for key in asset_graph.get_all_asset_keys():
        node = asset_graph.get(key)
        lineage = node.metadata.get("dagster/column_lineage")
        if lineage is None:
            continue
        own = {c.name for c in node.metadata["dagster/column_schema"].columns}
        assert set(lineage.deps_by_column) <= own, key
        for deps in lineage.deps_by_column.values():
            for dep in deps:
                assert dep.asset_key in node.parent_keys, (key, dep.asset_key)
                schema = asset_graph.get(dep.asset_key).metadata["dagster/column_schema"]
                assert dep.column_name in {c.name for c in schema.columns}, (key, dep)
                checked += 1
    assert checked > 60


def test_the_committed_lineage_file_is_what_the_sql_says():
    assert LINEAGE_FILE.read_text() == render(derive()), (
        "sql/ changed: run `python -m sparkify_assets.lineage` and commit lineage.json"
    )
