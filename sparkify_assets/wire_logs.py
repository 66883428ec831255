"""What the AWS SDK's own DEBUG logs may show: credentials are redacted, secret-bearing calls silenced.

botocore logs every signed request at DEBUG: the Authorization header (the access key ID), the
session token of temporary credentials (in headers, canonical requests and presigned URLs) and,
for STS calls its credential providers make, response bodies holding a secret key. Anyone who
turns DEBUG on to chase a network problem must not find credentials in the output.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

REDACTED = "<redacted>"

# Loggers of the AWS SDK and its HTTP stack; botocore and boto3 are the ones that show credentials.
_WIRE_LOGGERS = ("botocore", "urllib3", "boto3", "s3transfer")
_SIGNING_LOGGERS = ("botocore", "boto3")

# Each pattern keeps group 1 (the name) and replaces group 2 (the value).
_CREDENTIALS = (
    # Signature V4 credential scope "KEYID/date/region/service": headers and presigned URLs (%2F).
    re.compile(r"(Credential=)([^/%\s'\",&]+)(?=/|%2F)", re.IGNORECASE),
    # Signature V2: presigned S3 URLs and the "AWS KEYID:signature" header.
    re.compile(r"(AWSAccessKeyId=)([^&\s'\"]+)"),
    re.compile(r"(\bAWS )([A-Z0-9]{16,128})(?=:)"),
    # Temporary credentials' token: "x-amz-security-token:…", "'X-Amz-Security-Token': b'…'", "…=…".
    re.compile(r"(security-token['\"]?\s*[:=]\s*b?['\"]?)([^\s'\"&,<]+)", re.IGNORECASE),
    # Credentials in STS and IAM response bodies (XML and JSON).
    re.compile(r"(<(?:SecretAccessKey|SessionToken|AccessKeyId)>)([^<]+)"),
    re.compile(r"((?:SecretAccessKey|SessionToken|AccessKeyId)['\"]\s*:\s*['\"])([^'\"]+)"),
)


def redact(text: str) -> str:
    """`text` with every AWS credential value it shows replaced by <redacted>."""
    for pattern in _CREDENTIALS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class CredentialRedactor(logging.Filter):
    """Rewrites a record whose message shows a credential; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logging's own error to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_REDACTOR = CredentialRedactor()


def redact_wire_logs() -> None:
    """Attach the redactor to every botocore/boto3 logger (idempotent; call before making a client).

    A logger's filters see only the records it creates itself, not its children's, so each module
    logger gets one; the modules that log requests are imported first so their loggers exist.
    """
    import botocore.auth  # noqa: F401
    import botocore.credentials  # noqa: F401
    import botocore.endpoint  # noqa: F401
    import botocore.parsers  # noqa: F401

    for name in [*_SIGNING_LOGGERS, *logging.root.manager.loggerDict]:
        if name.split(".")[0] in _SIGNING_LOGGERS:
            logger = logging.getLogger(name)
            if _REDACTOR not in logger.filters:
                logger.addFilter(_REDACTOR)


@contextmanager
def quiet_wire_logs() -> Iterator[None]:
    """Silence the AWS SDK's DEBUG logging for a call whose request carries a secret
    (create_cluster's body holds the warehouse password)."""
    saved = []
    for name in _WIRE_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    # Child loggers with a level of their own would still log: quiet those too.
    children = [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.split(".")[0] in _WIRE_LOGGERS and "." in name
    ]
    for logger in children:
        saved.append((logger, logger.level))
        if logger.level and logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in reversed(saved):
            logger.setLevel(level)
