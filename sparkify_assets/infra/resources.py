"""Dagster resources for the AWS side: boto3 clients for IAM, Redshift and EC2, and the cluster's settings.

The boto3 resources reuse dagster-aws's configuration (region, endpoint, retries, profile, keys);
when neither their config nor the environment holds keys, they fall back to dwh.cfg's [AWS]
KEY and SECRET, read at run time so the keys never become visible resource config.

`build_infra_resources()` configures (never connects) them from the environment: a variable
that is set becomes an `EnvVar`, so the UI shows its name, never its value.
"""

import os
from typing import Any, ClassVar

from dagster import ConfigurableResource, EnvVar
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field

from sparkify_assets.infra.settings import (
    DWH_CFG_ENV,
    SOURCES,
    InfraError,
    InfraSettings,
    cfg_credentials,
    dwh_cfg_path,
    resolve_settings,
)
from sparkify_assets.wire_logs import redact_wire_logs

_CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


class _Boto3ClientResource(ResourceWithBoto3Configuration):
    dwh_cfg: str | None = Field(
        default=None,
        description="A seed-style dwh.cfg whose [AWS] KEY and SECRET are used when no keys are set",
    )

    service: ClassVar[str] = "sts"

    def get_client(self, region_name: str | None = None) -> Any:
        """A boto3 client; `region_name` (the cluster's region) applies when the config names none."""
        import boto3
        from botocore.config import Config as BotoConfig

        key, secret = self.aws_access_key_id, self.aws_secret_access_key
        if not key and not self.profile_name and not any(os.environ.get(v) for v in _CREDENTIAL_VARS):
            # Users of the classic scripts keep their keys in dwh.cfg; the environment wins.
            creds = cfg_credentials(self.dwh_cfg)
            if creds:
                key, secret = creds
        redact_wire_logs()
        session = boto3.session.Session(profile_name=self.profile_name)
        return session.client(
            self.service,
            region_name=self.region_name or region_name,
            endpoint_url=self.endpoint_url,
            use_ssl=self.use_ssl,
            verify=self.verify,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=self.aws_session_token,
            config=BotoConfig(retries={"max_attempts": self.max_attempts, "mode": "standard"}),
        )


class IAMResource(_Boto3ClientResource):
    """boto3's IAM client: the role the cluster assumes to read the lake."""

    service: ClassVar[str] = "iam"


class RedshiftResource(_Boto3ClientResource):
    """boto3's Redshift client: the provisioned cluster."""

    service: ClassVar[str] = "redshift"


class EC2Resource(_Boto3ClientResource):
    """boto3's EC2 client: the security group that opens the cluster's port."""

    service: ClassVar[str] = "ec2"


class RedshiftClusterResource(ConfigurableResource):
    """The cluster to provision: each field empty means "from dwh.cfg, else the default"."""

    dwh_cfg: str | None = Field(
        default=None, description="A seed-style dwh.cfg read for the fields left empty"
    )
    cluster_identifier: str | None = Field(default=None, description="Cluster name (default sparkify)")
    cluster_type: str | None = Field(default=None, description="single-node or multi-node")
    node_type: str | None = Field(default=None, description="Node type (default dc2.large)")
    num_nodes: str | None = Field(default=None, description="Number of nodes (default 1)")
    db_name: str | None = Field(default=None, description="Database (default sparkify)")
    db_user: str | None = Field(default=None, description="Master user (default sparkify)")
    db_password: str | None = Field(default=None, description="Master password (use EnvVar)")
    port: str | None = Field(default=None, description="Port (default 5439)")
    role_name: str | None = Field(default=None, description="IAM role the cluster assumes to read S3")
    region: str | None = Field(default=None, description="AWS region (default us-west-2)")
    lake_url: str | None = Field(default=None, description="s3://bucket/prefix the role may read")
    state_path: str | None = Field(default=None, description="Where `up` saves the endpoint (no password)")

    def settings(self) -> InfraSettings:
        given = {name: getattr(self, name) for name in SOURCES}
        return resolve_settings(given, self.dwh_cfg)


INFRA_RESOURCE_KEYS = ("aws_iam", "aws_redshift", "aws_ec2", "redshift_cluster")


def build_infra_resources(
    dwh_cfg: str | None = None, state_path: str | None = None
) -> dict[str, ConfigurableResource]:
    """The infra resources, configured from the environment as it is now (no AWS call, no network).

    `dwh_cfg` and `state_path` (the command's flags) override SPARKIFY_DWH_CFG and SPARKIFY_REDSHIFT_STATE.
    """
    if dwh_cfg:
        if not os.path.isfile(dwh_cfg):
            raise InfraError(f"The dwh.cfg {dwh_cfg} is not a file.")
        cfg: Any = dwh_cfg
    elif os.environ.get(DWH_CFG_ENV):
        cfg = EnvVar(DWH_CFG_ENV)
    else:
        # ./dwh.cfg is looked for where the code location runs, like .sparkify/.
        found = dwh_cfg_path({})
        cfg = str(found) if found else None
    fields: dict[str, Any] = {
        name: EnvVar(var) for name, (var, _, _) in SOURCES.items() if os.environ.get(var)
    }
    if "region" not in fields and os.environ.get("AWS_DEFAULT_REGION"):
        fields["region"] = EnvVar("AWS_DEFAULT_REGION")
    if state_path:
        fields["state_path"] = state_path
    return {
        "aws_iam": IAMResource(dwh_cfg=cfg),
        "aws_redshift": RedshiftResource(dwh_cfg=cfg),
        "aws_ec2": EC2Resource(dwh_cfg=cfg),
        "redshift_cluster": RedshiftClusterResource(dwh_cfg=cfg, **fields),
    }
