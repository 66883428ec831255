"""Dagster jobs that provision and tear down the Redshift warehouse, launchable from the UI.

They run the same `up` and `down` as `sparkify infra`, with each step in the run log; a user
mistake or an AWS refusal fails the run with one sentence (a `Failure`), not a stack trace.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from dagster import Config, Failure, MetadataValue, OpExecutionContext, job, op
from pydantic import Field

from sparkify_assets.infra import ops
from sparkify_assets.infra.resources import (
    EC2Resource,
    IAMResource,
    RedshiftClusterResource,
    RedshiftResource,
    build_infra_resources,
)
from sparkify_assets.infra.settings import InfraError, InfraSettings


class ProvisionConfig(Config):
    allow_cidr: list[str] = Field(
        default_factory=list, description="CIDR blocks that may reach the cluster's port, e.g. 203.0.113.7/32"
    )
    allow_anywhere: bool = Field(
        default=False, description="Allow 0.0.0.0/0 (the whole internet) in allow_cidr"
    )
    timeout_minutes: float = Field(default=30, description="How long to wait for the cluster to be available")
    poll_seconds: float = Field(default=15, description="How often to ask for the cluster's state")


class TeardownConfig(Config):
    final_snapshot: str | None = Field(
        default=None, description="Keep a final snapshot under this name (default: delete without one)"
    )
    timeout_minutes: float = Field(default=30, description="How long to wait for the cluster to be gone")
    poll_seconds: float = Field(default=15, description="How often to ask for the cluster's state")


def make_clients(
    iam: IAMResource, redshift: RedshiftResource, ec2: EC2Resource, settings: InfraSettings
) -> ops.Clients:
    return ops.Clients(
        iam=iam.get_client(settings.region),
        redshift=redshift.get_client(settings.region),
        ec2=ec2.get_client(settings.region),
    )


T = TypeVar("T")


def _run_on_aws(
    aws_iam: IAMResource,
    aws_redshift: RedshiftResource,
    aws_ec2: EC2Resource,
    redshift_cluster: RedshiftClusterResource,
    action: Callable[[ops.Clients, InfraSettings], T],
) -> tuple[T, InfraSettings]:
    """What both ops do around `up` or `down`: settings and clients, and an InfraError (a user
    mistake or an AWS refusal) as a one-sentence Failure that retrying would not fix."""
    try:
        settings = redshift_cluster.settings()
        return action(make_clients(aws_iam, aws_redshift, aws_ec2, settings), settings), settings
    except InfraError as exc:
        raise Failure(description=str(exc), allow_retries=False) from None


@op(
    description="Create (or complete) the IAM role, the Redshift cluster and its ingress rule; save the endpoint."
)
def provision_redshift(
    context: OpExecutionContext,
    config: ProvisionConfig,
    aws_iam: IAMResource,
    aws_redshift: RedshiftResource,
    aws_ec2: EC2Resource,
    redshift_cluster: RedshiftClusterResource,
) -> dict[str, Any]:
    state, settings = _run_on_aws(
        aws_iam,
        aws_redshift,
        aws_ec2,
        redshift_cluster,
        lambda clients, settings: ops.up(
            clients,
            settings,
            config.allow_cidr,
            config.allow_anywhere,
            context.log.info,
            timeout=config.timeout_minutes * 60,
            interval=config.poll_seconds,
        ),
    )
    context.add_output_metadata(
        {
            "endpoint": f"{state['host']}:{state['port']}",
            "warehouse_url": MetadataValue.text(
                f"redshift://{state['user']}@{state['host']}:{state['port']}/{state['db']}"
            ),
            "iam_role_arn": state["iam_role_arn"],
            "saved_to": MetadataValue.path(str(settings.state_path)),
        }
    )
    return state


@op(description="Delete the Redshift cluster, its IAM role and the ingress rules sparkify opened.")
def teardown_redshift(
    context: OpExecutionContext,
    config: TeardownConfig,
    aws_iam: IAMResource,
    aws_redshift: RedshiftResource,
    aws_ec2: EC2Resource,
    redshift_cluster: RedshiftClusterResource,
) -> list[str]:
    removed, _ = _run_on_aws(
        aws_iam,
        aws_redshift,
        aws_ec2,
        redshift_cluster,
        lambda clients, settings: ops.down(
            clients,
            settings,
            config.final_snapshot,
            context.log.info,
            timeout=config.timeout_minutes * 60,
            interval=config.poll_seconds,
        ),
    )
    context.add_output_metadata({"removed": MetadataValue.text(", ".join(removed) or "nothing")})
    return removed


@job(description="Provision the Redshift warehouse: IAM role, cluster, ingress rule (sparkify infra up).")
def provision_warehouse() -> None:
    provision_redshift()


@job(description="Tear the Redshift warehouse down: cluster, IAM role, ingress rule (sparkify infra down).")
def teardown_warehouse() -> None:
    teardown_redshift()


INFRA_JOBS = [provision_warehouse, teardown_warehouse]
# Configured from the environment at import, never connected: no credentials or network needed.
INFRA_RESOURCES = build_infra_resources()
