"""`sparkify infra up|status|down` and the Dagster jobs, against moto's IAM, Redshift and EC2 on 127.0.0.1.

moto's server is shared by the session: each test uses its own cluster, role, bucket and port, so
the rules it opens in the (shared) default security group are told apart by port.
"""

from __future__ import annotations

import itertools
import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from dagster import DagsterInstance, Definitions

from sparkify_assets.cli import main
from sparkify_assets.infra.jobs import INFRA_JOBS
from sparkify_assets.infra.resources import build_infra_resources
from sparkify_assets.infra.settings import saved_iam_role, saved_warehouse_url
from sparkify_assets.resources.warehouse import WarehouseResource
from sparkify_assets_tests.infra_support import role_exists

PASSWORD = "Zq7-Sparkify-Pw-91x"
_ports = itertools.count(5440)
DESCRIPTION = "sparkify infra: Redshift access"


@pytest.fixture
def infra(aws_env, tmp_path, monkeypatch) -> dict:
    """Environment for one cluster of our own; yields the names the test can expect."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "cluster": f"sp-{tag}",
        "role": f"sparkify-role-{tag}",
        "bucket": f"sparkify-lake-{tag}",
        "port": next(_ports),
        "state": tmp_path / "state" / "redshift.json",
    }
    monkeypatch.chdir(tmp_path)  # no ./dwh.cfg from the checkout
    monkeypatch.delenv("SPARKIFY_DWH_CFG", raising=False)
    monkeypatch.setenv("SPARKIFY_REDSHIFT_CLUSTER_ID", names["cluster"])
    monkeypatch.setenv("SPARKIFY_REDSHIFT_ROLE_NAME", names["role"])
    monkeypatch.setenv("SPARKIFY_REDSHIFT_PORT", str(names["port"]))
    monkeypatch.setenv("SPARKIFY_REDSHIFT_STATE", str(names["state"]))
    monkeypatch.setenv("SPARKIFY_LAKE_URL", f"s3://{names['bucket']}/lake")
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_PASSWORD", PASSWORD)
    for var in ("SPARKIFY_REDSHIFT_DB", "SPARKIFY_REDSHIFT_USER", "SPARKIFY_REDSHIFT_NODE_TYPE"):
        monkeypatch.delenv(var, raising=False)
    return names


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["infra", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def describe(cluster: str) -> dict | None:
    try:
        return boto3.client("redshift").describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ClusterNotFound"
        return None


def default_group_id() -> str:
    ec2 = boto3.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    return groups[0]["GroupId"]


def rules_on(port: int) -> list[dict]:
    """The IP ranges of every rule in the default group that covers `port`."""
    group = boto3.client("ec2").describe_security_groups(GroupIds=[default_group_id()])["SecurityGroups"][0]
    return [
        r
        for perm in group["IpPermissions"]
        if perm.get("FromPort") == port
        for r in perm.get("IpRanges", []) + perm.get("Ipv6Ranges", [])
    ]


def test_up_status_up_again_down_down_again(infra, capsys):
    port, cluster_id, role = infra["port"], infra["cluster"], infra["role"]
    seen = ""

    rc, out, err = cli(capsys, "up", "--allow-cidr", "203.0.113.7/32", "--poll", "0")
    seen += out + err
    assert rc == 0, err
    assert f"role {role}: created" in out
    assert f"cluster {cluster_id}: creating (dc2.large, region us-west-2)" in out
    assert f"cluster {cluster_id}: available after" in out

    cluster = describe(cluster_id)
    assert cluster["ClusterStatus"] == "available"
    assert cluster["NodeType"] == "dc2.large"
    assert cluster["DBName"] == "sparkify"
    assert cluster["MasterUsername"] == "sparkify"
    assert cluster["Endpoint"]["Port"] == port
    assert {"Key": "managed-by", "Value": "sparkify_assets"} in cluster["Tags"]
    role_arn = boto3.client("iam").get_role(RoleName=role)["Role"]["Arn"]
    assert [r["IamRoleArn"] for r in cluster["IamRoles"]] == [role_arn]
    assert f"endpoint: {cluster['Endpoint']['Address']}:{port}" in out
    assert f"role ARN: {role_arn}" in out

    # The role: trusted by Redshift only, one inline read-only policy on the lake's bucket.
    iam = boto3.client("iam")
    got_role = iam.get_role(RoleName=role)["Role"]
    assert got_role["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "redshift.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["sparkify-lake-read"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    bucket = infra["bucket"]
    assert iam.get_role_policy(RoleName=role, PolicyName="sparkify-lake-read")["PolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListLakeBucket",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Sid": "ReadLakeObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }

    # Exactly the CIDR given, on the cluster's port only.
    assert rules_on(port) == [{"CidrIp": "203.0.113.7/32", "Description": DESCRIPTION}]

    # The saved endpoint: where the cluster is, never the password.
    saved = json.loads(infra["state"].read_text())
    assert saved["host"] == cluster["Endpoint"]["Address"]
    assert (saved["port"], saved["db"], saved["user"]) == (port, "sparkify", "sparkify")
    assert (saved["iam_role_arn"], saved["region"]) == (role_arn, "us-west-2")
    assert PASSWORD not in infra["state"].read_text()

    rc, out, err = cli(capsys, "status")
    seen += out + err
    assert rc == 0, err
    assert f"cluster {cluster_id}: available" in out
    assert f"endpoint: {cluster['Endpoint']['Address']}:{port}" in out
    assert f"role {role}: {role_arn}" in out
    assert "ingress: 203.0.113.7/32 in " in out and "(opened by sparkify)" in out

    # Up again: reports what exists, creates nothing twice.
    rc, out, err = cli(capsys, "up", "--allow-cidr", "203.0.113.7/32", "--poll", "0")
    seen += out + err
    assert rc == 0, err
    assert f"role {role}: exists" in out
    assert f"cluster {cluster_id}: exists (available)" in out
    assert "already open to 203.0.113.7/32" in out
    assert rules_on(port) == [{"CidrIp": "203.0.113.7/32", "Description": DESCRIPTION}]
    assert [c["ClusterIdentifier"] for c in boto3.client("redshift").describe_clusters()["Clusters"]].count(
        cluster_id
    ) == 1

    rc, out, err = cli(capsys, "down", "--poll", "0")
    seen += out + err
    assert rc == 0, err
    assert f"cluster {cluster_id}: deleting (no final snapshot)" in out
    assert describe(cluster_id) is None
    assert not role_exists(role)
    assert rules_on(port) == []
    assert not infra["state"].exists()

    rc, out, err = cli(capsys, "down", "--poll", "0")
    seen += out + err
    assert rc == 0, err
    assert f"Nothing to tear down: no cluster {cluster_id}, no role {role}, no ingress rule." in out

    rc, out, err = cli(capsys, "status")
    assert rc == 0 and f"cluster {cluster_id}: none" in out and f"role {role}: none" in out
    assert PASSWORD not in seen + out + err


def test_saved_configuration_points_the_warehouse_resource_at_the_endpoint(infra, capsys):
    rc, _, err = cli(capsys, "up", "--poll", "0")
    assert rc == 0, err
    cluster = describe(infra["cluster"])
    host, port = cluster["Endpoint"]["Address"], infra["port"]
    role_arn = boto3.client("iam").get_role(RoleName=infra["role"])["Role"]["Arn"]

    url = saved_warehouse_url()  # SPARKIFY_REDSHIFT_STATE names the file, as config.py will read it
    assert url == f"redshift://sparkify@{host}:{port}/sparkify"
    assert saved_iam_role(infra["state"]) == role_arn
    warehouse = WarehouseResource(url=url, password=PASSWORD).open()
    assert warehouse.dialect == "redshift"
    assert warehouse.describe() == f"redshift://sparkify@{host}:{port}/sparkify"
    assert (warehouse.host, warehouse.port, warehouse.database, warehouse.user) == (
        host,
        port,
        "sparkify",
        "sparkify",
    )
    assert warehouse.sslmode == "require"

    assert cli(capsys, "down", "--poll", "0")[0] == 0
    assert saved_warehouse_url() is None and saved_iam_role() is None


def run_log(instance: DagsterInstance, result) -> list[str]:
    """Every line of a run's log, as the UI shows it (context.log lines and Dagster's own events)."""
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


def test_dagster_jobs_provision_and_tear_down(infra):
    instance = DagsterInstance.ephemeral()
    defs = Definitions(jobs=INFRA_JOBS, resources=build_infra_resources())
    provision = defs.get_job_def("provision_warehouse")
    config = {"allow_cidr": ["198.51.100.0/24"], "poll_seconds": 0}
    result = provision.execute_in_process(
        run_config={"ops": {"provision_redshift": {"config": config}}}, instance=instance
    )
    assert result.success
    cluster = describe(infra["cluster"])
    assert cluster["ClusterStatus"] == "available"
    assert rules_on(infra["port"]) == [{"CidrIp": "198.51.100.0/24", "Description": DESCRIPTION}]
    state = result.output_for_node("provision_redshift")
    assert state["host"] == cluster["Endpoint"]["Address"]
    assert json.loads(infra["state"].read_text())["host"] == cluster["Endpoint"]["Address"]
    lines = run_log(instance, result)
    assert f"cluster {infra['cluster']}: available after 0s" in lines
    assert f"ingress: port {infra['port']} opened to 198.51.100.0/24 in {default_group_id()}" in lines

    teardown = defs.get_job_def("teardown_warehouse")
    down = teardown.execute_in_process(
        run_config={"ops": {"teardown_redshift": {"config": {"poll_seconds": 0}}}}, instance=instance
    )
    assert down.success
    assert down.output_for_node("teardown_redshift") == [
        f"cluster {infra['cluster']}",
        f"role {infra['role']}",
        "ingress 198.51.100.0/24",
    ]
    assert describe(infra["cluster"]) is None and not role_exists(infra["role"])
    assert rules_on(infra["port"]) == []
    assert not any(PASSWORD in line for line in lines + run_log(instance, down))


def test_the_code_location_carries_the_jobs_and_resources():
    from sparkify_assets.definitions import defs

    assert {"provision_warehouse", "teardown_warehouse"} <= {job.name for job in defs.jobs}
    assert {"aws_iam", "aws_redshift", "aws_ec2", "redshift_cluster", "warehouse", "lake"} <= set(
        defs.resources
    )


def test_a_failed_job_ends_in_one_sentence(infra):
    instance = DagsterInstance.ephemeral()
    defs = Definitions(jobs=INFRA_JOBS, resources=build_infra_resources())
    config = {"allow_cidr": ["0.0.0.0/0"], "poll_seconds": 0}
    result = defs.get_job_def("provision_warehouse").execute_in_process(
        run_config={"ops": {"provision_redshift": {"config": config}}},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("provision_redshift")
    assert failure.user_failure_data.description == (
        "Refusing to open the cluster's port to the whole internet (0.0.0.0/0): give your own address "
        "(e.g. 203.0.113.7/32), or pass --allow-anywhere (allow_anywhere in the job config) if you mean it."
    )
    assert describe(infra["cluster"]) is None and not role_exists(infra["role"])
