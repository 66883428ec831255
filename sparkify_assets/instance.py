"""The Dagster instance `sparkify run` records into: the one `dagster dev` opens in the same folder.

With DAGSTER_HOME set, that is $DAGSTER_HOME's instance. Without it, `dagster dev` reads the
folder's dagster.yaml, whose storage settings keep runs, event logs, asset history and sensor
cursors in `.sparkify/dagster/` (relative to the folder, like the default warehouse), and puts
what that file does not configure in a temporary folder. `project_instance` opens the same
instance the same way, so the UI shows every run `sparkify run` made. A folder without
dagster.yaml gets an in-memory instance, as `dagster dev` there would get a temporary one.

Several processes may use the instance at once (the webserver, the daemon, run workers and
`sparkify run`): it is SQLite, which serialises writers with its own file locks.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from dagster import DagsterInstance

PROJECT_YAML = "dagster.yaml"
# The settings of dagster.yaml that say where the instance's files live (relative paths).
STORAGE_SETTINGS = ("storage", "local_artifact_storage", "compute_logs")


def project_settings(folder: Path | str | None = None) -> dict | None:
    """The instance settings of `folder`'s dagster.yaml (default: the working directory), or None
    when it has none."""
    path = Path(folder or os.getcwd()) / PROJECT_YAML
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text()) or {}


def settings_without_storage(settings: dict) -> dict:
    """The project's settings for a DAGSTER_HOME of its own: its storage stays under that home
    (the project's relative paths would resolve against whatever folder a process starts in)."""
    return {k: v for k, v in settings.items() if k not in STORAGE_SETTINGS}


@contextmanager
def project_instance() -> Iterator[DagsterInstance]:
    """The instance `dagster dev` started in the working directory uses (dagster.yaml's paths
    are relative to it)."""
    if os.environ.get("DAGSTER_HOME"):
        with DagsterInstance.get() as instance:
            yield instance
        return
    settings = project_settings()
    if settings is None:
        with DagsterInstance.ephemeral() as instance:
            yield instance
        return
    # As `dagster dev` does: the folder's settings over a temporary base folder (which holds only
    # what dagster.yaml leaves unconfigured), removed afterwards.
    with tempfile.TemporaryDirectory(prefix=".tmp_sparkify_instance_") as base:
        with DagsterInstance.local_temp(tempdir=base, overrides=settings) as instance:
            yield instance
