"""The package uses only Dagster's public API, and silences only the beta warnings it knows.

Private modules (`dagster._core…`) change without notice between releases; the scan reads every
module of sparkify_assets/ with `ast`, so an import in any form (`import dagster._x`, `from
dagster._x import y`, `from dagster import _x`, `importlib.import_module("dagster._x")`) or an
attribute path such as `dagster._core.x` fails it.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

from dagster import BetaWarning

import sparkify_assets

PACKAGE = Path(sparkify_assets.__file__).parent
DAGSTER_PACKAGES = ("dagster", "dagster_aws", "dagster_webserver")


def _private(module: str) -> bool:
    parts = module.split(".")
    return parts[0] in DAGSTER_PACKAGES and any(p.startswith("_") for p in parts[1:])


def private_uses(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if _private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _private(node.module):
                found.append(node.module)
            elif node.module in DAGSTER_PACKAGES:
                found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in DAGSTER_PACKAGES:
                found.append(f"{base.id}.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _private(node.value):
            found.append(node.value)  # importlib.import_module("dagster._core…")
    return found


def test_the_scan_finds_each_form_of_private_import():
    source = (
        "import dagster._core.storage\n"
        "from dagster._core.storage.tags import X\n"
        "from dagster import _check\n"
        "import dagster\n"
        "y = dagster._utils\n"
        "import importlib\n"
        "importlib.import_module('dagster_aws._private')\n"
        "from dagster import asset, BetaWarning\n"
        "tag = 'dagster/asset_partition_range_start'\n"
    )
    assert private_uses(source) == [
        "dagster._core.storage",
        "dagster._core.storage.tags",
        "dagster._check",
        "dagster._utils",
        "dagster_aws._private",
    ]


def test_the_package_imports_nothing_private_from_dagster():
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if (uses := private_uses(path.read_text()))
    }
    assert offenders == {}


def test_only_the_known_beta_warnings_are_silenced():
    import sparkify_assets.assets  # noqa: F401  (installs the package's filters)

    with warnings.catch_warnings(record=True) as got:
        warnings.warn(
            "Parameter `backfill_policy` of function `asset` is currently in beta, and may change.",
            BetaWarning,
            stacklevel=1,
        )
        warnings.warn(
            "Function `some_new_thing` is currently in beta, and may change.", BetaWarning, stacklevel=1
        )
    assert [str(w.message) for w in got] == [
        "Function `some_new_thing` is currently in beta, and may change."
    ]
