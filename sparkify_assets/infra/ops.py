"""up, status and down: the IAM role, the Redshift cluster and its ingress rule, idempotently.

Plain functions over boto3 clients, shared by the `sparkify infra` command and the Dagster jobs;
`report` receives one line per step (print in the command, the run log in Dagster).

Everything created is tagged `managed-by=sparkify_assets`, and only tagged things are ever changed
or deleted: a cluster or role of the same name made by someone else is reported, never touched.
Ingress rules carry a description of their own for the same reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

from sparkify_assets.infra.errors import aws_errors
from sparkify_assets.infra.settings import (
    InfraError,
    InfraSettings,
    check_cidr,
    forget_state,
    read_state,
    save_state,
)
from sparkify_assets.wire_logs import quiet_wire_logs

Report = Callable[[str], None]

MANAGED_TAG = {"Key": "managed-by", "Value": "sparkify_assets"}
POLICY_NAME = "sparkify-lake-read"
RULE_DESCRIPTION = "sparkify infra: Redshift access"
DEFAULT_TIMEOUT_S = 30 * 60
DEFAULT_POLL_S = 15.0
_TRANSIENT = ("creating", "modifying", "rebooting", "resizing", "renaming", "resuming", "available")


@dataclass
class Clients:
    iam: Any
    redshift: Any
    ec2: Any


def trust_policy() -> dict:
    """Only Redshift may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "redshift.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def lake_read_policy(buckets: tuple[str, ...]) -> dict:
    """Read-only access to the lake's buckets and nothing else (COPY needs List and Get)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListLakeBucket",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": [f"arn:aws:s3:::{b}" for b in buckets],
            },
            {
                "Sid": "ReadLakeObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets],
            },
        ],
    }


def _ours(tags: list[dict] | None) -> bool:
    return any(
        t.get("Key") == MANAGED_TAG["Key"] and t.get("Value") == MANAGED_TAG["Value"] for t in tags or []
    )


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


# --- Lookups --------------------------------------------------------------------------------


def find_cluster(clients: Clients, identifier: str) -> dict | None:
    from botocore.exceptions import ClientError

    with aws_errors(f"describe the Redshift cluster {identifier}", "redshift:DescribeClusters"):
        try:
            return clients.redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"][0]
        except ClientError as exc:
            if _code(exc) == "ClusterNotFound":
                return None
            raise


def find_role(clients: Clients, name: str) -> dict | None:
    from botocore.exceptions import ClientError

    with aws_errors(f"read the IAM role {name}", "iam:GetRole"):
        try:
            return clients.iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if _code(exc) == "NoSuchEntity":
                return None
            raise


def _taken(settings: InfraSettings) -> InfraError:
    return InfraError(
        f"The cluster identifier {settings.cluster_identifier!r} is already taken by a cluster sparkify did "
        "not create: choose another with SPARKIFY_REDSHIFT_CLUSTER_ID (or DWH_CLUSTER_IDENTIFIER in dwh.cfg)."
    )


def default_security_group(clients: Clients, vpc_id: str | None) -> str:
    """The VPC's default group: where a cluster created without groups of its own lands."""
    with aws_errors("find the default security group", "ec2:DescribeVpcs and ec2:DescribeSecurityGroups"):
        if not vpc_id:
            vpcs = clients.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
            if not vpcs:
                raise InfraError(
                    "The cluster has no security group and the region has no default VPC: create one "
                    "(`aws ec2 create-default-vpc`) or add a security group to the cluster."
                )
            vpc_id = vpcs[0]["VpcId"]
        groups = clients.ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"]
    if not groups:
        raise InfraError(f"The VPC {vpc_id} has no default security group to open the cluster's port in.")
    return groups[0]["GroupId"]


def cluster_security_groups(clients: Clients, cluster: dict) -> list[str]:
    groups = [g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups") or []]
    # moto (and EC2-Classic-era clusters) report none: fall back to the VPC's default group.
    return groups or [default_security_group(clients, cluster.get("VpcId"))]


@dataclass(frozen=True)
class IngressRule:
    group_id: str
    cidr: str
    ours: bool
    from_port: int | None
    to_port: int | None
    protocol: str


def ingress_rules(clients: Clients, group_ids: list[str], port: int) -> list[IngressRule]:
    """Every rule in these groups that lets TCP traffic reach `port`."""
    if not group_ids:
        return []
    with aws_errors("read the security group's rules", "ec2:DescribeSecurityGroups"):
        groups = clients.ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
    found = []
    for group in groups:
        for perm in group.get("IpPermissions", []):
            proto = str(perm.get("IpProtocol"))
            low, high = perm.get("FromPort"), perm.get("ToPort")
            if proto != "-1" and not (proto in ("tcp", "6") and (low or 0) <= port <= (high or 65535)):
                continue
            ranges = [(r["CidrIp"], r.get("Description")) for r in perm.get("IpRanges", [])]
            ranges += [(r["CidrIpv6"], r.get("Description")) for r in perm.get("Ipv6Ranges", [])]
            for cidr, description in ranges:
                found.append(
                    IngressRule(group["GroupId"], cidr, description == RULE_DESCRIPTION, low, high, proto)
                )
    return found


def _permission(cidr: str, low: int | None, high: int | None, protocol: str, describe: bool) -> dict:
    entry: dict[str, str] = {"CidrIpv6" if ":" in cidr else "CidrIp": cidr}
    if describe:
        entry["Description"] = RULE_DESCRIPTION
    perm: dict[str, Any] = {"IpProtocol": protocol, "Ipv6Ranges" if ":" in cidr else "IpRanges": [entry]}
    if low is not None:
        perm["FromPort"], perm["ToPort"] = low, high
    return perm


# --- up -------------------------------------------------------------------------------------


def ensure_role(clients: Clients, settings: InfraSettings, report: Report) -> tuple[str, bool]:
    """The role's ARN, creating it or bringing its policies up to date; and whether it is new."""
    buckets = settings.require_buckets()
    name = settings.role_name
    role = find_role(clients, name)
    created = False
    if role is None:
        with aws_errors(f"create the IAM role {name}", "iam:CreateRole and iam:TagRole"):
            role = clients.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust_policy()),
                Description="Lets the Sparkify Redshift cluster read the lake (created by sparkify infra up)",
                Tags=[MANAGED_TAG],
            )["Role"]
        created = True
        report(f"role {name}: created ({role['Arn']})")
    else:
        if not _ours(role.get("Tags")):
            raise InfraError(
                f"An IAM role named {name!r} already exists and was not created by sparkify: choose another "
                "name with SPARKIFY_REDSHIFT_ROLE_NAME (or DWH_IAM_ROLE_NAME in dwh.cfg)."
            )
        with aws_errors(f"update the trust policy of the IAM role {name}", "iam:UpdateAssumeRolePolicy"):
            clients.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust_policy()))
        report(f"role {name}: exists ({role['Arn']})")
    with aws_errors(f"give the IAM role {name} read access to the lake", "iam:PutRolePolicy"):
        clients.iam.put_role_policy(
            RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(lake_read_policy(buckets))
        )
    report(f"role {name}: may read s3://{', s3://'.join(buckets)} (ListBucket, GetObject; nothing else)")
    return role["Arn"], created


def _create_cluster(clients: Clients, settings: InfraSettings, role_arn: str, role_is_new: bool) -> None:
    from botocore.exceptions import ClientError

    password = settings.require_password()
    kwargs: dict[str, Any] = {
        "ClusterIdentifier": settings.cluster_identifier,
        "ClusterType": settings.cluster_type,
        "NodeType": settings.node_type,
        "DBName": settings.db_name,
        "MasterUsername": settings.db_user,
        "MasterUserPassword": password,
        "Port": settings.port,
        "IamRoles": [role_arn],
        # Reached from the user's machine through the ingress rule `up` opens for their CIDR only.
        "PubliclyAccessible": True,
        "Tags": [MANAGED_TAG],
    }
    if settings.cluster_type == "multi-node":
        kwargs["NumberOfNodes"] = settings.num_nodes
    # IAM is eventually consistent: a role seconds old may not be visible to Redshift yet.
    retrying = Retrying(
        stop=stop_after_attempt(6 if role_is_new else 1),
        wait=wait_fixed(5),
        retry=retry_if_exception(_role_not_visible_yet),
        reraise=True,
    )
    with (
        aws_errors(
            f"create the Redshift cluster {settings.cluster_identifier}",
            "redshift:CreateCluster, redshift:CreateTags and iam:PassRole",
            secrets=(password,),
        ),
        quiet_wire_logs(),
    ):
        try:
            retrying(clients.redshift.create_cluster, **kwargs)
        except ClientError as exc:
            if _code(exc) == "ClusterAlreadyExists":
                raise _taken(settings) from None
            raise


def _role_not_visible_yet(exc: BaseException) -> bool:
    message = getattr(exc, "response", {}).get("Error", {}).get("Message", "").lower()
    return _code(exc) == "InvalidParameterValue" and "role" in message


@dataclass(frozen=True)
class _Goal:
    """What a wait for the cluster waits for: the words of its lines and of its timeout."""

    arrived: str
    waiting: str
    next_step: str  # what to do when the wait ran out of time


AVAILABLE = _Goal(
    "available",
    "for available",
    "`sparkify infra status` shows when it is ready, and `sparkify infra up` then finishes the setup.",
)
GONE = _Goal("deleted", "until gone", "run `sparkify infra down` again later to finish.")


def _arrived(cluster: dict | None, identifier: str, goal: _Goal) -> bool:
    """Whether the wait is over; raises when the cluster will never get there."""
    if goal is GONE:
        return cluster is None
    if cluster is None:
        raise InfraError(
            f"The cluster {identifier} disappeared while starting: run `sparkify infra up` again."
        )
    state = cluster.get("ClusterStatus", "")
    if state.startswith("available") and (cluster.get("Endpoint") or {}).get("Address"):
        return True
    if not state.startswith(_TRANSIENT):
        raise InfraError(
            f"The cluster {identifier} is {state!r} rather than starting: look at it in the Redshift "
            "console, or run `sparkify infra down` and `up` again."
        )
    return False


def wait_cluster(
    clients: Clients, settings: InfraSettings, report: Report, timeout: float, interval: float, goal: _Goal
) -> dict | None:
    """Look at the cluster every `interval` seconds until it is available with an endpoint
    (AVAILABLE; returns it) or deleted (GONE; returns None), reporting its state as it goes;
    past `timeout`, raise InfraError saying what to do next."""
    identifier = settings.cluster_identifier
    start = time.monotonic()
    while True:
        cluster = find_cluster(clients, identifier)
        elapsed = time.monotonic() - start
        if _arrived(cluster, identifier, goal):
            report(f"cluster {identifier}: {goal.arrived} after {elapsed:.0f}s")
            return cluster
        assert cluster is not None  # a vanished cluster has arrived (GONE) or raised (AVAILABLE)
        state = cluster.get("ClusterStatus", "")
        if elapsed >= timeout:
            raise InfraError(
                f"The cluster {identifier} is still {state} after {timeout / 60:.0f} minutes: {goal.next_step}"
            )
        report(f"cluster {identifier}: {state}, {elapsed:.0f}s elapsed (waiting {goal.waiting})")
        time.sleep(interval)


def ensure_cluster(
    clients: Clients,
    settings: InfraSettings,
    role_arn: str,
    role_is_new: bool,
    report: Report,
    timeout: float,
    interval: float,
) -> dict:
    identifier = settings.cluster_identifier
    cluster = find_cluster(clients, identifier)
    if cluster is None:
        _create_cluster(clients, settings, role_arn, role_is_new)
        nodes = f"{settings.num_nodes} x " if settings.cluster_type == "multi-node" else ""
        report(f"cluster {identifier}: creating ({nodes}{settings.node_type}, region {settings.region})")
    else:
        if not _ours(cluster.get("Tags")):
            raise _taken(settings)
        state = cluster.get("ClusterStatus", "")
        report(f"cluster {identifier}: exists ({state})")
        if state == "deleting":
            raise InfraError(
                f"The cluster {identifier} is being deleted: wait for it to go, then run `up` again."
            )
        if state == "paused":
            with aws_errors(f"resume the cluster {identifier}", "redshift:ResumeCluster"):
                clients.redshift.resume_cluster(ClusterIdentifier=identifier)
            report(f"cluster {identifier}: resuming")
        if role_arn not in [r.get("IamRoleArn") for r in cluster.get("IamRoles") or []]:
            with aws_errors(
                f"attach the role to the cluster {identifier}",
                "redshift:ModifyClusterIamRoles and iam:PassRole",
            ):
                clients.redshift.modify_cluster_iam_roles(
                    ClusterIdentifier=identifier, AddIamRoles=[role_arn]
                )
            report(f"cluster {identifier}: role attached")
    cluster = wait_cluster(clients, settings, report, timeout, interval, AVAILABLE)
    assert cluster is not None
    return cluster


def open_ingress(clients: Clients, group_id: str, port: int, cidrs: list[str], report: Report) -> None:
    from botocore.exceptions import ClientError

    for cidr in cidrs:
        with aws_errors(f"open port {port} to {cidr}", "ec2:AuthorizeSecurityGroupIngress"):
            try:
                clients.ec2.authorize_security_group_ingress(
                    GroupId=group_id, IpPermissions=[_permission(cidr, port, port, "tcp", describe=True)]
                )
                report(f"ingress: port {port} opened to {cidr} in {group_id}")
            except ClientError as exc:
                if _code(exc) != "InvalidPermission.Duplicate":
                    raise
                report(f"ingress: port {port} already open to {cidr} in {group_id}")


def up(
    clients: Clients,
    settings: InfraSettings,
    cidrs: list[str] | tuple[str, ...] = (),
    allow_anywhere: bool = False,
    report: Report = print,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = DEFAULT_POLL_S,
) -> dict:
    """Role, cluster, ingress and the saved endpoint; completes whatever an earlier run left out."""
    # Every user mistake is caught before the first AWS call.
    cidrs = [check_cidr(c, allow_anywhere) for c in cidrs]
    settings.require_buckets()
    if find_cluster(clients, settings.cluster_identifier) is None:
        settings.require_password()
    role_arn, role_is_new = ensure_role(clients, settings, report)
    cluster = ensure_cluster(clients, settings, role_arn, role_is_new, report, timeout, interval)
    group_id = cluster_security_groups(clients, cluster)[0]
    port = int(cluster["Endpoint"].get("Port") or settings.port)
    if cidrs:
        open_ingress(clients, group_id, port, cidrs, report)
    else:
        report(
            f"ingress: none asked for; pass --allow-cidr YOUR.ADDRESS/32 to reach port {port} from outside the VPC"
        )
    state = {
        "host": cluster["Endpoint"]["Address"],
        "port": port,
        "db": cluster.get("DBName") or settings.db_name,
        "user": cluster.get("MasterUsername") or settings.db_user,
        "iam_role_arn": role_arn,
        "region": settings.region,
        "cluster_identifier": settings.cluster_identifier,
        "security_group_id": group_id,
    }
    path = save_state(state, settings.state_path)
    url = f"redshift://{state['user']}@{state['host']}:{state['port']}/{state['db']}"
    report(f"endpoint: {state['host']}:{state['port']} (database {state['db']}, user {state['user']})")
    report(f"role ARN: {role_arn}")
    report(f"saved to {path}; warehouse URL {url} (the password stays in SPARKIFY_WAREHOUSE_PASSWORD)")
    return state


# --- status ---------------------------------------------------------------------------------


@dataclass
class Status:
    cluster_identifier: str
    cluster_state: str | None = None  # None: no such cluster
    cluster_ours: bool = True
    endpoint: str | None = None
    role_name: str = ""
    role_arn: str | None = None
    role_ours: bool = True
    cluster_roles: list[str] = field(default_factory=list)
    ingress: list[IngressRule] = field(default_factory=list)
    saved_path: Path | None = None
    saved: dict | None = None

    def lines(self) -> list[str]:
        out = []
        if self.cluster_state is None:
            out.append(f"cluster {self.cluster_identifier}: none")
        else:
            owner = "" if self.cluster_ours else " (not created by sparkify)"
            out.append(f"cluster {self.cluster_identifier}: {self.cluster_state}{owner}")
            out.append(f"endpoint: {self.endpoint or 'none yet'}")
            out.append(f"cluster roles: {', '.join(self.cluster_roles) or 'none'}")
        if self.role_arn is None:
            out.append(f"role {self.role_name}: none")
        else:
            owner = "" if self.role_ours else " (not created by sparkify)"
            out.append(f"role {self.role_name}: {self.role_arn}{owner}")
        if self.ingress:
            for rule in self.ingress:
                mark = "opened by sparkify" if rule.ours else "another rule"
                out.append(f"ingress: {rule.cidr} in {rule.group_id} ({mark})")
        elif self.cluster_state is not None:
            out.append("ingress: no rule opens the port")
        out.append(f"saved endpoint: {self.saved_path if self.saved else 'none'}")
        return out

    @property
    def exists(self) -> bool:
        return self.cluster_state is not None or self.role_arn is not None


def status(clients: Clients, settings: InfraSettings) -> Status:
    result = Status(settings.cluster_identifier, role_name=settings.role_name, saved_path=settings.state_path)
    cluster = find_cluster(clients, settings.cluster_identifier)
    saved = read_state(settings.state_path)
    if saved and saved.get("cluster_identifier", settings.cluster_identifier) == settings.cluster_identifier:
        result.saved = saved
    if cluster is not None:
        result.cluster_state = cluster.get("ClusterStatus")
        result.cluster_ours = _ours(cluster.get("Tags"))
        endpoint = cluster.get("Endpoint") or {}
        if endpoint.get("Address"):
            result.endpoint = f"{endpoint['Address']}:{endpoint.get('Port')}"
        result.cluster_roles = [r["IamRoleArn"] for r in cluster.get("IamRoles") or []]
        port = int(endpoint.get("Port") or settings.port)
        result.ingress = ingress_rules(clients, cluster_security_groups(clients, cluster), port)
    role = find_role(clients, settings.role_name)
    if role is not None:
        result.role_arn = role["Arn"]
        result.role_ours = _ours(role.get("Tags"))
    return result


# --- down -----------------------------------------------------------------------------------


def _delete_role(clients: Clients, name: str, report: Report) -> None:
    iam = clients.iam
    with aws_errors(
        f"delete the IAM role {name}", "iam:ListRolePolicies, iam:DeleteRolePolicy and iam:DeleteRole"
    ):
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for profile in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
            iam.remove_role_from_instance_profile(
                InstanceProfileName=profile["InstanceProfileName"], RoleName=name
            )
        iam.delete_role(RoleName=name)
    report(f"role {name}: policies removed and role deleted")


def _check_snapshot_name(final_snapshot: str | None) -> None:
    """Redshift's rule for a snapshot identifier, checked before anything is deleted."""
    if final_snapshot is not None and not (
        final_snapshot[:1].isalpha()
        and all(c.isalnum() or c == "-" for c in final_snapshot)
        and "--" not in final_snapshot
        and not final_snapshot.endswith("-")
        and len(final_snapshot) <= 255
    ):
        raise InfraError(
            f"The snapshot name {final_snapshot!r} is invalid: use letters, digits and single hyphens, "
            "starting with a letter."
        )


def _saved_state_of(settings: InfraSettings) -> dict | None:
    """The state file, when it is about this cluster (another cluster's file is not ours to use)."""
    saved = read_state(settings.state_path)
    if saved and saved.get("cluster_identifier", settings.cluster_identifier) != settings.cluster_identifier:
        return None
    return saved


def _delete_cluster(
    clients: Clients,
    settings: InfraSettings,
    cluster: dict,
    final_snapshot: str | None,
    report: Report,
    timeout: float,
    interval: float,
) -> None:
    """Delete the cluster (unless it is being deleted already) and wait until it is gone."""
    identifier = settings.cluster_identifier
    if cluster.get("ClusterStatus") != "deleting":
        kwargs: dict[str, Any] = {"ClusterIdentifier": identifier}
        if final_snapshot:
            # AWS's default is False already; moto needs it said to take the snapshot.
            kwargs["SkipFinalClusterSnapshot"] = False
            kwargs["FinalClusterSnapshotIdentifier"] = final_snapshot
        else:
            kwargs["SkipFinalClusterSnapshot"] = True
        with aws_errors(f"delete the cluster {identifier}", "redshift:DeleteCluster"):
            clients.redshift.delete_cluster(**kwargs)
        kept = f"final snapshot {final_snapshot} kept" if final_snapshot else "no final snapshot"
        report(f"cluster {identifier}: deleting ({kept})")
    wait_cluster(clients, settings, report, timeout, interval, GONE)


def _delete_role_if_ours(clients: Clients, settings: InfraSettings, report: Report) -> list[str]:
    role = find_role(clients, settings.role_name)
    if role is None:
        report(f"role {settings.role_name}: none")
    elif not _ours(role.get("Tags")):
        report(f"role {settings.role_name}: not created by sparkify, left alone")
    else:
        _delete_role(clients, settings.role_name, report)
        return [f"role {settings.role_name}"]
    return []


def _close_ingress(clients: Clients, groups: list[str], ports: set[int], report: Report) -> list[str]:
    """Revoke the ingress rules sparkify opened on these ports of these security groups."""
    if not groups:
        try:
            groups = [default_security_group(clients, None)]
        except InfraError:
            groups = []  # no default VPC: sparkify cannot have opened a rule there, nothing to close
    rules = [r for port in sorted(ports) for r in ingress_rules(clients, groups, port) if r.ours]
    removed = []
    for rule in dict.fromkeys(rules):
        with aws_errors(f"close the ingress rule for {rule.cidr}", "ec2:RevokeSecurityGroupIngress"):
            clients.ec2.revoke_security_group_ingress(
                GroupId=rule.group_id,
                IpPermissions=[
                    _permission(rule.cidr, rule.from_port, rule.to_port, rule.protocol, describe=False)
                ],
            )
        report(f"ingress: closed {rule.cidr} in {rule.group_id}")
        removed.append(f"ingress {rule.cidr}")
    return removed


def down(
    clients: Clients,
    settings: InfraSettings,
    final_snapshot: str | None = None,
    report: Report = print,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = DEFAULT_POLL_S,
) -> list[str]:
    """Delete the cluster (optionally keeping a final snapshot), the role and the ingress rules.

    Returns what was removed; an empty list means there was nothing to tear down.
    """
    identifier = settings.cluster_identifier
    _check_snapshot_name(final_snapshot)
    removed: list[str] = []
    saved = _saved_state_of(settings)
    cluster = find_cluster(clients, identifier)
    # The ingress rules to close: on the saved and the live port, in the saved and the live groups.
    groups: list[str] = []
    ports = {settings.port}
    if saved:
        ports.add(int(saved["port"]))
        if saved.get("security_group_id"):
            groups.append(saved["security_group_id"])
    if cluster is not None:
        if not _ours(cluster.get("Tags")):
            raise InfraError(
                f"The cluster {identifier} was not created by sparkify, so `down` leaves it alone: check "
                "SPARKIFY_REDSHIFT_CLUSTER_ID (or DWH_CLUSTER_IDENTIFIER in dwh.cfg)."
            )
        groups += [g for g in cluster_security_groups(clients, cluster) if g not in groups]
        if (cluster.get("Endpoint") or {}).get("Port"):
            ports.add(int(cluster["Endpoint"]["Port"]))
        _delete_cluster(clients, settings, cluster, final_snapshot, report, timeout, interval)
        removed.append(f"cluster {identifier}")
    else:
        report(f"cluster {identifier}: none")
    removed += _delete_role_if_ours(clients, settings, report)
    removed += _close_ingress(clients, groups, ports, report)
    if saved is not None and forget_state(settings.state_path):
        report(f"saved endpoint {settings.state_path}: removed")
    if not removed:
        report(
            f"Nothing to tear down: no cluster {identifier}, no role {settings.role_name}, no ingress rule."
        )
    return removed
