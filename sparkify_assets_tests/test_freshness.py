"""Lateness of the daily logs (freshness.py): the check `log_on_time` of staging_events, judged on a
real lake folder and the record of real loads in a Dagster instance, at fixed clocks; and the
sensor that records it in the UI.

Day D's log is due by D+1 at SPARKIFY_LOG_DEADLINE_HOUR:00 UTC (default 3)."""

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context
from hypothesis import given
from hypothesis import strategies as st

from sparkify_assets import env_settings
from sparkify_assets.env_settings import SettingError
from sparkify_assets.freshness import CHECK_NAME, deadline_of, due_day, judge, lateness_sensor
from sparkify_assets.resources.lake import LakeResource, sample_lake_path
from sparkify_assets.runner import failures, run_load
from sparkify_assets_tests.helpers import make_defs

SAMPLE = sample_lake_path()


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _lake(root: Path, days: list[date], named_as: list[date] | None = None) -> Path:
    """A lake with the sample's catalog and the sample's logs of `days` (saved under the dates
    of `named_as`, when given: a lake dated relative to today)."""
    shutil.copytree(SAMPLE / "song_data", root / "song_data")
    for source, target in zip(days, named_as or days, strict=True):
        _add_day(root, source, target)
    return root


def _add_day(root: Path, source: date, target: date) -> None:
    folder = root / "log_data" / f"{target:%Y}" / f"{target:%m}"
    folder.mkdir(parents=True, exist_ok=True)
    src = SAMPLE / "log_data" / f"{source:%Y}" / f"{source:%m}" / f"{source.isoformat()}-events.json"
    shutil.copyfile(src, folder / f"{target.isoformat()}-events.json")


def _load(duckdb_url: str, lake: Path, instance: DagsterInstance) -> None:
    result = run_load(make_defs(duckdb_url, str(lake)), instance=instance)
    assert result.success, failures(result)


NOV = [date(2018, 11, d) for d in (1, 2)]


def test_late_when_the_next_days_file_is_missing_past_the_deadline(tmp_path, duckdb_url):
    lake_path = _lake(tmp_path / "lake", NOV)
    lake = LakeResource(url=str(lake_path)).open()
    with DagsterInstance.ephemeral() as instance:
        _load(duckdb_url, lake_path, instance)

        # 02:59 on Nov 4: Nov 3's log is not due yet; Nov 2's is, and it is loaded.
        before = judge(_utc("2018-11-04T02:59:59"), 3, lake, instance)
        assert (before.day, before.on_time) == (date(2018, 11, 2), True)
        assert before.description.startswith("on time: the log of 2018-11-02")

        # 03:00: Nov 3's log is due and not in the lake.
        late = judge(_utc("2018-11-04T03:00:00"), 3, lake, instance)
        assert (late.day, late.arrived, late.loaded, late.on_time) == (date(2018, 11, 3), False, False, False)
        assert late.description == (
            "late: the log of 2018-11-03 (due by 2018-11-04 03:00 UTC) has not arrived; "
            "the lake's newest log is 2018-11-02"
        )
        evaluation = late.evaluation()
        assert (evaluation.check_name, evaluation.passed, evaluation.severity.value) == (
            CHECK_NAME,
            False,
            "WARN",
        )
        # Still late days later, naming the newest day due.
        assert judge(_utc("2018-11-09T12:00:00"), 3, lake, instance).day == date(2018, 11, 8)

        # The file lands: late until it is loaded, then on time.
        _add_day(lake_path, date(2018, 11, 3), date(2018, 11, 3))
        arrived = judge(_utc("2018-11-04T03:30:00"), 3, lake, instance)
        assert (arrived.arrived, arrived.loaded, arrived.on_time) == (True, False, False)
        assert "is in the lake but not loaded yet" in arrived.description
        _load(duckdb_url, lake_path, instance)
        on_time = judge(_utc("2018-11-04T03:30:00"), 3, lake, instance)
        assert (on_time.arrived, on_time.loaded, on_time.on_time) == (True, True, True)
        assert on_time.description == (
            "on time: the log of 2018-11-03 (due by 2018-11-04 03:00 UTC) is loaded; "
            "the next one is due by 2018-11-05 03:00 UTC"
        )


def test_a_later_deadline_hour_moves_the_deadline(tmp_path, duckdb_url):
    lake_path = _lake(tmp_path / "lake", NOV)
    lake = LakeResource(url=str(lake_path)).open()
    with DagsterInstance.ephemeral() as instance:
        _load(duckdb_url, lake_path, instance)
        at_four = _utc("2018-11-04T04:00:00")
        assert judge(at_four, 3, lake, instance).on_time is False  # Nov 3 due at 03:00
        assert judge(at_four, 5, lake, instance).on_time is True  # Nov 3 due at 05:00: Nov 2 counts
        assert judge(_utc("2018-11-04T05:00:00"), 5, lake, instance).day == date(2018, 11, 3)


def test_the_deadline_hour_setting(monkeypatch):
    monkeypatch.delenv(env_settings.LOG_DEADLINE_HOUR, raising=False)
    assert env_settings.log_deadline_hour() == 3
    monkeypatch.setenv(env_settings.LOG_DEADLINE_HOUR, " 7 ")
    assert env_settings.log_deadline_hour() == 7
    for bad in ("24", "-1", "3.5", "three"):
        monkeypatch.setenv(env_settings.LOG_DEADLINE_HOUR, bad)
        with pytest.raises(
            SettingError, match=r"SPARKIFY_LOG_DEADLINE_HOUR must be an hour of the day in UTC"
        ):
            env_settings.log_deadline_hour()


@given(
    now=st.datetimes(min_value=datetime(2018, 11, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    hour=st.integers(0, 23),
)
def test_the_day_due_is_the_last_whose_deadline_has_passed(now, hour):
    day = due_day(now, hour)
    assert deadline_of(day, hour) <= now < deadline_of(day + timedelta(days=1), hour)
    assert deadline_of(day, hour) - datetime.combine(day, datetime.min.time(), tzinfo=UTC) == timedelta(
        days=1, hours=hour
    )


def test_the_sensor_records_lateness_when_it_changes(tmp_path, monkeypatch):
    """On the real clock: a lake whose newest log is the day before the one due. The deadline hour
    is set 12 hours away from now, so the day due cannot change while the test runs."""
    now = datetime.now(UTC)
    hour = (now.hour + 12) % 24
    monkeypatch.setenv(env_settings.LOG_DEADLINE_HOUR, str(hour))
    due = now.date() - timedelta(days=1 if now.hour >= hour else 2)
    lake_path = _lake(tmp_path / "lake", [NOV[0]], named_as=[due - timedelta(days=1)])
    lake = LakeResource(url=str(lake_path))
    with DagsterInstance.ephemeral() as instance:
        with build_sensor_context(instance=instance, resources={"lake": lake}) as context:
            first = lateness_sensor(context)
        assert isinstance(first, SensorResult)
        [evaluation] = first.asset_events
        assert (evaluation.asset_key.to_user_string(), evaluation.check_name) == (
            "staging_events",
            CHECK_NAME,
        )
        assert evaluation.passed is False
        assert first.skip_reason.skip_message == f"recorded: {evaluation.description}"  # what the tick shows
        assert evaluation.description.startswith(f"late: the log of {due} (due by")
        assert evaluation.description.endswith(
            f"has not arrived; the lake's newest log is {due - timedelta(days=1)}"
        )

        # Nothing changed: nothing recorded again.
        with build_sensor_context(
            instance=instance, resources={"lake": lake}, cursor=first.cursor
        ) as context:
            again = lateness_sensor(context)
        assert isinstance(again, SkipReason)
        assert again.skip_message.startswith(f"unchanged: late: the log of {due}")

        # The file lands: a new verdict (in the lake, not loaded yet) is recorded.
        _add_day(lake_path, NOV[1], due)
        with build_sensor_context(
            instance=instance, resources={"lake": lake}, cursor=first.cursor
        ) as context:
            landed = lateness_sensor(context)
        assert isinstance(landed, SensorResult)
        assert "is in the lake but not loaded yet" in landed.asset_events[0].description
        assert landed.cursor != first.cursor
