"""Captures and label objects written as predict and the feedback paths write them, for the
live-quality tests and the benchmark: `encode_batch` + `capture_key`, `encode_labels` + `label_key`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.captures import CaptureBatch, encode_batch
from mlops.contract import parse_contract
from mlops.errors import NotFoundError
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.labels import LabelBatch, encode_labels, new_label_batch_id, prediction_minute
from mlops.layout import capture_key, label_key
from mlops.ports import ObjectStore
from mlops.profile import BaselineProfile, profile_categorical, profile_numeric
from mlops.quality.result import QualityResult, QualityStatus, QualityVerdict, RunCounts, VersionQuality
from mlops.registry.records import Artifact, ModelRecord, ModelVersion, VersionStatus

BUCKET = "artifacts"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CLASSES = ("no", "yes")


def contract_document(name: str = "churn", **live_quality: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": name,
        "problem_type": "classification",
        "target": {"name": "churned", "classes": list(CLASSES)},
        "features": [{"name": "x", "type": "numeric"}],
        "estimator": {"name": "logistic_regression"},
        "metric": {"name": "accuracy", "at_least": 0.6},
        "monitoring": {"feedback": {"horizon_hours": 48}},
    }
    if live_quality:
        document["monitoring"]["live_quality"] = live_quality
    return document


def deploy(
    store: ObjectStore,
    number: int,
    *,
    name: str = "churn",
    holdout: float = 0.9,
    contract: dict[str, Any] | None = None,
    target_shares: tuple[int, int] | None = (70, 30),
    target: Any = None,
) -> ModelVersion:
    """A registry version with its baseline stored (with a target profile unless told otherwise)."""
    document = contract or contract_document(name)
    parse_contract(document)
    digest = hashlib.sha256(f"{name}-{number}".encode()).hexdigest()
    version = ModelVersion(
        model_name=name,
        version=number,
        status=VersionStatus.PRODUCTION,
        metric_name=document["metric"]["name"],
        metrics={document["metric"]["name"]: holdout},
        artifact=Artifact(
            bucket=BUCKET,
            key=f"models/{name}/{digest}.onnx",
            sha256=digest,
            size_bytes=1,
            baseline_key=f"baselines/{name}/{digest}.json",
        ),
        contract=document,
        lineage={},
        created_at=NOW,
    )
    if target is None and target_shares is not None:
        target = profile_categorical(["no"] * target_shares[0] + ["yes"] * target_shares[1])
    baseline = BaselineProfile(
        model_name=name,
        created_at=NOW,
        rows=100,
        features={"x": profile_numeric([float(i) for i in range(100)])},
        prediction=profile_numeric([i / 100 for i in range(100)]),
        target=target,
    )
    store.put_bytes(BUCKET, version.artifact.baseline_key, baseline.model_dump_json().encode())
    return version


class FakeRegistry:
    def __init__(self, versions: Sequence[ModelVersion], production: dict[str, int | None]) -> None:
        self.versions = {(v.model_name, v.version): v for v in versions}
        self.production = production

    def list_models(self) -> list[ModelRecord]:
        return [
            ModelRecord(name=name, latest_version=version or 1, production_version=version, updated_at=NOW)
            for name, version in self.production.items()
        ]

    def get_version(self, name: str, version: int) -> ModelVersion:
        try:
            return self.versions[(name, version)]
        except KeyError:
            raise NotFoundError(f"{name} v{version} does not exist") from None


class RecordingMetrics:
    def __init__(self) -> None:
        self.added: list[tuple[str, float, str, dict[str, str]]] = []

    def add(self, name: str, value: float, unit: str, dimensions: dict[str, str] | None = None) -> None:
        self.added.append((name, value, unit, dict(dimensions or {})))

    def of(self, name: str, model: str = "churn") -> list[float]:
        return [value for metric, value, _, dims in self.added if metric == name and dims == {"model": model}]


def answer(count: int, at: datetime) -> list[str]:
    """Prediction ids of `count` records answered at `at`."""
    return new_prediction_ids(count, clock=lambda: at.timestamp())


def write_captures(
    store: ObjectStore,
    ids: Sequence[str],
    *,
    flushed: datetime,
    predicted: Sequence[str],
    yes_probability: Sequence[float],
    version: int = 1,
    model: str = "churn",
    batch_id: str = "b",
) -> str:
    """One capture object of these predictions, flushed at `flushed`, as predict writes it."""
    rows = len(ids)
    batch = CaptureBatch(
        at=[flushed.timestamp() - 1] * rows,
        versions=[version] * rows,
        prediction_ids=list(ids),
        inputs={"x": [1.0] * rows},
        outputs={
            "label": list(predicted),
            "probability:no": [1 - p for p in yes_probability],
            "probability:yes": list(yes_probability),
        },
    )
    key = capture_key(model, flushed, batch_id)
    store.put_bytes(BUCKET, key, encode_batch(batch)[0], "application/json")
    return key


def write_labels(
    store: ObjectStore,
    ids: Sequence[str],
    labels: Sequence[Any],
    *,
    arrived: datetime,
    model: str = "churn",
    source: str = "api",
) -> list[str]:
    """Label objects of these labels (one per prediction minute), as the feedback route writes them."""
    minutes: dict[datetime, list[int]] = {}
    for row, pid in enumerate(ids):
        minutes.setdefault(prediction_minute(pid), []).append(row)
    keys = []
    for minute, rows in sorted(minutes.items()):
        batch = LabelBatch(
            prediction_ids=[ids[r] for r in rows],
            labels=[labels[r] for r in rows],
            received_at=[arrived.timestamp()] * len(rows),
            source=source,
        )
        key = label_key(model, minute, new_label_batch_id(arrived))
        store.put_bytes(BUCKET, key, encode_labels(batch), "application/json")
        keys.append(key)
    return keys


def stored_quality_result(
    generated_at: datetime, *, live: float | None = 0.82, holdout: float = 0.9, rows: int = 400
) -> QualityResult:
    """A live-quality result as evaluate_quality stores it (None `live`: too few labels to judge)."""
    scored = live is not None
    production = VersionQuality(
        version=1,
        labelled_rows=rows,
        metrics={"roc_auc": live, "roc_auc_error_bound": 0.0004, "accuracy": 0.8} if scored else {},
        holdout={"roc_auc": holdout},
        label_counts={"no": rows - rows // 4, "yes": rows // 4},
        label_drift_psi=0.01,
    )
    return QualityResult(
        model_name="churn",
        version=1,
        generated_at=generated_at,
        status=QualityStatus.SCORED if scored else QualityStatus.INSUFFICIENT_DATA,
        window_hours=24,
        window_start=generated_at - timedelta(hours=24),
        min_labels=200,
        f1_averaging="binary, positive class 'yes'",
        auc_bins=1000,
        production=production,
        verdict=QualityVerdict(
            metric="roc_auc",
            higher_is_better=True,
            live=live,
            holdout=holdout,
            minimum=0.7,
            margin=0.05,
            below_minimum=live < 0.7,
            below_holdout=live < holdout - 0.05,
        )
        if live is not None
        else None,
        label_drift_threshold=0.2,
        run=RunCounts(labels=rows, joined=rows, unmatched=3),
    )
