"""`sparkify infra up|status|down`."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `infra` subcommand to the `sparkify` parser."""
