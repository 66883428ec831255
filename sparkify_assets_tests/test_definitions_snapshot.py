"""The definitions' surface, written out by hand: every asset key, every check of each asset,
every job and sensor of the one `Definitions` that `dagster` and `dg` load. A definition that
appears or vanishes fails here until this file says so, on purpose: update the literal lists
below in the same change (they are not computed from the code under test)."""

from __future__ import annotations

from collections import defaultdict

from sparkify_assets.definitions import defs

# By layer (test_definitions_surface.py checks each layer's labels).
LAKE = ["lake/log_data", "lake/song_data"]
STAGING = ["staging_events", "staging_songs"]
STAR = ["songplays", "users", "songs", "artists", "time"]
ANALYTICS = [
    "analytics_top_songs",
    "analytics_top_artists",
    "analytics_users_by_level",
    "analytics_daily_plays",
    "analytics_plays_by_hour",
    "analytics_most_active_users",
    "analytics_free_to_paid",
]
ASSETS = {*LAKE, *STAGING, *STAR, *ANALYTICS}

CHECKS = {
    "staging_events": {"has_rows", "lake_inventory", "reconcile_records", "log_on_time"},
    "staging_songs": {"has_rows", "lake_inventory", "reconcile_records"},
    "songplays": {
        "has_rows",
        "not_null_songplay_id",
        "unique_songplay_id",
        "reconcile_nextsong_events",
        "relationships_artist_id__artists",
        "relationships_song_id__songs",
        "relationships_user_id__users",
    },
    "users": {"has_rows", "not_null_user_id", "unique_user_id"},
    "songs": {"has_rows", "not_null_song_id", "unique_song_id", "relationships_artist_id__artists"},
    "artists": {"has_rows", "not_null_artist_id", "unique_artist_id"},
    "time": {"has_rows", "not_null_start_time", "unique_start_time", "covers_songplays_start_time"},
    "analytics_top_songs": {"song_rank_is_1_to_n"},
    "analytics_top_artists": {"artist_rank_is_1_to_n"},
    "analytics_users_by_level": {"users_reconcile_with_users"},
    "analytics_daily_plays": {"plays_reconcile_with_songplays"},
    "analytics_plays_by_hour": {"plays_reconcile_with_songplays"},
    "analytics_most_active_users": {"user_rank_is_1_to_n"},
}

# Dagster's own implicit jobs (named `__…`) are left out: they are not the project's.
JOBS = {
    "load_warehouse",
    "audit_warehouse",
    "sparkify_lake_updates",
    "provision_warehouse",
    "teardown_warehouse",
}
SENSORS = {"sparkify_log_sensor", "sparkify_song_sensor", "sparkify_lateness_sensor"}


def test_asset_keys():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == ASSETS


def test_check_names_per_asset():
    found: dict[str, set[str]] = defaultdict(set)
    for check_key in defs.resolve_asset_graph().asset_check_keys:
        found[check_key.asset_key.to_user_string()].add(check_key.name)
    assert dict(found) == CHECKS


def test_jobs():
    assert {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")} == JOBS


def test_sensors_and_no_schedules():
    assert {sensor.name for sensor in defs.sensors or []} == SENSORS
    assert list(defs.schedules or []) == []
