"""The daily partitions of the event tables: one per log file date."""

from __future__ import annotations

from datetime import date, timedelta

from dagster import AssetCheckExecutionContext, AssetExecutionContext, DailyPartitionsDefinition

FIRST_DAY = "2018-11-01"
DAILY = DailyPartitionsDefinition(start_date=FIRST_DAY)


def partition_dates(context: AssetExecutionContext | AssetCheckExecutionContext) -> tuple[date, date]:
    """First and last day (inclusive) of the partitions this run materializes."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def date_filter(column: str, first: date, last: date) -> str:
    """A SQL condition on a date column; the dates are date objects, never user text."""
    return f"{column} BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"
