"""The Dagster UI, driven in headless Chromium against a real `dagster dev` (issues 2 and 8).

A user opens the asset lineage, clicks "Materialize all", picks every daily partition and
launches the backfill; the daemon of `dagster dev` runs it. The tests then read the outcome the
way a user does (lineage, the songplays asset page, an analytics asset) and, independently,
through Dagster's own GraphQL API. Expected values come from the data contract (DESIGN.md
section 2), never from the code under test. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from sparkify_assets_tests.conftest import free_port
from sparkify_assets_tests.ui_support import DagsterDev, UiTestError, chromium_page, dagster_dev, wait_for

pytestmark = pytest.mark.browser

# The data contract (DESIGN.md section 2) and the README's asset table.
CORE_ASSETS = ("staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time")
PARTITIONED_ASSETS = ("staging_events", "songplays")
FIRST_PARTITION = date(2018, 11, 1)
SONGPLAYS_ROWS = re.compile(r"^6,?820$")
# The lineage starts at the lake's raw files (external assets lake/log_data and lake/song_data).
LAKE_ASSETS = ("log_data", "song_data")
# Issue 8: the most played song of the sample (title and artist as in the events), as counted
# by test_analytics.py's plain-Python pass over the JSON logs.
TOP_SONGS_ASSET = "analytics_top_songs"
TOP_SONG = "You're The One by Dwight Yoakam (37 plays)"
# The README's "Data quality" section: the checks songplays must carry.
SONGPLAYS_CHECKS = {
    "unique_songplay_id",
    "not_null_songplay_id",
    "has_rows",
    "relationships_user_id__users",
    "relationships_song_id__songs",
    "relationships_artist_id__artists",
    "reconcile_nextsong_events",
}

# Generous waits: two cores shared with other engineers' test runs.
UI_TIMEOUT_MS = 60_000
BACKFILL_TIMEOUT_S = 1500
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "FAILING"}

_BACKFILL_QUERY = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename
  ... on PartitionBackfill {
    id status numPartitions isAssetBackfill
    partitionNames
    error { message }
    runs(limit: 100) {
      runId status
      assetSelection { path }
      tags { key value }
    }
  }
  ... on PythonError { message }
} }
"""

_CHECKS_QUERY = """
{ assetNodes {
  assetKey { path }
  groupName
  assetChecksOrError { __typename ... on AssetChecks { checks {
    name
    executionForLatestMaterialization { status runId evaluation { success } }
  } } }
} }
"""


def expected_partition_count() -> int:
    """Daily partitions from 2018-11-01 up to yesterday (UTC): the last complete day."""
    return (datetime.now(timezone.utc).date() - FIRST_PARTITION).days


def shot(page: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


@pytest.fixture(scope="module")
def ui_dir(artifacts_dir: Path) -> Path:
    folder = artifacts_dir / "ui"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()  # screenshots of an earlier run must not pass for this one's
    return folder


@pytest.fixture(scope="module")
def dev(ui_dir: Path) -> Iterator[DagsterDev]:
    # /dev/shm when there is one: the instance's SQLite writes one event per partition
    # (thousands per run), and a RAM disk saves fsyncs on a shared machine.
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="sparkify-ui-", dir=base) as tmp:
        with dagster_dev(free_port(), Path(tmp), ui_dir) as running:
            yield running


@pytest.fixture(scope="module")
def browser(dev: DagsterDev) -> Iterator[tuple[Any, list[str]]]:
    with chromium_page(dev.url) as (page, external):
        page.set_default_timeout(UI_TIMEOUT_MS)
        yield page, external
    # Checked after the browser closed, so it covers every page the tests opened.
    assert external == [], f"the browser tried to reach hosts other than 127.0.0.1: {external[:5]}"


@pytest.fixture
def page(browser: tuple[Any, list[str]]) -> Any:
    return browser[0]


def open_lineage(page: Any) -> None:
    """The global asset lineage with every group expanded (collapsed by default)."""
    page.goto("/asset-groups")
    page.get_by_role("button", name=re.compile("Materialize all")).wait_for()
    if page.locator('[class*="AssetNode_assetName"]').count() == 0:
        # The graph settings menu (gear at the bottom right) holds "Expand all groups".
        page.get_by_role("button").filter(has=page.locator('[aria-label="settings"]')).last.click()
        page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
        page.keyboard.press("Escape")
    for name in CORE_ASSETS:
        asset_node(page, name).wait_for()


def asset_node(page: Any, name: str) -> Any:
    """An asset's name in the lineage graph. With every group expanded the graph is zoomed out and
    draws small nodes whose long names are cut in the middle, so match the name element."""
    return page.locator('[class*="AssetNode_assetName"]').filter(has_text=re.compile(f"^{name}$")).first


@pytest.fixture(scope="module")
def ui_backfill(browser: tuple[Any, list[str]], dev: DagsterDev, ui_dir: Path) -> dict:
    """Click "Materialize all" over every daily partition and wait until the backfill is done.

    Returns the backfill as the GraphQL API reports it."""
    page = browser[0]
    open_lineage(page)
    page.get_by_role("button", name=re.compile("Materialize all")).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Launch runs to materialize").wait_for()
    # The dialog opens on the last 90 days; a user who wants the whole lake widens it.
    # Without "Show all partitions", "All" means all of the last 90 days only.
    dialog.get_by_text("Show all partitions").click()
    dialog.get_by_role("button", name="All", exact=True).click()
    dialog.get_by_text("All time", exact=True).wait_for()
    expected = expected_partition_count()
    # The selection's size, once "All" applied (GraphQL checks the exact count afterwards).
    dialog.get_by_text(re.compile(r"^[1-9][\d,]* partitions$")).first.wait_for()
    shot(page, ui_dir, "02-materialize-all-dialog")
    dialog.get_by_role("button", name="Launch backfill").click()
    toast = page.get_by_text(re.compile(r"Created backfill \w+"))
    backfill_id = re.search(r"Created backfill (\w+)", toast.inner_text()).group(1)
    started = time.monotonic()

    def finished() -> dict | None:
        dev.assert_alive()
        got = dev.graphql(_BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        if got["__typename"] != "PartitionBackfill":
            raise UiTestError(f"backfill {backfill_id}: {got}")
        return got if got["status"] in TERMINAL_BACKFILL else None

    backfill = wait_for(
        f"backfill {backfill_id} launched from the UI to finish",
        finished,
        BACKFILL_TIMEOUT_S,
        interval=3,
        describe=dev.log_tail,
    )
    backfill["seconds"] = round(time.monotonic() - started)
    backfill["expected_partitions"] = expected
    print(f"backfill {backfill_id}: {backfill['status']} in {backfill['seconds']} s")

    # What the user sees: the backfill's page says it succeeded.
    page.goto(f"/runs/b/{backfill_id}")
    page.get_by_text("Partition selection").wait_for()
    shot(page, ui_dir, "03-backfill")
    return backfill


def test_lineage_shows_the_seven_assets_and_the_answers(page: Any, ui_dir: Path) -> None:
    # A taller window, so the graph's first fit holds the raw files at the bottom and the answers
    # at the top in one screenshot.
    normal = page.viewport_size
    page.set_viewport_size({"width": normal["width"], "height": 1400})
    try:
        _check_lineage(page, ui_dir)
    finally:
        page.set_viewport_size(normal)


def _check_lineage(page: Any, ui_dir: Path) -> None:
    open_lineage(page)
    for name in (*LAKE_ASSETS, *CORE_ASSETS):
        assert asset_node(page, name).is_visible(), f"{name} is not drawn in the lineage"
    # Issue 8: the lineage runs on to the analytics answers (their group is drawn; with every
    # group expanded the graph zooms out and cuts long names, so the group's title is the proof).
    assert page.get_by_text("analytics", exact=True).count() >= 2, "no analytics group in the lineage"
    shot(page, ui_dir, "01-lineage")


def test_materialize_all_succeeds_over_every_daily_partition(ui_backfill: dict) -> None:
    assert ui_backfill["isAssetBackfill"]
    assert ui_backfill["status"] == "COMPLETED_SUCCESS", ui_backfill.get("error")
    assert ui_backfill["numPartitions"] == ui_backfill["expected_partitions"]
    assert ui_backfill["partitionNames"][0] == FIRST_PARTITION.isoformat()
    runs = ui_backfill["runs"]
    assert runs, "the backfill launched no run"
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert run["status"] == "SUCCESS", run
        assert tags.get("dagster/from_ui") == "true", tags
    materialized = [p["path"][-1] for run in runs for p in run["assetSelection"]]
    assert len(materialized) == len(set(materialized)), f"an asset ran twice: {sorted(materialized)}"
    assert {*CORE_ASSETS, TOP_SONGS_ASSET} <= set(materialized), sorted(materialized)
    # BackfillPolicy.single_run(): every partition of a partitioned asset in one run, not one
    # run per day.
    last = ui_backfill["partitionNames"][-1]
    for name in PARTITIONED_ASSETS:
        (run,) = [r for r in runs if [name] in [p["path"] for p in r["assetSelection"]]]
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["dagster/asset_partition_range_start"] == FIRST_PARTITION.isoformat()
        assert tags["dagster/asset_partition_range_end"] == last


def test_every_check_passed(ui_backfill: dict, dev: DagsterDev, page: Any, ui_dir: Path) -> None:
    nodes = dev.graphql(_CHECKS_QUERY)["assetNodes"]
    run_ids = {r["runId"] for r in ui_backfill["runs"]}
    results: dict[str, str] = {}
    for node in nodes:
        asset = node["assetKey"]["path"][-1]
        for check in node["assetChecksOrError"]["checks"]:
            ex = check["executionForLatestMaterialization"] or {}
            passed = ex.get("status") == "SUCCEEDED" and (ex.get("evaluation") or {}).get("success")
            in_backfill = ex.get("runId") in run_ids
            results[f"{asset}:{check['name']}"] = (
                "passed" if passed and in_backfill else str(ex or "never run")
            )
    songplays = {k.split(":", 1)[1] for k in results if k.startswith("songplays:")}
    assert SONGPLAYS_CHECKS <= songplays, f"songplays lacks checks: {SONGPLAYS_CHECKS - songplays}"
    for name in CORE_ASSETS:
        assert any(k.startswith(f"{name}:") for k in results), f"{name} has no checks"
    failed = {k: v for k, v in results.items() if v != "passed"}
    open_lineage(page)
    shot(page, ui_dir, "04-lineage-after")
    assert failed == {}, f"checks that did not pass after Materialize all: {failed}"


def test_songplays_page_shows_checks_passed_and_row_count(ui_backfill: dict, page: Any, ui_dir: Path) -> None:
    page.goto("/assets/songplays")
    # "Row count" is the latest materialization's, and each day (partition) reports its own rows:
    # the latest is the backfill's last day, yesterday, which has no log file in the sample.
    last_day = ui_backfill["partitionNames"][-1]
    page.get_by_text(last_day).first.wait_for()
    row_count = page.get_by_text("Row count", exact=True).locator("..")
    row_count.get_by_text("0", exact=True).wait_for()
    shot(page, ui_dir, "05-songplays-overview")
    # The whole table's rows are in the same materialization's metadata.
    table_rows = page.get_by_text("table_rows", exact=True).first
    table_rows.scroll_into_view_if_needed()
    shot(page, ui_dir, "05b-songplays-metadata")
    row = table_rows.locator("xpath=ancestor::tr[1]")
    assert SONGPLAYS_ROWS.match(row.locator("td").last.inner_text().strip()), row.inner_text()

    page.goto("/assets/songplays?view=checks")
    page.get_by_text(f"Checks ({len(SONGPLAYS_CHECKS)})").wait_for()
    listing = page.get_by_text(re.compile(r"^Checks \(\d+\)$")).locator("xpath=ancestor::*[2]")
    shot(page, ui_dir, "06-songplays-checks")
    text = listing.inner_text()
    for name in SONGPLAYS_CHECKS:
        assert name in text, f"{name} missing from the checks tab"
    assert "Failed" not in text, text
    assert text.count("Succeeded") == len(SONGPLAYS_CHECKS), text


def test_top_songs_asset_shows_the_top_song(ui_backfill: dict, page: Any, ui_dir: Path) -> None:
    page.goto(f"/assets/{TOP_SONGS_ASSET}")
    page.get_by_text("Row count", exact=True).wait_for()
    # The answer is a metadata entry of the latest materialization, shown on the overview.
    answer = page.get_by_text(TOP_SONG, exact=True)
    answer.wait_for()
    answer.scroll_into_view_if_needed()
    shot(page, ui_dir, "07-top-songs")
    assert answer.is_visible()
