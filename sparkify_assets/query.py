"""`sparkify query`: analytics results and ad-hoc SQL in the terminal."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `query` subcommand to the `sparkify` parser."""
