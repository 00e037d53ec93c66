"""`mlops datasets upload|held|review`: an upload checked before it leaves, then followed until it
serves (or until it stops, and why); held datasets reviewed through the models API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from mlops_local.cli.common import CommandFailed, checked, console, resolve
from mlops_local.cli.target import Target

app = typer.Typer(help="Datasets: upload (checked, then followed to serving), held datasets, reviews.")

MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024  # above it, parts upload in parallel and a failed part is retried alone
POLL_SECONDS = 1.0


@app.command()
def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a .csv, .csv.gz or .parquet file", exists=True, dir_okay=False)],
    model: Annotated[str, typer.Option(help="the model it trains (its contract must be published)")],
    key: Annotated[str | None, typer.Option(help="the object key (default datasets/<model>/<file name>)")] = None,
    follow: Annotated[bool, typer.Option(help="follow it through validate -> train -> register")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to follow before giving up")] = 900,
) -> int:
    """Upload a dataset for MODEL, then follow it until it serves or stops (and say why)."""
    target = resolve(ctx)
    object_key = key or f"datasets/{model}/{file.name}"
    problem = upload_problem(target, model, object_key)
    if problem:
        raise CommandFailed(f"not uploaded: {problem}")
    version_id = _upload(target, file, object_key)
    out = console()
    out.print(f"uploaded s3://{target.data_bucket}/{object_key}" + (f" (version {version_id})" if version_id else ""))
    if not follow:
        return 0
    from mlops.validation.decisions import dataset_id

    return follow_dataset(target, model, dataset_id(object_key, version_id), timeout=timeout)


def upload_problem(target: Target, model: str, key: str) -> str | None:
    """Why an upload of `key` for `model` would do nothing useful, with the fix; None if it would not."""
    from botocore.exceptions import ClientError

    from mlops.contract_rules import is_valid_model_name
    from mlops.layout import DATASETS_PREFIX, contract_key, dataset_key_problem, model_of_dataset_key

    if not is_valid_model_name(model):
        return f"{model!r} is not a valid model name (lowercase letters, digits and '-')"
    problem = dataset_key_problem(key)
    if problem is not None:
        return f"{problem}; only keys {DATASETS_PREFIX}<model>/<file> (.csv, .csv.gz, .parquet) are validated: use --key {DATASETS_PREFIX}{model}/{key.rsplit('/', 1)[-1]}"
    if model_of_dataset_key(key) != model:
        return f"the key {key!r} belongs to model {model_of_dataset_key(key)!r}, not {model!r}: use --key {DATASETS_PREFIX}{model}/{key.rsplit('/', 1)[-1]}"
    try:
        target.client("s3").head_object(Bucket=target.data_bucket, Key=contract_key(model))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
        return (
            f"model {model!r} has no contract in {target.description} (s3://{target.data_bucket}/{contract_key(model)}): "
            f"write contracts/{model}.json, check it with `mlops contracts check contracts/{model}.json`, "
            "then `mlops contracts publish`"
        )
    return None


def _upload(target: Target, file: Path, key: str) -> str | None:
    """Upload with a progress bar (multipart above the threshold); the new object version's id."""
    from boto3.s3.transfer import TransferConfig

    s3 = target.client("s3")
    size = file.stat().st_size
    config = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD_BYTES, multipart_chunksize=MULTIPART_THRESHOLD_BYTES
    )
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console(), transient=False) as progress:
        task = progress.add_task(f"uploading {file.name}", total=size)
        s3.upload_file(
            str(file),
            target.data_bucket,
            key,
            Config=config,
            Callback=lambda sent: progress.advance(task, sent),
        )
    return s3.head_object(Bucket=target.data_bucket, Key=key).get("VersionId")


def follow_dataset(target: Target, model: str, dataset_id: str, *, timeout: float) -> int:
    """Poll the ledger (and then the registry) and print each new stage; 0 when it serves."""
    from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
    from mlops.validation.ledger import DatasetState
    from mlops_local.cli.follow import dataset_progress

    ledger = DynamoDatasetLedger(target.ledger_table, target.client("dynamodb"))
    api = target.api()
    out = console()
    said = None
    deadline = time.monotonic() + timeout
    with out.status("following", spinner="dots") as status:
        while True:
            entry = ledger.get(model, dataset_id)
            registered: tuple[Any, Any] = (None, None)
            if entry is not None and entry.state is DatasetState.REGISTERED and entry.model_version is not None:
                registered = (
                    checked(api.admin("GET", f"/models/{model}"), f"reading {model}"),
                    checked(api.admin("GET", f"/models/{model}/versions/{entry.model_version}"), "reading the version"),
                )
            progress = dataset_progress(model, dataset_id, entry, *registered)
            if progress.stage != said:
                said = progress.stage
                colour = "green" if progress.ok else "red"
                out.print(f"[{colour}]{'*' if progress.final else '-'}[/{colour}] ", end="")
                out.print(progress.stage, markup=False)
                status.update(progress.stage)
            if progress.final:
                for line in progress.details:
                    out.print(f"    {line}", markup=False)
                return 0 if progress.ok else 1
            if time.monotonic() > deadline:
                raise CommandFailed(
                    f"still '{progress.stage}' after {timeout:.0f} s; `mlops logs tail validate_dataset` "
                    "(or train_model, register_model) shows what happened"
                )
            time.sleep(POLL_SECONDS)


@app.command()
def held(ctx: typer.Context, model: Annotated[str, typer.Argument(help="the model's name")]) -> int:
    """A model's datasets held for review (statistical checks failed), newest first."""
    found = checked(resolve(ctx).api().admin("GET", f"/models/{model}/datasets?state=held"), "listing held datasets")
    if not found:
        console().print(f"no datasets of {model} are held for review")
        return 0
    table = Table("dataset id", "key", "rows", "decided", "why held", title=f"{model}: held datasets")
    for entry in found:
        table.add_row(
            entry["dataset_id"], entry["key"], str(entry.get("rows") or "-"), entry["decided_at"][:19],
            escape("; ".join(entry.get("reasons", []))),
        )  # fmt: skip
    console().print(table)
    return 0


@app.command()
def review(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="the model's name")],
    dataset_id: Annotated[str, typer.Argument(help="the held dataset's id (`mlops datasets held M`)")],
    approve: Annotated[bool, typer.Option("--approve/--reject", help="train on it, or quarantine it")],
    reason: Annotated[str, typer.Option(help="why (required; recorded in the ledger and the audit trail)")],
    follow: Annotated[bool, typer.Option(help="after an approval, follow it through training")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to follow before giving up")] = 900,
) -> int:
    """Approve (training starts) or reject (moved to quarantine/) a held dataset."""
    target = resolve(ctx)
    body = {"decision": "approve" if approve else "reject", "reason": reason}
    entry = checked(
        target.api().admin("POST", f"/models/{model}/datasets/{dataset_id}/review", body), f"reviewing {dataset_id}"
    )
    console().print(f"{dataset_id}: {entry['state']}")
    if approve and follow:
        return follow_dataset(target, model, dataset_id, timeout=timeout)
    return 0
