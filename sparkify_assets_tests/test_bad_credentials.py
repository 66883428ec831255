"""Bad credentials and an unreachable S3 endpoint, against servers that really check: a
PostgreSQL initialized with scram-sha-256 passwords, and moto's server started with
INITIAL_NO_AUTH_ACTION_COUNT=0 so every request must carry valid IAM credentials and a correct
signature. Each mistake ends in one sentence that says what is wrong and what to do, and
never holds a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator

import boto3
import pytest

from sparkify_assets import config
from sparkify_assets.definitions import build_defs
from sparkify_assets.resources import warehouse as warehouse_module
from sparkify_assets.resources.lake import LakeError, open_lake
from sparkify_assets.resources.warehouse import WarehouseError, open_warehouse
from sparkify_assets.runner import failures, run_load
from sparkify_assets_tests.pgserver import create_database, free_port, throwaway_server

RIGHT_PASSWORD = "Right-pw/9+scram=ok"
WRONG_PASSWORD = "Wrong-pw/7+never=shown"
BAD_KEY_ID = "AKIAUNKNOWNKEY000001"
BAD_SECRET = "bad/Secret+Key=never-shown-0123456789"


def _one_sentence(message: str) -> None:
    assert "\n" not in message, message
    assert "Traceback" not in message and "Error(" not in message, message
    assert message.rstrip().endswith("."), message


# --- PostgreSQL with password authentication ---------------------------------------------


@pytest.fixture(scope="module")
def pg_password_server() -> Iterator[dict]:
    with throwaway_server("sparkify-pg-pw-", password=RIGHT_PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def pw_url(pg_password_server) -> str:
    return create_database(pg_password_server)


def test_the_password_server_really_checks_passwords(pw_url):
    assert open_warehouse(pw_url, password=RIGHT_PASSWORD).query("SELECT 1") == [(1,)]
    with pytest.raises(WarehouseError, match="password"):
        open_warehouse(pw_url, password=WRONG_PASSWORD).query("SELECT 1")


def _fails_without_retry(monkeypatch, wh) -> str:
    """The one-sentence error of a connection that must not be retried: a password will not fix
    itself, so no backoff sleep may happen before the error."""
    sleeps: list[float] = []
    monkeypatch.setattr(warehouse_module.time, "sleep", sleeps.append)
    with pytest.raises(WarehouseError) as info:
        wh.query("SELECT 1")
    assert sleeps == [], sleeps
    message = str(info.value)
    _one_sentence(message)
    assert "after" not in message, message  # "... after 3 attempts" is the retried wording
    return message


def test_missing_password_fails_at_once_in_one_sentence(monkeypatch, pw_url):
    message = _fails_without_retry(monkeypatch, open_warehouse(pw_url))
    assert "no password supplied" in message and "SPARKIFY_WAREHOUSE_PASSWORD" in message


def test_wrong_password_fails_at_once_in_one_sentence(monkeypatch, pw_url):
    message = _fails_without_retry(monkeypatch, open_warehouse(pw_url, password=WRONG_PASSWORD))
    assert message.startswith(f"Cannot connect to the warehouse {pw_url.split('?')[0]}: ")
    assert "password authentication failed" in message
    assert "SPARKIFY_WAREHOUSE_PASSWORD" in message  # what to do
    assert WRONG_PASSWORD not in message and RIGHT_PASSWORD not in message


def test_wrong_password_in_a_run_is_one_clear_line(monkeypatch, tmp_path, pw_url):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_URL", pw_url)
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_PASSWORD", WRONG_PASSWORD)
    monkeypatch.delenv("SPARKIFY_LAKE_URL", raising=False)
    result = run_load(build_defs(config.warehouse_resource(), config.lake_resource()))
    assert not result.success
    lines = failures(result)
    errors = [line for line in lines if line.startswith("error in ")]
    assert errors, lines
    for line in errors:
        _one_sentence(line)
        assert "password authentication failed" in line and "SPARKIFY_WAREHOUSE_PASSWORD" in line
    text = "\n".join(lines)
    assert WRONG_PASSWORD not in text and RIGHT_PASSWORD not in text


def test_right_password_through_the_environment_loads(monkeypatch, tmp_path, pg_password_server):
    url = create_database(pg_password_server)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_URL", url)
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_PASSWORD", RIGHT_PASSWORD)
    monkeypatch.delenv("SPARKIFY_LAKE_URL", raising=False)
    result = run_load(build_defs(config.warehouse_resource(), config.lake_resource()))
    assert result.success, failures(result)
    assert open_warehouse(url, password=RIGHT_PASSWORD).query("SELECT COUNT(*) FROM songplays") == [(6820,)]


# --- S3 that enforces IAM credentials -----------------------------------------------------


def _moto_api(endpoint: str, path: str, body: bytes) -> dict:
    req = urllib.request.Request(
        endpoint + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def strict_s3() -> Iterator[dict]:
    """moto's server in its own process, enforcing credentials from the first request
    (INITIAL_NO_AUTH_ACTION_COUNT=0). One IAM user `loader` with s3:* and a bucket holding one
    log file are created through moto's reset-auth API, which lifts enforcement for exactly as
    many requests as the setup needs; yields the endpoint, the bucket and the valid keys."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/data.json", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        assert (
            _moto_api(endpoint, "/moto-api/reset-auth", b"3")["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
            == "0.0"
        )
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="loader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="loader", PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="loader")["AccessKey"]
        _moto_api(endpoint, "/moto-api/reset-auth", b"0")  # enforce from here on
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-west-2",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        bucket = f"strict-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        s3.put_object(Bucket=bucket, Key="lake/log_data/2018/11/2018-11-01-events.json", Body=b"{}\n")
        yield {
            "endpoint": endpoint,
            "bucket": bucket,
            "key_id": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _s3_env(monkeypatch, endpoint: str, key_id: str, secret: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def test_strict_s3_accepts_the_right_keys(monkeypatch, strict_s3):
    _s3_env(monkeypatch, strict_s3["endpoint"], strict_s3["key_id"], strict_s3["secret"])
    lake = open_lake(f"s3://{strict_s3['bucket']}/lake")
    assert [f.key for f in lake.log_files()] == ["log_data/2018/11/2018-11-01-events.json"]
    assert lake.read("log_data/2018/11/2018-11-01-events.json") == b"{}\n"


@pytest.mark.parametrize(
    ("which", "code"),
    [("unknown key id", "InvalidAccessKeyId"), ("wrong secret", "SignatureDoesNotMatch")],
)
def test_bad_aws_keys_give_one_sentence_without_the_secret(monkeypatch, strict_s3, which, code):
    key_id = BAD_KEY_ID if which == "unknown key id" else strict_s3["key_id"]
    _s3_env(monkeypatch, strict_s3["endpoint"], key_id, BAD_SECRET)
    url = f"s3://{strict_s3['bucket']}/lake"
    lake = open_lake(url)
    for attempt in (
        lake.log_files,
        lambda: lake.read("log_data/2018/11/2018-11-01-events.json"),
        lake.check,  # a HEAD request: S3 sends no error body, only the status
    ):
        with pytest.raises(LakeError) as info:
            attempt()
        message = str(info.value)
        _one_sentence(message)
        assert message.startswith(f"Access to {url}/ was denied (")
        assert "check the AWS credentials" in message
        assert BAD_SECRET not in message and strict_s3["secret"] not in message
    assert f"({code})" in str(_raised(lake.log_files))


def test_bad_aws_keys_stop_a_run_with_one_sentence(monkeypatch, tmp_path, strict_s3):
    _s3_env(monkeypatch, strict_s3["endpoint"], strict_s3["key_id"], BAD_SECRET)
    monkeypatch.chdir(tmp_path)
    url = f"s3://{strict_s3['bucket']}/lake"
    monkeypatch.setenv("SPARKIFY_LAKE_URL", url)
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_URL", f"duckdb://{tmp_path / 'w.duckdb'}")
    error = _raised(lambda: run_load(build_defs(config.warehouse_resource(), config.lake_resource())))
    assert str(error) == f"Access to {url}/ was denied (SignatureDoesNotMatch): check the AWS credentials."


def _raised(call) -> LakeError:
    with pytest.raises(LakeError) as info:
        call()
    return info.value


def test_unreachable_s3_endpoint_fails_quickly_in_one_sentence(monkeypatch):
    port = free_port()  # nothing listens there
    _s3_env(monkeypatch, f"http://127.0.0.1:{port}", BAD_KEY_ID, BAD_SECRET)
    url = "s3://sparkify-lake/lake"
    lake = open_lake(url)
    for attempt in (lake.log_files, lake.check, lambda: lake.read("song_data/A/A/A/x.json")):
        started = time.monotonic()
        message = str(_raised(attempt))
        elapsed = time.monotonic() - started
        _one_sentence(message)
        assert message == f"Cannot reach the S3 endpoint for {url}/: check AWS_ENDPOINT_URL and the network."
        assert BAD_SECRET not in message
        # botocore's bounded retries with backoff (measured about 1 s here), not a hang.
        assert elapsed < 20, elapsed
