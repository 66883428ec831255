"""Secrets never leak: a run configured with a warehouse password and AWS keys (through EnvVar,
as the Definitions are built) writes neither into logs, events, metadata, run config, error
messages or the instance's files."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance
from dagster._serdes import serialize_value

from sparkify_assets import config
from sparkify_assets.definitions import build_defs
from sparkify_assets.runner import failures, run_load

PASSWORD = "pw-Xq7-never-printed"
KEY_ID = "AKIAQQQSECRETKEYID77"
SECRET_KEY = "sk-Zr9-aws-secret-never-printed"
SECRETS = (PASSWORD, KEY_ID, SECRET_KEY)


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _run_everything_visible(instance: DagsterInstance, run_id: str) -> str:
    run = instance.get_run_by_id(run_id)
    parts = [serialize_value(run.run_config), serialize_value(run.tags)]
    parts += [serialize_value(record) for record in instance.all_logs(run_id)]
    return "\n".join(parts)


def _instance_files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_password_and_aws_keys_never_appear(monkeypatch, tmp_path, pg_url, s3_sample_lake):
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_URL", pg_url)
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_PASSWORD", PASSWORD)  # the test server trusts any password
    monkeypatch.setenv("SPARKIFY_LAKE_URL", s3_sample_lake)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)  # moto accepts any key
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    defs = build_defs(config.warehouse_resource(), config.lake_resource())
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        result = run_load(defs, instance=instance, quiet=False)
        assert result.success, failures(result)
        visible = _run_everything_visible(instance, result.run_id)
        # The run really carried metadata and logs worth searching.
        assert "dagster/row_count" in visible and "staging_events" in visible
        assert _leaks(visible) == []
    assert _leaks(_instance_files(home).decode("utf-8", "replace")) == []


def test_failed_connection_does_not_leak_the_password(monkeypatch, tmp_path, pg_server):
    bad = f"postgresql://postgres@127.0.0.1:{pg_server['port']}/no_such_database?sslmode=disable"
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_URL", bad)
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_PASSWORD", PASSWORD)
    defs = build_defs(config.warehouse_resource(), config.lake_resource())
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        result = run_load(defs, instance=instance)
        assert not result.success
        lines = failures(result)
        assert any("no_such_database" in line for line in lines)
        assert _leaks("\n".join(lines)) == []
        assert _leaks(_run_everything_visible(instance, result.run_id)) == []


def test_password_in_the_url_is_not_shown_by_describe():
    from sparkify_assets.resources.warehouse import open_warehouse

    wh = open_warehouse(f"postgresql://loader:{PASSWORD}@db.internal:5432/dwh")
    assert wh.describe() == "postgresql://loader@db.internal:5432/dwh"
