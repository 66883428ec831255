"""Every step that touches the warehouse is in the `sparkify_warehouse` pool (dagster.yaml limits
each pool to one step at a time): the assets and every asset check, core and analytics alike.
DuckDB allows one writer, so a check outside the pool could hit another run's lock."""

from __future__ import annotations

from sparkify_assets.definitions import defs


def _pools() -> dict[str, str | None]:
    pools = {}
    for assets_def in defs.assets or []:
        if hasattr(assets_def, "node_def"):  # the lake's AssetSpecs run nothing
            for key in assets_def.keys:
                pools[f"asset {key.to_user_string()}"] = assets_def.node_def.pool
            # A check declared on its asset runs in the asset's step, so in the asset's pool.
            for check_key in assets_def.check_keys:
                pools[f"check {check_key.asset_key.to_user_string()}:{check_key.name}"] = (
                    assets_def.node_def.pool
                )
    for checks_def in defs.asset_checks or []:
        for check_key in checks_def.check_keys:
            pools[f"check {check_key.asset_key.to_user_string()}:{check_key.name}"] = checks_def.node_def.pool
    return pools


def test_every_asset_and_check_is_in_the_warehouse_pool():
    pools = _pools()
    checks = [k for k in pools if k.startswith("check ")]
    # 5 star tables x (unique, not_null, has_rows) + 5 references (4 of songplays, 1 of songs) +
    # 2 staging tables x (has_rows, reconcile_records, lake_inventory) + reconcile_nextsong_events
    # = 27 core checks, 6 analytics checks, and staging_events' log_on_time (freshness.py).
    assert len(checks) == 34, checks
    assert "check staging_events:lake_inventory" in pools and "check staging_songs:lake_inventory" in pools
    assert "check songplays:reconcile_nextsong_events" in pools
    assert "check analytics_daily_plays:plays_reconcile_with_songplays" in pools
    assert "asset songplays" in pools and "asset analytics_top_songs" in pools
    outside = {k: v for k, v in pools.items() if v != "sparkify_warehouse"}
    assert outside == {}


def test_the_job_plan_puts_check_steps_in_the_pool():
    """What the executor sees: every step of the load job, checks included, claims the pool."""
    job = defs.resolve_job_def("load_warehouse")
    nodes = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    # 14 assets with their 31 checks inside their steps, and the 2 lake_inventory checks, which
    # are steps of their own.
    assert len(nodes) == 14 + 2
    assert {name for name, pool in nodes.items() if pool != "sparkify_warehouse"} == set()
