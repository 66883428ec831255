"""`sparkify infra up|status|down`: the IAM role and Redshift cluster from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from sparkify_assets.infra.settings import InfraError


def _open(args: argparse.Namespace):
    """Settings and boto3 clients, from the same resources the Dagster jobs use."""
    from dagster import build_resources

    from sparkify_assets.infra.jobs import make_clients
    from sparkify_assets.infra.resources import build_infra_resources

    resources = build_infra_resources(dwh_cfg=args.dwh_cfg, state_path=args.state_file)
    with build_resources(resources) as r:
        settings = r.redshift_cluster.settings()
        return settings, make_clients(r.aws_iam, r.aws_redshift, r.aws_ec2, settings)


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    from sparkify_assets.infra import ops

    settings, clients = _open(args)
    ops.up(clients, settings, args.allow_cidr, args.allow_anywhere, _say, args.timeout * 60, args.poll)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sparkify_assets.infra import ops

    settings, clients = _open(args)
    for line in ops.status(clients, settings).lines():
        print(line)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from sparkify_assets.infra import ops

    settings, clients = _open(args)
    ops.down(clients, settings, args.final_snapshot, _say, args.timeout * 60, args.poll)
    return 0


def _guarded(func: Callable[[argparse.Namespace], int], action: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        from sparkify_assets.infra.errors import explain

        try:
            return func(args)
        except (BotoCoreError, ClientError) as exc:
            error: InfraError = explain(exc, action)
        except InfraError as exc:
            error = exc
        print(f"error: {error}", file=sys.stderr)
        return 1

    return run


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `infra` subcommand to the `sparkify` parser."""
    infra = sub.add_parser(
        "infra",
        help="create, inspect or delete the IAM role and Redshift cluster",
        description="Settings come from SPARKIFY_REDSHIFT_* variables, then dwh.cfg (see docs/infra.md).",
    )
    commands = infra.add_subparsers(dest="infra_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dwh-cfg", metavar="PATH", help="a seed-style dwh.cfg (default: ./dwh.cfg if present)"
    )
    common.add_argument(
        "--state-file", metavar="PATH", help="where the endpoint is saved (default .sparkify/redshift.json)"
    )

    up = commands.add_parser(
        "up", parents=[common], help="create or complete the role, cluster and ingress rule"
    )
    up.add_argument(
        "--allow-cidr",
        action="append",
        default=[],
        metavar="CIDR",
        help="open the cluster's port to this CIDR block, e.g. 203.0.113.7/32 (repeatable)",
    )
    up.add_argument(
        "--allow-anywhere", action="store_true", help="permit --allow-cidr 0.0.0.0/0 (the whole internet)"
    )
    up.add_argument("--timeout", type=float, default=30, metavar="MIN", help="minutes to wait (default 30)")
    up.add_argument("--poll", type=float, default=15, metavar="SEC", help=argparse.SUPPRESS)
    up.set_defaults(func=_guarded(cmd_up, "provision the Redshift warehouse"))

    status = commands.add_parser(
        "status", parents=[common], help="cluster state, endpoint, role, open ingress"
    )
    status.set_defaults(func=_guarded(cmd_status, "read the Redshift warehouse's state"))

    down = commands.add_parser("down", parents=[common], help="delete the cluster, role and ingress rule")
    down.add_argument(
        "--final-snapshot", metavar="NAME", help="keep a final snapshot under this name (default: none)"
    )
    down.add_argument("--timeout", type=float, default=30, metavar="MIN", help="minutes to wait (default 30)")
    down.add_argument("--poll", type=float, default=15, metavar="SEC", help=argparse.SUPPRESS)
    down.set_defaults(func=_guarded(cmd_down, "tear down the Redshift warehouse"))
