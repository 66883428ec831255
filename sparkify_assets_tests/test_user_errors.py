"""The `sparkify` command prints the project's user errors as one line and exits 1, and nothing
else: a ValueError from a bug keeps its traceback (cli.main once caught every ValueError,
because InfraError was one)."""

from __future__ import annotations

import pytest

from sparkify_assets import cli, query
from sparkify_assets.env_settings import SettingError
from sparkify_assets.errors import UsageError, UserError, first_line
from sparkify_assets.infra.settings import InfraError
from sparkify_assets.resources.lake import LakeError
from sparkify_assets.resources.warehouse import LockError, WarehouseBusy, WarehouseError


@pytest.mark.parametrize(
    "error", [WarehouseError, LakeError, InfraError, SettingError, WarehouseBusy, LockError, UsageError]
)
def test_every_user_error_has_the_one_base(error):
    assert issubclass(error, UserError)


def test_usage_errors_and_infra_errors_are_still_value_errors():
    # Callers that caught ValueError for these keep working.
    assert issubclass(UsageError, ValueError) and issubclass(InfraError, ValueError)


def test_a_user_error_is_one_line_and_exit_1(capsys):
    assert cli.main(["query", "top_songs", "--sql", "SELECT 1"]) == 1
    err = capsys.readouterr().err
    assert err == "error: give either an analytics name or --sql, not both\n"


def test_a_value_error_from_a_bug_is_not_swallowed(monkeypatch):
    def broken(args):
        raise ValueError("a bug, not the user's mistake")

    monkeypatch.setattr(query, "cmd_query", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["query", "--sql", "SELECT 1"])


def test_first_line_is_the_first_line_or_the_type():
    assert first_line(RuntimeError("lost\nHINT: more")) == "lost"
    assert first_line(KeyError()) == "KeyError"
