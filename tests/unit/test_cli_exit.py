"""`mlops` exits with the status a command returns, whether run as the console script (`main`) or
as typer runs it (a shell, CliRunner): a refused or stopped command is never exit status 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlops_local.cli as cli

CONTRACTS = Path(cli.__file__).parents[3] / "contracts"


@pytest.fixture(autouse=True)
def no_local_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "state.json")


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["contracts", "check", str(CONTRACTS / "churn.json")], 0, "ok"),
        (["contracts", "check", __file__], 1, "bad"),  # returned by the command
        (["local", "save"], 1, "local mode is not running"),  # returned by the command
        (["models", "list"], 1, "start it with `mlops local up`"),  # raised (CommandFailed)
        (["datasets", "upload", __file__], 2, "--model"),  # a usage error
    ],
)
def test_cli_exit_status_is_the_commands_under_typer_and_main(
    args: list[str], status: int, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = CliRunner().invoke(cli.app, args, prog_name="mlops")
    assert result.exit_code == status
    assert said in result.output

    assert cli.main(args) == status
    captured = capsys.readouterr()
    assert said in captured.out + captured.err
