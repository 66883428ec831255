"""AWS failures turned into one sentence a user can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sparkify_assets.infra.settings import InfraError

NO_CREDENTIALS = (
    "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
    "or KEY and SECRET in dwh.cfg's [AWS] section."
)
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
_QUOTA = {
    "ClusterQuotaExceeded",
    "NumberOfNodesQuotaExceeded",
    "NumberOfNodesPerClusterLimitExceeded",
    "InsufficientClusterCapacity",
    "LimitExceeded",
    "RulesPerSecurityGroupLimitExceeded",
}


def _scrub(text: str, secrets: tuple[str | None, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def explain(
    exc: BaseException, action: str, needs: str = "", secrets: tuple[str | None, ...] = ()
) -> InfraError:
    """One sentence for a botocore failure while doing `action` (e.g. "create the cluster sparkify")."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return InfraError(NO_CREDENTIALS)
    if isinstance(exc, NoRegionError):
        return InfraError("No AWS region: set AWS_REGION (or REGION in dwh.cfg's [AWS] section).")
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return InfraError(
            f"Cannot reach AWS to {action}: check the network, AWS_REGION and AWS_ENDPOINT_URL."
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = _scrub(str(error.get("Message", "")).strip().rstrip("."), secrets)
        if code in _BAD_CREDENTIALS:
            return InfraError(
                f"AWS rejected the credentials ({code}) when asked to {action}: check AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY."
            )
        if code in _DENIED:
            permission = f": it needs {needs}" if needs else ""
            return InfraError(
                f"Your AWS identity is not allowed to {action} ({code}){permission}; docs/infra.md lists "
                "every permission `sparkify infra` uses."
            )
        if code in _QUOTA:
            return InfraError(
                f"AWS refused to {action} because an account quota is reached ({code}): delete unused "
                "clusters or request a higher quota in the Service Quotas console."
            )
        detail = f"{code}: {message}" if message else code
        return InfraError(f"AWS refused to {action} ({detail}).")
    return InfraError(f"Could not {action}: {_scrub(str(exc), secrets) or type(exc).__name__}.")


@contextmanager
def aws_errors(action: str, needs: str = "", secrets: tuple[str | None, ...] = ()) -> Iterator[None]:
    """Re-raise botocore failures inside the block as an InfraError without the traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, action, needs, secrets) from None
