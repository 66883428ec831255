"""What each core asset's materializations tell the UI, on the shipped sample and a real DuckDB file.

Expected numbers are the data contract's (DESIGN.md section 2) or counted here with plain Python
from the sample's JSON logs, never taken from the code under test.

Row counts of the daily-partitioned assets: one run over many days emits one materialization per
day (BackfillPolicy.single_run()), and each day's event carries that day's own `dagster/row_count`
(the partitions are the lake's days, so no day is empty); `run_rows` is the run's days together and `table_rows` the whole
table after the run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from dagster import AssetKey, DagsterInstance

from sparkify_assets.runner import failures, run_load
from sparkify_assets_tests.conftest import CONTRACT, SAMPLE
from sparkify_assets_tests.helpers import make_defs

PARTITIONED = ("staging_events", "songplays")
# The contract's columns (DESIGN.md section 2), in the declared order, plus lineage columns.
COLUMNS = {
    "songplays": [
        "songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", "session_id",
        "location", "user_agent", "source_date",
    ],
    "users": ["user_id", "first_name", "last_name", "gender", "level"],
    "songs": ["song_id", "title", "artist_id", "year", "duration"],
    "artists": ["artist_id", "name", "location", "latitude", "longitude"],
    "time": ["start_time", "hour", "day", "week", "month", "year", "weekday"],
    "staging_songs": [
        "num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location",
        "artist_name", "song_id", "title", "duration", "year", "source_key", "source_line",
    ],
    "staging_events": [
        "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level",
        "location", "method", "page", "registration", "session_id", "song", "status", "ts",
        "user_agent", "user_id", "source_key", "source_line", "source_date",
    ],
}  # fmt: skip
# 1 matched play of 6,820, rounded to 6 decimals as the songplays definition documents.
MATCH_RATE = 0.000147


def _sample_days() -> tuple[Counter, Counter]:
    """Per log file date: event lines, and NextSong lines, counted from the raw JSON."""
    lines, plays = Counter(), Counter()
    for path in sorted((SAMPLE / "log_data").rglob("*-events.json")):
        day = path.name[:10]
        for line in path.read_text().splitlines():
            if line.strip():
                lines[day] += 1
                plays[day] += json.loads(line)["page"] == "NextSong"
    return lines, plays


EVENT_LINES, NEXTSONG = _sample_days()


def _metadata(event) -> dict:
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def _by_asset(result) -> dict[str, list[tuple[str | None, dict]]]:
    out: dict[str, list[tuple[str | None, dict]]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out.setdefault(mat.asset_key.to_user_string(), []).append((mat.partition, _metadata(event)))
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    url = f"duckdb://{tmp_path_factory.mktemp('meta') / 'sample.duckdb'}"
    instance = DagsterInstance.ephemeral()
    result = run_load(make_defs(url), instance=instance)
    assert result.success, failures(result)
    return url, instance, _by_asset(result)


def test_the_sample_has_thirty_days():
    assert len(EVENT_LINES) == 30 and sum(EVENT_LINES.values()) == CONTRACT["staging_events"]
    assert sum(NEXTSONG.values()) == CONTRACT["songplays"]


@pytest.mark.parametrize("asset", sorted(CONTRACT))
def test_latest_materialization_has_schema_preview_and_table_rows(sample, asset):
    _, instance, _ = sample
    record = instance.get_latest_materialization_event(AssetKey(asset))
    meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    assert meta["table_rows"] == CONTRACT[asset]
    if asset not in PARTITIONED:
        assert meta["dagster/row_count"] == CONTRACT[asset]
    schema = meta["dagster/column_schema"]
    assert [c.name for c in schema.columns] == COLUMNS[asset]
    assert all(c.type and c.description for c in schema.columns)
    preview = meta["preview"].splitlines()
    contract_cols = [c for c in COLUMNS[asset] if not c.startswith("source_")]
    assert preview[0] == "| " + " | ".join(contract_cols) + " |"
    assert len(preview) == 2 + 5  # header, rule, five rows


@pytest.mark.parametrize("asset", ["songplays", "staging_events"])
def test_each_day_of_a_single_run_gets_its_own_event_and_the_run_totals(sample, asset):
    _, _, events = sample
    days = [partition for partition, _ in events[asset]]
    assert days == [(dt.date(2018, 11, 1) + dt.timedelta(d)).isoformat() for d in range(30)]
    for _, meta in events[asset]:
        assert meta["run_rows"] == CONTRACT[asset]
        assert meta["table_rows"] == CONTRACT[asset]


def test_songplays_row_count_is_each_days_own(sample):
    _, _, events = sample
    per_day = {partition: meta["dagster/row_count"] for partition, meta in events["songplays"]}
    assert per_day == dict(NEXTSONG)
    assert sum(per_day.values()) == CONTRACT["songplays"]


def test_staging_events_row_count_is_each_days_own(sample):
    _, _, events = sample
    per_day = {partition: meta["dagster/row_count"] for partition, meta in events["staging_events"]}
    assert per_day == dict(EVENT_LINES)


def test_songplays_match_rate_describes_the_whole_table(sample):
    _, _, events = sample
    for _, meta in events["songplays"]:
        assert meta["matched_plays"] == 1
        assert meta["match_rate"] == MATCH_RATE


def test_a_run_past_the_lakes_last_day_materializes_only_days_with_a_file(sample):
    """Re-run 2018-11-29 .. 2018-12-02 on the loaded sample: the partitions are the lake's days
    (issue 19), so the run covers 29 and 30 November only; no empty day is materialized (green
    with 0 rows), and the latest materialization is the last real day with its own rows, while
    the whole table (with 2018-11-21's one matched play, outside the run) keeps 6,820 rows."""
    url, instance, _ = sample
    result = run_load(make_defs(url), dt.date(2018, 11, 29), dt.date(2018, 12, 2), instance=instance)
    assert result.success, failures(result)
    songplays = _by_asset(result)["songplays"]
    per_day = {partition: meta["dagster/row_count"] for partition, meta in songplays}
    assert per_day == {"2018-11-29": NEXTSONG["2018-11-29"], "2018-11-30": NEXTSONG["2018-11-30"]}
    for _, meta in songplays:
        assert meta["run_rows"] == NEXTSONG["2018-11-29"] + NEXTSONG["2018-11-30"]
        assert meta["table_rows"] == CONTRACT["songplays"]
        assert meta["matched_plays"] == 1
        assert meta["match_rate"] == MATCH_RATE
    latest = instance.get_latest_materialization_event(AssetKey("songplays")).asset_materialization
    assert latest.partition == "2018-11-30"
    assert latest.metadata["dagster/row_count"].value == NEXTSONG["2018-11-30"] > 0
    assert instance.get_materialized_partitions(AssetKey("songplays")) <= {
        f"2018-11-{d:02d}" for d in range(1, 31)
    }


def test_songplays_definition_explains_its_row_counts_and_match_rate():
    from sparkify_assets.definitions import defs

    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == AssetKey("songplays"))
    text = spec.metadata["row_counts"].value + spec.metadata["match_rate_rule"].value
    for phrase in (
        "`dagster/row_count`",
        "that day",
        "`run_rows`",
        "`table_rows`",
        "whole table",
        "6 decimals",
    ):
        assert phrase in text
