"""`mlops`: the command line of the suite, for the people who run it (typer + rich).

Against the running local mode by default; `mlops --profile P --region R [--stack S] ...` targets a
deployed stack (outputs through CloudFormation). One module per command group:

  mlops demo | local up|save|trigger                  local mode itself (local.py)
  mlops contracts check|publish|schema                contracts (contracts.py)
  mlops datasets upload|held|review                   uploads followed until they serve (datasets.py)
  mlops models list|versions|compare|approve|reject|promote|rollback   the registry (models.py)
  mlops predict M --csv FILE                          predictions from a CSV file (predict.py)
  mlops drift open M                                  the latest drift report in a browser (drift.py)
  mlops logs tail FUNCTION                            a function's invocations (logs.py)
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from typer._click import exceptions as click_exceptions

from mlops_local.cli import contracts, datasets, drift, local, logs, models, predict
from mlops_local.cli.common import TargetOptions
from mlops_local.cli.local import print_usage, serve_until_stopped
from mlops_local.handlers import REPO_ROOT

__all__ = ["STATE_FILE", "app", "main", "print_usage", "serve_until_stopped"]

STATE_FILE = REPO_ROOT / ".local" / "state.json"


def _exit_status(status: object, **options: object) -> None:
    """A command's returned status becomes the process's exit status (typer would drop it)."""
    if isinstance(status, int) and status != 0:
        raise typer.Exit(status)


app = typer.Typer(
    name="mlops",
    result_callback=_exit_status,
    help="Serverless MLOps suite: local mode, contracts, datasets, models, predictions, drift, logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option(help="AWS profile: target a deployed stack")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of the deployed stack")] = None,
    stack: Annotated[str | None, typer.Option(help="the deployed stack's name (default MlopsStack)")] = None,
) -> None:
    """Without --profile/--region/--stack, commands act on the running local mode (`mlops local up`)."""
    ctx.obj = TargetOptions(profile=profile, region=region, stack=stack)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("mlops_local").setLevel(logging.WARNING)


app.command("demo")(local.demo)
app.add_typer(local.app, name="local")
app.add_typer(contracts.app, name="contracts")
app.add_typer(datasets.app, name="datasets")
app.add_typer(models.app, name="models")
app.command("predict")(predict.predict)
app.add_typer(drift.app, name="drift")
app.add_typer(logs.app, name="logs")


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status (tests call this with `argv`)."""
    try:
        result = app(args=argv, prog_name="mlops", standalone_mode=False)
    except click_exceptions.ClickException as error:
        error.show()
        return error.exit_code
    except click_exceptions.Abort:
        return 130
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
