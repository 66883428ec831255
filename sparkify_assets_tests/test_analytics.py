"""The analytics assets on the shipped sample, on a real DuckDB file and a real PostgreSQL server.

Expected answers are computed here by a plain-Python pass over the sample's JSON log files (not
by the SQL under test), and a few of them are also pinned as literal values read off the sample.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from itertools import pairwise

import pytest
import sqlglot
from dagster import AssetKey, BackfillPolicy, ExecuteInProcessResult, materialize

from sparkify_assets import dialect
from sparkify_assets.assets.analytics import (
    ANALYSES,
    ANALYTICS_ASSETS,
    BY_NAME,
    TOP_SONGS,
    rebuild,
)
from sparkify_assets.resources.warehouse import WarehouseResource, open_warehouse
from sparkify_assets.tables import STAGING_EVENTS
from sparkify_assets_tests.conftest import SAMPLE
from sparkify_assets_tests.helpers import load, make_defs
from sparkify_assets_tests.pgserver import create_database

EPOCH = dt.datetime(1970, 1, 1)


# --- the independent expectation: a plain-Python pass over the sample --------------------------


def sample_events() -> list[dict]:
    """Every event of the sample's log files, with its load-order-free sort key."""
    events = []
    for path in sorted((SAMPLE / "log_data").rglob("*-events.json")):
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                event = json.loads(line)
                event["_order"] = (event["ts"], path.name[:10], line_no)
                events.append(event)
    return events


def _time(ts: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=ts)


def _latest_by_user(events: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for e in sorted(events, key=lambda e: e["_order"]):
        if e["userId"]:
            latest[e["userId"]] = e
    return latest


def _top(plays: Counter, listeners: dict, extra: dict | None = None) -> list[tuple]:
    """Rank by plays, then listeners, then the key (Python compares strings by code point, which is
    UTF-8 byte order, the order of DuckDB's strings)."""
    ranked = sorted(plays, key=lambda k: (-plays[k], -len(listeners[k]), k))[:10]
    return [
        (
            i,
            *(k if isinstance(k, tuple) else (k,)),
            plays[k],
            len(listeners[k]),
            *((extra[k],) if extra else ()),
        )
        for i, k in enumerate(ranked, start=1)
    ]


def expected_answers() -> dict[str, list[tuple]]:
    events = sample_events()
    nextsong = [e for e in events if e["page"] == "NextSong"]
    latest = _latest_by_user(events)

    song_plays, song_listeners = Counter(), defaultdict(set)
    artist_plays, artist_listeners, artist_songs = Counter(), defaultdict(set), defaultdict(set)
    day_plays, day_listeners, hour_plays = Counter(), defaultdict(set), Counter()
    user_plays, user_sessions = Counter(), defaultdict(set)
    for e in nextsong:
        song_plays[(e["song"], e["artist"])] += 1
        song_listeners[(e["song"], e["artist"])].add(e["userId"])
        artist_plays[e["artist"]] += 1
        artist_listeners[e["artist"]].add(e["userId"])
        artist_songs[e["artist"]].add(e["song"])
        day_plays[_time(e["ts"]).date()] += 1
        day_listeners[_time(e["ts"]).date()].add(e["userId"])
        hour_plays[_time(e["ts"]).hour] += 1
        if e["userId"]:
            user_plays[e["userId"]] += 1
            user_sessions[e["userId"]].add(e["sessionId"])

    levels = Counter(e["level"] for e in latest.values())
    active = sorted(user_plays, key=lambda u: (-user_plays[u], -len(user_sessions[u]), u))[:10]

    conversions = []
    by_user = defaultdict(list)
    for e in sorted(events, key=lambda e: e["_order"]):
        if e["userId"]:
            by_user[e["userId"]].append(e)
    for user, evs in by_user.items():
        for before, after in pairwise(evs):
            if before["level"] == "free" and after["level"] == "paid":
                who = latest[user]
                conversions.append(
                    (user, who["firstName"], who["lastName"], _time(before["ts"]), _time(after["ts"]))
                )

    return {
        "analytics_top_songs": _top(song_plays, song_listeners),
        "analytics_top_artists": _top(
            artist_plays, artist_listeners, {a: len(s) for a, s in artist_songs.items()}
        ),
        "analytics_users_by_level": [
            (lvl, n, round(n / len(latest), 9)) for lvl, n in sorted(levels.items())
        ],
        "analytics_daily_plays": [(d, day_plays[d], len(day_listeners[d])) for d in sorted(day_plays)],
        "analytics_plays_by_hour": [
            (h, hour_plays[h], round(hour_plays[h] / len(nextsong), 9)) for h in sorted(hour_plays)
        ],
        "analytics_most_active_users": [
            (
                i,
                u,
                latest[u]["firstName"],
                latest[u]["lastName"],
                latest[u]["level"],
                user_plays[u],
                len(user_sessions[u]),
            )
            for i, u in enumerate(active, start=1)
        ],
        "analytics_free_to_paid": sorted(conversions, key=lambda c: (c[4], c[0])),
    }


# --- building the answers ---------------------------------------------------------------------


def build_sample_warehouse(url: str) -> ExecuteInProcessResult:
    """Load the sample into the warehouse, then materialize every analytics asset and check."""
    load(url)
    result = materialize(ANALYTICS_ASSETS, resources={"warehouse": WarehouseResource(url=url)})
    assert result.success
    return result


def answer(url: str, table: str) -> list[tuple]:
    """An answer's rows in its reading order, floats rounded for comparison."""
    columns = ", ".join(BY_NAME[table].table.column_names)
    got = open_warehouse(url).query(f"SELECT {columns} FROM {table} ORDER BY {BY_NAME[table].order_by}")
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in got]


@pytest.fixture(scope="module")
def expected() -> dict[str, list[tuple]]:
    return expected_answers()


@pytest.fixture(scope="module")
def duck(tmp_path_factory) -> tuple[str, ExecuteInProcessResult]:
    url = f"duckdb://{tmp_path_factory.mktemp('analytics') / 'sample.duckdb'}"
    return url, build_sample_warehouse(url)


@pytest.fixture(scope="module")
def pg_module_url(pg_server) -> str:
    """A database of its own on the session's PostgreSQL server, for this module's tests."""
    return create_database(pg_server)


# --- the answers ------------------------------------------------------------------------------


def test_the_expectation_agrees_with_literal_facts_of_the_sample(expected):
    # Read off the sample by hand, so a mistake shared by the SQL and the Python pass still shows.
    assert expected["analytics_top_songs"][0] == (1, "You're The One", "Dwight Yoakam", 37, 22)
    assert expected["analytics_top_artists"][0] == (1, "Coldplay", 58, 22, 24)
    assert expected["analytics_users_by_level"] == [
        ("free", 75, round(75 / 97, 9)),
        ("paid", 22, round(22 / 97, 9)),
    ]
    assert len(expected["analytics_daily_plays"]) == 30
    assert sum(r[1] for r in expected["analytics_daily_plays"]) == 6820
    assert max(expected["analytics_plays_by_hour"], key=lambda r: r[1])[:2] == (16, 542)
    assert expected["analytics_most_active_users"][0][:6] == (1, "49", "Chloe", "Cuevas", "paid", 689)
    assert len(expected["analytics_free_to_paid"]) == 8
    # User 15 went paid, free, paid on 2018-11-21: the second step is the conversion.
    assert (
        "15",
        "Lily",
        "Koch",
        dt.datetime(2018, 11, 21, 11, 12, 25, 796000),
        dt.datetime(2018, 11, 21, 11, 13, 32, 796000),
    ) in expected["analytics_free_to_paid"]


@pytest.mark.parametrize("table", [a.table.name for a in ANALYSES])
def test_each_answer_on_duckdb(duck, expected, table):
    url, _ = duck
    assert answer(url, table) == expected[table]


def test_every_answer_on_postgres(pg_module_url, expected):
    build_sample_warehouse(pg_module_url)
    for analysis in ANALYSES:
        name = analysis.table.name
        assert answer(pg_module_url, name) == expected[name], name


def test_top_songs_in_full(duck):
    # The whole top 10 as read off the sample: ties at 17 and 14 plays are broken by listeners
    # (Canada 11 > Secrets 9), then by title (Invalid < ReprÃ©sente).
    url, _ = duck
    assert [r[:4] for r in answer(url, "analytics_top_songs")] == [
        (1, "You're The One", "Dwight Yoakam", 37),
        (2, "Undo", "BjÃ\x83Â¶rk", 28),
        (3, "Revelry", "Kings Of Leon", 27),
        (4, "Sehr kosmisch", "Harmonia", 21),
        (
            5,
            "Horn Concerto No. 4 in E flat K495: II. Romance (Andante cantabile)",
            "Barry Tuckwell/Academy of St Martin-in-the-Fields/Sir Neville Marriner",
            19,
        ),
        (6, "Canada", "Five Iron Frenzy", 17),
        (7, "Secrets", "OneRepublic", 17),
        (8, "Dog Days Are Over (Radio Edit)", "Florence + The Machine", 16),
        (9, "Invalid", "Tub Ring", 14),
        (10, "ReprÃ\x83Â©sente", "Alliance Ethnik", 14),
    ]


def test_ties_are_broken_by_listeners_then_title(tmp_path):
    # Twelve songs with equal plays: two listeners beat one, then titles in byte order
    # ("B" < "a" < "b"), then the artist; the last two fall outside the top 10.
    url = f"duckdb://{tmp_path / 'ties.duckdb'}"
    songs = [("b", "X", 2), ("a", "Y", 1), ("a", "X", 1), ("B", "Z", 1)] + [
        (f"s{i:02d}", "Q", 1) for i in range(8)
    ]
    with open_warehouse(url).transaction() as tx:
        tx.ensure(STAGING_EVENTS)
        line = 0
        for title, artist, listeners in songs:
            for user in range(listeners):
                line += 1
                tx.execute(
                    "INSERT INTO staging_events (artist, song, page, session_id, ts, user_id, level, "
                    f"source_key, source_line, source_date) VALUES ('{artist}', '{title}', 'NextSong', 1, "
                    f"{line}, '{user}', 'free', 'k', {line}, DATE '2018-11-01')"
                )
                if listeners == 1:  # a second play by the same user keeps plays at 2
                    line += 1
                    tx.execute(
                        "INSERT INTO staging_events (artist, song, page, session_id, ts, user_id, level, "
                        f"source_key, source_line, source_date) VALUES ('{artist}', '{title}', 'NextSong', 1, "
                        f"{line}, '{user}', 'free', 'k', {line}, DATE '2018-11-01')"
                    )
    meta = rebuild(WarehouseResource(url=url), BY_NAME["top_songs"])
    assert [r[1:4] for r in answer(url, TOP_SONGS.name)] == [
        ("b", "X", 2),
        ("B", "Z", 2),
        ("a", "X", 2),
        ("a", "Y", 2),
        *[(f"s{i:02d}", "Q", 2) for i in range(6)],
    ]
    assert meta["dagster/row_count"] == 10
    assert meta["answer"].value == "b by X (2 plays)"


def test_rebuilding_replaces_the_rows(duck, expected):
    url, _ = duck
    for analysis in ANALYSES:
        rebuild(WarehouseResource(url=url), analysis)
        assert answer(url, analysis.table.name) == expected[analysis.table.name]


# --- what the UI shows ------------------------------------------------------------------------


def _materializations(result: ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def test_every_check_passed(duck):
    _, result = duck
    checks = {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert checks == {
        "analytics_daily_plays:plays_reconcile_with_songplays": True,
        "analytics_plays_by_hour:plays_reconcile_with_songplays": True,
        "analytics_users_by_level:users_reconcile_with_users": True,
        "analytics_top_songs:song_rank_is_1_to_n": True,
        "analytics_top_artists:artist_rank_is_1_to_n": True,
        "analytics_most_active_users:user_rank_is_1_to_n": True,
    }


def test_metadata_answers_and_markdown_tables(duck):
    _, result = duck
    meta = _materializations(result)
    assert meta["analytics_top_songs"]["answer"].value == "You're The One by Dwight Yoakam (37 plays)"
    assert meta["analytics_top_artists"]["answer"].value == "Coldplay (58 plays)"
    assert meta["analytics_daily_plays"]["answer"].value == "busiest day 2018-11-15 (479 plays)"
    assert meta["analytics_plays_by_hour"]["answer"].value == "peak hour 16:00 UTC (542 plays)"
    assert meta["analytics_free_to_paid"]["answer"].value == "8 conversions by 8 users"
    assert (
        meta["analytics_users_by_level"]["answer"].value == "free: 75 users (77.3%), paid: 22 users (22.7%)"
    )
    songs = meta["analytics_top_songs"]["result"].value
    # Narrow columns first, so the counts stay on screen beside long titles (issue 19).
    assert "| song_rank | plays | listeners | title | artist_name |" in songs
    assert "| 1 | 37 | 22 | You're The One | Dwight Yoakam |" in songs
    assert "| paid | 22 | 22.68% |" in meta["analytics_users_by_level"]["result"].value
    assert (
        "| 49 | Chloe | Cuevas | 2018-11-14 08:30:36 | 2018-11-14 08:33:03 |"
        in meta["analytics_free_to_paid"]["result"].value
    )
    for name, m in meta.items():
        table_lines = [line for line in m["result"].value.splitlines() if line.startswith("|")]
        assert m["dagster/row_count"].value == len(table_lines) - 2, name


def test_long_names_are_cut_in_the_result_and_whole_in_result_rows(duck):
    _, result = duck
    songs = _materializations(result)["analytics_top_songs"]
    title = "Horn Concerto No. 4 in E flat K495: II. Romance (Andante cantabile)"  # rank 5 on the sample
    artist = "Barry Tuckwell/Academy of St Martin-in-the-Fields/Sir Neville Marriner"
    line = next(row for row in songs["result"].value.splitlines() if row.startswith("| 5 |"))
    # 29 characters and an ellipsis: every cell of the table is at most 30 characters.
    assert line == "| 5 | 19 | 14 | Horn Concerto No. 4 in E flat… | Barry Tuckwell/Academy of St… |"
    table = [row for row in songs["result"].value.splitlines() if row.startswith("|")]
    assert len(table) == 12 and all(len(cell.strip()) <= 30 for row in table for cell in row.split("|"))
    # The full names are under the table, row by row, and in result_rows.
    assert "In full (title, artist_name):" in songs["result"].value
    assert f"\n5. {title} · {artist}\n" in songs["result"].value
    full = songs["result_rows"].value
    assert {"song_rank": "5", "title": title, "artist_name": artist, "plays": "19", "listeners": "14"} in full


def test_redshift_layout_names_the_style_once(tmp_path):
    specs = {
        s.key.to_user_string(): s
        for s in make_defs(f"duckdb://{tmp_path / 'x.duckdb'}").resolve_all_asset_specs()
    }
    for name in ("analytics_top_songs", "users", "time", "staging_events"):
        text = specs[name].metadata["redshift_layout"].value
        style = text.split("`")[1]  # e.g. DISTSTYLE ALL
        assert text.count(style) == 1 and text.count(style.split()[-1] + ":") == 0, text
    assert specs["analytics_top_songs"].metadata["redshift_layout"].value == (
        "`DISTSTYLE ALL`: a result of a few dozen rows, read whole by dashboards and `sparkify query`."
    )


def _chart_svg(markdown: str) -> str:
    found = re.fullmatch(r"!\[[^\]]+\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert found, markdown[:80]
    return base64.b64decode(found.group(1)).decode()


def _chart_bars(markdown: str) -> list[str]:
    """The tooltips of an SVG bar chart given as a Markdown data-URI image."""
    found = re.fullmatch(r"!\[[^\]]+\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert found, markdown[:80]
    svg = ET.fromstring(base64.b64decode(found.group(1)))
    ns = "{http://www.w3.org/2000/svg}"
    return [
        rect.find(f"{ns}title").text for rect in svg.iter(f"{ns}rect") if rect.find(f"{ns}title") is not None
    ]


def test_charts_are_inline_svg_with_one_bar_per_row(duck):
    _, result = duck
    meta = _materializations(result)
    days = _chart_bars(meta["analytics_daily_plays"]["chart"].value)
    assert len(days) == 30
    assert days[0] == "11-01: 11" and "11-15: 479" in days
    # The day labels omit the year; the caption under the axis gives it, with the span.
    assert "day (month-day), 2018: 2018-11-01 to 2018-11-30" in _chart_svg(
        meta["analytics_daily_plays"]["chart"].value
    )
    hours = _chart_bars(meta["analytics_plays_by_hour"]["chart"].value)
    assert hours[:2] == ["00: 155", "01: 154"] and hours[16] == "16: 542" and len(hours) == 24
    assert "chart" not in meta["analytics_top_songs"]


def test_definitions_document_every_asset_and_column(tmp_path):
    defs = make_defs(f"duckdb://{tmp_path / 'x.duckdb'}")
    graph = defs.resolve_asset_graph()
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    for analysis in ANALYSES:
        key = AssetKey(analysis.table.name)
        spec = specs[key]
        assert spec.group_name == "analytics"
        assert spec.description and spec.owners == ["team:analytics"]
        assert spec.tags["layer"] == "analytics" and "sql" in spec.kinds
        assert {d.asset_key.to_user_string() for d in spec.deps} == set(analysis.deps)
        schema = spec.metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == analysis.table.column_names
        assert all(c.description for c in schema.columns)
        node = graph.get(key)
        assert not node.is_partitioned
        assert node.backfill_policy == BackfillPolicy.single_run()
        assert defs.resolve_assets_def(key).op.pool == "sparkify_warehouse"
    assert len([s for s in specs.values() if s.group_name == "analytics"]) == 7
    # The tables that load and model the lake are documented the same way, owned by engineering.
    for name, group, source in [
        ("staging_events", "staging", "log_data"),
        ("staging_songs", "staging", "song_data"),
        ("songplays", "star", "sql"),
        ("users", "star", "sql"),
        ("songs", "star", "sql"),
        ("artists", "star", "sql"),
        ("time", "star", "sql"),
    ]:
        spec = specs[AssetKey(name)]
        assert spec.group_name == group and spec.owners == ["team:data-engineering"], name
        assert spec.tags["layer"] == group and spec.tags["source"] == source, name
        assert spec.description and spec.kinds, name
        assert all(c.description for c in spec.metadata["dagster/column_schema"].columns), name
    # Lineage starts at the raw files: the lake's two folders are (external) assets of their own.
    for folder, staging in (("log_data", "staging_events"), ("song_data", "staging_songs")):
        key = AssetKey(["lake", folder])
        assert specs[key].group_name == "lake" and not graph.get(key).is_executable
        assert {d.asset_key for d in specs[AssetKey(staging)].deps} == {key}


def test_sql_parses_as_redshift():
    from sqlglot import exp

    from sparkify_assets_tests.recording import emitted_redshift_statements

    # The SELECTs, and every statement the analytics assets and checks send (DDL, DELETE, the
    # INSERT wrapper, result reads), as recorded from the assets themselves.
    emitted = emitted_redshift_statements()
    for analysis in ANALYSES:
        name = analysis.table.name
        sqls = [dialect.render(analysis.table.transform_sql(), "redshift")]
        sqls += [s for s in emitted if name in s]
        assert any(s.startswith(f"INSERT INTO {name} ") for s in sqls), name
        assert any(s.startswith(f"CREATE TABLE IF NOT EXISTS {name} ") for s in sqls), name
        for sql in sqls:
            assert "epoch_ms" not in sql
            parsed = sqlglot.parse(sql, read="redshift")
            # A statement sqlglot does not understand falls back to an opaque Command: not a parse.
            assert len(parsed) == 1 and not isinstance(parsed[0], exp.Command), (name, sql)
