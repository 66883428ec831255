"""The infra commands' clear errors, dwh.cfg settings, and the password kept out of output and logs.

Errors moto can produce (no credentials, a taken name, the 0.0.0.0/0 refusal) run against its
server; quota and permission errors it cannot produce, so botocore's Stubber answers those calls
on a real boto3 client with the error codes AWS really returns.
"""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import uuid

import boto3
import pytest
from botocore.stub import Stubber

from sparkify_assets.cli import main
from sparkify_assets.infra import ops
from sparkify_assets.infra.settings import (
    InfraError,
    check_cidr,
    load_settings,
    resolve_settings,
    saved_warehouse_url,
)
from sparkify_assets_tests.infra_support import cluster_exists, role_exists

PASSWORD = "Qx4-Sparkify-Pw-27y"
_ports = itertools.count(5600)

SEED_CFG = """\
[CLUSTER]
HOST=''
DB_NAME='seed_db'
DB_USER='seed_user'
DB_PASSWORD='{password}'
DB_PORT='5439'

[IAM_ROLE]
ARN=''

[S3]
LOG_DATA='s3://udacity-dend/log_data'
LOG_JSONPATH='s3://udacity-dend/log_json_path.json'
SONG_DATA='s3://udacity-dend/song_data'

[AWS]
KEY={key}
SECRET={secret}

[DWH]
DWH_CLUSTER_TYPE=multi-node
DWH_NUM_NODES=4
DWH_NODE_TYPE=dc2.large
DWH_IAM_ROLE_NAME={role}
DWH_CLUSTER_IDENTIFIER={cluster}
DWH_DB=dwh_db
DWH_DB_USER=dwh_user
DWH_DB_PASSWORD={password}
DWH_PORT={port}
"""


@pytest.fixture
def infra(aws_env, tmp_path, monkeypatch) -> dict:
    tag = uuid.uuid4().hex[:8]
    names = {"cluster": f"sp-{tag}", "role": f"sparkify-role-{tag}", "port": next(_ports)}
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPARKIFY_DWH_CFG", raising=False)
    monkeypatch.setenv("SPARKIFY_REDSHIFT_CLUSTER_ID", names["cluster"])
    monkeypatch.setenv("SPARKIFY_REDSHIFT_ROLE_NAME", names["role"])
    monkeypatch.setenv("SPARKIFY_REDSHIFT_PORT", str(names["port"]))
    monkeypatch.setenv("SPARKIFY_REDSHIFT_STATE", str(tmp_path / "redshift.json"))
    monkeypatch.setenv("SPARKIFY_LAKE_URL", f"s3://sparkify-lake-{tag}/lake")
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_PASSWORD", PASSWORD)
    return names


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["infra", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# --- Against moto -------------------------------------------------------------------------


def test_whole_internet_is_refused_without_the_flag(infra, capsys):
    rc, out, err = cli(capsys, "up", "--allow-cidr", "0.0.0.0/0", "--poll", "0")
    assert rc == 1
    assert err == (
        "error: Refusing to open the cluster's port to the whole internet (0.0.0.0/0): give your own address "
        "(e.g. 203.0.113.7/32), or pass --allow-anywhere (allow_anywhere in the job config) if you mean it.\n"
    )
    # Refused before any AWS call: nothing was created.
    assert not cluster_exists(infra["cluster"]) and not role_exists(infra["role"])

    rc, out, err = cli(capsys, "up", "--allow-cidr", "0.0.0.0/0", "--allow-anywhere", "--poll", "0")
    assert rc == 0, err
    assert f"ingress: port {infra['port']} opened to 0.0.0.0/0" in out
    assert cli(capsys, "down", "--poll", "0")[0] == 0
    assert not cluster_exists(infra["cluster"])


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("203.0.113.7/24", "'203.0.113.7/24' has host bits set: did you mean 203.0.113.0/24?"),
        ("not-an-address", "'not-an-address' is not a CIDR block such as 203.0.113.7/32."),
    ],
)
def test_malformed_cidr_is_one_sentence(infra, capsys, cidr, message):
    rc, out, err = cli(capsys, "up", "--allow-cidr", cidr)
    assert (rc, err) == (1, f"error: {message}\n")
    assert not role_exists(infra["role"])


def _no_aws_credentials(monkeypatch, tmp_path) -> None:
    """No credentials in the environment, and nothing else in boto3's chain may answer: no
    files, no instance metadata."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_credentials(infra, capsys, monkeypatch, tmp_path):
    _no_aws_credentials(monkeypatch, tmp_path)
    expected = (
        "error: No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
        "or KEY and SECRET in dwh.cfg's [AWS] section.\n"
    )
    for command in ("up", "status", "down"):
        rc, out, err = cli(capsys, command)
        assert (rc, err) == (1, expected), command
        assert "Traceback" not in out + err


def test_dwh_cfg_keys_are_used_when_the_environment_has_none(infra, capsys, monkeypatch, tmp_path):
    _no_aws_credentials(monkeypatch, tmp_path)
    cfg = tmp_path / "dwh.cfg"
    cfg.write_text("[AWS]\nKEY=AKIDFROMDWHCFG\nSECRET=secret-from-dwh-cfg\n")
    rc, out, err = cli(capsys, "status", "--dwh-cfg", str(cfg))
    assert rc == 0, err
    assert f"cluster {infra['cluster']}: none" in out
    assert "secret-from-dwh-cfg" not in out + err


def test_a_name_taken_by_someone_elses_cluster(infra, capsys):
    boto3.client("redshift").create_cluster(
        ClusterIdentifier=infra["cluster"],
        ClusterType="single-node",
        NodeType="dc2.large",
        MasterUsername="someone",
        MasterUserPassword="Someone-Else-1",
    )
    rc, out, err = cli(capsys, "up", "--poll", "0")
    assert rc == 1
    assert err == (
        f"error: The cluster identifier '{infra['cluster']}' is already taken by a cluster sparkify did not "
        "create: choose another with SPARKIFY_REDSHIFT_CLUSTER_ID (or DWH_CLUSTER_IDENTIFIER in dwh.cfg).\n"
    )
    rc, out, err = cli(capsys, "status")
    assert rc == 0 and f"cluster {infra['cluster']}: available (not created by sparkify)" in out
    rc, out, err = cli(capsys, "down", "--poll", "0")
    assert rc == 1
    assert err == (
        f"error: The cluster {infra['cluster']} was not created by sparkify, so `down` leaves it alone: check "
        "SPARKIFY_REDSHIFT_CLUSTER_ID (or DWH_CLUSTER_IDENTIFIER in dwh.cfg).\n"
    )
    assert cluster_exists(infra["cluster"])  # untouched
    boto3.client("redshift").delete_cluster(ClusterIdentifier=infra["cluster"], SkipFinalClusterSnapshot=True)


def test_a_role_name_taken_by_someone_else(infra, capsys):
    iam = boto3.client("iam")
    iam.create_role(
        RoleName=infra["role"], AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}'
    )
    rc, out, err = cli(capsys, "up", "--poll", "0")
    assert rc == 1
    assert err == (
        f"error: An IAM role named '{infra['role']}' already exists and was not created by sparkify: choose "
        "another name with SPARKIFY_REDSHIFT_ROLE_NAME (or DWH_IAM_ROLE_NAME in dwh.cfg).\n"
    )
    assert not cluster_exists(infra["cluster"])
    rc, out, err = cli(capsys, "down", "--poll", "0")
    assert rc == 0 and f"role {infra['role']}: not created by sparkify, left alone" in out
    assert role_exists(infra["role"])
    iam.delete_role(RoleName=infra["role"])


def test_down_keeps_a_final_snapshot_when_asked(infra, capsys):
    assert cli(capsys, "up", "--poll", "0")[0] == 0
    snapshot = f"{infra['cluster']}-final"
    rc, out, err = cli(capsys, "down", "--final-snapshot", snapshot, "--poll", "0")
    assert rc == 0, err
    assert f"final snapshot {snapshot} kept" in out
    snaps = boto3.client("redshift").describe_cluster_snapshots(SnapshotIdentifier=snapshot)["Snapshots"]
    assert [s["ClusterIdentifier"] for s in snaps] == [infra["cluster"]]
    assert not cluster_exists(infra["cluster"])


def test_password_never_reaches_output_or_logs(infra, capsys, caplog):
    # botocore logs every request body at DEBUG; create_cluster's carries the master password.
    caplog.set_level(logging.DEBUG)
    rc, out, err = cli(capsys, "up", "--allow-cidr", "192.0.2.1/32", "--poll", "0")
    assert rc == 0, err
    assert any(r.name.startswith("botocore") and r.levelno == logging.DEBUG for r in caplog.records), (
        "DEBUG logging was live, so a leak would have been seen"
    )
    rc2, out2, err2 = cli(capsys, "status")
    rc3, out3, err3 = cli(capsys, "down", "--poll", "0")
    assert (rc2, rc3) == (0, 0)
    everything = out + err + out2 + err2 + out3 + err3 + caplog.text
    assert PASSWORD not in everything
    assert repr(load_settings()).count(PASSWORD) == 0


# --- Errors moto cannot produce: Stubber on real boto3 clients ------------------------------


def stubbed_clients() -> tuple[ops.Clients, dict[str, Stubber]]:
    kwargs = {"region_name": "us-west-2", "aws_access_key_id": "x", "aws_secret_access_key": "y"}
    clients = ops.Clients(
        iam=boto3.client("iam", **kwargs),
        redshift=boto3.client("redshift", **kwargs),
        ec2=boto3.client("ec2", **kwargs),
    )
    stubs = {name: Stubber(getattr(clients, name)) for name in ("iam", "redshift", "ec2")}
    for stub in stubs.values():
        stub.activate()
    return clients, stubs


def settings_for_stubs(tmp_path):
    return resolve_settings(
        {
            "cluster_identifier": "sparkify",
            "role_name": "sparkify-role",
            "db_password": PASSWORD,
            "lake_url": "s3://lake-bucket/lake",
            "state_path": str(tmp_path / "redshift.json"),
        }
    )


# The stubbed answer of describe_clusters when there is no such cluster.
NO_CLUSTER = {"service_error_code": "ClusterNotFound", "service_message": "Cluster sparkify not found."}

ROLE = {
    "Path": "/",
    "RoleName": "sparkify-role",
    "RoleId": "AROAEXAMPLEEXAMPLE01",
    "Arn": "arn:aws:iam::123456789012:role/sparkify-role",
    "CreateDate": "2024-01-01T00:00:00Z",
}


@pytest.mark.parametrize("code", ["ClusterQuotaExceeded", "NumberOfNodesQuotaExceeded"])
def test_cluster_quota(tmp_path, code):
    clients, stubs = stubbed_clients()
    stubs["redshift"].add_client_error("describe_clusters", **NO_CLUSTER)
    stubs["iam"].add_client_error("get_role", service_error_code="NoSuchEntity", service_message="no role")
    stubs["iam"].add_response("create_role", {"Role": ROLE})
    stubs["iam"].add_response("put_role_policy", {})
    stubs["redshift"].add_client_error("describe_clusters", **NO_CLUSTER)
    stubs["redshift"].add_client_error("create_cluster", service_error_code=code, service_message="quota")
    with pytest.raises(InfraError) as caught:
        ops.up(clients, settings_for_stubs(tmp_path), report=lambda line: None)
    assert str(caught.value) == (
        f"AWS refused to create the Redshift cluster sparkify because an account quota is reached ({code}): "
        "delete unused clusters or request a higher quota in the Service Quotas console."
    )


def test_no_permission(tmp_path):
    clients, stubs = stubbed_clients()
    stubs["redshift"].add_client_error("describe_clusters", **NO_CLUSTER)
    stubs["iam"].add_client_error(
        "get_role",
        service_error_code="AccessDenied",
        service_message="User: arn:aws:iam::123456789012:user/dev is not authorized to perform: iam:GetRole",
        http_status_code=403,
    )
    with pytest.raises(InfraError) as caught:
        ops.up(clients, settings_for_stubs(tmp_path), report=lambda line: None)
    assert str(caught.value) == (
        "Your AWS identity is not allowed to read the IAM role sparkify-role (AccessDenied): it needs "
        "iam:GetRole; docs/infra.md lists every permission `sparkify infra` uses."
    )


def test_waiting_reports_progress_until_available(tmp_path):
    clients, stubs = stubbed_clients()
    base = {"ClusterIdentifier": "sparkify", "Tags": [{"Key": "managed-by", "Value": "sparkify_assets"}]}
    stubs["redshift"].add_response("describe_clusters", {"Clusters": [{**base, "ClusterStatus": "creating"}]})
    stubs["redshift"].add_response("describe_clusters", {"Clusters": [{**base, "ClusterStatus": "creating"}]})
    stubs["redshift"].add_response(
        "describe_clusters",
        {
            "Clusters": [
                {**base, "ClusterStatus": "available", "Endpoint": {"Address": "h.example", "Port": 5439}}
            ]
        },
    )
    lines: list[str] = []
    cluster = ops.wait_cluster(
        clients, settings_for_stubs(tmp_path), lines.append, timeout=60, interval=0, goal=ops.AVAILABLE
    )
    assert cluster["Endpoint"]["Address"] == "h.example"
    assert [line.split(",")[0] for line in lines] == [
        "cluster sparkify: creating",
        "cluster sparkify: creating",
        "cluster sparkify: available after 0s",
    ]
    stubs["redshift"].assert_no_pending_responses()


def test_an_existing_cluster_without_the_role_gets_it_attached(tmp_path):
    # moto does not implement ModifyClusterIamRoles; the Stubber checks the request we send.
    clients, stubs = stubbed_clients()
    cluster = {
        "ClusterIdentifier": "sparkify",
        "ClusterStatus": "available",
        "Endpoint": {"Address": "h.example", "Port": 5439},
        "IamRoles": [],
        "Tags": [{"Key": "managed-by", "Value": "sparkify_assets"}],
    }
    stubs["redshift"].add_response("describe_clusters", {"Clusters": [cluster]})
    stubs["redshift"].add_response(
        "modify_cluster_iam_roles",
        {"Cluster": cluster},
        {"ClusterIdentifier": "sparkify", "AddIamRoles": [ROLE["Arn"]]},
    )
    stubs["redshift"].add_response("describe_clusters", {"Clusters": [cluster]})
    lines: list[str] = []
    ops.ensure_cluster(clients, settings_for_stubs(tmp_path), ROLE["Arn"], False, lines.append, 60, 0)
    assert "cluster sparkify: role attached" in lines
    stubs["redshift"].assert_no_pending_responses()


# --- Settings -------------------------------------------------------------------------------


def test_seed_dwh_cfg_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    cfg = tmp_path / "dwh.cfg"
    cfg.write_text(
        SEED_CFG.format(
            password="'Cfg-Pass-w0rd'",
            key="AKIDX",
            secret="s3cr3t",
            role="cfg-role",
            cluster="cfg-cluster",
            port=5439,
        )
    )
    monkeypatch.chdir(tmp_path)
    env = {"SPARKIFY_DWH_CFG": str(cfg)}
    settings = load_settings(env)
    assert (settings.cluster_identifier, settings.cluster_type, settings.num_nodes) == (
        "cfg-cluster",
        "multi-node",
        4,
    )
    assert (settings.node_type, settings.db_name, settings.db_user, settings.port) == (
        "dc2.large",
        "dwh_db",
        "dwh_user",
        5439,
    )
    assert (settings.role_name, settings.region, settings.buckets) == (
        "cfg-role",
        "us-west-2",
        ("udacity-dend",),
    )
    assert settings.db_password == "Cfg-Pass-w0rd"  # quotes removed, as the classic scripts wrote them
    assert "Cfg-Pass-w0rd" not in repr(settings)

    env |= {
        "SPARKIFY_REDSHIFT_CLUSTER_ID": "env-cluster",
        "SPARKIFY_WAREHOUSE_PASSWORD": "Env-Pass-w0rd",
        "SPARKIFY_REDSHIFT_NUM_NODES": "2",
        "SPARKIFY_LAKE_URL": "s3://env-bucket/lake",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    settings = load_settings(env)
    assert (settings.cluster_identifier, settings.num_nodes, settings.region) == (
        "env-cluster",
        2,
        "eu-west-1",
    )
    assert settings.db_password == "Env-Pass-w0rd"
    assert settings.buckets == ("env-bucket", "udacity-dend")
    assert settings.db_name == "dwh_db"  # not in the environment: still from the file


def test_defaults_without_any_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert (settings.cluster_identifier, settings.cluster_type, settings.node_type, settings.num_nodes) == (
        "sparkify",
        "single-node",
        "dc2.large",
        1,
    )
    assert (settings.db_name, settings.db_user, settings.port) == ("sparkify", "sparkify", 5439)
    assert (settings.role_name, settings.region, settings.buckets) == (
        "sparkify-redshift-lake-read",
        "us-west-2",
        (),
    )
    assert str(settings.state_path) == ".sparkify/redshift.json"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"cluster_type": "single-node", "num_nodes": "4"},
            "A single-node cluster has 1 node, but 4 were asked for: set the cluster type to multi-node.",
        ),
        (
            {"cluster_type": "multi-node", "num_nodes": "1"},
            "A multi-node cluster needs at least 2 nodes: raise the number of nodes or use single-node.",
        ),
        ({"port": "80"}, "The Redshift port must be a whole number from 1150 to 65535, not '80'."),
        (
            {"cluster_identifier": "1cluster"},
            "The cluster identifier '1cluster' is invalid: use 1 to 63 lower-case letters, digits and single "
            "hyphens, starting with a letter and not ending with a hyphen.",
        ),
    ],
)
def test_settings_mistakes_are_one_sentence(tmp_path, monkeypatch, given, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InfraError) as caught:
        resolve_settings(given)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (
            None,
            "No Redshift master password: set SPARKIFY_WAREHOUSE_PASSWORD (or DWH_DB_PASSWORD in dwh.cfg).",
        ),
        (
            "alllowercase1",
            "The Redshift master password must be 8 to 64 characters with an upper-case letter, a lower-case "
            "letter and a digit.",
        ),
        (
            "Has@Sign123",
            "The Redshift master password may not contain spaces, quotes, backslashes, slashes, '@' or "
            "non-ASCII characters.",
        ),
    ],
)
def test_password_rules(tmp_path, monkeypatch, password, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InfraError) as caught:
        resolve_settings({"db_password": password}).require_password()
    assert str(caught.value) == message
    if password:
        assert password not in str(caught.value)


def test_cidr_forms():
    assert check_cidr("203.0.113.7") == "203.0.113.7/32"
    assert check_cidr("2001:db8::/32") == "2001:db8::/32"
    assert check_cidr("0.0.0.0/0", allow_anywhere=True) == "0.0.0.0/0"
    with pytest.raises(InfraError):
        check_cidr("::/0")


def test_saved_file_errors_and_absence(tmp_path):
    assert saved_warehouse_url(tmp_path / "missing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InfraError) as caught:
        saved_warehouse_url(bad)
    assert (
        str(caught.value)
        == f"{bad} is not a valid saved endpoint file: delete it and run `sparkify infra up`."
    )


def test_importing_needs_no_credentials_or_network(tmp_path):
    # A clean environment: no AWS variables, no home directory files, an endpoint nobody listens on.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    code = (
        "from sparkify_assets.definitions import defs;"
        "print(sorted(k for k in defs.resources if k.startswith(('aws_', 'redshift_'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['aws_ec2', 'aws_iam', 'aws_redshift', 'redshift_cluster']"


def test_the_committed_dwh_cfg_example_reads_as_documented(tmp_path, monkeypatch):
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "dwh.cfg.example"
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"SPARKIFY_DWH_CFG": str(example)})
    assert (settings.cluster_identifier, settings.cluster_type, settings.num_nodes, settings.node_type) == (
        "sparkify",
        "single-node",
        1,
        "dc2.large",
    )
    assert (settings.db_name, settings.db_user, settings.port, settings.region) == (
        "sparkify",
        "sparkify",
        5439,
        "us-west-2",
    )
    assert (settings.role_name, settings.buckets) == ("sparkify-redshift-lake-read", ("udacity-dend",))
    assert settings.db_password is None  # the example holds no secret


def test_down_on_nothing_in_a_region_without_a_default_vpc(tmp_path):
    # moto gives every region a default VPC; accounts without one exist, so the Stubber plays it.
    clients, stubs = stubbed_clients()
    stubs["redshift"].add_client_error("describe_clusters", **NO_CLUSTER)
    stubs["iam"].add_client_error("get_role", service_error_code="NoSuchEntity", service_message="no role")
    stubs["ec2"].add_response("describe_vpcs", {"Vpcs": []})
    lines: list[str] = []
    assert ops.down(clients, settings_for_stubs(tmp_path), report=lines.append, interval=0) == []
    assert lines[-1] == "Nothing to tear down: no cluster sparkify, no role sparkify-role, no ingress rule."
