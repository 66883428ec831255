"""Write, audit, publish: an asset's checks run in its own step, on its open transaction, before
it commits. For each kind of check (unique, relationship, reconciliation) a warehouse state that
breaks it is seeded, the asset is run, and the step fails with the check's sentence, the check is
recorded failed with its metadata, no materialization is published, and the table holds, row for
row, what it held before the run; on DuckDB and PostgreSQL. A NULL key cannot reach a star table
(its key columns are NOT NULL and drift.py refuses a table without the constraint before any
write), so not_null is shown both ways: the seeded state refused before writing, and the audit
failing a NULL key inside a real transaction and rolling it back. A check run alone (without its
asset) evaluates and reports on a loaded warehouse and changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    define_asset_job,
)

from sparkify_assets.checks import AuditFailed, Scope, evaluate, key_check
from sparkify_assets.definitions import AUDIT_JOB, LOAD_JOB, defs
from sparkify_assets.resources.warehouse import open_warehouse
from sparkify_assets.runner import failures
from sparkify_assets.tables import Column, Table
from sparkify_assets_tests.conftest import SAMPLE
from sparkify_assets_tests.helpers import (
    WAREHOUSE_FIXTURES,
    check_evaluations,
    count,
    load,
    make_defs,
    rows,
    run_checks,
)

DAY1, DAY2, DAY3 = dt.date(2018, 11, 1), dt.date(2018, 11, 2), dt.date(2018, 11, 3)
EVENTS_2 = "log_data/2018/11/2018-11-02-events.json"
READ_2 = 171  # lines of the sample's 2018-11-02 file (test_reconcile_failures derives it too)
assert sum(1 for line in (SAMPLE / EVENTS_2).read_text().splitlines() if line.strip()) == READ_2

BACKENDS = pytest.mark.parametrize("backend", sorted(WAREHOUSE_FIXTURES))


@pytest.fixture
def loaded(request, backend) -> str:
    """A warehouse on `backend` loaded with the sample's first three days."""
    url = request.getfixturevalue(WAREHOUSE_FIXTURES[backend])
    load(url, first=DAY1, last=DAY3)
    return url


def _execute(url: str, *statements: str) -> None:
    with open_warehouse(url).transaction() as tx:
        for sql in statements:
            tx.execute(sql)


def run_selection(url: str, selection: AssetSelection, **run: str) -> ExecuteInProcessResult:
    """Run what `selection` picks (assets with their checks, or checks alone), as the UI does."""
    base = make_defs(url)
    job = define_asset_job("selected", selection=selection)
    some = Definitions(
        assets=base.assets, asset_checks=base.asset_checks, resources=base.resources, jobs=[job]
    )
    return some.resolve_job_def("selected").execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False, **run
    )


def run_assets(url: str, *assets: str, day: dt.date) -> ExecuteInProcessResult:
    """Materialize `assets` (with their checks) for one day, as the UI's Materialize does."""
    return run_selection(url, AssetSelection.assets(*assets), partition_key=day.isoformat())


MARK = "written before this run"
LAST_PLAY_OF_DAY3 = (
    "songplay_id = (SELECT MAX(songplay_id) FROM songplays WHERE source_date = DATE '2018-11-03')"
)


def _mark(url: str, table: str, where: str) -> None:
    """Set `location` of one row the run will rewrite to MARK. The run rebuilds its rows from
    inputs it does not change, so without the mark a committed rerun would leave the same rows
    and "the table as before" could not tell a rollback from a commit."""
    _execute(url, f"UPDATE {table} SET location = '{MARK}' WHERE {where}")
    assert count(url, table, f"location = '{MARK}'") == 1


def _still_marked(url: str, table: str) -> bool:
    return count(url, table, f"location = '{MARK}'") == 1


def _materialized(result: ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def assert_rolled_back(result: ExecuteInProcessResult, asset: str, check: str, reason_start: str) -> dict:
    """The step failed with the check's sentence, the check was recorded failed with its reason,
    and no materialization of the asset was published. Returns the check's evaluation."""
    assert not result.success
    errors = [line for line in failures(result) if line.startswith(f"error in {asset}:")]
    assert len(errors) == 1, failures(result)
    assert errors[0].startswith(f"error in {asset}: Check {asset} {check} failed: {reason_start}"), errors[0]
    assert errors[0].endswith(f"Nothing was committed: {asset} keeps what it held before this run.")
    assert "\n" not in errors[0]
    evaluation = check_evaluations(result)[f"{asset}:{check}"]
    assert evaluation["passed"] is False
    assert f"check failed: {asset} {check} ({reason_start}" in "\n".join(failures(result))
    assert asset not in _materialized(result)
    return evaluation


# --- each kind of check, broken, rolls its asset back -------------------------------------------


@BACKENDS
def test_a_duplicate_key_rolls_songplays_back(loaded):
    """unique: a play of 2018-11-03 already stored under another day (a warehouse state the run
    does not rewrite). The run's rows are checked against the whole table, so the rerun of
    2018-11-03 finds its key twice and commits nothing."""
    url = loaded
    cols = "songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent"
    _execute(
        url,
        f"INSERT INTO songplays ({cols}, source_date) SELECT {cols}, DATE '2018-11-04' FROM songplays "
        "WHERE songplay_id = (SELECT MIN(songplay_id) FROM songplays WHERE source_date = DATE '2018-11-03')",
    )
    (dup,) = open_warehouse(url).query(
        "SELECT MIN(songplay_id) FROM songplays WHERE source_date = DATE '2018-11-03'"
    )[0]
    _mark(url, "songplays", LAST_PLAY_OF_DAY3)
    before = rows(url, "songplays")
    result = run_assets(url, "songplays", day=DAY3)
    failed = assert_rolled_back(
        result, "songplays", "unique_songplay_id", f"1 failing row(s), first: songplay_id={dup}, n=2"
    )
    assert failed["failing_rows"] == 1 and dup in failed["failing_sample"]
    assert rows(url, "songplays") == before
    assert _still_marked(url, "songplays")


@BACKENDS
def test_a_warehouse_that_could_hold_a_null_key_is_refused_before_any_write(loaded):
    """not_null, through the pipeline: a key can only be NULL in a table without its NOT NULL
    constraint, and such a table is refused (drift.py) before the step writes anything. A
    warehouse whose staging_events lost that constraint and holds a NextSong event without ts
    (songplays would hash it into a NULL songplay_id) fails the songplays step with the rebuild
    sentence, and songplays keeps its rows."""
    url = loaded
    _execute(
        url,
        "ALTER TABLE staging_events ALTER COLUMN ts DROP NOT NULL",
        "UPDATE staging_events SET ts = NULL WHERE source_date = DATE '2018-11-03' AND source_line = "
        "(SELECT MIN(source_line) FROM staging_events WHERE source_date = DATE '2018-11-03' AND page = 'NextSong')",
    )
    before = rows(url, "songplays")
    result = run_assets(url, "songplays", day=DAY3)
    assert not result.success
    assert any("staging_events does not match its declaration" in line for line in failures(result))
    assert "songplays" not in _materialized(result)
    assert rows(url, "songplays") == before


@BACKENDS
def test_a_null_key_found_by_the_audit_rolls_the_transaction_back(request, backend):
    """not_null, on the audit itself: a key declared without NOT NULL (as tables.py cannot
    declare a real one) gets a NULL inside the transaction; the audit fails it with its sentence
    and the transaction rolls back to the rows committed before."""
    url = request.getfixturevalue(WAREHOUSE_FIXTURES[backend])
    keyed = Table(
        "keyed", "a table for the test", (Column("k", "text", "key"), Column("v", "text", "value")), ("k",)
    )
    wh = open_warehouse(url)
    with wh.transaction() as tx:
        tx.ensure(keyed)
        tx.execute("INSERT INTO keyed (k, v) VALUES ('1', 'kept')")

    def rewrite(tx) -> None:
        tx.execute("DELETE FROM keyed")
        tx.execute("INSERT INTO keyed (k, v) VALUES (NULL, 'lost')")
        evaluate(tx, "keyed", [key_check(keyed, "not_null")], Scope())

    with pytest.raises(AuditFailed) as caught:
        wh.run(rewrite)
    assert str(caught.value) == (
        "Check keyed not_null_k failed: 1 failing row(s), first: k=None. "
        "Nothing was committed: keyed keeps what it held before this run."
    )
    assert [r.passed for r in caught.value.results] == [False]
    assert caught.value.failure().description == str(caught.value)
    assert wh.query("SELECT k, v FROM keyed") == [("1", "kept")]


@BACKENDS
def test_a_missing_user_rolls_songplays_back(loaded):
    """relationships: a user who played on 2018-11-03 is no longer in users; songplays of that
    day, rebuilt without rebuilding users, would reference a user that does not exist."""
    url = loaded
    (user,) = open_warehouse(url).query(
        "SELECT MIN(user_id) FROM songplays WHERE source_date = DATE '2018-11-03'"
    )[0]
    _execute(url, f"DELETE FROM users WHERE user_id = '{user}'")
    _mark(url, "songplays", LAST_PLAY_OF_DAY3)
    before = rows(url, "songplays")
    result = run_assets(url, "songplays", day=DAY3)
    failed = assert_rolled_back(
        result, "songplays", "relationships_user_id__users", f"1 failing row(s), first: user_id={user}"
    )
    assert failed["failing_rows"] == 1
    assert rows(url, "songplays") == before
    assert _still_marked(url, "songplays")


@BACKENDS
def test_a_file_that_does_not_add_up_rolls_staging_events_back(loaded):
    """reconcile_records: a reject row of 2018-11-02's file left over under another day (the run's
    DELETE of 2018-11-02 does not reach it), so that file's records read (171) no longer equal
    its rows staged (171) + rejected (1)."""
    url = loaded
    _execute(
        url,
        "INSERT INTO staging_rejects (target_table, source_key, source_line, source_date, reason, raw_text) "
        f"VALUES ('staging_events', '{EVENTS_2}', 999, DATE '2018-11-05', 'left over', '')",
    )
    _mark(url, "staging_events", f"source_key = '{EVENTS_2}' AND source_line = 1")
    before = rows(url, "staging_events")
    result = run_assets(url, "staging_events", day=DAY2)
    failed = assert_rolled_back(
        result,
        "staging_events",
        "reconcile_records",
        f"1 failing row(s), first: source_key={EVENTS_2}, records_read={READ_2}, staged={READ_2}, rejected=1",
    )
    # The file counts come from the step itself (one file read for that day).
    assert failed["files"] == 1 and failed["records_read"] == READ_2 and failed["rows_rejected"] == 0
    assert rows(url, "staging_events") == before
    assert _still_marked(url, "staging_events")


@BACKENDS
def test_a_failing_warning_reports_and_commits(loaded):
    """A non-blocking check (an analytics total, severity WARN) that fails is reported with its
    figures, and its asset still commits: time lost the row of one play's start_time, so the
    hourly plays (songplays joined to time) add up to one play less than songplays holds."""
    url = loaded
    (start,) = open_warehouse(url).query(
        "SELECT start_time FROM songplays GROUP BY start_time HAVING COUNT(*) = 1 ORDER BY start_time LIMIT 1"
    )[0]
    plays = count(url, "songplays")
    _execute(url, "DELETE FROM analytics_plays_by_hour")
    with open_warehouse(url).transaction() as tx:
        tx.execute("DELETE FROM time WHERE start_time = ?", [start])
    result = run_selection(url, AssetSelection.assets("analytics_plays_by_hour"))
    assert result.success, failures(result)
    warned = check_evaluations(result)["analytics_plays_by_hour:plays_reconcile_with_songplays"]
    assert warned["passed"] is False
    assert warned["answer_total"] == plays - 1 and warned["source_total"] == plays
    assert "analytics_plays_by_hour" in _materialized(result)
    assert open_warehouse(url).query("SELECT SUM(plays) FROM analytics_plays_by_hour")[0][0] == plays - 1


# --- what the event log holds -------------------------------------------------------------------


def test_the_event_log_of_a_rolled_back_step(duckdb_url):
    """Every check result of the failed step lands (failed and passed alike) before its failure,
    and no materialization; the assets after it do not run."""
    load(duckdb_url, first=DAY1, last=DAY3)
    _execute(duckdb_url, "DELETE FROM users WHERE user_id = (SELECT MIN(user_id) FROM songplays)")
    result = run_assets(duckdb_url, "songplays", "time", day=DAY3)
    events = [(e.event_type_value, e.step_key) for e in result.all_events if e.step_key == "songplays"]
    kinds = [k for k, _ in events]
    assert "ASSET_MATERIALIZATION" not in kinds
    assert kinds[-1] == "STEP_FAILURE"
    checks = {k: v["passed"] for k, v in check_evaluations(result).items()}
    assert checks["songplays:relationships_user_id__users"] is False
    assert (
        checks["songplays:unique_songplay_id"] is True
        and checks["songplays:reconcile_nextsong_events"] is True
    )
    assert {k.split(":")[0] for k in checks} == {"songplays"}  # time did not run
    assert max(i for i, k in enumerate(kinds) if k == "ASSET_CHECK_EVALUATION") < kinds.index("STEP_FAILURE")


def test_a_passing_audit_targets_the_runs_own_materialization(duckdb_url):
    """The UI shows a check next to the materialization it audited: the one its step published."""
    result = load(duckdb_url, first=DAY1, last=DAY3)
    for ev in result.get_asset_check_evaluations():
        assert ev.passed, ev.check_name
        assert ev.target_materialization_data is not None, ev.check_name
        assert ev.target_materialization_data.run_id == result.run_id, ev.check_name


# --- checks run alone ---------------------------------------------------------------------------


@BACKENDS
def test_checks_alone_audit_a_loaded_warehouse_and_change_nothing(loaded):
    """The audit_warehouse job: every check, no asset."""
    url = loaded
    counts = {t: count(url, t) for t in ("staging_events", "songplays", "users", "time")}
    result = (
        make_defs(url)
        .resolve_job_def(AUDIT_JOB)
        .execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)
    )
    assert result.success, failures(result)
    checks = check_evaluations(result)
    # Lateness (a WARN check) judges by today's clock: the fixture's lake is from 2018, so the
    # last due day has not arrived.
    late = checks.pop("staging_events:log_on_time")
    assert late["passed"] is False and late["arrived"] is False, late
    # 31 checks in their assets' steps and the 2 lake inventories.
    assert len(checks) == 33 and all(c["passed"] for c in checks.values()), checks
    # Without a partition they audit whole tables: the three loaded days.
    assert checks["staging_events:reconcile_records"]["files"] == 3
    assert result.get_asset_materialization_events() == []
    assert {t: count(url, t) for t in counts} == counts


@BACKENDS
def test_a_check_alone_reports_a_broken_table(loaded):
    url = loaded
    (user,) = open_warehouse(url).query("SELECT MIN(user_id) FROM songplays")[0]
    _execute(url, f"DELETE FROM users WHERE user_id = '{user}'")
    before = rows(url, "songplays")
    result = run_checks(url, "songplays")
    checks = check_evaluations(result)
    failed = checks["songplays:relationships_user_id__users"]
    assert failed["passed"] is False and failed["failing_rows"] == 1
    assert f"| {user} |" in failed["failing_sample"]
    assert checks["songplays:unique_songplay_id"]["passed"] is True
    assert rows(url, "songplays") == before


@BACKENDS
def test_one_check_alone_runs_only_that_check(loaded):
    """One check selected by its key (the UI's "Execute" on a check): exactly that evaluation,
    no asset step, nothing changed."""
    url = loaded
    (user,) = open_warehouse(url).query("SELECT MIN(user_id) FROM songplays")[0]
    _execute(url, f"DELETE FROM users WHERE user_id = '{user}'")
    before = rows(url, "songplays")
    key = AssetCheckKey(AssetKey("songplays"), "relationships_user_id__users")
    result = run_selection(url, AssetSelection.checks(key))
    checks = check_evaluations(result)
    assert list(checks) == ["songplays:relationships_user_id__users"]
    assert checks["songplays:relationships_user_id__users"]["passed"] is False
    assert checks["songplays:relationships_user_id__users"]["failing_rows"] == 1
    assert result.get_asset_materialization_events() == []
    assert rows(url, "songplays") == before


# --- the job ---------------------------------------------------------------------------------


def test_the_load_job_is_one_step_per_asset():
    job = defs.resolve_job_def(LOAD_JOB)
    steps = set(job.graph.node_dict)
    assets = {k.to_user_string() for a in defs.assets if hasattr(a, "check_keys") for k in a.keys}
    # Checks declared on their asset add no step; only checks defined apart (@asset_check) would.
    assert steps - assets == {c.node_def.name for c in defs.asset_checks or []} & steps
    assert len(assets) == 14 and assets <= steps
