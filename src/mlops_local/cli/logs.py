"""`mlops logs tail FUNCTION`: a function's invocations. Local mode: its lines of invocations.log
(`--output`: the function's own log); AWS: the function's CloudWatch log group (filter_log_events)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_local.cli.common import CommandFailed, resolve
from mlops_local.cli.target import Target

app = typer.Typer(help="Function logs.")

POLL_SECONDS = 1.0


@app.command()
def tail(
    ctx: typer.Context,
    function: Annotated[str, typer.Argument(help="the function's folder name: predict, validate_dataset, ...")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines until Ctrl-C")] = False,
    since: Annotated[float, typer.Option(help="minutes of history to print first (AWS)")] = 10,
    lines: Annotated[int, typer.Option(help="lines of history to print first (local mode)")] = 20,
    output: Annotated[bool, typer.Option("--output", help="local mode: the function's own log lines")] = False,
) -> int:
    """Print FUNCTION's recent invocations (and with --follow, the new ones as they come)."""
    target = resolve(ctx)
    source = _local_lines(target, function, lines, output) if target.is_local else _aws_lines(target, function, since)
    try:
        for line in source(follow):
            print(line, flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


def _local_lines(target: Target, function: str, history: int, output: bool) -> Any:
    assert target.log_dir is not None
    known = sorted(path.stem for path in target.log_dir.glob("*.log")) if target.log_dir.exists() else []
    if output:
        path = target.log_dir / f"{function}.log"
        if not path.exists():
            raise CommandFailed(f"no log of {function!r} in {target.log_dir} yet; logs there: {', '.join(known)}")
        return lambda follow: _tail_file(path, history, follow, lambda line: True)
    path = target.log_dir / "invocations.log"

    def of_function(line: str) -> bool:  # "<time> <function> <trigger> <ms> ms <outcome>"
        parts = line.split(maxsplit=2)
        return len(parts) > 1 and parts[1] == function

    return lambda follow: _tail_file(path, history, follow, of_function)


def _tail_file(path: Path, history: int, follow: bool, wanted: Any) -> Iterator[str]:
    """The last `history` wanted lines of `path`, then (following) each new one as it is written."""
    path.touch(exist_ok=True)
    with path.open(encoding="utf-8", errors="replace") as handle:
        yield from [line.rstrip("\n") for line in handle if wanted(line)][-history:] if history else []
        while follow:
            line = handle.readline()
            if not line:
                time.sleep(POLL_SECONDS)
                continue
            if wanted(line):
                yield line.rstrip("\n")


def _aws_lines(target: Target, function: str, since_minutes: float) -> Any:
    assert target.function_names is not None
    names = target.function_names()
    if function not in names:
        raise CommandFailed(f"no function {function!r} in {target.description}; known: {', '.join(sorted(names))}")
    configuration = target.client("lambda").get_function_configuration(FunctionName=names[function])
    group = configuration.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{names[function]}"
    return lambda follow: cloudwatch_lines(target.client("logs"), group, since_minutes, follow)


def cloudwatch_lines(logs: Any, group: str, since_minutes: float, follow: bool) -> Iterator[str]:
    """Events of `group` from `since_minutes` ago (following: polled on), each once."""
    start = int((time.time() - since_minutes * 60) * 1000)
    seen: set[str] = set()
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start}
        while True:
            page = logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                if event["eventId"] in seen:
                    continue
                seen.add(event["eventId"])
                start = max(start, event["timestamp"])
                stamp = time.strftime("%H:%M:%S", time.localtime(event["timestamp"] / 1000))
                yield f"{stamp} {event.get('logStreamName', '')[-8:]} {event['message'].rstrip()}"
            if "nextToken" not in page:
                break
            kwargs["nextToken"] = page["nextToken"]
        if not follow:
            return
        time.sleep(POLL_SECONDS)
