"""What the infrastructure commands need to know, and where `up` leaves the endpoint.

Every setting comes from an environment variable or, failing that, from a seed-style `dwh.cfg`
(the file the classic Sparkify scripts read), then from a default: the environment wins. The
password and the AWS keys are secrets: they are read here but never written, printed or logged.

`up` saves the cluster's endpoint and role (never the password) in `.sparkify/redshift.json`,
which `saved_warehouse_url()` and `saved_iam_role()` turn back into warehouse configuration.

This module imports nothing heavy (no boto3, no Dagster), so the package stays cheap to import.
"""

from __future__ import annotations

import configparser
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sparkify_assets.errors import UserError, first_line


class InfraError(UserError, ValueError):
    """A problem the user can act on, in one sentence that never holds a secret (a UserError, so
    the `sparkify` command prints it as one line; still a ValueError, as it always was)."""


DWH_CFG_ENV = "SPARKIFY_DWH_CFG"
STATE_ENV = "SPARKIFY_REDSHIFT_STATE"
DEFAULT_STATE_PATH = Path(".sparkify") / "redshift.json"
DEFAULT_DWH_CFG = Path("dwh.cfg")

# setting -> (environment variable, dwh.cfg (section, key) fallbacks in order, default)
SOURCES: dict[str, tuple[str, tuple[tuple[str, str], ...], str | None]] = {
    "cluster_identifier": ("SPARKIFY_REDSHIFT_CLUSTER_ID", (("DWH", "DWH_CLUSTER_IDENTIFIER"),), "sparkify"),
    "cluster_type": ("SPARKIFY_REDSHIFT_CLUSTER_TYPE", (("DWH", "DWH_CLUSTER_TYPE"),), None),
    "node_type": ("SPARKIFY_REDSHIFT_NODE_TYPE", (("DWH", "DWH_NODE_TYPE"),), "dc2.large"),
    "num_nodes": ("SPARKIFY_REDSHIFT_NUM_NODES", (("DWH", "DWH_NUM_NODES"),), "1"),
    "db_name": ("SPARKIFY_REDSHIFT_DB", (("DWH", "DWH_DB"), ("CLUSTER", "DB_NAME")), "sparkify"),
    "db_user": ("SPARKIFY_REDSHIFT_USER", (("DWH", "DWH_DB_USER"), ("CLUSTER", "DB_USER")), "sparkify"),
    "db_password": (
        "SPARKIFY_WAREHOUSE_PASSWORD",
        (("DWH", "DWH_DB_PASSWORD"), ("CLUSTER", "DB_PASSWORD")),
        None,
    ),
    "port": ("SPARKIFY_REDSHIFT_PORT", (("DWH", "DWH_PORT"), ("CLUSTER", "DB_PORT")), "5439"),
    "role_name": (
        "SPARKIFY_REDSHIFT_ROLE_NAME",
        (("DWH", "DWH_IAM_ROLE_NAME"),),
        "sparkify-redshift-lake-read",
    ),
    "region": ("AWS_REGION", (("AWS", "REGION"),), "us-west-2"),
    "lake_url": ("SPARKIFY_LAKE_URL", (), None),
    "state_path": (STATE_ENV, (), str(DEFAULT_STATE_PATH)),
}
SETTING_NAMES = tuple(SOURCES)


@dataclass(frozen=True)
class InfraSettings:
    """The resolved settings; `repr` leaves the password out so a printed object leaks nothing."""

    cluster_identifier: str
    cluster_type: str
    node_type: str
    num_nodes: int
    db_name: str
    db_user: str
    port: int
    role_name: str
    region: str
    buckets: tuple[str, ...]
    state_path: Path
    db_password: str | None = field(default=None, repr=False)

    def require_password(self) -> str:
        """The master password, checked against Redshift's rules before any AWS call."""
        pw = self.db_password
        if not pw:
            raise InfraError(
                "No Redshift master password: set SPARKIFY_WAREHOUSE_PASSWORD (or DWH_DB_PASSWORD in dwh.cfg)."
            )
        if not (8 <= len(pw) <= 64) or not (
            re.search(r"[A-Z]", pw) and re.search(r"[a-z]", pw) and re.search(r"[0-9]", pw)
        ):
            raise InfraError(
                "The Redshift master password must be 8 to 64 characters with an upper-case letter, "
                "a lower-case letter and a digit."
            )
        if re.search(r"[\s'\"\\/@]", pw) or not pw.isascii():
            raise InfraError(
                "The Redshift master password may not contain spaces, quotes, backslashes, slashes, '@' "
                "or non-ASCII characters."
            )
        return pw

    def require_buckets(self) -> tuple[str, ...]:
        if not self.buckets:
            raise InfraError(
                "No S3 lake to give the cluster read access to: set SPARKIFY_LAKE_URL=s3://bucket/prefix "
                "(or LOG_DATA and SONG_DATA in dwh.cfg's [S3] section)."
            )
        return self.buckets


def _unquote(value: str) -> str:
    value = value.strip()
    # The classic dwh.cfg files often quote their values: DWH_DB_PASSWORD='Passw0rd'.
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def dwh_cfg_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The dwh.cfg to read: SPARKIFY_DWH_CFG, else ./dwh.cfg when it exists, else none."""
    environ = os.environ if environ is None else environ
    named = environ.get(DWH_CFG_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise InfraError(f"{DWH_CFG_ENV} names {path}, which is not a file.")
        return path
    return DEFAULT_DWH_CFG if DEFAULT_DWH_CFG.is_file() else None


def read_dwh_cfg(path: str | Path | None) -> dict[tuple[str, str], str]:
    """{(SECTION, KEY): value} of a seed-style dwh.cfg, upper-cased, quotes removed, empties dropped."""
    if path is None:
        return {}
    # No interpolation: a '%' in a password must stay a '%'.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as exc:
        raise InfraError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except configparser.Error as exc:
        raise InfraError(f"{path} is not a valid dwh.cfg ({first_line(exc)}).") from None
    out = {}
    for section in parser.sections():
        for key, value in parser.items(section):
            value = _unquote(value)
            if value:
                out[(section.upper(), key.upper())] = value
    return out


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings given by environment variables (AWS_DEFAULT_REGION stands in for AWS_REGION)."""
    environ = os.environ if environ is None else environ
    out = {name: environ[var] for name, (var, _, _) in SOURCES.items() if environ.get(var)}
    if "region" not in out and environ.get("AWS_DEFAULT_REGION"):
        out["region"] = environ["AWS_DEFAULT_REGION"]
    return out


def buckets_of(urls: list[str]) -> tuple[str, ...]:
    """The distinct S3 buckets named by s3:// URLs, in order; other URLs are ignored."""
    found: list[str] = []
    for url in urls:
        parts = urlsplit(url.strip())
        if parts.scheme.lower() in ("s3", "s3a") and parts.netloc and parts.netloc not in found:
            found.append(parts.netloc)
    return tuple(found)


def _int(value: str, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise InfraError(f"The {what} must be a whole number from {low} to {high}, not {value!r}.")
    return number


def _picker(given: Mapping[str, str | None], cfg: Mapping) -> Callable[[str], str | None]:
    """A setting by name: from `given` when set there, else from dwh.cfg's keys, else its default."""

    def pick(name: str) -> str | None:
        value = given.get(name)
        if value:
            return value.strip()
        _, keys, default = SOURCES[name]
        for key in keys:
            if key in cfg:
                return cfg[key]
        return default

    return pick


def _matching(value: str, pattern: str, mistake: str) -> str:
    """`value` when it matches `pattern` whole, else an InfraError that names it and says `mistake`."""
    if not re.fullmatch(pattern, value):
        raise InfraError(mistake.format(value=repr(value)))
    return value


def _cluster_identifier(identifier: str) -> str:
    if not re.fullmatch(r"[a-z](?!.*--)[a-z0-9-]{0,62}", identifier) or identifier.endswith("-"):
        raise InfraError(
            f"The cluster identifier {identifier!r} is invalid: use 1 to 63 lower-case letters, digits and "
            "single hyphens, starting with a letter and not ending with a hyphen."
        )
    return identifier


def _cluster_shape(cluster_type: str | None, nodes: str | None) -> tuple[str, int]:
    """The cluster type and node count, which must agree (single-node is 1 node, multi-node 2+)."""
    num_nodes = _int(nodes or "1", "number of nodes", 1, 128)
    cluster_type = (cluster_type or ("multi-node" if num_nodes > 1 else "single-node")).lower()
    if cluster_type not in ("single-node", "multi-node"):
        raise InfraError(f"The cluster type must be single-node or multi-node, not {cluster_type!r}.")
    if cluster_type == "single-node" and num_nodes != 1:
        raise InfraError(
            f"A single-node cluster has 1 node, but {num_nodes} were asked for: set the cluster type to multi-node."
        )
    if cluster_type == "multi-node" and num_nodes < 2:
        raise InfraError(
            "A multi-node cluster needs at least 2 nodes: raise the number of nodes or use single-node."
        )
    return cluster_type, num_nodes


def resolve_settings(given: Mapping[str, str | None], cfg_path: str | Path | None = None) -> InfraSettings:
    """Settings from `given` (environment or resource config), then dwh.cfg, then defaults; validated."""
    cfg = read_dwh_cfg(cfg_path)
    pick = _picker(given, cfg)
    identifier = _cluster_identifier((pick("cluster_identifier") or "").lower())
    cluster_type, num_nodes = _cluster_shape(pick("cluster_type"), pick("num_nodes"))
    names = "use lower-case letters, digits and '_'."
    db_name = _matching(
        (pick("db_name") or "").lower(),
        r"[a-z_][a-z0-9_$]{0,63}",
        "The database name {value} is invalid: " + names,
    )
    db_user = _matching(
        (pick("db_user") or "").lower(),
        r"[a-z_][a-z0-9_$]{0,127}",
        "The database user {value} is invalid: " + names,
    )
    role_name = _matching(
        pick("role_name") or "",
        r"[\w+=,.@-]{1,64}",
        "The IAM role name {value} is invalid: use up to 64 letters, digits and +=,.@_-.",
    )
    lake_urls = [given["lake_url"]] if given.get("lake_url") else []
    lake_urls += [cfg[("S3", key)] for key in ("LOG_DATA", "SONG_DATA", "LOG_JSONPATH") if ("S3", key) in cfg]
    return InfraSettings(
        cluster_identifier=identifier,
        cluster_type=cluster_type,
        node_type=pick("node_type") or "",
        num_nodes=num_nodes,
        db_name=db_name,
        db_user=db_user,
        port=_int(pick("port") or "5439", "Redshift port", 1150, 65535),
        role_name=role_name,
        region=pick("region") or "us-west-2",
        buckets=buckets_of(lake_urls),
        state_path=Path(pick("state_path") or DEFAULT_STATE_PATH).expanduser(),
        db_password=pick("db_password"),
    )


def load_settings(environ: Mapping[str, str] | None = None) -> InfraSettings:
    """Settings from the environment and the dwh.cfg it points at (or ./dwh.cfg)."""
    return resolve_settings(settings_from_env(environ), dwh_cfg_path(environ))


def cfg_credentials(cfg_path: str | Path | None) -> tuple[str, str] | None:
    """dwh.cfg's [AWS] KEY and SECRET, when it holds both."""
    cfg = read_dwh_cfg(cfg_path)
    key, secret = cfg.get(("AWS", "KEY")), cfg.get(("AWS", "SECRET"))
    return (key, secret) if key and secret else None


def check_cidr(cidr: str, allow_anywhere: bool = False) -> str:
    """The CIDR in canonical form (a bare address becomes /32 or /128); refuses the whole internet."""
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise InfraError(f"{cidr!r} is not a CIDR block such as 203.0.113.7/32.") from None
        raise InfraError(f"{cidr!r} has host bits set: did you mean {loose}?") from None
    if net.prefixlen == 0 and not allow_anywhere:
        raise InfraError(
            f"Refusing to open the cluster's port to the whole internet ({net}): give your own address "
            "(e.g. 203.0.113.7/32), or pass --allow-anywhere (allow_anywhere in the job config) if you mean it."
        )
    return str(net)


# --- Where `up` leaves the endpoint ----------------------------------------------------------

SAVED_KEYS = ("host", "port", "db", "user", "iam_role_arn", "region")


def state_path(path: str | Path | None = None) -> Path:
    if path is not None:
        return Path(path).expanduser()
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_PATH).expanduser()


def save_state(state: Mapping[str, object], path: str | Path | None = None) -> Path:
    """Write the endpoint file; refuses any key that could hold a secret."""
    assert not any("password" in key or "secret" in key for key in state), "secrets are never saved"
    target = state_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(dict(state), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(target)  # atomic: a reader never sees half a file
    return target


def read_state(path: str | Path | None = None) -> dict | None:
    """The saved endpoint file, or None when `up` has not written one."""
    target = state_path(path)
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise InfraError(
            f"{target} is not a valid saved endpoint file: delete it and run `sparkify infra up`."
        ) from None
    if not isinstance(data, dict) or any(key not in data for key in SAVED_KEYS):
        raise InfraError(
            f"{target} is not a valid saved endpoint file: delete it and run `sparkify infra up`."
        )
    return data


def forget_state(path: str | Path | None = None) -> bool:
    target = state_path(path)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    return True


def saved_warehouse_url(path: str | Path | None = None) -> str | None:
    """`redshift://user@host:port/db` of the cluster `up` saved, or None; the password is never in it."""
    state = read_state(path)
    if state is None:
        return None
    return f"redshift://{state['user']}@{state['host']}:{state['port']}/{state['db']}"


def saved_iam_role(path: str | Path | None = None) -> str | None:
    """The ARN of the role `up` attached to the cluster (for COPY … IAM_ROLE), or None."""
    state = read_state(path)
    return None if state is None else state["iam_role_arn"]
