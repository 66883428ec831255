"""Analytics assets: the analytics team's questions answered as warehouse tables.

Each answer is a small table declared here (so its DDL and column schema come from the same
`Table` declaration as the core tables) and filled by `sql/<table>.sql`, written in the SQL that
DuckDB, PostgreSQL and Redshift share. An asset replaces its whole table in one transaction and
shows the result in the UI as a Markdown table, with a chart where a picture reads better.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
)

from sparkify_assets.assets import conversions, star
from sparkify_assets.charts import bar_chart_svg, markdown_image
from sparkify_assets.checks import Check, audit, run_scope
from sparkify_assets.lineage import column_lineage
from sparkify_assets.metadata import ANALYTICS_OWNERS, definition_metadata, live_column_schema, markdown_table
from sparkify_assets.resources.warehouse import Session, WarehouseResource
from sparkify_assets.tables import Column, Table

GROUP = "analytics"
# The warehouse's kind is added by build_defs, from the resource the definitions are built with.
KINDS = {"sql", "table"}
# Results are a few dozen rows that every node reads whole: copy them everywhere.
_LAYOUT = "a result of a few dozen rows, read whole by dashboards and `sparkify query`."
# The result table must read whole in the asset's panel at a 1,280 px wide window: text cells are
# cut to this many characters (the full values are in `result_rows`), and narrow columns come first.
RESULT_CELL = 30
LONG_CELL = 20


def _table(name: str, description: str, *columns: Column, primary_key: tuple[str, ...]) -> Table:
    return Table(
        name=name,
        description=description,
        columns=columns,
        primary_key=primary_key,
        diststyle="ALL",
        layout_reason=_LAYOUT,
    )


_RANKING_RULE = (
    "Ties are broken by more distinct listeners, then by name in the warehouse's string order, so the "
    "order never depends on load order."
)

TOP_SONGS = _table(
    "analytics_top_songs",
    "Top 10 songs by plays. A song is the title and artist name of the NextSong events, that is what "
    "listeners played, not the catalog match: on the sample only 1 of 6,820 plays matches a catalog "
    "song, so a catalog ranking would be nearly empty. " + _RANKING_RULE,
    Column("song_rank", "integer", "1 = most played", not_null=True),
    Column("title", "text", "Song title as in the events"),
    Column("artist_name", "text", "Artist name as in the events"),
    Column("plays", "bigint", "NextSong events of this title and artist", not_null=True),
    Column("listeners", "bigint", "Distinct users who played it", not_null=True),
    primary_key=("song_rank",),
)

TOP_ARTISTS = _table(
    "analytics_top_artists",
    "Top 10 artists by plays, by the artist name of the NextSong events (what listeners played; most "
    "plays match no catalog artist). " + _RANKING_RULE,
    Column("artist_rank", "integer", "1 = most played", not_null=True),
    Column("artist_name", "text", "Artist name as in the events"),
    Column("plays", "bigint", "NextSong events of this artist", not_null=True),
    Column("listeners", "bigint", "Distinct users who played the artist", not_null=True),
    Column("songs", "bigint", "Distinct titles of the artist played", not_null=True),
    primary_key=("artist_rank",),
)

USERS_BY_LEVEL = _table(
    "analytics_users_by_level",
    "Users by subscription level: each user counted once, at the level of their latest event (the "
    "users dimension), with the share of all users.",
    Column("level", "text", "Subscription level: free or paid"),
    Column("users", "bigint", "Users whose latest event is at this level", not_null=True),
    Column("share_of_users", "double", "users / all users, between 0 and 1", not_null=True),
    primary_key=("level",),
)

DAILY_PLAYS = _table(
    "analytics_daily_plays",
    "Song plays per calendar day (UTC) of the play, with the distinct users who played that day.",
    Column("play_date", "date", "Day of the plays, UTC", not_null=True),
    Column("plays", "bigint", "Song plays that day", not_null=True),
    Column("listeners", "bigint", "Distinct users who played a song that day", not_null=True),
    primary_key=("play_date",),
)

PLAYS_BY_HOUR = _table(
    "analytics_plays_by_hour",
    "Song plays per hour of day (UTC, from the time dimension) over the whole period, with the share "
    "of all plays. An hour without any play has no row.",
    Column("hour_of_day", "integer", "Hour of day, 0-23, UTC", not_null=True),
    Column("plays", "bigint", "Song plays in that hour, all days together", not_null=True),
    Column("share_of_plays", "double", "plays / all plays, between 0 and 1", not_null=True),
    primary_key=("hour_of_day",),
)

MOST_ACTIVE_USERS = _table(
    "analytics_most_active_users",
    "The 10 users with the most song plays, with their distinct sessions and current name and level. "
    "Ties are broken by more sessions, then by user_id compared as text.",
    Column("user_rank", "integer", "1 = most plays", not_null=True),
    Column("user_id", "text", "User identifier", not_null=True),
    Column("first_name", "text", "First name at the user's latest event"),
    Column("last_name", "text", "Last name at the user's latest event"),
    Column("level", "text", "Subscription level at the user's latest event"),
    Column("plays", "bigint", "Song plays by the user", not_null=True),
    Column("sessions", "bigint", "Distinct sessions in which the user played a song", not_null=True),
    primary_key=("user_rank",),
)

FREE_TO_PAID = _table(
    "analytics_free_to_paid",
    "Free-to-paid conversions in the loaded period, one row per conversion. A conversion is two "
    "consecutive events of one user (any page, ordered by ts, then log file and line) where the "
    "earlier is at level free and the later at level paid. A user who goes paid, free, paid converts "
    "again; a user already paid at their first event is not a conversion. Without line numbers "
    "(Redshift), events at the same ts put free before paid.",
    Column("user_id", "text", "User who converted", not_null=True),
    Column("first_name", "text", "First name at the user's latest event"),
    Column("last_name", "text", "Last name at the user's latest event"),
    Column("last_free_at", "timestamp", "Time of the last event at level free, UTC", not_null=True),
    Column("converted_at", "timestamp", "Time of the first event at level paid after it, UTC", not_null=True),
    primary_key=("user_id", "converted_at"),
)


@dataclass(frozen=True)
class Chart:
    label_column: str
    value_column: str
    title: str
    label: Callable[[object], str] = str
    label_every: int = 1
    # The caption under the x axis, from the labels' values (e.g. the year the day labels omit).
    caption: Callable[[list[object]], str] = lambda values: ""


@dataclass(frozen=True)
class Analysis:
    """One question: its table, what it reads, how to order and summarize its answer."""

    table: Table
    question: str
    deps: tuple[str, ...]
    order_by: str
    topic: str
    # A one-line answer shown at the top of the asset's metadata; None when there are no rows.
    headline: Callable[[list[dict]], str]
    chart: Chart | None = None
    # How the answer's rows are written when not by a whole rebuild: given the run's days and a
    # dict to report into, the fill of its transaction (its own `ensure` included).
    refresh: Callable[[tuple[dt.date, dt.date] | None, dict], Callable[[Session], None]] | None = None

    @property
    def short_name(self) -> str:
        return self.table.name.removeprefix("analytics_")


def _days_caption(days: list) -> str:
    """The year (or years) and span of the day labels, which show month and day only."""
    first, last = min(days), max(days)
    years = str(first.year) if first.year == last.year else f"{first.year}-{last.year}"
    return f"day (month-day), {years}: {first.isoformat()} to {last.isoformat()}"


def _first(rows: list[dict], text: Callable[[dict], str]) -> str:
    return text(rows[0]) if rows else "no rows"


def _refresh_conversions(days: tuple[dt.date, dt.date] | None, refreshed: dict) -> Callable[[Session], None]:
    """free_to_paid's rows written from the earliest event the run's changes could reach
    (conversions.py), the answer that a whole-history rebuild made cost most of a daily run."""

    def fill(tx: Session) -> None:
        fresh = not tx.live_columns(FREE_TO_PAID.name) or not tx.live_columns(conversions.SOURCES.name)
        tx.ensure(FREE_TO_PAID, conversions.SOURCES)
        refreshed.update(conversions.refresh(tx, FREE_TO_PAID, days, fresh))

    return fill


ANALYSES: tuple[Analysis, ...] = (
    Analysis(
        TOP_SONGS,
        "Which songs do listeners play most?",
        ("staging_events",),
        "song_rank",
        "songs",
        lambda r: _first(r, lambda t: f"{t['title']} by {t['artist_name']} ({t['plays']} plays)"),
    ),
    Analysis(
        TOP_ARTISTS,
        "Which artists do listeners play most?",
        ("staging_events",),
        "artist_rank",
        "artists",
        lambda r: _first(r, lambda t: f"{t['artist_name']} ({t['plays']} plays)"),
    ),
    Analysis(
        USERS_BY_LEVEL,
        "How many users are on each subscription level?",
        ("users",),
        "level",
        "users",
        lambda r: (
            ", ".join(f"{t['level']}: {t['users']} users ({t['share_of_users']:.1%})" for t in r) or "no rows"
        ),
    ),
    Analysis(
        DAILY_PLAYS,
        "How many songs are played each day?",
        ("songplays",),
        "play_date",
        "time",
        lambda r: _first(
            sorted(r, key=lambda t: (-t["plays"], t["play_date"])),
            lambda t: f"busiest day {t['play_date']} ({t['plays']} plays)",
        ),
        Chart(
            "play_date", "plays", "Song plays per day (UTC)", lambda d: d.strftime("%m-%d"), 3, _days_caption
        ),
    ),
    Analysis(
        PLAYS_BY_HOUR,
        "At what hour of the day do listeners play songs?",
        ("songplays", "time"),
        "hour_of_day",
        "time",
        lambda r: _first(
            sorted(r, key=lambda t: (-t["plays"], t["hour_of_day"])),
            lambda t: f"peak hour {t['hour_of_day']:02d}:00 UTC ({t['plays']} plays)",
        ),
        Chart("hour_of_day", "plays", "Song plays by hour of day (UTC), whole period", lambda h: f"{h:02d}"),
    ),
    Analysis(
        MOST_ACTIVE_USERS,
        "Who are the most active listeners?",
        ("songplays", "users"),
        "user_rank",
        "users",
        lambda r: _first(
            r, lambda t: f"user {t['user_id']} {t['first_name']} {t['last_name']} ({t['plays']} plays)"
        ),
    ),
    Analysis(
        FREE_TO_PAID,
        "Which users converted from free to paid in the period?",
        ("staging_events", "users"),
        "converted_at, user_id",
        "users",
        lambda r: f"{len(r)} conversions by {len({t['user_id'] for t in r})} users",
        refresh=_refresh_conversions,
    ),
)

ANALYTICS_TABLES: tuple[Table, ...] = tuple(a.table for a in ANALYSES)
BY_NAME: dict[str, Analysis] = {a.table.name: a for a in ANALYSES} | {a.short_name: a for a in ANALYSES}


def display_value(column: str, value: object) -> str:
    """How a result cell reads for a person: shares as percentages, times without microseconds."""
    if value is None:
        return ""
    if column.startswith("share_"):
        return f"{float(value):.2%}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def result_sql(analysis: Analysis) -> str:
    """The SELECT that reads an answer in the order a person reads it."""
    columns = ", ".join(analysis.table.column_names)
    return f"SELECT {columns} FROM {analysis.table.name} ORDER BY {analysis.order_by}"


def read_result(tx: Session, analysis: Analysis) -> tuple[list[str], list[tuple]]:
    """The answer's column names and rows, in reading order."""
    return analysis.table.column_names, tx.query(result_sql(analysis))


def _materialization_metadata(analysis: Analysis, columns: list[str], rows: list[tuple]) -> dict:
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    shown = [tuple(display_value(c, v) for c, v in zip(columns, row, strict=True)) for row in rows]
    meta = {
        "dagster/row_count": len(rows),
        "answer": MetadataValue.text(analysis.headline(records)),
    }
    chart = analysis.chart
    if chart and records:
        labels = [chart.label(r[chart.label_column]) for r in records]
        values = [float(r[chart.value_column]) for r in records]
        caption = chart.caption([r[chart.label_column] for r in records])
        svg = bar_chart_svg(labels, values, chart.title, chart.label_every, caption)
        # Before the result table, so its "[Show Markdown]" link is on screen without scrolling:
        # the UI shows Markdown over 1,000 characters in a dialog, and a chart is always longer.
        meta["chart"] = MetadataValue.md(markdown_image(svg, chart.title))
    meta["result"] = MetadataValue.md(
        f"**{analysis.question}**\n\n{result_markdown(columns, shown)}{full_names(columns, shown)}"
    )
    # Markdown tables have no tooltips: every full value, by column name, one click away ("Show JSON").
    meta["result_rows"] = MetadataValue.json(
        [dict(zip(columns, row, strict=True)) for row in shown] if shown else {"rows": 0}
    )
    return meta


def _cut(text: str) -> str:
    return text if len(text) <= RESULT_CELL else text[: RESULT_CELL - 1].rstrip() + "…"


def _long_columns(columns: Sequence[str], shown: Sequence[tuple[str, ...]]) -> list[int]:
    return [i for i in range(len(columns)) if any(len(row[i]) > LONG_CELL for row in shown)]


def full_names(columns: Sequence[str], shown: Sequence[tuple[str, ...]]) -> str:
    """Under the table, each row's long text in full (Markdown tables cannot show a tooltip).

    With it, a result with long names is over the 1,000 characters up to which the UI shows
    Markdown inline (in a column about 350 px wide at a 1,280 px window, too narrow for five
    columns), so the UI shows it behind "[Show Markdown]", in a dialog 80% of the window wide."""
    long = _long_columns(columns, shown)
    if not long:
        return ""
    lines = [f"{n}. " + " · ".join(row[i] for i in long) for n, row in enumerate(shown, start=1)]
    return f"\n\nIn full ({', '.join(columns[i] for i in long)}):\n\n" + "\n".join(lines)


def result_markdown(columns: Sequence[str], shown: Sequence[tuple[str, ...]]) -> str:
    """The result as a Markdown table that fits a narrow panel: columns with long text (a cell
    over LONG_CELL characters: titles, artist names) go last, in their declared order, so the
    counts beside them are never pushed off-screen; their cells are cut to RESULT_CELL with "…"."""
    cells = [tuple(_cut(v) for v in row) for row in shown]
    long = _long_columns(columns, shown)
    order = [i for i in range(len(columns)) if i not in long] + long
    return markdown_table([columns[i] for i in order], [tuple(row[i] for i in order) for row in cells])


def _rebuild(
    warehouse: WarehouseResource,
    analysis: Analysis,
    audit_answer: Callable[[Session, "Answer"], list[AssetCheckResult]],
    days: tuple[dt.date, dt.date] | None = None,
) -> tuple[dict, list[AssetCheckResult]]:
    table = analysis.table
    refreshed: dict = {}

    def report(tx: Session) -> tuple[dict, list[AssetCheckResult]]:
        columns, rows = read_result(tx, analysis)
        meta = {
            **_materialization_metadata(analysis, columns, rows),
            **refreshed,
            "dagster/column_schema": live_column_schema(tx, table),
        }
        return meta, audit_answer(tx, Answer(columns, rows))

    # The answer's own table only: the core `ensure` knows only the core tables.
    if analysis.refresh is not None:
        meta, results = star.rebuild(warehouse, table, (), report, analysis.refresh(days, refreshed))
    else:
        meta, results = star.rebuild(warehouse, table, (table,), report)
    lineage = column_lineage(table)
    return {**meta, **({"dagster/column_lineage": lineage} if lineage else {})}, results


def rebuild(warehouse: WarehouseResource, analysis: Analysis) -> dict:
    """Replace the answer's table with its SQL's result in one transaction (star.rebuild, as for
    the dimensions), reading the whole result back inside it for the metadata; return that."""
    return _rebuild(warehouse, analysis, lambda tx, answer: [])[0]


def rebuild_audited(
    context: AssetExecutionContext, warehouse: WarehouseResource, analysis: Analysis
) -> MaterializeResult:
    """`rebuild`, with the answer's checks run in its transaction on the rows read back (they
    need at most one query of their own, the source's total) before it commits."""
    name = analysis.table.name

    def audit_answer(tx: Session, answer: Answer) -> list[AssetCheckResult]:
        scope = run_scope(context, table_rows=len(answer.rows))
        return audit(context, tx, name, scope, [c.bind(answer) for c in CHECKS[name]])

    meta, results = _rebuild(warehouse, analysis, audit_answer, run_scope(context).days)
    context.log.info(f"{name}: {meta['dagster/row_count']} rows; {meta['answer'].value}")
    return MaterializeResult(metadata=meta, check_results=results)


@dataclass(frozen=True)
class Answer:
    """An answer as its step read it back; None when a check runs alone and reads the table."""

    columns: list[str]
    rows: list[tuple]

    def column(self, name: str) -> list:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


@dataclass(frozen=True)
class AnalyticsCheck:
    """A non-blocking (WARN) check of an answer, evaluated on the rows the step read back, or on
    the table when the check runs alone."""

    spec: AssetCheckSpec
    evaluate: Callable[[Session, Answer], AssetCheckResult]

    def bind(self, answer: Answer | None) -> Check:
        table = BY_NAME[self.spec.asset_key.to_user_string()].table

        def evaluate(tx: Session, scope) -> AssetCheckResult:
            got = answer or Answer(
                table.column_names, tx.query(f"SELECT {', '.join(table.column_names)} FROM {table.name}")
            )
            return self.evaluate(tx, got)

        return Check(self.spec, evaluate)


def _build_asset(analysis: Analysis) -> AssetsDefinition:
    table = analysis.table
    spec = AssetSpec(
        table.name,
        description=table.description,
        group_name=GROUP,
        kinds=KINDS,
        owners=ANALYTICS_OWNERS,
        tags={"layer": "analytics", "topic": analysis.topic},
        deps=list(analysis.deps),
        metadata={
            **definition_metadata(table),
            "question": analysis.question,
            "sql": MetadataValue.md(f"```sql\n{table.transform_sql().strip()}\n```"),
        },
    )
    checks = CHECKS[table.name]
    return star.audited_asset(
        spec,
        [c.spec for c in checks],
        lambda context, warehouse: rebuild_audited(context, warehouse, analysis),
        [c.bind(None) for c in checks],
    )


def _reconcile_check(
    table: Table, name: str, description: str, answer_column: str, source_sql: str
) -> AnalyticsCheck:
    """The answer's total must equal the same total counted on its source tables."""

    def evaluate(tx: Session, answer: Answer) -> AssetCheckResult:
        total = int(sum(v or 0 for v in answer.column(answer_column)))
        source = int(tx.scalar(source_sql) or 0)
        return AssetCheckResult(
            passed=total == source,
            metadata={"answer_total": total, "source_total": source},
            severity=AssetCheckSeverity.WARN,
        )

    return AnalyticsCheck(AssetCheckSpec(name, asset=table.name, description=description), evaluate)


def _ranks_check(table: Table, rank_column: str) -> AnalyticsCheck:
    """A top-10 table holds ranks 1..n exactly once each, with n at most 10."""

    def evaluate(tx: Session, answer: Answer) -> AssetCheckResult:
        ranks = sorted(answer.column(rank_column))
        return AssetCheckResult(
            passed=ranks == list(range(1, len(ranks) + 1)) and len(ranks) <= 10,
            metadata={"ranks": ", ".join(map(str, ranks))},
            severity=AssetCheckSeverity.WARN,
        )

    description = f"{rank_column} runs 1, 2, ... n without gaps or repeats, n <= 10"
    spec = AssetCheckSpec(f"{rank_column}_is_1_to_n", asset=table.name, description=description)
    return AnalyticsCheck(spec, evaluate)


def _build_checks() -> dict[str, list[AnalyticsCheck]]:
    plays = "SELECT COUNT(*) FROM songplays"
    checks = [
        _reconcile_check(
            DAILY_PLAYS,
            "plays_reconcile_with_songplays",
            "The daily plays add up to the rows of songplays",
            "plays",
            plays,
        ),
        _reconcile_check(
            PLAYS_BY_HOUR,
            "plays_reconcile_with_songplays",
            "The hourly plays add up to the rows of songplays",
            "plays",
            plays,
        ),
        _reconcile_check(
            USERS_BY_LEVEL,
            "users_reconcile_with_users",
            "The users per level add up to the rows of users",
            "users",
            "SELECT COUNT(*) FROM users",
        ),
        _ranks_check(TOP_SONGS, "song_rank"),
        _ranks_check(TOP_ARTISTS, "artist_rank"),
        _ranks_check(MOST_ACTIVE_USERS, "user_rank"),
    ]
    by_asset: dict[str, list[AnalyticsCheck]] = {t.name: [] for t in ANALYTICS_TABLES}
    for check in checks:
        by_asset[check.spec.asset_key.to_user_string()].append(check)
    return by_asset


def analysis_names() -> Sequence[str]:
    """The names `sparkify query` accepts, short form first."""
    return [a.short_name for a in ANALYSES]


CHECKS: dict[str, list[AnalyticsCheck]] = _build_checks()
ANALYTICS_ASSETS: list[AssetsDefinition] = [_build_asset(a) for a in ANALYSES]
