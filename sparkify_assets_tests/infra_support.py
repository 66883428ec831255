"""Lookups the infra tests share: whether a cluster or an IAM role exists on the (moto) account."""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError


def _exists(call, missing_code: str, **kwargs: str) -> bool:
    try:
        call(**kwargs)
        return True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == missing_code
        return False


def cluster_exists(identifier: str) -> bool:
    return _exists(
        boto3.client("redshift").describe_clusters, "ClusterNotFound", ClusterIdentifier=identifier
    )


def role_exists(name: str) -> bool:
    return _exists(boto3.client("iam").get_role, "NoSuchEntity", RoleName=name)
