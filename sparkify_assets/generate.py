"""`sparkify generate`: realistic Sparkify lakes of any size."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `generate` subcommand to the `sparkify` parser."""
