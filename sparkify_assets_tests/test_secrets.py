"""Secrets never leak: a run configured with a warehouse password and AWS keys (through EnvVar,
as the Definitions are built) writes neither into logs, events, metadata, run config, error
messages or the instance's files."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from dagster import DagsterInstance
from dagster._serdes import serialize_value

from sparkify_assets import config
from sparkify_assets.definitions import build_defs
from sparkify_assets.runner import failures, run_load

# Each holds characters that URL encoding changes, so the encoded forms are really searched.
PASSWORD = "pw-Xq7/never+printed=ok"
KEY_ID = "AKIAQQQSECRETKEYID77"
SECRET_KEY = "sk/Zr9+aws-secret=never-printed"
# Temporary credentials' token: sent in every request, so botocore's DEBUG log would show it.
SESSION_TOKEN = "FwoGZXIvYXdzEBo/session+token=never-printed"
SECRETS = (PASSWORD, KEY_ID, SECRET_KEY, SESSION_TOKEN)


def _forms(secret: str) -> list[str]:
    """The secret as written, URL-encoded, and base64-encoded at each of the three alignments it
    can have inside a longer base64 text (the characters shared with neighbours trimmed)."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode()
        start = (pad * 4 + 2) // 3 + (1 if pad else 0)  # skip characters mixed with the padding
        end = len(encoded) - 4  # the last group may mix with what follows
        forms.add(encoded[start:end])
        forms.add(base64.urlsafe_b64encode(b"\0" * pad + raw).decode()[start:end])
    return sorted(f for f in forms if len(f) >= 8)


def _leaks(text: str, secrets=SECRETS) -> list[str]:
    return [s for s in secrets if any(form in text for form in _forms(s))]


def _byte_leaks(data: bytes, secrets=SECRETS) -> list[str]:
    return [s for s in secrets if any(form.encode() in data for form in _forms(s))]


def _run_everything_visible(instance: DagsterInstance, run_id: str) -> str:
    run = instance.get_run_by_id(run_id)
    parts = [serialize_value(run.run_config), serialize_value(run.tags)]
    parts += [serialize_value(record) for record in instance.all_logs(run_id)]
    return "\n".join(parts)


def _files(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()}


def _instance_files(root: Path) -> bytes:
    return b"".join(_files(root).values())


def test_secret_forms_are_found():
    """The scanner itself: each encoded form is found inside a longer text."""
    for pad in range(3):
        blob = base64.b64encode(b"x" * pad + SECRET_KEY.encode() + b"tail").decode()
        assert _leaks(f"Authorization: Basic {blob}") == [SECRET_KEY], pad
    assert _leaks(f"?password={quote_plus(PASSWORD)}&x=1") == [PASSWORD]
    assert _byte_leaks(b"\x00\x01" + KEY_ID.encode() + b"\xff") == [KEY_ID]
    assert _leaks("nothing secret here") == []


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_password_and_aws_keys_never_appear(
    request, monkeypatch, tmp_path, capfd, caplog, backend, s3_sample_lake
):
    """A whole run with a password and AWS keys (a session token too), every logger at DEBUG
    (botocore, urllib3 and boto3 included) and Dagster's console log on: nothing it prints, logs,
    records or writes (its working directory with .sparkify/, the DuckDB file and its spill
    folder, and DAGSTER_HOME) holds a secret, in clear or encoded."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if backend == "postgres":
        monkeypatch.setenv("SPARKIFY_WAREHOUSE_URL", request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv("SPARKIFY_WAREHOUSE_URL", raising=False)  # the default .sparkify/ file
        monkeypatch.delenv("SPARKIFY_DWH_CFG", raising=False)
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_PASSWORD", PASSWORD)  # the test server trusts any password
    monkeypatch.setenv("SPARKIFY_LAKE_URL", s3_sample_lake)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)  # this moto accepts any key
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "boto3", "urllib3", "s3transfer", "dagster", "psycopg2"):
        caplog.set_level(logging.DEBUG, logger=name)
    defs = build_defs(config.warehouse_resource(), config.lake_resource())
    with DagsterInstance.local_temp(str(home)) as instance:
        result = run_load(defs, instance=instance, quiet=False)
        assert result.success, failures(result)
        visible = _run_everything_visible(instance, result.run_id)
        # The run really carried metadata and logs worth searching.
        assert "dagster/row_count" in visible and "staging_events" in visible
        assert _leaks(visible) == []
    out, err = capfd.readouterr()
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    # Really captured: Dagster's console log of the run, and botocore's requests to the lake.
    assert "STEP_SUCCESS" in out + err
    assert any(r.name.startswith("botocore") and r.levelno == logging.DEBUG for r in caplog.records)
    assert s3_sample_lake.split("/")[2] in logged  # the bucket's name
    assert _leaks(out + err) == []
    # The capture saw the signed requests themselves (their Authorization and token headers,
    # and the canonical requests signed), yet no key ID or token in them.
    assert "Sending http request" in logged and "'Authorization'" in logged
    assert "x-amz-security-token:" in logged.lower()
    assert _leaks(logged) == []
    written = _files(work, home)
    if backend == "duckdb":
        assert (work / ".sparkify" / "sparkify.duckdb") in written  # the default warehouse file
    assert written, "the run wrote no files"
    assert {str(p): leaks for p, data in written.items() if (leaks := _byte_leaks(data))} == {}


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

    # Characters like / + = are percent-encoded in a URL, as users must write them there.
    wh = open_warehouse(f"postgresql://loader:{quote(PASSWORD, safe='')}@db.internal:5432/dwh")
    assert wh._password == PASSWORD
    assert wh.describe() == "postgresql://loader@db.internal:5432/dwh"
