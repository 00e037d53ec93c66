"""A data file dropped outside `datasets/`: nothing validates it, so the uploader is told instead of
nothing happening. One rule (`misplaced_upload`) that the stack's EventBridge pattern narrows with
and the report_misplaced_upload function applies; stdlib only."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from mlops.contract_rules import is_valid_model_name
from mlops.layout import (
    BATCH_PREFIX,
    CONTRACTS_PREFIX,
    DATASETS_PREFIX,
    FEEDBACK_PREFIX,
    MISPLACED_PREFIX,
    MODELS_PREFIX,
    PREDICTIONS_PREFIX,
    QUARANTINE_PREFIX,
    REPORTS_PREFIX,
    dataset_suffix,
)

# Data-bucket prefixes with an owner: uploads the suite reads (datasets/, feedback/, models/<m>/incoming/,
# contracts/, batch/) and what it writes itself (predictions/ included). A file under any other top-level prefix is misplaced.
OWNED_PREFIXES = (
    DATASETS_PREFIX,
    FEEDBACK_PREFIX,
    MODELS_PREFIX,
    CONTRACTS_PREFIX,
    QUARANTINE_PREFIX,
    REPORTS_PREFIX,
    MISPLACED_PREFIX,
    BATCH_PREFIX,
    PREDICTIONS_PREFIX,
)


@dataclass(frozen=True)
class MisplacedUpload:
    """What the uploader is told: the key, why nothing happened, and where it should go."""

    key: str
    problem: str
    expected_key: str
    fix: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def misplaced_upload(key: str) -> MisplacedUpload | None:
    """The notice for a dataset file (.csv, .csv.gz, .parquet) outside every owned prefix, else None."""
    if key.startswith(OWNED_PREFIXES) or dataset_suffix(key) is None:
        return None
    parts = key.split("/")
    file_name = parts[-1]
    # "penguins/x.csv" most likely meant model penguins; otherwise the model is the uploader's to name
    model = parts[0] if len(parts) > 1 and is_valid_model_name(parts[0]) else "<model>"
    expected = f"{DATASETS_PREFIX}{model}/{file_name}"
    return MisplacedUpload(
        key=key,
        problem=f"the key is not under {DATASETS_PREFIX}: nothing validates or trains on it",
        expected_key=expected,
        fix=(
            f"upload it again as {expected} (the model's contract must be published), "
            f"e.g. `mlops datasets upload {file_name} --model {model.strip('<>')}`"
        ),
    )


def object_created(event: dict) -> tuple[str, str, int]:
    """(bucket, key, size) of an EventBridge `Object Created` event from S3; raises BadRequestError."""
    from mlops.errors import BadRequestError

    detail = event.get("detail") if isinstance(event, dict) else None
    try:
        bucket, item = detail["bucket"]["name"], detail["object"]  # type: ignore[index]
        key, size = item["key"], int(item.get("size", 0))
    except (KeyError, TypeError, ValueError):
        raise BadRequestError("not an S3 `Object Created` event (detail.bucket.name, detail.object.key)") from None
    if not isinstance(bucket, str) or not isinstance(key, str) or not key:
        raise BadRequestError("the event's bucket name or object key is not a non-empty string")
    return bucket, key, size
