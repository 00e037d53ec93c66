"""`mlops contracts check|publish|schema` (and the slot for `infer`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mlops_local.handlers import REPO_ROOT

app = typer.Typer(help="Model contracts: check, publish, print the schema.")


@app.command()
def check(files: Annotated[list[Path], typer.Argument(help="contract files")]) -> int:
    """Validate contract files."""
    parsed, failed = _parse(files)
    del parsed
    return 1 if failed else 0


@app.command()
def publish(
    ctx: typer.Context,
    bucket: Annotated[
        str | None, typer.Option(help="a deployed data bucket (default: the running local mode's)")
    ] = None,
    directory: Annotated[Path, typer.Option("--dir", help="the contracts folder")] = REPO_ROOT / "contracts",
) -> int:
    """Upload validated contracts to a data bucket: --bucket, the stack's (--profile/--region/--stack), or the
    running local mode's (which adds their alarms at once)."""
    import boto3

    import mlops_local.cli as package
    from mlops.layout import contract_key
    from mlops_local.cli.local import control

    parsed, failed = _parse(sorted(directory.glob("*.json")))
    if failed:
        return 1
    s3, target_bucket = None, bucket
    options = ctx.find_root().obj
    if bucket is None and options is not None and options.aws:  # --profile/--region/--stack: the stack's bucket
        from mlops_local.cli.common import resolve

        target = resolve(ctx)
        s3, target_bucket = target.client("s3"), target.data_bucket
    elif bucket is None:  # the running local mode: its bucket, endpoint and credentials
        if not package.STATE_FILE.exists():
            print("no --bucket and local mode is not running (no .local/state.json)", file=sys.stderr)
            return 1
        state = json.loads(package.STATE_FILE.read_text())
        s3 = boto3.client(
            "s3",
            endpoint_url=state["aws_endpoint_url"],
            region_name=state["region"],
            aws_access_key_id=state["access_key_id"],
            aws_secret_access_key=state["secret_access_key"],
        )
        target_bucket = state["outputs"]["DataBucketName"]
    s3 = s3 or boto3.client("s3")
    for contract in parsed:
        s3.put_object(
            Bucket=target_bucket,
            Key=contract_key(contract.name),
            Body=contract.canonical_json().encode(),
            ContentType="application/json",
        )
        print(f"published s3://{target_bucket}/{contract_key(contract.name)}")
    if bucket is None and not (options is not None and options.aws):
        return control("contracts/sync")  # alarms now, not at the watcher's next look
    return 0


@app.command()
def schema() -> int:
    """Print the contract's JSON schema."""
    from mlops.contract import contract_json_schema

    print(json.dumps(contract_json_schema(), indent=2))
    return 0


# `mlops contracts infer FILE --target NAME --format yaml|json` (branch i10/contracts) goes here:
# an `@app.command()` taking the file and options, calling the domain's inference function and
# printing its document to stdout; errors as ContractError -> `bad ...` on stderr and status 1.


def _parse(files: list[Path]) -> tuple[list, bool]:
    """Each file parsed (`ok`/`bad` per file, as `check` prints it); whether any failed."""
    from mlops.contract import parse_contract
    from mlops.errors import ContractError

    parsed = []
    failed = False
    for path in files:
        try:
            parsed.append(parse_contract(path.read_text(), source=path.name))
            print(f"ok   {path}")
        except ContractError as error:
            failed = True
            print(f"bad  {error}", file=sys.stderr)
    return parsed, failed
