"""A retraining's training set refused by the dataset gate or training is the retraining's outcome:
it goes into the model's audit trail (`retrain_refused`), once per bus event; other datasets'
refusals are not retraining outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mlops.events import DatasetRef, DetailType
from mlops.layout import retrain_dataset_key
from mlops.registry.records import AuditAction
from mlops.retraining.outcomes import record_refusal, refusal_of
from tests.support.fakes import InMemoryObjectStore
from tests.support.registry_fake import InMemoryRegistry, artifact_bytes, trained_event

RETRAIN_KEY = retrain_dataset_key("risk", datetime(2026, 12, 3, 5, 0, tzinfo=UTC), "alarm-1")


def dataset(key: str) -> dict[str, Any]:
    ref = DatasetRef(bucket="data", key=key, version_id="v1", sha256="a" * 64, size_bytes=10, rows=5)
    return ref.model_dump(mode="json")


def bus_event(detail_type: str, key: str, event_id: str = "e-1") -> dict[str, Any]:
    details: dict[str, dict[str, Any]] = {
        DetailType.DATASET_QUARANTINED: {
            "model_name": "risk",
            "source_key": key,
            "quarantine_key": "quarantine/" + key,
            "report_key": "reports/risk/x.json",
            "reasons": ["missing_columns: region"],
        },
        DetailType.DATASET_HELD: {
            "model_name": "risk",
            "dataset_id": "x",
            "dataset": dataset(key),
            "report_key": "reports/risk/x.json",
            "reasons": ["label_shift: churned"],
        },
        DetailType.TRAINING_REJECTED: {"model_name": "risk", "dataset": dataset(key), "reason": "one class only"},
        DetailType.TRAINING_FAILED: {"model_name": "risk", "dataset": dataset(key), "reason": "out of memory"},
    }
    return {"id": event_id, "source": "mlops", "detail-type": detail_type, "detail": details[detail_type]}


@pytest.fixture
def registry() -> InMemoryRegistry:
    store = InMemoryObjectStore()
    registry = InMemoryRegistry(store)
    event = trained_event("risk", score=0.9)
    store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes("risk-0.9"))
    registry.register(event, actor="trainer")
    return registry


@pytest.mark.parametrize(
    ("detail_type", "stage", "reason"),
    [
        (DetailType.DATASET_QUARANTINED, "quarantined by the dataset gate", "missing_columns: region"),
        (DetailType.DATASET_HELD, "held for review by the dataset gate", "label_shift: churned"),
        (DetailType.TRAINING_REJECTED, "rejected by training", "one class only"),
        (DetailType.TRAINING_FAILED, "training failed", "out of memory"),
    ],
)
def test_a_refused_training_set_is_the_retrainings_audited_outcome(
    registry: InMemoryRegistry, detail_type: str, stage: str, reason: str
) -> None:
    # GIVEN the bus reports that a retraining's training set was refused on its way
    refusal = refusal_of(bus_event(detail_type, RETRAIN_KEY))
    assert refusal is not None
    # WHEN retrain_model records it, and the bus delivers the same event again
    first = record_refusal(registry, refusal)
    again = record_refusal(registry, refusal_of(bus_event(detail_type, RETRAIN_KEY)))  # type: ignore[arg-type]
    # THEN the model's audit trail holds it once, naming the file, the stage and why
    refused = [e for e in registry.audit_events("risk") if e.action == AuditAction.RETRAIN_REFUSED]
    assert len(refused) == 1
    assert again.seq == first.seq
    assert refused[0].after["dataset_key"] == RETRAIN_KEY
    assert refused[0].after["stage"] == stage
    assert stage in refused[0].reason
    assert reason in refused[0].reason


def test_refusals_of_other_datasets_and_other_events_are_not_retraining_outcomes() -> None:
    assert refusal_of(bus_event(DetailType.DATASET_QUARANTINED, "datasets/risk/upload.csv")) is None
    # a retrain file of another model under this model's name is not this model's retraining
    assert refusal_of(bus_event(DetailType.TRAINING_REJECTED, RETRAIN_KEY.replace("/risk/", "/other/"))) is None
    assert refusal_of({"detail-type": DetailType.MODEL_TRAINED, "detail": {}}) is None
    assert refusal_of({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change"}) is None
