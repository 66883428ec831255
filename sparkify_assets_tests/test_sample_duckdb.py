"""The whole pipeline on the shipped sample and a real DuckDB file: the data contract's numbers
(DESIGN.md section 2 and PROVENANCE.md), real rows, idempotency and partition re-runs."""

from __future__ import annotations

import datetime as dt

import pytest

from sparkify_assets_tests.conftest import CONTRACT
from sparkify_assets_tests.helpers import check_results, count, load, rows


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    url = f"duckdb://{tmp_path_factory.mktemp('wh') / 'sample.duckdb'}"
    result = load(url)
    return url, result


def test_contract_counts(loaded):
    url, _ = loaded
    assert {t: count(url, t) for t in CONTRACT} == CONTRACT
    assert count(url, "staging_rejects") == 0


def test_every_check_ran_and_passed(loaded):
    _, result = loaded
    checks = check_results(result)
    assert len(checks) >= 25
    assert all(checks.values()), [k for k, ok in checks.items() if not ok]
    for name in (
        "songplays:unique_songplay_id",
        "songplays:relationships_user_id__users",
        "time:covers_songplays_start_time",
        "songplays:relationships_song_id__songs",
        "songplays:relationships_artist_id__artists",
        "songplays:reconcile_nextsong_events",
        "staging_events:reconcile_records",
        "users:unique_user_id",
    ):
        assert checks[name] is True


def test_the_one_matched_play(loaded):
    url, _ = loaded
    matched = rows(url, "songplays", ["start_time", "user_id", "level", "song_id", "artist_id", "session_id"])
    matched = [r for r in matched if r[3] is not None]
    # PROVENANCE.md: "Setanta matins" by Elena, userId 15, ts 1542837407796 (2018-11-21).
    assert matched == [
        (
            dt.datetime(2018, 11, 21, 21, 56, 47, 796000),
            "15",
            "paid",
            "SOZCTXZ12AB0182364",
            "AR5KOSW1187FB35FF4",
            818,
        )
    ]
    assert rows(url, "songs", ["song_id", "title"]).count(("SOZCTXZ12AB0182364", "Setanta matins")) == 1
    assert ("AR5KOSW1187FB35FF4", "Elena") in rows(url, "artists", ["artist_id", "name"])


def test_user_level_is_the_level_of_the_latest_event(loaded):
    url, _ = loaded
    # User 15's last event in the sample (2018-11-30) is at level paid; user 15 is one of the 8
    # users who change level during the month.
    assert (
        rows(url, "users", ["user_id", "first_name", "last_name", "gender", "level"]).count(
            ("15", "Lily", "Koch", "F", "paid")
        )
        == 1
    )
    latest = rows(
        url,
        "staging_events",
        ["user_id", "level", "ts"],
    )
    by_user: dict[str, tuple[int, str]] = {}
    for user_id, level, ts in latest:
        if user_id is not None and (user_id not in by_user or ts > by_user[user_id][0]):
            by_user[user_id] = (ts, level)
    users = dict(rows(url, "users", ["user_id", "level"]))
    assert users == {u: level for u, (_, level) in by_user.items()}


def test_songs_and_artists_follow_the_contract(loaded):
    url, _ = loaded
    # year 0 in 43 sample songs means unknown: NULL; empty location in the catalog: NULL.
    assert count(url, "songs", "year IS NULL") == 43
    assert count(url, "songs", "year = 0") == 0
    assert count(url, "artists", "location = ''") == 0
    assert count(url, "songplays", "song_id IS NOT NULL") == 1
    assert count(url, "songplays", "artist_id IS NOT NULL") == 1


def test_time_dimension_columns(loaded):
    url, _ = loaded
    got = dict(
        (r[0], r[1:])
        for r in rows(url, "time", ["start_time", "hour", "day", "week", "month", "year", "weekday"])
    )
    # 2018-11-21 21:56:47.796 UTC is a Wednesday (weekday 3 with 0 = Sunday), ISO week 47.
    assert got[dt.datetime(2018, 11, 21, 21, 56, 47, 796000)] == (21, 21, 47, 11, 2018, 3)


def test_rerun_gives_identical_tables(loaded, tmp_path):
    url, _ = loaded
    before = {t: rows(url, t) for t in CONTRACT}
    load(url)
    after = {t: rows(url, t) for t in CONTRACT}
    assert after == before


def test_rerun_of_one_partition_replaces_only_that_day(loaded):
    url, _ = loaded
    before = rows(url, "songplays")
    day = dt.date(2018, 11, 21)
    load(url, first=day, last=day)
    assert rows(url, "songplays") == before
    assert count(url, "songplays", "source_date = DATE '2018-11-21'") == count(
        url, "staging_events", "source_date = DATE '2018-11-21' AND page = 'NextSong'"
    )
    assert count(url, "staging_events") == CONTRACT["staging_events"]


def test_songplay_ids_do_not_depend_on_load_order(tmp_path):
    """Loading day by day, last day first, gives the same ids as one full run."""
    full = f"duckdb://{tmp_path / 'full.duckdb'}"
    stepwise = f"duckdb://{tmp_path / 'stepwise.duckdb'}"
    first, last = dt.date(2018, 11, 1), dt.date(2018, 11, 3)
    load(full, first=first, last=last)
    for day in (dt.date(2018, 11, 3), dt.date(2018, 11, 1), dt.date(2018, 11, 2)):
        load(stepwise, first=day, last=day)
    for table in ("songplays", "users", "time", "staging_events"):
        assert rows(stepwise, table) == rows(full, table)
    assert count(full, "songplays") > 0
