"""What every command shares: the target options, a console, and how an API answer is checked."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from typer._click import exceptions as click_exceptions

from mlops_local.cli.target import Target, TargetError, aws_target, local_target
from mlops_local.client import ApiResponse


@dataclass(frozen=True)
class TargetOptions:
    """The root options: any of them means a deployed stack; none, the running local mode."""

    profile: str | None = None
    region: str | None = None
    stack: str | None = None

    @property
    def aws(self) -> bool:
        return any((self.profile, self.region, self.stack))


class CommandFailed(click_exceptions.ClickException):
    """A command stops with this message (printed in red on stderr) and exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        error_console().print(self.message, style="red", markup=False)


def console() -> Console:
    """A console on the current stdout (tests swap it): tables at least 100 wide, messages never wrapped."""
    return Console(file=sys.stdout, width=max(Console(file=sys.stdout).width, 100), highlight=False, soft_wrap=True)


def error_console() -> Console:
    return Console(file=sys.stderr, width=max(Console(file=sys.stderr).width, 100), highlight=False, soft_wrap=True)


def resolve(ctx: typer.Context) -> Target:
    """The target the root options name (local mode when none are given)."""
    import mlops_local.cli as package  # STATE_FILE is read at call time: tests point it elsewhere

    options: TargetOptions = (ctx.find_root().obj if ctx.find_root().obj else None) or TargetOptions()
    try:
        if options.aws:
            from infra.outputs import STACK_NAME

            return aws_target(profile=options.profile, region=options.region, stack=options.stack or STACK_NAME)
        return local_target(package.STATE_FILE)
    except TargetError as error:
        raise CommandFailed(str(error)) from None


def checked(response: ApiResponse, doing: str) -> Any:
    """The body of a 2xx answer; otherwise CommandFailed naming what was asked and the API's reason."""
    if 200 <= response.status < 300:
        return response.body
    body = response.body
    message = (body.get("message") or body.get("detail") or body) if isinstance(body, dict) else body
    raise CommandFailed(f"{doing}: HTTP {response.status}: {message}")
