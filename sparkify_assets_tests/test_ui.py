"""The Dagster UI, driven in headless Chromium against a real `dagster dev` (issues 2, 8 and 19).

`dagster dev` starts; its log sensor loads the lake on its own (one run), and the tests read what
a first visit shows: the songplays overview, its partitions (the lake's 30 days), and the
top_songs result at a 1,280 px wide window. Then a user clicks "Materialize all" over every daily
partition to re-run it all, and the daemon of `dagster dev` runs the backfill. The tests then read the outcome the
way a user does (lineage, the songplays asset page, an analytics asset) and, independently,
through Dagster's own GraphQL API. Expected values come from the data contract (DESIGN.md
section 2), never from the code under test. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sparkify_assets_tests.conftest import free_port
from sparkify_assets_tests.ui_support import DagsterDev, UiTestError, chromium_page, dagster_dev, wait_for

pytestmark = pytest.mark.browser

# The data contract (DESIGN.md section 2) and the README's asset table.
CORE_ASSET_NAMES = ("staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time")
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


SAMPLE_LOGS = (
    Path(__file__).resolve().parents[1] / "sparkify_assets" / "data" / "sparkify_sample" / "log_data"
)
SAMPLE_LOG_FILES = sorted(SAMPLE_LOGS.rglob("*-events.json"))
LAST_DAY = SAMPLE_LOG_FILES[-1].name.removesuffix("-events.json")  # 2018-11-30


def expected_partition_count() -> int:
    """The partitions are the lake's days (issue 19): one per log file of the sample."""
    return len(SAMPLE_LOG_FILES)


def nextsong_events(path: Path) -> int:
    """songplays of one day: the NextSong events of its log file (DESIGN.md section 2)."""
    lines = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return sum(1 for event in lines if event.get("page") == "NextSong")


_RUNS_QUERY = """
query ($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
  __typename ... on Runs { results { runId status tags { key value } } }
} }
"""

_PARTITION_STATS_QUERY = """
query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) {
  __typename ... on AssetNode { partitionKeys partitionStats { numMaterialized numPartitions numFailed } }
} }
"""


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
    for name in CORE_ASSET_NAMES:
        asset_node(page, name).wait_for()


def asset_node(page: Any, name: str) -> Any:
    """An asset's name in the lineage graph. With every group expanded the graph is zoomed out and
    draws small nodes whose long names are cut in the middle, so match the name element."""
    return page.locator('[class*="AssetNode_assetName"]').filter(has_text=re.compile(f"^{name}$")).first


@pytest.fixture(scope="module")
def sensor_load(dev: DagsterDev) -> dict:
    """Wait for what `dagster dev` does on its own: the log sensor's first tick asks for one run
    that loads the whole lake (tag sparkify/lake_update=all); wait until it succeeded and no
    sensor run is queued or running. Returns that run."""

    def runs(tags: list[dict]) -> list[dict]:
        got = dev.graphql(_RUNS_QUERY, {"tags": tags})["runsOrError"]
        if got["__typename"] != "Runs":
            raise UiTestError(f"runs: {got}")
        return got["results"]

    def loaded() -> dict | None:
        dev.assert_alive()
        first = runs([{"key": "sparkify/lake_update", "value": "all"}])
        if any(r["status"] in ("FAILURE", "CANCELED") for r in first):
            raise UiTestError(f"the sensors' first load failed: {first}")
        busy = [
            r
            for r in runs([])
            if r["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
        ]
        done = [r for r in first if r["status"] == "SUCCESS"]
        return done[0] if done and not busy else None

    started = time.monotonic()
    run = wait_for(
        "the log sensor's first run to load the lake",
        loaded,
        BACKFILL_TIMEOUT_S,
        interval=3,
        describe=dev.log_tail,
    )
    print(f"sensors loaded the lake in run {run['runId']} within {time.monotonic() - started:.0f} s")
    return run


def test_after_the_sensors_load_songplays_shows_the_last_days_rows(
    sensor_load: dict, page: Any, ui_dir: Path
) -> None:
    page.goto("/assets/songplays")
    page.get_by_text(LAST_DAY).first.wait_for()
    # The overview's headline is the latest materialization: the lake's last day, with its plays.
    expected = nextsong_events(SAMPLE_LOG_FILES[-1])
    assert expected > 0
    row_count = page.get_by_text("Row count", exact=True).locator("..")
    row_count.get_by_text(f"{expected:,}", exact=True).wait_for()
    shot(page, ui_dir, "08-sensor-load-songplays-overview")


def test_after_the_sensors_load_the_partitions_are_the_lakes_days(
    sensor_load: dict, dev: DagsterDev, page: Any, ui_dir: Path
) -> None:
    days = [f.name.removesuffix("-events.json") for f in SAMPLE_LOG_FILES]
    for name in PARTITIONED_ASSETS:
        node = dev.graphql(_PARTITION_STATS_QUERY, {"path": [name]})["assetNodeOrError"]
        assert node["partitionKeys"] == days, name
        assert node["partitionStats"] == {
            "numMaterialized": len(days),
            "numPartitions": len(days),
            "numFailed": 0,
        }
    page.goto("/assets/songplays?view=partitions")
    page.get_by_text(LAST_DAY).first.wait_for()
    page.get_by_text(days[0]).first.wait_for()
    shot(page, ui_dir, "09-sensor-load-songplays-partitions")
    text = page.locator("body").inner_text()
    # What the partitions view says: 30 partitions, 30 materialized, none missing.
    for said in (
        f"{len(days)} Partitions Selected",
        f"Materialized ({len(days)})",
        "Missing (0)",
        "Failed (0)",
    ):
        assert said in text, (said, text[:3000])
    assert "2,952" not in text and "2018-10-31" not in text and "2018-12-01" not in text


def test_top_songs_result_shows_every_column_at_1280_px(sensor_load: dict, page: Any, ui_dir: Path) -> None:
    normal = page.viewport_size
    page.set_viewport_size({"width": 1280, "height": 900})
    try:
        page.goto(f"/assets/{TOP_SONGS_ASSET}")
        page.get_by_text(TOP_SONG, exact=True).wait_for()
        # The overview's metadata column is about 350 px wide at 1,280 px: a result with long names
        # (with their full text under the table) opens behind "[Show Markdown]" in a dialog.
        entry = page.locator("tr").filter(has=page.get_by_text("result", exact=True)).first
        entry.scroll_into_view_if_needed()
        show = entry.get_by_text("[Show Markdown]")
        scope = page
        if show.count():
            show.click()
            scope = page.get_by_role("dialog")
            scope.get_by_text("In full (title, artist_name):").wait_for()
        table = scope.locator("table").filter(has=page.locator("th", has_text="song_rank")).first
        table.wait_for()
        table.scroll_into_view_if_needed()
        shot(page, ui_dir, "10-top-songs-1280")
        headers = [th.strip() for th in table.locator("th").all_inner_texts()]
        assert sorted(headers) == sorted(["song_rank", "title", "artist_name", "plays", "listeners"]), headers
        # Every header cell and the widest row's cells: inside the window and not covered (the
        # element at each cell's centre is the cell itself or inside it).
        cells = [table.locator("th", has_text=re.compile(f"^{h}$")).first for h in headers]
        cells += list(table.locator("tr", has_text="Horn Concerto").first.locator("td").all())
        for cell in cells:
            box = cell.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 1280, (cell.inner_text(), box)
            on_top = cell.evaluate(
                "(el) => { const r = el.getBoundingClientRect();"
                " const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);"
                " return hit !== null && (hit === el || el.contains(hit)); }"
            )
            assert on_top, f"{cell.inner_text()!r} is covered at 1280 px ({box})"
        # The cut names are whole under the table.
        assert (
            scope.get_by_text(re.compile(r"Horn Concerto No\. 4 in E flat K495: II\. Romance")).count() >= 1
        )
        if scope is not page:
            page.keyboard.press("Escape")
    finally:
        page.set_viewport_size(normal)


@pytest.fixture(scope="module")
def ui_backfill(sensor_load: dict, browser: tuple[Any, list[str]], dev: DagsterDev, ui_dir: Path) -> dict:
    """Click "Materialize all" over every daily partition and wait until the backfill is done.

    Returns the backfill as the GraphQL API reports it."""
    page = browser[0]
    open_lineage(page)
    page.get_by_role("button", name=re.compile("Materialize all")).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Launch runs to materialize").wait_for()
    # The dialog may open on a recent window; a user who wants the whole lake widens it.
    show_all = dialog.get_by_text("Show all partitions")
    if show_all.count():
        show_all.click()
    every = dialog.get_by_role("button", name="All", exact=True)
    if every.count():
        every.click()
    expected = expected_partition_count()
    # The selection is the lake's days (GraphQL checks the exact list afterwards).
    dialog.get_by_text(re.compile(rf"^{expected} partitions$")).first.wait_for()
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
    for name in (*LAKE_ASSETS, *CORE_ASSET_NAMES):
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
    assert ui_backfill["partitionNames"][-1] == LAST_DAY
    runs = ui_backfill["runs"]
    assert runs, "the backfill launched no run"
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert run["status"] == "SUCCESS", run
        assert tags.get("dagster/from_ui") == "true", tags
    materialized = [p["path"][-1] for run in runs for p in run["assetSelection"]]
    assert len(materialized) == len(set(materialized)), f"an asset ran twice: {sorted(materialized)}"
    assert {*CORE_ASSET_NAMES, TOP_SONGS_ASSET} <= set(materialized), sorted(materialized)
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
    for name in CORE_ASSET_NAMES:
        assert any(k.startswith(f"{name}:") for k in results), f"{name} has no checks"
    failed = {k: v for k, v in results.items() if v != "passed"}
    open_lineage(page)
    shot(page, ui_dir, "04-lineage-after")
    # Lateness judges by today's clock: the sample's last day is 2018-11-30, so the day now due
    # has not arrived and the check says late, as docs/sensors.md ("Lateness") tells a newcomer.
    late = failed.pop("staging_events:log_on_time", "passed")
    assert "'status': 'FAILED'" in late and "'success': False" in late, late
    assert failed == {}, f"checks that did not pass after Materialize all: {failed}"


def test_songplays_page_shows_checks_passed_and_row_count(ui_backfill: dict, page: Any, ui_dir: Path) -> None:
    page.goto("/assets/songplays")
    # "Row count" is the latest materialization's, and each day (partition) reports its own rows:
    # the latest is the backfill's last day, the lake's last day, with its plays.
    last_day = ui_backfill["partitionNames"][-1]
    assert last_day == LAST_DAY
    page.get_by_text(last_day).first.wait_for()
    row_count = page.get_by_text("Row count", exact=True).locator("..")
    row_count.get_by_text(f"{nextsong_events(SAMPLE_LOG_FILES[-1]):,}", exact=True).wait_for()
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
