"""`mlops`: the command line of the suite.

mlops demo [--rows N] [--keep-running]   the whole story against local mode
mlops local up [--api-port P] [--fresh]  local mode, until Ctrl-C or SIGTERM; keeps its state in .local/state/
mlops local trigger <rule>               run a scheduled rule of a running local mode now
mlops local save                         save a running local mode's state now
mlops contracts check <file>...          validate contract documents
mlops contracts infer FILE [--target T]  print a contract drafted from a CSV/Parquet sample (streams it)
mlops contracts reference                write docs/contracts.md from the contract's JSON schema
mlops contracts publish [--bucket B]     upload contracts/ to a deployed data bucket (no --bucket: to the
                                         running local mode, which adds their alarms at once)
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from mlops.errors import ContractError
from mlops_local.handlers import REPO_ROOT

STATE_FILE = REPO_ROOT / ".local" / "state.json"
REFERENCE_FILE = REPO_ROOT / "docs" / "contracts.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops", description="Serverless MLOps suite: local mode and tools.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the end-to-end story against local mode")
    demo.add_argument("--rows", type=int, default=100_000, help="rows of the sample dataset (default 100000)")
    demo.add_argument("--keep-running", action="store_true", help="keep local mode running afterwards")

    local = commands.add_parser("local", help="local mode").add_subparsers(dest="local_command", required=True)
    up = local.add_parser("up", help="start local mode and keep it running")
    up.add_argument("--api-port", type=int, default=8443)
    up.add_argument("--aws-port", type=int, default=4566)
    up.add_argument(
        "--fresh", action="store_true", help="discard the saved state (data, API key, credentials) and start over"
    )
    local.add_parser("save", help="save a running local mode's state now")
    trigger = local.add_parser("trigger", help="run a scheduled rule now")
    trigger.add_argument("rule", help="the rule's logical id (or its start) or physical name")

    contracts = commands.add_parser("contracts", help="model contracts").add_subparsers(
        dest="contracts_command", required=True
    )
    check = contracts.add_parser("check", help="validate contract files")
    check.add_argument("files", nargs="+", type=Path)
    publish = contracts.add_parser("publish", help="upload validated contracts to a data bucket")
    publish.add_argument("--bucket", help="a deployed data bucket (default: the running local mode's)")
    publish.add_argument("--dir", type=Path, default=REPO_ROOT / "contracts")
    schema = contracts.add_parser("schema", help="print the contract's JSON schema")
    del schema
    infer = contracts.add_parser("infer", help="print a contract drafted from a CSV or Parquet sample")
    infer.add_argument("file", type=Path, help="a .csv, .csv.gz or .parquet sample (read once, streaming)")
    infer.add_argument("--target", help="the column to predict (default: the last one)")
    infer.add_argument("--name", help="the model's name (default: from the file's name)")
    infer.add_argument("--format", choices=("yaml", "json"), default="json", dest="output_format")
    reference = contracts.add_parser("reference", help="write the contract reference from the JSON schema")
    reference.add_argument("--output", type=Path, default=REFERENCE_FILE, help="default docs/contracts.md; - prints it")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("mlops_local").setLevel(logging.INFO if args.command == "local" else logging.WARNING)

    if args.command == "demo":
        from mlops_local.demo import run_demo

        return run_demo(args.rows, args.keep_running)
    if args.command == "local" and args.local_command == "up":
        return _local_up(args.api_port, args.aws_port, args.fresh)
    if args.command == "local" and args.local_command == "trigger":
        return _control(f"trigger/{args.rule}")
    if args.command == "local" and args.local_command == "save":
        return _control("state/save")
    if args.command == "contracts" and args.contracts_command == "reference":
        return _contracts_reference(args.output)
    if args.command == "contracts" and args.contracts_command == "infer":
        return _contracts_infer(args.file, args.target, args.name, args.output_format)
    if args.command == "contracts":
        return _contracts(args)
    parser.error("unknown command")
    return 2


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

Try:
  export {env}
  .venv/bin/python -c "import boto3; boto3.client('s3').upload_file('my.csv', '{outputs.get("DataBucketName")}', 'datasets/churn/my.csv')"
  curl --cacert {endpoints.ca_bundle} -H 'x-api-key: {endpoints.api_key}' \\
       -d '{{"records": [{{"tenure_months": 3, "monthly_charges": 80, "support_calls": 4, "data_usage_gb": null, "plan": "basic", "region": "north", "autopay": false}}]}}' \\
       {endpoints.api_url}/models/churn/predict
  mlops local trigger <schedule rule>     (see .local/template.json)
"""
    )
    out.flush()


def _local_up(api_port: int, aws_port: int, fresh: bool) -> int:
    from mlops_local.runtime import LocalRuntime

    return serve_until_stopped(LocalRuntime(api_port=api_port, aws_port=aws_port, fresh=fresh))


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


def _control(path: str) -> int:
    """POST to a running local mode's control endpoint and print the answer."""
    if not STATE_FILE.exists():
        print("local mode is not running (no .local/state.json); start it with `mlops local up`", file=sys.stderr)
        return 1
    state = json.loads(STATE_FILE.read_text())
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


def _contracts_reference(output: Path) -> int:
    from mlops.contract import contract_json_schema
    from mlops.contract_reference import render_reference

    text = render_reference(contract_json_schema())
    if str(output) == "-":
        sys.stdout.write(text)
    else:
        output.write_text(text)
        print(f"wrote {output}")
    return 0


def _contracts_infer(path: Path, target: str | None, name: str | None, output_format: str) -> int:
    """The drafted contract on standard output; what to review on standard error."""
    from mlops.contract_infer import dump_contract, infer_contract

    try:
        inferred = infer_contract(path, target=target, name=name)
    except (ContractError, OSError) as error:
        print(f"cannot infer a contract: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(dump_contract(inferred.document, output_format))
    for note in inferred.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _contracts(args: argparse.Namespace) -> int:
    from mlops.contract import contract_files, contract_json_schema, parse_contract

    if args.contracts_command == "schema":
        print(json.dumps(contract_json_schema(), indent=2))
        return 0
    files = args.files if args.contracts_command == "check" else contract_files(args.dir)
    parsed = []
    failed = False
    for path in files:
        try:
            parsed.append(parse_contract(path.read_text(), source=path.name))
            print(f"ok   {path}")
        except ContractError as error:
            failed = True
            print(f"bad  {error}", file=sys.stderr)
    if failed or args.contracts_command == "check":
        return 1 if failed else 0
    import boto3

    from mlops.layout import contract_key

    bucket, s3 = args.bucket, None
    if bucket is None:  # the running local mode: its bucket, endpoint and credentials
        if not STATE_FILE.exists():
            print("no --bucket and local mode is not running (no .local/state.json)", file=sys.stderr)
            return 1
        state = json.loads(STATE_FILE.read_text())
        bucket = state["outputs"]["DataBucketName"]
        s3 = boto3.client(
            "s3",
            endpoint_url=state["aws_endpoint_url"],
            region_name=state["region"],
            aws_access_key_id=state["access_key_id"],
            aws_secret_access_key=state["secret_access_key"],
        )
    s3 = s3 or boto3.client("s3")
    for contract in parsed:
        s3.put_object(
            Bucket=bucket,
            Key=contract_key(contract.name),
            Body=contract.canonical_json().encode(),
            ContentType="application/json",
        )
        print(f"published s3://{bucket}/{contract_key(contract.name)}")
    if args.bucket is None:
        return _control("contracts/sync")  # alarms now, not at the watcher's next look
    return 0


if __name__ == "__main__":
    sys.exit(main())
