"""functions/register_model against the moto server, with EventBridge events as the bus delivers them."""

from __future__ import annotations

import json
import uuid
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.errors import IntegrityError, MlopsError, ModelNotFoundError, NotFoundError
from mlops.events import DatasetRef, DetailType, ImportSource, ModelTrained
from mlops.ports import EventPublisher
from mlops.training.outcome import dataset_id_of
from mlops.validation.ledger import DatasetState, LedgerChange
from mlops_local.handlers import load_handler_module
from tests.support.bus import tap_bus
from tests.support.datasets import accepted_entry
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import artifact_bytes, trained_event
from tests.support.resources import TestResources


@pytest.fixture
def resources(stack: TestResources) -> TestResources:
    return stack


@pytest.fixture
def bus_queue(resources: TestResources) -> str:
    """An SQS queue receiving every event the stages publish on the bus."""
    return tap_bus(resources.event_bus_name)


@pytest.fixture
def handler(resources: TestResources) -> ModuleType:
    return load_handler_module("register_model")


@pytest.fixture
def registry(resources: TestResources) -> DynamoRegistry:
    return DynamoRegistry(resources.registry_table)


def upload(resources: TestResources, event: ModelTrained, data: bytes) -> None:
    boto3.client("s3").put_object(Bucket=resources.artifact_bucket, Key=event.artifact_key, Body=data)


def bus_event(detail: ModelTrained, event_id: str | None = None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": DetailType.MODEL_TRAINED,
        "source": "mlops",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail.model_dump(mode="json"),
    }


def published(queue_url: str) -> list[tuple[str, dict[str, Any]]]:
    sqs = boto3.client("sqs")
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        for message in messages:
            body = json.loads(message["Body"])
            out.append((body["detail-type"], body["detail"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def register(handler: ModuleType, resources: TestResources, score: float, **kwargs: Any) -> dict[str, Any]:
    data = artifact_bytes(f"score-{score}")
    event = trained_event(score=score, artifact=data, bucket=resources.artifact_bucket)
    upload(resources, event, data)
    return handler.lambda_handler(bus_event(event, **kwargs), FakeLambdaContext())


def test_register_handler_registers_promotes_and_announces(
    handler: ModuleType,
    resources: TestResources,
    registry: DynamoRegistry,
    bus_queue: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = register(handler, resources, 0.8)

    assert result == {
        "created": True,
        "promoted": True,
        "decision": result["decision"],
        "previous_production": None,
        "model_name": "churn",
        "version": 1,
        "status": "production",
    }
    assert registry.production("churn").version == 1  # type: ignore[union-attr]
    kinds = [(kind, detail["version"]) for kind, detail in published(bus_queue)]
    assert sorted(kinds) == [(DetailType.MODEL_PROMOTED, 1), (DetailType.MODEL_REGISTERED, 1)]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]: m["model"] for m in emitted}
    assert names == {"ModelsRegistered": "churn", "ModelsPromoted": "churn"}


def test_register_handler_worse_model_is_registered_not_promoted(
    handler: ModuleType, resources: TestResources, registry: DynamoRegistry, bus_queue: str
) -> None:
    register(handler, resources, 0.8)
    published(bus_queue)

    result = register(handler, resources, 0.72)

    assert (result["version"], result["promoted"], result["status"]) == (2, False, "candidate")
    assert "does not beat production v1" in result["decision"]
    [(kind, detail)] = published(bus_queue)
    assert kind == DetailType.MODEL_REGISTERED
    assert (detail["version"], detail["promoted"]) == (2, False)


def test_register_handler_duplicate_event_makes_no_new_version(
    handler: ModuleType, resources: TestResources, registry: DynamoRegistry, bus_queue: str
) -> None:
    data = artifact_bytes("dup")
    event = trained_event(score=0.8, artifact=data, bucket=resources.artifact_bucket)
    upload(resources, event, data)

    first = handler.lambda_handler(bus_event(event, "evt-1"), FakeLambdaContext())
    same_delivery = handler.lambda_handler(bus_event(event, "evt-1"), FakeLambdaContext())
    republished = handler.lambda_handler(bus_event(event, "evt-2"), FakeLambdaContext())

    assert first == same_delivery == republished
    assert registry.get_model("churn").latest_version == 1
    assert len(published(bus_queue)) == 2  # one ModelRegistered, one ModelPromoted


def test_register_handler_duplicate_is_caught_by_the_claim_without_idempotency_record(
    handler: ModuleType, resources: TestResources, registry: DynamoRegistry
) -> None:
    data = artifact_bytes("claim")
    event = trained_event(score=0.8, artifact=data, bucket=resources.artifact_bucket)
    upload(resources, event, data)
    handler.lambda_handler(bus_event(event), FakeLambdaContext())
    # GIVEN the idempotency record is gone (expired, or another function version)
    dynamodb = boto3.resource("dynamodb").Table(resources.idempotency_table)
    for item in dynamodb.scan()["Items"]:
        dynamodb.delete_item(Key={"id": item["id"]})

    again = handler.lambda_handler(bus_event(event), FakeLambdaContext())

    assert (again["created"], again["version"]) == (False, 1)
    assert registry.get_model("churn").latest_version == 1


class _RefusesFirst:
    """The real bus publisher, except that the first event is refused (a throttled PutEvents)."""

    def __init__(self, inner: EventPublisher) -> None:
        self.inner, self.refused = inner, False

    def publish(self, detail_type: str, detail: Any) -> None:
        if not self.refused:
            self.refused = True
            raise MlopsError(f"EventBridge refused {detail_type}: ThrottlingException")
        self.inner.publish(detail_type, detail)


def test_register_handler_retry_after_a_failed_publish_announces(
    handler: ModuleType,
    resources: TestResources,
    registry: DynamoRegistry,
    bus_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = artifact_bytes("flaky-bus")
    event = trained_event(score=0.8, artifact=data, bucket=resources.artifact_bucket)
    upload(resources, event, data)
    monkeypatch.setattr(handler, "publisher", _RefusesFirst(handler.publisher))
    # GIVEN the registration was written but the bus refused its announcement
    with pytest.raises(MlopsError, match="refused"):
        handler.lambda_handler(bus_event(event, "evt-1"), FakeLambdaContext())
    assert registry.production("churn").version == 1  # type: ignore[union-attr]
    assert published(bus_queue) == []

    # WHEN the bus retries the delivery
    again = handler.lambda_handler(bus_event(event, "evt-1"), FakeLambdaContext())

    # THEN the version is not registered twice, and this time it is announced
    assert (again["created"], again["version"]) == (False, 1)
    assert sorted((kind, detail["version"]) for kind, detail in published(bus_queue)) == [
        (DetailType.MODEL_PROMOTED, 1),
        (DetailType.MODEL_REGISTERED, 1),
    ]


def test_register_handler_refuses_artifact_whose_bytes_do_not_match(
    handler: ModuleType, resources: TestResources, registry: DynamoRegistry, bus_queue: str
) -> None:
    # GIVEN the event's digest and size describe other bytes than the object holds
    claimed = artifact_bytes("what the trainer said")
    event = trained_event(score=0.8, artifact=claimed, bucket=resources.artifact_bucket)
    upload(resources, event, b"X" * len(claimed))

    with pytest.raises(IntegrityError, match="SHA-256"):
        handler.lambda_handler(bus_event(event), FakeLambdaContext())

    # THEN nothing was recorded or announced
    with pytest.raises(ModelNotFoundError):
        registry.get_model("churn")
    assert published(bus_queue) == []


def test_register_handler_refuses_missing_artifact_and_foreign_bucket(
    handler: ModuleType, resources: TestResources, registry: DynamoRegistry
) -> None:
    event = trained_event(score=0.8, bucket=resources.artifact_bucket)
    with pytest.raises(NotFoundError):
        handler.lambda_handler(bus_event(event), FakeLambdaContext())

    foreign = trained_event(score=0.8, bucket=resources.data_bucket)
    with pytest.raises(Exception, match="outside the artifact bucket"):
        handler.lambda_handler(bus_event(foreign), FakeLambdaContext())
    with pytest.raises(ModelNotFoundError):
        registry.get_model("churn")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.pop("detail"), "detail: Input should be a valid dictionary"),
        (lambda e: e.update(detail=None), "detail: Input should be a valid dictionary"),
        (lambda e: e.update(detail={}), "model_name: Field required"),
        (lambda e: e["detail"].pop("artifact_sha256"), "artifact_sha256: Field required"),
        (lambda e: e["detail"].update(metrics="high"), "metrics: Input should be a valid dictionary"),
    ],
)
def test_register_handler_logs_a_malformed_event_and_returns_without_retry(
    handler: ModuleType,
    resources: TestResources,
    registry: DynamoRegistry,
    bus_queue: str,
    caplog: pytest.LogCaptureFixture,
    mutate: Any,
    reason: str,
) -> None:
    # GIVEN a ModelTrained envelope as the bus delivers it, broken in one place
    data = artifact_bytes("malformed")
    trained = trained_event(score=0.8, artifact=data, bucket=resources.artifact_bucket)
    upload(resources, trained, data)
    event = bus_event(trained)
    mutate(event)

    result = handler.lambda_handler(event, FakeLambdaContext())  # returns: a retry cannot make it parse

    assert result["status"] == "Malformed"
    assert reason in result["reason"]
    [record] = [r for r in caplog.records if r.getMessage() == "event rejected"]
    assert record.levelname == "WARNING"
    assert record.event_id == event["id"]  # type: ignore[attr-defined]
    assert published(bus_queue) == []
    with pytest.raises(ModelNotFoundError):
        registry.production("churn")


# ---- the dataset's ledger entry records what its training came to (issue item 9) ----


def trained_dataset_in_ledger(resources: TestResources, dataset: DatasetRef) -> DynamoDatasetLedger:
    """The dataset as train_model leaves it in the ledger: trained."""
    ledger = DynamoDatasetLedger(resources.ledger_table)
    at = "2026-12-01T00:00:00+00:00"
    entry = ledger.record(accepted_entry(dataset))
    ledger.transition(entry, LedgerChange(at=at, state=DatasetState.TRAINED, actor="train_model"))
    return ledger


def test_register_handler_records_the_new_version_in_the_datasets_ledger_entry(
    handler: ModuleType, resources: TestResources
) -> None:
    data = artifact_bytes("new")
    event = trained_event(score=0.8, artifact=data, bucket=resources.artifact_bucket)
    ledger = trained_dataset_in_ledger(resources, event.dataset)
    upload(resources, event, data)

    handler.lambda_handler(bus_event(event), FakeLambdaContext())

    entry = ledger.get("churn", dataset_id_of(event.dataset))
    assert entry is not None
    assert entry.state is DatasetState.REGISTERED
    assert entry.model_version == 1
    assert entry.artifact_sha256 == event.artifact_sha256
    assert entry.history[-1].reason == "registered as v1 (production)"
    assert entry.history[-1].actor == "register_model"
    # its own retry (the version exists now, from this very dataset) changes nothing
    handler.lambda_handler(bus_event(event), FakeLambdaContext())
    assert ledger.get("churn", dataset_id_of(event.dataset)) == entry


def test_register_handler_says_a_retrained_identical_model_is_identical_not_silent(
    handler: ModuleType, resources: TestResources, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN production v1, trained on January's data
    data = artifact_bytes("same-model")
    january = trained_event(score=0.8, artifact=data, bucket=resources.artifact_bucket)
    upload(resources, january, data)
    handler.lambda_handler(bus_event(january), FakeLambdaContext())
    # WHEN February's dataset trains to the very same artifact
    february = january.model_copy(
        update={"dataset": january.dataset.model_copy(update={"key": "datasets/churn/feb.csv", "sha256": "e" * 64})}
    )
    ledger = trained_dataset_in_ledger(resources, february.dataset)
    caplog.clear()
    result = handler.lambda_handler(bus_event(february), FakeLambdaContext())

    # THEN no new version, and both the ledger and the log say so
    assert (result["created"], result["version"]) == (False, 1)
    entry = ledger.get("churn", dataset_id_of(february.dataset))
    assert entry is not None
    assert entry.state is DatasetState.REGISTERED
    assert entry.model_version == 1
    assert entry.history[-1].reason == "identical to v1, no new version"
    [record] = [r for r in caplog.records if r.getMessage() == "identical model, no new version"]
    assert (record.version, record.outcome) == (1, "identical to v1, no new version")  # type: ignore[attr-defined]


def test_register_handler_leaves_the_holdout_datasets_ledger_entry_alone_for_an_imported_model(
    handler: ModuleType, resources: TestResources, registry: DynamoRegistry
) -> None:
    # GIVEN a model built elsewhere, scored on a dataset the suite trained on (its entry: trained)
    data = artifact_bytes("imported")
    source = ImportSource(
        bucket="data", key="models/churn/incoming/lgbm.onnx", sha256="ab" * 32, size_bytes=10, importer="bob"
    )
    event = trained_event(score=0.8, artifact=data, bucket=resources.artifact_bucket).model_copy(
        update={"origin": "imported", "imported": source}
    )
    ledger = trained_dataset_in_ledger(resources, event.dataset)
    before = ledger.get("churn", dataset_id_of(event.dataset))
    upload(resources, event, data)
    # WHEN it is registered
    result = handler.lambda_handler(bus_event(event), FakeLambdaContext())
    # THEN it is a version like any other, its lineage says imported and by whom, the audit names the importer
    assert result["created"] is True
    version = registry.get_version("churn", result["version"])
    assert version.lineage["origin"] == "imported"
    assert version.lineage["imported"]["importer"] == "bob"
    [registered] = [e for e in registry.audit_events("churn") if e.action == "registered"]
    assert registered.after["importer"] == "bob"
    assert registered.after["source_sha256"] == "ab" * 32
    # AND the dataset's entry still says what the suite's own training came to
    assert ledger.get("churn", dataset_id_of(event.dataset)) == before
