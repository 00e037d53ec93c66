"""`mlops predict M --csv FILE`: a CSV file's rows through the predict route, in batches within the
request limits; a table, or a CSV with each row's prediction and prediction id."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlops.request_limits import LAMBDA_PAYLOAD_MB
from mlops_local.cli.common import CommandFailed, checked, console, resolve

DEFAULT_BATCH_RECORDS = 1_000  # the predict function's default MAX_RECORDS_PER_REQUEST
# the body's share of Lambda's synchronous payload: the rest of the proxy event (headers...) needs room
MAX_BATCH_BYTES = LAMBDA_PAYLOAD_MB * 1024 * 1024 - 512 * 1024
TABLE_ROWS = 20
_TRUE, _FALSE = frozenset({"true", "t", "yes", "1"}), frozenset({"false", "f", "no", "0"})


def predict(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="the model's name")],
    csv_file: Annotated[
        Path, typer.Option("--csv", help="rows to predict (a header row)", exists=True, dir_okay=False)
    ],
    version: Annotated[int | None, typer.Option(help="refuse unless this version is the one serving")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write a CSV: the rows plus prediction columns")] = None,
    batch: Annotated[
        int, typer.Option(help="records per request (the deployed limit is 1,000)", min=1)
    ] = DEFAULT_BATCH_RECORDS,
) -> int:
    """Predict every row of a CSV file with MODEL's production version."""
    target = resolve(ctx)
    api = target.api()
    features = _feature_types(target, model)
    with csv_file.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise CommandFailed(f"{csv_file} has no rows under its header")
    if version is not None:  # before any row is sent (and captured): the route serves production only
        serving = checked(api.admin("GET", f"/models/{model}"), f"reading {model}").get("production_version")
        if serving != version:
            raise _not_serving(model, version, serving)
    results: list[dict[str, Any]] = []
    served: set[int] = set()
    for start, records in batches([record(row, features) for row in rows], batch):
        answer = checked(api.predict(model, records), f"predicting rows {start + 1}-{start + len(records)}")
        served.add(answer["version"])
        results.extend(answer["predictions"])
        if version is not None and answer["version"] != version:  # production moved meanwhile
            raise _not_serving(model, version, answer["version"])
    flat = [_flatten(result) for result in results]
    columns = sorted({name for result in flat for name in result if name != "prediction_id"})
    flat = [
        {name: result.get(name, "") for name in columns} | {"prediction_id": result["prediction_id"]} for result in flat
    ]
    if out is not None:
        with out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[*rows[0].keys(), *columns, "prediction_id"])
            writer.writeheader()
            for row, prediction in zip(rows, flat, strict=True):
                writer.writerow(row | prediction)
        console().print(
            f"{len(results)} predictions of {model} v{', v'.join(map(str, sorted(served)))} written to {out}"
        )
        return 0
    table = Table("row", *columns, "prediction_id", title=f"{model} v{', v'.join(map(str, sorted(served)))}")
    for number, prediction in enumerate(flat[:TABLE_ROWS], start=1):
        table.add_row(str(number), *(prediction[name] for name in columns), prediction["prediction_id"])
    console().print(table)
    if len(flat) > TABLE_ROWS:
        console().print(f"... {len(flat) - TABLE_ROWS} more rows: --out FILE writes them all")
    return 0


def batches(records: list[dict[str, Any]], most: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(index of the first, records) chunks of at most `most` records and MAX_BATCH_BYTES of JSON."""
    start, chunk, size = 0, [], len(b'{"records": []}')
    for index, item in enumerate(records):
        item_bytes = len(json.dumps(item).encode()) + 2
        if item_bytes + len(b'{"records": []}') > MAX_BATCH_BYTES:
            raise CommandFailed(f"row {index + 1} alone is over the {MAX_BATCH_BYTES:,}-byte request limit")
        if chunk and (len(chunk) == most or size + item_bytes > MAX_BATCH_BYTES):
            yield start, chunk
            start, chunk, size = index, [], len(b'{"records": []}')
        chunk.append(item)
        size += item_bytes
    if chunk:
        yield start, chunk


def record(row: dict[str, str], features: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a JSON record of the contract's features: empty cells null, numbers and booleans
    typed as the contract declares them (a cell that does not parse is sent as text: the API names it)."""
    return {name: _typed(row.get(name), kind) for name, kind in features.items() if name in row}


def _typed(text: str | None, kind: str) -> Any:
    if text is None or text.strip() == "":
        return None
    if kind == "numeric":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        lowered = text.strip().lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else text
    return text


def _feature_types(target: Any, model: str) -> dict[str, str]:
    """The published contract's features (name -> type), read from the data bucket."""
    from botocore.exceptions import ClientError

    from mlops.contract import parse_contract
    from mlops.layout import contract_key

    try:
        body = target.client("s3").get_object(Bucket=target.data_bucket, Key=contract_key(model))["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            raise CommandFailed(f"model {model!r} has no published contract in {target.description}") from None
        raise
    return {feature.name: str(feature.type) for feature in parse_contract(body, source=contract_key(model)).features}


def _not_serving(model: str, version: int, serving: int | None) -> CommandFailed:
    return CommandFailed(
        f"{model} v{version} is not serving (v{serving} is); the predict route serves the production version: "
        f"`mlops models approve {model} {version}` and `mlops models promote {model} {version}` first"
    )


def _flatten(prediction: dict[str, Any]) -> dict[str, str]:
    """One column per value: a mapping (class probabilities) becomes `name.key` columns."""
    flat: dict[str, str] = {}
    for name, value in prediction.items():
        if isinstance(value, dict):
            flat.update({f"{name}.{key}": _cell(item) for key, item in value.items()})
        else:
            flat[name] = _cell(value)
    return flat


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return value if isinstance(value, str) else json.dumps(value)
