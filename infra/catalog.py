"""The functions this project deploys: code folder, settings, layers, sizing. One table.

Plain Python (no CDK imports) so `scripts/size_report.py` and the tests read the same mapping
the constructs deploy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.layers import REPO_ROOT
from mlops.settings import (
    BatchSettings,
    CanarySettings,
    DriftSettings,
    FeedbackFileSettings,
    FeedbackSettings,
    MisplacedUploadSettings,
    ModelsApiSettings,
    PredictSettings,
    QualitySettings,
    RegisterSettings,
    RetrainSettings,
    ShadowSettings,
    TrainingFailureSettings,
    TrainSettings,
    ValidateSettings,
    _Settings,
)
from mlops.training.capacity import TRAINING_MEMORY_MB

FUNCTIONS_DIR = REPO_ROOT / "functions"
HANDLER = "handler.lambda_handler"
METRICS_NAMESPACE = "MLOps"
# CloudFormation Metadata key on every function resource: the handler source folder, relative to the repo.
SOURCE_METADATA_KEY = "mlops:source"
# Variables every function gets besides its settings (read by Powertools, not by our settings).
PLATFORM_ENV_NAMES = ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE")

ZIP_LIMIT_BYTES = 262_144_000  # Lambda: function code plus all layers, unzipped
# Every zip function aims at 200 MB (MiB, as Lambda counts its 250 MB): room for a library upgrade
# or a new check without meeting the hard limit by surprise.
ZIP_AIM_BYTES = 200 * 1024 * 1024
PREDICT_AIM_BYTES = 130 * 1024 * 1024  # cold start stays small when the serving bundle does

# Reserved concurrency: each function gets its own share, so a flood on one (a request storm on
# predict, an upload storm on validation) is throttled at its share and cannot starve the others.
# Lambda keeps UNRESERVED_MINIMUM of the account's limit unreserved for every other function: the sum
# must stay at or under ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM (the default quota; a new account
# may start lower, then raise the quota or lower the shares with `-c reservedConcurrency=...`).
SNAPSTART_ALIAS = "live"  # the alias (on the latest published version) callers of a SnapStart function invoke
# `-c snapStart=false` turns SnapStart off (the alias stays): its snapshot cache is billed by the second
# whether or not requests come, the one capacity charge of an idle stack (scripts/cost.py).
SNAPSTART_CONTEXT_KEY = "snapStart"
RESERVED_CONCURRENCY_CONTEXT_KEY = "reservedConcurrency"
ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MINIMUM = 100


@dataclass(frozen=True)
class FunctionSpec:
    folder: str
    settings: type[_Settings]
    memory_mb: int
    timeout_seconds: int
    layers: tuple[str, ...] = ()
    container_image: bool = False
    reserved_concurrency: int = 1  # every function has its own share (RESERVED_CONCURRENCY_CONTEXT_KEY overrides)
    size_aim_bytes: int = ZIP_AIM_BYTES
    # SnapStart on published versions, invoked through the `live` alias (SNAPSTART_ALIAS): init runs
    # once per version instead of at each cold start, for a cache charge per version and a restore
    # charge per new environment (scripts/cost.py). Not for container images (unsupported).
    snap_start: bool = False

    @property
    def service_name(self) -> str:
        return self.folder.replace("_", "-")

    @property
    def source(self) -> str:
        """The handler folder relative to the repo root (the `mlops:source` metadata value)."""
        return f"functions/{self.folder}"

    @property
    def code_dir(self) -> Path:
        return FUNCTIONS_DIR / self.folder

    @property
    def dockerfile(self) -> str:
        return f"{self.source}/Dockerfile"


FUNCTIONS: dict[str, FunctionSpec] = {
    spec.folder: spec
    for spec in (
        FunctionSpec(
            "validate_dataset",
            ValidateSettings,
            memory_mb=1769,  # one full vCPU for parsing Parquet/CSV
            timeout_seconds=15 * 60,
            # onnxruntime: the label-flip check runs the production model on a sample of the rows
            layers=("powertools", "mlops-core", "numpy", "pyarrow", "onnxruntime"),
            reserved_concurrency=5,  # an upload storm queues in the event retries instead of taking the account
        ),
        FunctionSpec(
            "train_model",
            TrainSettings,
            memory_mb=TRAINING_MEMORY_MB,  # validation and training size datasets against it (training/capacity.py)
            timeout_seconds=15 * 60,
            container_image=True,  # scikit-learn + pandas + pyarrow do not fit a 250 MB zip
            reserved_concurrency=2,  # caps the cost of an upload storm; events wait in the retry queue
        ),
        FunctionSpec(
            "retrain_model",
            RetrainSettings,
            # reads the last accepted dataset whole, as training does, so training's memory budget
            memory_mb=TRAINING_MEMORY_MB,
            timeout_seconds=15 * 60,
            container_image=True,  # pandas + pyarrow: train_model's image recipe
            reserved_concurrency=1,  # one retraining decision at a time: the cooldown reads what the last wrote
        ),
        FunctionSpec(
            "record_training_failure",
            TrainingFailureSettings,
            memory_mb=256,
            timeout_seconds=60,
            layers=("powertools", "mlops-core"),
            reserved_concurrency=2,
        ),
        FunctionSpec(
            "report_misplaced_upload",
            MisplacedUploadSettings,
            memory_mb=256,  # one small JSON notice per event
            timeout_seconds=30,
            layers=("powertools", "mlops-core"),
            reserved_concurrency=2,  # a flood of misplaced files waits in the event retries
        ),
        FunctionSpec(
            "register_model",
            RegisterSettings,
            memory_mb=512,
            timeout_seconds=60,
            layers=("powertools", "mlops-core"),
            reserved_concurrency=5,
        ),
        FunctionSpec(
            "predict",
            PredictSettings,
            memory_mb=1024,
            timeout_seconds=10,
            # shutdown-extension: registered, it makes Lambda send SIGTERM, on which the capture buffers flush
            layers=("powertools", "mlops-core", "numpy", "onnxruntime", "shutdown-extension"),
            size_aim_bytes=PREDICT_AIM_BYTES,
            snap_start=True,  # the latency-bound function: its ~0.35-0.45 s import moves to publish time
            reserved_concurrency=100,  # the most: the serving path; a flood stops at 100 and the others keep theirs
        ),
        FunctionSpec(
            "record_feedback",
            FeedbackSettings,
            memory_mb=512,  # a 1,000-label request is ~100 KB of JSON: CPU, not memory, bounds it
            timeout_seconds=30,
            layers=("powertools", "mlops-core"),
            reserved_concurrency=20,
        ),
        FunctionSpec(
            "ingest_feedback",
            FeedbackFileSettings,
            # streamed and flushed every 50k labels (mlops.feedback_files): memory stays flat; the
            # CPU share of 1024 MB reads a 1M-row file well within the timeout
            memory_mb=1024,
            timeout_seconds=15 * 60,
            layers=("powertools", "mlops-core", "numpy", "pyarrow"),
            reserved_concurrency=5,
        ),
        FunctionSpec(
            "score_batch",
            BatchSettings,
            # one full vCPU: validating rows is CPU-bound Python (scripts/bench_batch.py); memory stays flat
            memory_mb=1769,
            timeout_seconds=15 * 60,
            layers=("powertools", "mlops-core", "numpy", "pyarrow", "onnxruntime"),
            reserved_concurrency=10,  # parts of a large file in parallel; an upload storm waits in retries
        ),
        FunctionSpec(
            "models_api",
            ModelsApiSettings,
            memory_mb=512,
            timeout_seconds=30,
            layers=("powertools", "mlops-core"),
            reserved_concurrency=10,  # people and scripts managing models
        ),
        FunctionSpec(
            "control_canary",
            CanarySettings,
            memory_mb=256,
            timeout_seconds=60,
            layers=("powertools", "mlops-core"),
            reserved_concurrency=1,  # one decision at a time: a rollback and a promotion never race
        ),
        FunctionSpec(
            "score_shadow",
            ShadowSettings,
            # a capture object is at most CAPTURE_MAX_RECORDS rows: memory stays small; the CPU share of
            # 1024 MB scores the default 200 objects a run well within the timeout
            memory_mb=1024,
            timeout_seconds=300,
            layers=("powertools", "mlops-core", "numpy", "onnxruntime"),
            reserved_concurrency=1,  # one run at a time: it reads and writes one state object per model
        ),
        FunctionSpec(
            "detect_drift",
            DriftSettings,
            # memory stays flat (~100 MB at 10M rows, scripts/bench_drift_function.py); 1024 MB buys
            # the CPU share (Lambda scales CPU with memory) that reads a 10M-row backlog in a few runs
            memory_mb=1024,
            timeout_seconds=300,
            layers=("powertools", "mlops-core", "numpy"),
            reserved_concurrency=3,
        ),
        FunctionSpec(
            "evaluate_quality",
            QualitySettings,
            # the join holds about a capture lag's worth of labels, flat in the labelled rows
            # (scripts/bench_quality.py); one run reads its whole backlog, so the longest timeout
            memory_mb=1024,
            timeout_seconds=900,
            layers=("powertools", "mlops-core", "numpy"),
            reserved_concurrency=3,
        ),
    )
}


class ConcurrencyContextError(ValueError):
    """The `reservedConcurrency` context is not what the stack accepts (the message names the problem)."""


def reserved_concurrency(override: Any = None) -> dict[str, int]:
    """Function folder -> reserved concurrency: the catalog's shares, then the context override
    (`{"predict": 300}`, its JSON text, or `predict=300,models_api=20`)."""
    key = RESERVED_CONCURRENCY_CONTEXT_KEY
    if isinstance(override, str):
        text = override.strip()
        if text.startswith("{"):
            try:
                override = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConcurrencyContextError(f"{key}: not valid JSON ({error})") from None
        else:
            pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ConcurrencyContextError(f"{key}: expected <function>=<n>,... or a JSON object, got {text!r}")
            override = {name.strip(): value.strip() for name, value in pairs}
    if override is not None and not isinstance(override, dict):
        raise ConcurrencyContextError(f"{key}: expected a map of function name to a number, got {override!r}")
    shares = {folder: spec.reserved_concurrency for folder, spec in FUNCTIONS.items()}
    for folder, value in (override or {}).items():
        if folder not in FUNCTIONS:
            raise ConcurrencyContextError(f"{key}: {folder!r} is not a function (one of {', '.join(FUNCTIONS)})")
        try:
            share = int(str(value))
        except ValueError:
            raise ConcurrencyContextError(f"{key}: {folder}: expected a whole number, got {value!r}") from None
        if share < 1:
            raise ConcurrencyContextError(f"{key}: {folder}: at least 1 (0 would stop the function), got {share}")
        shares[folder] = share
    total = sum(shares.values())
    if total > ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM:
        raise ConcurrencyContextError(
            f"{key}: the shares sum to {total}; Lambda keeps {UNRESERVED_MINIMUM} of the account's "
            f"{ACCOUNT_CONCURRENCY} unreserved, so at most {ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM}"
        )
    return shares


class SnapStartContextError(ValueError):
    """The `snapStart` context is not true or false."""


def snap_start_enabled(value: Any) -> bool:
    """The `snapStart` context (CLI values arrive as text): on unless false."""
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SnapStartContextError(f"{SNAPSTART_CONTEXT_KEY}: expected true or false, got {value!r}")


def zip_functions() -> list[FunctionSpec]:
    return [spec for spec in FUNCTIONS.values() if not spec.container_image]


def settings_defaults(settings: type[_Settings]) -> dict[str, str]:
    """Env name -> default value (as text) for the optional settings fields."""
    return settings.env_defaults()
