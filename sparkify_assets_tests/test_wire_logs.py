"""The AWS SDK's DEBUG logs never show a credential: the redactor on botocore's loggers, checked
on the formats botocore really logs (copied from its DEBUG output) and on a real client's
requests to moto."""

from __future__ import annotations

import logging

import boto3
import pytest

from sparkify_assets.wire_logs import CredentialRedactor, redact, redact_wire_logs

KEY_ID = "AKIAQQQSECRETKEYID77"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEBo/Token+Value=="


@pytest.mark.parametrize(
    "logged",
    [
        # botocore.endpoint: the prepared request's headers.
        "headers={'X-Amz-Date': b'20261123T161031Z', 'X-Amz-Security-Token': b'FwoGZXIvYXdzEBo/Token+Value==', "
        "'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAQQQSECRETKEYID77/20261123/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0f1e'}",
        # botocore.auth: the canonical request and a V2 string to sign.
        "CanonicalRequest:\nGET\n/bucket/k\n\nhost:127.0.0.1\nx-amz-security-token:FwoGZXIvYXdzEBo/Token+Value==\n",
        "StringToSign:\nGET\n\n\n1795453831\nx-amz-security-token:FwoGZXIvYXdzEBo/Token+Value==\n/b/k",
        # Presigned URLs, Signature V4 and V2.
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAQQQSECRETKEYID77"
        "%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=FwoGZXIvYXdzEBo%2FToken%2BValue%3D%3D",
        "https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIAQQQSECRETKEYID77&Signature=abc&Expires=1",
        "Authorization: AWS AKIAQQQSECRETKEYID77:frJIUN8DYpKDtOLCwo//yllqDzg=",
        # botocore.parsers: an STS response body (XML) and a JSON one.
        "Response body:\nb'<Credentials><AccessKeyId>AKIAQQQSECRETKEYID77</AccessKeyId>"
        "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
        "<SessionToken>FwoGZXIvYXdzEBo/Token+Value==</SessionToken></Credentials>'",
        '{"AccessKeyId": "AKIAQQQSECRETKEYID77", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", '
        '"SessionToken": "FwoGZXIvYXdzEBo/Token+Value=="}',
    ],
)
def test_every_logged_format_loses_its_credentials(logged):
    cleaned = redact(logged)
    for secret in (KEY_ID, SECRET, TOKEN, "FwoGZXIvYXdzEBo%2FToken"):
        assert secret not in cleaned
    assert "<redacted>" in cleaned


def test_the_rest_of_a_message_is_kept():
    line = "Sending http request: url=http://127.0.0.1:5000/bucket-x/log_data/2018/11/x.json, Signature=0f1e"
    assert redact(line) == line
    header = "Credential=AKIAQQQSECRETKEYID77/20261123/us-east-1/s3/aws4_request, SignedHeaders=host"
    assert redact(header) == "Credential=<redacted>/20261123/us-east-1/s3/aws4_request, SignedHeaders=host"


def test_a_record_with_arguments_is_rewritten_not_dropped():
    record = logging.LogRecord("botocore.auth", logging.DEBUG, __file__, 1, "Key %s, %d", (KEY_ID, 7), None)
    assert CredentialRedactor().filter(record) is True
    assert record.getMessage() == f"Key {KEY_ID}, 7"  # no credential pattern: left alone
    record = logging.LogRecord(
        "botocore.auth", logging.DEBUG, __file__, 1, "x-amz-security-token:%s", (TOKEN,), None
    )
    assert CredentialRedactor().filter(record) is True
    assert record.getMessage() == "x-amz-security-token:<redacted>"


def test_a_real_client_logs_its_requests_without_credentials(aws_env, caplog):
    """boto3 against moto with DEBUG on: the signed requests are logged, their credentials not."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="botocore")
    redact_wire_logs()
    s3 = boto3.client("s3", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_session_token=TOKEN)
    s3.create_bucket(Bucket="wire-logs", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="wire-logs", Key="k", Body=b"x")
    assert s3.get_object(Bucket="wire-logs", Key="k")["Body"].read() == b"x"
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "Sending http request" in logged and "CanonicalRequest" in logged
    assert "Credential=<redacted>/" in logged
    for secret in (KEY_ID, SECRET, TOKEN):
        assert secret not in logged
