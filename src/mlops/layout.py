"""Where things live in the buckets. One place, so every stage agrees on the keys.

Data bucket:      datasets/<model>/<file>      uploads (the only prefix that triggers validation)
                  contracts/<model>.json       registered contracts
                  quarantine/<model>/<file>    datasets that failed validation
                  reports/<model>/<id>.json    validation reports
Artifact bucket:  models/<model>/<sha256>.onnx content-addressed artifacts
                  baselines/<model>/<sha256>.json training profile for drift
                  captures/<model>/<yyyy>/<mm>/<dd>/<hh>/<id>.jsonl  sampled inference traffic
"""

from __future__ import annotations

import posixpath
from datetime import datetime

DATASETS_PREFIX = "datasets/"
CONTRACTS_PREFIX = "contracts/"
QUARANTINE_PREFIX = "quarantine/"
REPORTS_PREFIX = "reports/"
MODELS_PREFIX = "models/"
BASELINES_PREFIX = "baselines/"
CAPTURES_PREFIX = "captures/"

DATASET_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def model_of_dataset_key(key: str) -> str | None:
    """`datasets/<model>/<file>` -> `<model>`; None for keys outside that layout."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] + "/" != DATASETS_PREFIX or not parts[1] or not parts[-1]:
        return None
    return parts[1]


def contract_key(model: str) -> str:
    return f"{CONTRACTS_PREFIX}{model}.json"


def quarantine_key(dataset_key: str) -> str:
    return QUARANTINE_PREFIX + dataset_key.removeprefix(DATASETS_PREFIX)


def report_key(model: str, dataset_id: str) -> str:
    return f"{REPORTS_PREFIX}{model}/{dataset_id}.json"


def artifact_key(model: str, sha256: str) -> str:
    return f"{MODELS_PREFIX}{model}/{sha256}.onnx"


def baseline_key(model: str, artifact_sha256: str) -> str:
    return f"{BASELINES_PREFIX}{model}/{artifact_sha256}.json"


def captures_prefix(model: str) -> str:
    return f"{CAPTURES_PREFIX}{model}/"


def capture_key(model: str, at: datetime, batch_id: str) -> str:
    return posixpath.join(captures_prefix(model), at.strftime("%Y/%m/%d/%H"), f"{at:%Y%m%dT%H%M%S}-{batch_id}.jsonl")
