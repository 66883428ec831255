"""Real `dagster dev` and real headless Chromium for the browser tests.

`dagster dev` runs in its own process group (a plain background child ignores SIGTERM/SIGINT,
DESIGN.md section 5) with a fresh DAGSTER_HOME and a throwaway DuckDB warehouse, so a test never
touches the developer's instance or warehouse; the group is always killed at the end, on failure
too. Chromium is Debian's (`/usr/bin/chromium`, driven by Playwright's bundled driver; no
`playwright install`), with a new profile, and can resolve no host but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sparkify_assets.instance import project_settings, settings_without_storage

# The checkout that holds workspace.yaml and dagster.yaml: derived from this file, because CI
# runs in a fresh clone somewhere else.
REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SPARKIFY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The browser may talk to the local webserver only: every other name fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
# Environment variables that would point `dagster dev` at something other than the sample lake
# and the test's own warehouse.
_SCRUBBED_ENV = ("SPARKIFY_LAKE_URL", "SPARKIFY_WAREHOUSE_PASSWORD", "DAGSTER_HOME")

T = TypeVar("T")


class UiTestError(AssertionError):
    """A wait in the browser test ran out; the message says what was awaited and what was seen."""


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0, describe=None
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` (and the last state)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            detail = describe() if describe else last
            raise UiTestError(f"Timed out after {timeout:.0f}s waiting for {what}; last state: {detail}")
        time.sleep(interval)


@dataclass
class DagsterDev:
    """A running `dagster dev`: its URL, instance home, warehouse URL and log file."""

    url: str
    home: Path
    warehouse_url: str
    log_path: Path
    proc: subprocess.Popen = field(repr=False)

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        """POST a GraphQL query to the webserver and return its `data` (errors raise)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.loads(resp.read())
        if payload.get("errors"):
            raise UiTestError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            raise UiTestError(f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}")


_LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def _instance_yaml(root: Path) -> dict:
    """The checkout's instance settings (the warehouse pool limit), minus first-visit noise."""
    # Without the project's storage paths: this instance lives in the test's DAGSTER_HOME.
    settings = settings_without_storage(project_settings(root) or {})
    settings["telemetry"] = {"enabled": False}
    settings["nux"] = {"enabled": False}
    return settings


def _dagster_command() -> list[str]:
    # The `dagster` next to this interpreter, so the test uses the venv it runs in.
    exe = Path(sys.executable).with_name("dagster")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dagster"]


def _location_ready(dev: DagsterDev) -> str | None:
    dev.assert_alive()
    try:
        data = dev.graphql(_LOCATION_QUERY, timeout=10)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None  # the webserver is not listening yet
    entries = data["workspaceOrError"].get("locationEntries") or []
    if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
        return None
    for e in entries:
        loaded = e["locationOrLoadError"] or {}
        if loaded.get("__typename") == "PythonError":
            raise UiTestError(f"Code location {e['name']} failed to load: {loaded['message']}")
    return entries[0]["name"]


@contextmanager
def dagster_dev(port: int, workdir: Path, log_dir: Path, start_timeout: float = 120) -> Iterator[DagsterDev]:
    """Start `dagster dev` on 127.0.0.1:`port` from the checkout; yield once the code location
    is loaded; always kill its whole process group afterwards."""
    home = workdir / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(_instance_yaml(REPO_ROOT)))
    warehouse_url = f"duckdb://{workdir / 'warehouse.duckdb'}"
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(DAGSTER_HOME=str(home), SPARKIFY_WAREHOUSE_URL=warehouse_url, PYTHONUNBUFFERED="1")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "dagster-dev.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*_dagster_command(), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,  # so workspace.yaml is the workspace
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, which teardown kills
            preexec_fn=_default_sigint,
        )
    dev = DagsterDev(f"http://127.0.0.1:{port}", home, warehouse_url, log_path, proc)
    try:
        wait_for(
            "dagster dev to load the code location",
            lambda: _location_ready(dev),
            start_timeout,
            describe=dev.log_tail,
        )
        yield dev
    finally:
        _kill_group(proc)


def _default_sigint() -> None:
    # A child of a background job inherits SIGINT ignored, and `dagster dev` maps SIGTERM to
    # whatever SIGINT does: restore the default so both stop it gracefully (runs in the child).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_group(proc: subprocess.Popen) -> None:
    """Ctrl-C the process group (webserver, daemon, code server, run workers), then SIGKILL."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    for sig, grace in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children of the group may linger a moment; make sure of them too.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break


@contextmanager
def chromium_page(base_url: str, viewport: tuple[int, int] = (1600, 1000)) -> Iterator[Any]:
    """A Playwright page in headless Debian Chromium with a new profile; yields (page, external)
    where `external` collects any request made to a host other than 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="sparkify-chromium-"))
    external: list[str] = []
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                base_url=base_url,
                viewport={"width": viewport[0], "height": viewport[1]},
            )
            context.on(
                "request",
                lambda r: (
                    external.append(r.url)
                    if r.url.startswith(("http:", "https:", "ws:", "wss:")) and "//127.0.0.1:" not in r.url
                    else None
                ),
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                yield page, external
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
