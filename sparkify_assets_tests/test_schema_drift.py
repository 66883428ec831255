"""Schema drift: a warehouse built by an older version of the project, on DuckDB and PostgreSQL.

Each case builds one table from an "older declaration" (the current one with a column dropped,
retyped or added), puts hand-made rows in it, and opens it the way every asset does
(`Session.ensure`) or runs the real load over it:
- a nullable column missing at the end is added, the rows stay as they were (NULL in it);
- a column of another type stops the run at its first step with one sentence that names the
  table, the column, both types and `sparkify run --rebuild <table>`; the rows stay as they were;
- an undeclared (extra) column stops the run the same way (drift.py says why it is not tolerated).
Then `--rebuild` drops the table and the next load recreates it from the declaration.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sparkify_assets.cli import rebuild_tables
from sparkify_assets.drift import SchemaDriftError
from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets.runner import failures
from sparkify_assets.tables import (
    ARTISTS,
    SONGPLAYS,
    STAGING_EVENTS,
    STAGING_SONGS,
    TYPES,
    USERS,
    Column,
    Table,
)
from sparkify_assets_tests.helpers import WAREHOUSE_FIXTURES, load

DAY = date(2018, 11, 1)
# How each backend's information_schema names the declared types (looked up by hand in the
# DuckDB and PostgreSQL documentation, not taken from tables.py).
TEXT = {"duckdb": "VARCHAR", "postgres": "text"}
INTEGER = {"duckdb": "INTEGER", "postgres": "integer"}

USER_ROWS = [("1", "Ann", "Lee", "F"), ("2", "Bob", "Kim", "M")]
ARTIST_ROWS = [("AR1", "Band", "Oslo", 59.9, 10.7, "NO"), ("AR2", "Duo", None, None, None, None)]


@pytest.fixture(params=sorted(WAREHOUSE_FIXTURES))
def url(request) -> str:
    return request.getfixturevalue(WAREHOUSE_FIXTURES[request.param])


def _build_old(url: str, old: Table, rows: list[tuple]) -> None:
    wh = open_warehouse(url)
    with wh.transaction() as tx:
        tx.execute(old.ddl(wh.dialect))
        for row in rows:
            values = ", ".join("NULL" if v is None else repr(v) for v in row)
            tx.execute(f"INSERT INTO {old.name} VALUES ({values})")


def _rows(url: str, table: str, columns: list[str]) -> list[tuple]:
    got = open_warehouse(url).query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1")
    return [tuple(float(v) if hasattr(v, "quantize") else v for v in row) for row in got]


def _live(url: str, table: str) -> list[tuple[str, str, bool]]:
    wh = open_warehouse(url)
    with wh.transaction() as tx:
        return [(c.name, c.type, c.nullable) for c in tx.live_columns(table)]


def _old_users_without_level() -> Table:
    assert USERS.column_names[-1] == "level" and not USERS.columns[-1].not_null
    return dataclasses.replace(USERS, columns=USERS.columns[:-1])


def test_a_missing_nullable_column_is_added_and_the_rows_are_kept(url):
    _build_old(url, _old_users_without_level(), USER_ROWS)
    wh = open_warehouse(url)
    with wh.transaction() as tx:
        tx.ensure(USERS)
    assert _rows(url, "users", ["user_id", "first_name", "last_name", "gender", "level"]) == [
        ("1", "Ann", "Lee", "F", None),
        ("2", "Bob", "Kim", "M", None),
    ]
    assert _live(url, "users")[-1] == ("level", TEXT[wh.dialect], True)
    assert [c[0] for c in _live(url, "users")] == ["user_id", "first_name", "last_name", "gender", "level"]


def test_a_run_over_a_table_missing_a_nullable_column_succeeds_and_reports_the_live_schema(url):
    _build_old(url, _old_users_without_level(), USER_ROWS)
    result = load(url, first=DAY, last=DAY)
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "users"
    ]
    schema = event.event_specific_data.materialization.metadata["dagster/column_schema"].value
    dialect = open_warehouse(url).dialect
    # The live table's types as the backend names them, not the declaration's logical types.
    assert [(c.name, c.type) for c in schema.columns] == [
        (name, TEXT[dialect]) for name in ("user_id", "first_name", "last_name", "gender", "level")
    ]
    assert schema.columns[0].constraints.nullable is False and schema.columns[0].constraints.unique is True
    assert open_warehouse(url).query("SELECT COUNT(*) FROM users WHERE level IS NULL")[0][0] == 0
    # The materializations carry the column lineage too (the UI's column view reads them).
    by_asset = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    deps = by_asset["users"]["dagster/column_lineage"].value.deps_by_column["level"]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in deps] == [("staging_events", "level")]
    deps = by_asset["analytics_users_by_level"]["dagster/column_lineage"].value.deps_by_column["level"]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in deps] == [("users", "level")]
    analytics = by_asset["analytics_users_by_level"]["dagster/column_schema"].value
    assert [c.name for c in analytics.columns] == ["level", "users", "share_of_users"]


def _assert_run_refused(url: str, table: str, detail: str) -> str:
    result = load(url, first=DAY, last=DAY, expect_success=False)
    assert not result.success
    # The first steps to open the tables (the two staging steps) stop; nothing after them runs.
    assert not [e for e in result.all_events if e.is_step_success]
    lines = failures(result)
    assert sorted(line.split(":")[0] for line in lines) == [
        "error in staging_events",
        "error in staging_songs",
    ]
    for line in lines:
        sentence = line.split(": ", 1)[1]
        assert re.fullmatch(
            rf"The warehouse table {table} does not match its declaration in tables\.py \(.*{re.escape(detail)}.*\), "
            rf"so nothing was written: rebuild it from the lake with `sparkify run --rebuild {table}`\.",
            sentence,
        ), sentence
    # The steps rolled back whole: not even the tables they would have created exist.
    for staged in ("staging_events", "staging_songs", "songplays"):
        assert not open_warehouse(url).table_exists(staged)
    return sentence


def test_a_column_of_another_type_stops_the_run_and_keeps_the_rows(url):
    columns = tuple(
        dataclasses.replace(c, type="integer") if c.name == "gender" else c for c in USERS.columns
    )
    old = dataclasses.replace(USERS, columns=columns)
    rows = [("1", "Ann", "Lee", 0, "free"), ("2", "Bob", "Kim", 1, "paid")]
    _build_old(url, old, rows)
    dialect = open_warehouse(url).dialect
    _assert_run_refused(
        url, "users", f"column gender is {INTEGER[dialect]} where tables.py declares {TEXT[dialect]}"
    )
    assert _rows(url, "users", USERS.column_names) == rows

    # The command the sentence names: drop, then the load recreates the table as declared.
    rebuild_tables(open_warehouse(url), ["users"], partial=False)
    load(url, first=DAY, last=DAY)
    assert [c[:2] for c in _live(url, "users")] == [(n, TEXT[dialect]) for n in USERS.column_names]


def test_an_undeclared_column_stops_the_run_and_keeps_the_rows(url):
    old = dataclasses.replace(ARTISTS, columns=(*ARTISTS.columns, Column("country", "text", "older column")))
    _build_old(url, old, ARTIST_ROWS)
    _assert_run_refused(url, "artists", "column country")
    assert _rows(url, "artists", [*ARTISTS.column_names, "country"]) == ARTIST_ROWS


def test_rebuild_refuses_a_partial_range_and_unknown_tables(duckdb_url):
    wh = open_warehouse(duckdb_url)
    with pytest.raises(ValueError, match="--rebuild reloads every day of the lake"):
        rebuild_tables(wh, ["users"], partial=True)
    with pytest.raises(ValueError, match="no table userz"):
        rebuild_tables(wh, ["userz"], partial=False)


# The invariant, searched by Hypothesis on a real DuckDB file: whatever older shape a table has
# (columns dropped, retyped, made NOT NULL or nullable, added, reordered), opening it either leaves
# it exactly as declared with every row kept, or refuses and leaves columns and rows as they were.
_TABLES = (STAGING_EVENTS, STAGING_SONGS, SONGPLAYS, USERS, ARTISTS)
_OTHER_TYPE = {
    "text": "bigint",
    "hash": "integer",
    "integer": "text",
    "bigint": "double",
    "double": "text",
    "date": "text",
    "timestamp": "text",
}
_VALUES = {
    "text": "'x'",
    "hash": "'0cc175b9c0f1b6a831c399e269772661'",
    "integer": "1",
    "bigint": "2",
    "double": "0.5",
    "date": "DATE '2018-11-01'",
    "timestamp": "TIMESTAMP '2018-11-01 00:00:01'",
}


@st.composite
def older_shapes(draw) -> tuple[Table, list[Column]]:
    table = draw(st.sampled_from(_TABLES))
    cols = list(table.columns)
    if draw(st.booleans()):  # an older version that lacked the newest columns
        cols = cols[: draw(st.integers(1, len(cols)))]
    else:
        keep = draw(st.lists(st.booleans(), min_size=len(cols), max_size=len(cols)))
        cols = [c for c, k in zip(cols, keep, strict=True) if k] or cols[:1]
    for i in draw(st.lists(st.integers(0, len(cols) - 1), max_size=2)):
        if draw(st.booleans()):
            cols[i] = dataclasses.replace(cols[i], type=_OTHER_TYPE[cols[i].type])
        else:
            cols[i] = dataclasses.replace(cols[i], not_null=not cols[i].not_null)
    if draw(st.integers(0, 3)) == 0:
        cols.insert(draw(st.integers(0, len(cols))), Column("legacy", "text", "gone"))
    if draw(st.integers(0, 9)) == 0:
        cols = draw(st.permutations(cols))
    return table, cols


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=older_shapes())
def test_opening_a_table_leaves_it_as_declared_or_untouched(tmp_path, case):
    table, shape = case
    path = tmp_path / "drift.duckdb"
    path.unlink(missing_ok=True)
    url = f"duckdb://{path}"
    old = dataclasses.replace(table, columns=tuple(shape))
    wh = open_warehouse(url)
    with wh.transaction() as tx:
        tx.execute(old.ddl("duckdb"))
        tx.execute(f"INSERT INTO {old.name} VALUES ({', '.join(_VALUES[c.type] for c in shape)})")
    before_cols = _live(url, old.name)
    before_rows = open_warehouse(url).query(f"SELECT * FROM {old.name}")
    try:
        with wh.transaction() as tx:
            tx.ensure(table)
    except SchemaDriftError as exc:
        event("refused")
        assert "\n" not in str(exc) and f"sparkify run --rebuild {table.name}" in str(exc)
        assert _live(url, old.name) == before_cols
        assert open_warehouse(url).query(f"SELECT * FROM {old.name}") == before_rows
        return
    event("opened")
    assert _live(url, old.name) == [(c.name, TYPES[c.type]["duckdb"], not c.not_null) for c in table.columns]
    kept = [c.name for c in shape]
    assert open_warehouse(url).query(f"SELECT {', '.join(kept)} FROM {old.name}") == before_rows
