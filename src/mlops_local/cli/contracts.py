"""`mlops contracts check|publish|schema|infer|reference`."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mlops_local.handlers import REPO_ROOT

REFERENCE_FILE = REPO_ROOT / "docs" / "contracts.md"

app = typer.Typer(help="Model contracts: check, publish, print the schema, draft one from a file, write the reference.")


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
    from mlops.contract import contract_files
    from mlops.layout import contract_key
    from mlops_local.cli.local import control

    parsed, failed = _parse(contract_files(directory))
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


class OutputFormat(StrEnum):
    json = "json"
    yaml = "yaml"


@app.command()
def infer(
    file: Annotated[Path, typer.Argument(help="a .csv, .csv.gz or .parquet sample (read once, streaming)")],
    target: Annotated[str | None, typer.Option(help="the column to predict (default: the last one)")] = None,
    name: Annotated[str | None, typer.Option(help="the model's name (default: from the file's name)")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="the document's format")] = OutputFormat.json,
) -> int:
    """Print a contract drafted from a CSV or Parquet sample (what to review goes to standard error)."""
    from mlops.contract_infer import dump_contract, infer_contract
    from mlops.errors import ContractError

    try:
        inferred = infer_contract(file, target=target, name=name)
    except (ContractError, OSError) as error:
        print(f"cannot infer a contract: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(dump_contract(inferred.document, output_format.value))
    for note in inferred.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


@app.command()
def reference(
    output: Annotated[Path, typer.Option(help="where to write it; - prints it")] = REFERENCE_FILE,
) -> int:
    """Write the contract reference (docs/contracts.md) from the contract's JSON schema."""
    from mlops.contract import contract_json_schema
    from mlops.contract_reference import render_reference

    text = render_reference(contract_json_schema())
    if str(output) == "-":
        sys.stdout.write(text)
    else:
        output.write_text(text)
        print(f"wrote {output}")
    return 0


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
