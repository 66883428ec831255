"""Where the warehouse and lake settings come from: environment, then the cluster `sparkify infra
up` saved, then a seed-style dwh.cfg, then the embedded default; passwords never enter the config."""

from __future__ import annotations

from dagster._serdes import serialize_value

from sparkify_assets import config
from sparkify_assets.infra.settings import save_state
from sparkify_assets.resources.warehouse import RedshiftWarehouse

CFG = """
[CLUSTER]
HOST='dwhcluster.abc123.us-west-2.redshift.amazonaws.com'
DB_NAME='dwh'
DB_USER='dwhuser'
DB_PASSWORD='Cfg-Pa55-never-shown'
DB_PORT='5439'

[IAM_ROLE]
ARN='arn:aws:iam::123456789012:role/dwhRole'

[S3]
LOG_DATA='s3://udacity-dend/log_data'
LOG_JSONPATH='s3://udacity-dend/log_json_path.json'
SONG_DATA='s3://udacity-dend/song_data'
"""


def _clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for var in (
        "SPARKIFY_WAREHOUSE_URL",
        "SPARKIFY_WAREHOUSE_PASSWORD",
        "SPARKIFY_LAKE_URL",
        "SPARKIFY_REDSHIFT_IAM_ROLE",
        "SPARKIFY_LOG_JSONPATH",
        "SPARKIFY_DWH_CFG",
        "SPARKIFY_REDSHIFT_STATE",
    ):
        monkeypatch.delenv(var, raising=False)


def test_defaults_are_the_embedded_duckdb_and_the_sample(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    assert config.warehouse_resource().url == "duckdb://.sparkify/sparkify.duckdb"
    assert config.lake_resource().url == ""
    assert config.lake_resource().open().url.endswith("sparkify_assets/data/sparkify_sample")
    assert config.warehouse_kind() == "duckdb"


def test_seed_dwh_cfg_configures_redshift_without_exposing_the_password(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    (tmp_path / "dwh.cfg").write_text(CFG)
    wh = config.warehouse_resource()
    assert wh.url == "redshift://dwhuser@dwhcluster.abc123.us-west-2.redshift.amazonaws.com:5439/dwh"
    assert wh.iam_role == "arn:aws:iam::123456789012:role/dwhRole"
    assert wh.log_jsonpath == "s3://udacity-dend/log_json_path.json"
    assert config.lake_resource().url == "s3://udacity-dend"
    assert config.warehouse_kind() == "redshift"
    # The password is read from dwh.cfg when connecting, never stored in the resource's config.
    assert "Cfg-Pa55-never-shown" not in serialize_value(wh._get_non_default_public_field_values())
    opened = wh.open()
    assert isinstance(opened, RedshiftWarehouse)
    assert opened._password == "Cfg-Pa55-never-shown"
    assert opened.sslmode == "require"
    assert "Cfg-Pa55" not in opened.describe()


def test_saved_cluster_wins_over_dwh_cfg_and_env_wins_over_both(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    (tmp_path / "dwh.cfg").write_text(CFG)
    save_state(
        {
            "host": "sparkify.xyz.us-west-2.redshift.amazonaws.com",
            "port": 5439,
            "db": "sparkify",
            "user": "sparkify",
            "iam_role_arn": "arn:aws:iam::123456789012:role/sparkify-redshift",
            "region": "us-west-2",
        }
    )
    wh = config.warehouse_resource()
    assert wh.url == "redshift://sparkify@sparkify.xyz.us-west-2.redshift.amazonaws.com:5439/sparkify"
    assert wh.iam_role == "arn:aws:iam::123456789012:role/sparkify-redshift"

    monkeypatch.setenv("SPARKIFY_WAREHOUSE_URL", "postgresql://me@127.0.0.1:5432/dev")
    monkeypatch.setenv("SPARKIFY_WAREHOUSE_PASSWORD", "env-pw")
    wh = config.warehouse_resource()
    assert wh.url.get_value() == "postgresql://me@127.0.0.1:5432/dev"  # an EnvVar: the UI shows its name
    assert wh.password.env_var_name == "SPARKIFY_WAREHOUSE_PASSWORD"
    assert wh.dwh_cfg is None
    assert config.warehouse_kind() == "postgres"


def _opened_password(monkeypatch, tmp_path, cfg_text: str) -> str | None:
    _clean_env(monkeypatch, tmp_path)
    (tmp_path / "dwh.cfg").write_text(cfg_text)
    return config.warehouse_resource().open()._password


def test_dwh_cfg_password_is_read_in_infra_order(monkeypatch, tmp_path):
    # dwh.cfg.example leaves [CLUSTER] DB_PASSWORD empty and asks for [DWH] DWH_DB_PASSWORD, the
    # one `sparkify infra up` creates the cluster with: connecting must use that one first.
    dwh_only = CFG.replace("DB_PASSWORD='Cfg-Pa55-never-shown'", "DB_PASSWORD=") + (
        "\n[DWH]\nDWH_DB_PASSWORD='Dwh-Pa55-from-dwh'\n"
    )
    assert _opened_password(monkeypatch, tmp_path, dwh_only) == "Dwh-Pa55-from-dwh"
    both = CFG + "\n[DWH]\nDWH_DB_PASSWORD='Dwh-Pa55-from-dwh'\n"
    assert _opened_password(monkeypatch, tmp_path, both) == "Dwh-Pa55-from-dwh"
    # Only the classic scripts' key: still found.
    assert _opened_password(monkeypatch, tmp_path, CFG) == "Cfg-Pa55-never-shown"
