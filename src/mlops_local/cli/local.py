"""`mlops demo` and `mlops local up|save|trigger`: local mode itself."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
import urllib.error
import urllib.request
from typing import Annotated, Any

import typer

from mlops_local.workers import DEFAULT_MAX_WORKERS

app = typer.Typer(help="Local mode: the synthesized stack on this machine (a moto stand-in and HTTPS API).")


def demo(
    rows: Annotated[int, typer.Option(help="rows of the sample dataset")] = 100_000,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="keep local mode running afterwards")] = False,
) -> int:
    """Run the end-to-end story against local mode."""
    from mlops_local.demo import run_demo

    return run_demo(rows, keep_running)


@app.command()
def up(
    api_port: Annotated[int, typer.Option("--api-port")] = 8443,
    aws_port: Annotated[int, typer.Option("--aws-port")] = 4566,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="discard the saved state (data, API key, credentials) and start over")
    ] = False,
    max_workers: Annotated[
        int,
        typer.Option(
            "--max-workers",
            min=1,
            help="worker processes per function at most (its reserved concurrency, capped)",
        ),
    ] = DEFAULT_MAX_WORKERS,
    managed_training_min_rows: Annotated[
        int,
        typer.Option(
            "--managed-training-min-rows",
            min=0,
            help="datasets of at least this many rows train on the managed engine's path (0: only past train_model's budget)",
        ),
    ] = 0,
) -> int:
    """Start local mode and keep it running (Ctrl-C or SIGTERM stops it and saves its state)."""
    from mlops_local.runtime import LocalRuntime

    logging.getLogger("mlops_local").setLevel(logging.INFO)
    return serve_until_stopped(
        LocalRuntime(
            api_port=api_port,
            aws_port=aws_port,
            fresh=fresh,
            max_workers=max_workers,
            managed_training_min_rows=managed_training_min_rows,
        )
    )


@app.command()
def save() -> int:
    """Save a running local mode's state now."""
    return control("state/save")


@app.command()
def trigger(rule: Annotated[str, typer.Argument(help="the rule's logical id (or its start) or physical name")]) -> int:
    """Run a scheduled rule of the running local mode now."""
    return control(f"trigger/{rule}")


def print_usage(endpoints: Any, out: Any = sys.stdout) -> None:
    env = " ".join(f"{k}={v}" for k, v in endpoints.client_env().items())
    outputs = endpoints.outputs
    out.write(
        f"""
Local mode is running. Ctrl-C stops it.
  AWS stand-in      {endpoints.aws_endpoint_url}   (credentials: {endpoints.access_key_id} / see .local/state.json)
  API (HTTPS)       {endpoints.api_url}
  API key           {endpoints.api_key}
  CA certificate    {endpoints.ca_bundle}
  Logs              {endpoints.log_dir}  (invocations.log, notifications.log, one file per function)

Try (another shell):
  .venv/bin/mlops datasets upload my.csv --model churn     upload, then follow it until it serves (or why not)
  .venv/bin/mlops models list                              registered models; `mlops --help` lists every command
  .venv/bin/mlops predict churn --csv my.csv               predictions with their ids

Or with the SDKs:
  export {env}
  .venv/bin/python -c "import boto3; boto3.client('s3').upload_file('my.csv', '{outputs.get("DataBucketName")}', 'datasets/churn/my.csv')"
  curl --cacert {endpoints.ca_bundle} -H 'x-api-key: {endpoints.api_key}' \\
       -d '{{"records": [{{"tenure_months": 3, "monthly_charges": 80, "support_calls": 4, "data_usage_gb": null, "plan": "basic", "region": "north", "autopay": false}}]}}' \\
       {endpoints.api_url}/models/churn/predict
  mlops local trigger <schedule rule>     (see .local/template.json)
"""
    )
    out.flush()


def serve_until_stopped(runtime: Any, out: Any = sys.stdout) -> int:
    """Start `runtime` and keep it up until Ctrl-C or SIGTERM; either stops it, which saves its state."""
    from mlops_local.state import StateError
    from mlops_local.template import TemplateError

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        endpoints = runtime.start()
    except (StateError, TemplateError) as error:  # start() stopped what it had started, saving nothing
        print(f"local mode did not start: {error}", file=sys.stderr)
        return 1
    print(_state_line(runtime), file=out)
    print_usage(endpoints, out)
    for schedule in runtime.triggers.schedules.values():
        out.write(f"  schedule: {schedule.rule_id} ({schedule.expression}) -> mlops local trigger {schedule.rule_id}\n")
    out.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping local mode: saving its state ...", file=out, flush=True)
        return 0
    finally:
        runtime.stop()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _state_line(runtime: Any) -> str:
    where = runtime.state.directory
    if runtime.fresh:
        said = f"discarded the saved state in {where}" if runtime.discarded else f"nothing was saved in {where}"
        return f"\nStarted fresh ({said}): new API key and credentials, empty buckets and tables."
    if runtime.restored is None:
        return f"\nNo saved state: starting empty. State is saved in {where} on exit and every minute."
    line = (
        f"\nState restored from {where} (saved {runtime.restored.saved_at}): same API key and credentials, "
        f"{len(runtime.reconciled.kept)} resources kept with their data, {len(runtime.reconciled.created)} created."
    )
    if runtime.reconciled.undeclared:
        line += "\n  kept but no longer declared by the template: " + ", ".join(runtime.reconciled.undeclared)
    return line + "\n  `mlops local up --fresh` starts over."


def control(path: str) -> int:
    """POST to a running local mode's control endpoint and print the answer."""
    import mlops_local.cli as package  # STATE_FILE is read at call time: tests point it elsewhere

    if not package.STATE_FILE.exists():
        print("local mode is not running (no .local/state.json); start it with `mlops local up`", file=sys.stderr)
        return 1
    state = json.loads(package.STATE_FILE.read_text())
    request = urllib.request.Request(f"{state['control_url']}/{path}", method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=900) as response:  # noqa: S310
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        print(error.read().decode(), file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(f"local mode is not reachable: {error.reason}", file=sys.stderr)
        return 1
