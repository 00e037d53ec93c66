"""train_model handler on the moto server: a realistic DatasetValidated event in, artifact + event out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.contract import parse_contract
from mlops.events import EVENT_SOURCE, DatasetRef, DetailType
from mlops.layout import artifact_key, baseline_key, contract_key
from mlops.training.outcome import dataset_id_of
from mlops.validation.ledger import DatasetState, LedgerEntry
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_dataset
from tests.support import datasets as ds
from tests.support import resources as test_resources
from tests.support.bus import drain, tap_bus
from tests.support.lambda_context import FakeLambdaContext

CONTRACT_TEXT = (Path(__file__).resolve().parents[2] / "contracts" / "churn.json").read_text()
DATASET_KEY = "datasets/churn/2024-06-01.csv"


@pytest.fixture
def resources(stack: test_resources.TestResources, monkeypatch: pytest.MonkeyPatch) -> test_resources.TestResources:
    names = stack
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "train-model")
    return names


@pytest.fixture
def handler(resources: test_resources.TestResources) -> ModuleType:
    return load_handler_module("train_model")


@pytest.fixture
def outcomes(resources: test_resources.TestResources) -> str:
    """An SQS queue receiving the stage's outcome events through a bus rule, as a consumer would."""
    return tap_bus(resources.event_bus_name, [DetailType.MODEL_TRAINED, DetailType.TRAINING_REJECTED])


def received(queue_url: str) -> list[dict[str, Any]]:
    return drain(queue_url)


def upload(resources: test_resources.TestResources, rows: int = 2000) -> tuple[bytes, str]:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=resources.data_bucket, Key=contract_key("churn"), Body=CONTRACT_TEXT.encode())
    data = churn_dataset(rows).to_csv(index=False).encode()
    version = s3.put_object(Bucket=resources.data_bucket, Key=DATASET_KEY, Body=data)["VersionId"]
    return data, version


def dataset_validated(
    resources: test_resources.TestResources, data: bytes, version: str | None, rows: int = 2000
) -> dict[str, Any]:
    """The event as EventBridge delivers it to the function (the bus rule's target)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DetailType.DATASET_VALIDATED,
        "source": EVENT_SOURCE,
        "account": "123456789012",
        "time": "2024-06-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "model_name": "churn",
            "dataset": {
                "bucket": resources.data_bucket,
                "key": DATASET_KEY,
                "version_id": version,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
                "rows": rows,
            },
            "contract_digest": parse_contract(CONTRACT_TEXT).digest,
            "report_key": "reports/churn/2024-06-01.json",
        },
    }


def test_train_model_handler_stores_artifact_and_publishes_model_trained(
    handler: ModuleType, resources: test_resources.TestResources, outcomes: str
) -> None:
    data, version = upload(resources)
    result = handler.lambda_handler(dataset_validated(resources, data, version), FakeLambdaContext())
    assert result["status"] == DetailType.MODEL_TRAINED

    [event] = received(outcomes)
    assert event["detail-type"] == DetailType.MODEL_TRAINED
    assert event["source"] == EVENT_SOURCE
    detail = event["detail"]
    sha = detail["artifact_sha256"]
    assert detail["artifact_key"] == artifact_key("churn", sha)
    assert detail["baseline_key"] == baseline_key("churn", sha)
    s3 = boto3.client("s3")
    artifact = s3.get_object(Bucket=resources.artifact_bucket, Key=detail["artifact_key"])["Body"].read()
    assert hashlib.sha256(artifact).hexdigest() == sha
    assert detail["artifact_bytes"] == len(artifact)
    baseline = json.loads(s3.get_object(Bucket=resources.artifact_bucket, Key=detail["baseline_key"])["Body"].read())
    assert baseline["model_name"] == "churn"
    assert detail["dataset"]["version_id"] == version
    assert detail["contract"]["name"] == "churn"
    assert detail["metrics"]["roc_auc"] >= 0.7
    assert detail["training_rows"] == 1600


def test_train_model_handler_rejects_a_dataset_changed_since_validation(
    handler: ModuleType, resources: test_resources.TestResources, outcomes: str
) -> None:
    data, _ = upload(resources)
    # validated without a version id (as from an unversioned bucket), then overwritten in place
    event = dataset_validated(resources, data, None)
    changed = churn_dataset(2000, seed=8).to_csv(index=False).encode()
    boto3.client("s3").put_object(Bucket=resources.data_bucket, Key=DATASET_KEY, Body=changed)

    result = handler.lambda_handler(event, FakeLambdaContext())  # returns normally: no retries

    assert result["status"] == DetailType.TRAINING_REJECTED
    [rejected] = received(outcomes)
    assert rejected["detail-type"] == DetailType.TRAINING_REJECTED
    assert "changed since validation" in rejected["detail"]["reason"]
    assert rejected["detail"]["dataset"]["key"] == DATASET_KEY
    listed = boto3.client("s3").list_objects_v2(Bucket=resources.artifact_bucket)
    assert listed.get("KeyCount", 0) == 0


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the replay trains nothing
def test_train_model_handler_trains_once_per_dataset_version(
    handler: ModuleType, resources: test_resources.TestResources, outcomes: str
) -> None:
    data, version = upload(resources)
    event = dataset_validated(resources, data, version)
    first = handler.lambda_handler(event, FakeLambdaContext())
    # EventBridge redelivers: a new envelope id, the same detail
    duplicate = {**event, "id": str(uuid.uuid4())}
    second = handler.lambda_handler(duplicate, FakeLambdaContext())

    assert second == first
    assert len(received(outcomes)) == 1
    versions = boto3.client("s3").list_object_versions(Bucket=resources.artifact_bucket).get("Versions", [])
    assert len(versions) == 2  # one artifact, one baseline: the duplicate wrote nothing


def test_train_model_handler_rejects_a_quarantined_dataset_with_a_matching_digest(
    handler: ModuleType, resources: test_resources.TestResources, outcomes: str
) -> None:
    # GIVEN a file validation quarantined, and an event naming it with its true SHA-256
    data, _ = upload(resources)
    quarantined = "quarantine/churn/rejected.csv"
    version = boto3.client("s3").put_object(Bucket=resources.data_bucket, Key=quarantined, Body=data)["VersionId"]
    event = dataset_validated(resources, data, version)
    event["detail"]["dataset"]["key"] = quarantined

    result = handler.lambda_handler(event, FakeLambdaContext())  # returns normally: no retries

    assert result["status"] == DetailType.TRAINING_REJECTED
    [rejected] = received(outcomes)
    assert "is not under datasets/churn/" in rejected["detail"]["reason"]
    assert boto3.client("s3").list_objects_v2(Bucket=resources.artifact_bucket).get("KeyCount", 0) == 0


def malformed(resources: test_resources.TestResources, mutate: Any) -> dict[str, Any]:
    """A DatasetValidated envelope as EventBridge delivers it, then broken the way `mutate` says."""
    data = b"a,b\n1,2\n"
    event = dataset_validated(resources, data, "v1")
    mutate(event)
    return event


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update(detail=None), "detail: Input should be a valid dictionary"),
        (lambda e: e.pop("detail"), "detail: Input should be a valid dictionary"),
        (lambda e: e.update(detail={}), "model_name: Field required"),
        (lambda e: e["detail"]["dataset"].pop("bucket"), "dataset.bucket: Field required"),
        (lambda e: e["detail"].update(model_name=None), "model_name: Input should be a valid string"),
        (lambda e: e.update({"detail-type": DetailType.MODEL_TRAINED}), "got 'ModelTrained'"),
    ],
)
def test_train_model_handler_logs_an_unattributable_malformed_event_and_returns(
    handler: ModuleType,
    resources: test_resources.TestResources,
    outcomes: str,
    caplog: pytest.LogCaptureFixture,
    mutate: Any,
    reason: str,
) -> None:
    result = handler.lambda_handler(malformed(resources, mutate), FakeLambdaContext())  # no raise: no retries

    assert result["status"] == "Malformed"
    assert not result["published"]
    assert reason in result["reason"]
    [record] = [r for r in caplog.records if r.getMessage() == "event rejected"]
    assert record.levelname == "WARNING"
    assert reason in record.reason  # type: ignore[attr-defined]
    assert received(outcomes) == []


def test_train_model_handler_rejects_a_malformed_event_it_can_attribute(
    handler: ModuleType, resources: test_resources.TestResources, outcomes: str
) -> None:
    # GIVEN a DatasetValidated whose model and dataset are readable but whose contract digest is missing
    event = malformed(resources, lambda e: e["detail"].pop("contract_digest"))

    result = handler.lambda_handler(event, FakeLambdaContext())

    assert result["status"] == "Malformed"
    assert result["published"]
    [rejected] = received(outcomes)
    assert rejected["detail-type"] == DetailType.TRAINING_REJECTED
    assert rejected["detail"]["model_name"] == "churn"
    assert rejected["detail"]["dataset"]["key"] == DATASET_KEY
    assert "contract_digest: Field required" in rejected["detail"]["reason"]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # it failed before counting anything
def test_train_model_handler_raises_when_the_rejection_cannot_be_published(
    handler: ModuleType, resources: test_resources.TestResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a transient AWS failure is not swallowed: Lambda retries the event
    monkeypatch.setattr(handler, "settings", dataclasses.replace(handler.settings, event_bus_name="no-such-bus"))
    event = malformed(resources, lambda e: e["detail"].pop("report_key"))
    with pytest.raises(Exception, match=r"no-such-bus|EventBridge refused|ResourceNotFound"):
        handler.lambda_handler(event, FakeLambdaContext())


# ---- every accepted dataset ends in a recorded training outcome (issue item 8) ----


def accepted(resources: test_resources.TestResources, event: dict[str, Any]) -> DynamoDatasetLedger:
    """The event's dataset in the ledger as validation leaves it: accepted."""
    ledger = DynamoDatasetLedger(resources.ledger_table)
    ledger.record(ds.accepted_entry(DatasetRef.model_validate(event["detail"]["dataset"])))
    return ledger


def ledger_entry(ledger: DynamoDatasetLedger, event: dict[str, Any]) -> LedgerEntry:
    entry = ledger.get("churn", dataset_id_of(DatasetRef.model_validate(event["detail"]["dataset"])))
    assert entry is not None
    return entry


def test_train_model_handler_records_trained_in_the_ledger(
    handler: ModuleType, resources: test_resources.TestResources, outcomes: str
) -> None:
    data, version = upload(resources)
    event = dataset_validated(resources, data, version)
    ledger = accepted(resources, event)
    handler.lambda_handler(event, FakeLambdaContext())
    [trained] = received(outcomes)
    entry = ledger_entry(ledger, event)
    assert entry.state is DatasetState.TRAINED
    assert entry.artifact_sha256 == trained["detail"]["artifact_sha256"]


def test_train_model_handler_rejects_a_dataset_too_big_for_its_memory_and_records_it(
    handler: ModuleType, resources: test_resources.TestResources, outcomes: str
) -> None:
    # GIVEN validation counted 40 million rows (the contract's old default allowed 50 million)
    data, version = upload(resources)
    event = dataset_validated(resources, data, version, rows=40_000_000)
    ledger = accepted(resources, event)

    result = handler.lambda_handler(event, FakeLambdaContext())  # returns: a retry cannot make it fit

    assert result["status"] == DetailType.TRAINING_REJECTED
    [rejected] = received(outcomes)
    assert "needs about" in rejected["detail"]["reason"]
    entry = ledger_entry(ledger, event)
    assert entry.state is DatasetState.TRAINING_REJECTED
    assert entry.history[-1].reason == rejected["detail"]["reason"]


@pytest.fixture
def failure_handler(resources: test_resources.TestResources) -> ModuleType:
    return load_handler_module("record_training_failure")


def test_record_training_failure_handler_ends_an_out_of_memory_kill_as_training_failed(
    failure_handler: ModuleType, resources: test_resources.TestResources
) -> None:
    # GIVEN train_model was killed for memory on every attempt: Lambda sends its destination record
    data, version = upload(resources)
    event = dataset_validated(resources, data, version)
    ledger = accepted(resources, event)
    failures = tap_bus(resources.event_bus_name, [DetailType.TRAINING_FAILED], name="failures")
    record = {
        "version": "1.0",
        "timestamp": "2026-12-02T10:00:00.000Z",
        "requestContext": {
            "requestId": "c0ffee",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:train:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": "RequestId: c0ffee Error: Runtime exited with error: signal: killed",
        },
    }

    result = failure_handler.lambda_handler(record, FakeLambdaContext())
    failure_handler.lambda_handler(record, FakeLambdaContext())  # a duplicate delivery

    assert result["state"] == DatasetState.TRAINING_FAILED
    entry = ledger_entry(ledger, event)
    assert entry.state is DatasetState.TRAINING_FAILED
    assert "RetriesExhausted after 3 attempts: Runtime.OutOfMemory" in entry.history[-1].reason
    [announced] = drain(failures)
    assert announced["detail"]["reason"] == entry.history[-1].reason
    assert announced["detail"]["dataset"]["key"] == DATASET_KEY
    # and the dataset is found by state, as the models API lists it
    assert [e.dataset_id for e in ledger.by_state("churn", DatasetState.TRAINING_FAILED)] == [entry.dataset_id]


def test_train_then_register_decides_on_the_same_data_in_dynamodb(
    handler: ModuleType, resources: test_resources.TestResources
) -> None:
    # GIVEN production v1 trained on plenty of noisy rows and registered (DynamoDB on moto)
    from mlops.adapters.registry_dynamodb import DynamoRegistry
    from mlops.adapters.s3 import S3ObjectStore
    from tests.support.challenger import easy_rows, hard_rows, risk_contract, risk_rows, write_labelled_traffic

    register = load_handler_module("register_model")
    registry = DynamoRegistry(resources.registry_table)

    def train_and_register(frame: Any, name: str) -> dict[str, Any]:
        text = json.dumps(risk_contract())
        s3 = boto3.client("s3")
        s3.put_object(Bucket=resources.data_bucket, Key=contract_key("risk"), Body=text.encode())
        data = frame.to_csv(index=False).encode()
        key = f"datasets/risk/{name}.csv"
        version = s3.put_object(Bucket=resources.data_bucket, Key=key, Body=data)["VersionId"]
        event = dataset_validated(resources, data, version, rows=len(frame))
        event["detail"] |= {"model_name": "risk", "contract_digest": parse_contract(text).digest}
        event["detail"]["dataset"]["key"] = key
        result = handler.lambda_handler(event, FakeLambdaContext())
        assert result["status"] == DetailType.MODEL_TRAINED
        trained = {
            **event,
            "id": str(uuid.uuid4()),
            "detail-type": DetailType.MODEL_TRAINED,
            "detail": result["detail"],
        }
        register.lambda_handler(trained, FakeLambdaContext())
        return result["detail"]

    train_and_register(hard_rows(), "hard")
    assert registry.get_model("risk").production_version == 1
    served = datetime.now(UTC) - timedelta(hours=2)
    write_labelled_traffic(S3ObjectStore(), resources.artifact_bucket, risk_rows(300, 1.0, seed=5), answered_at=served)
    # WHEN a candidate trained on an easier upload arrives
    detail = train_and_register(easy_rows(), "easy")
    # THEN training scored production's graph on the candidate's holdout, and the registry decided on it
    score, traffic = detail["same_data"]
    assert score["champion_version"] == 1
    # and both on the 300 labelled predictions production served (captures/ and labels/ on S3)
    assert (traffic["data"], traffic["rows"], traffic["unavailable"]) == ("recent_traffic", 300, None)
    assert traffic["champion_value"] > traffic["candidate_value"]
    assert score["champion_value"] > score["candidate_value"] == detail["metrics"]["roc_auc"]
    candidate = registry.get_version("risk", 2)
    assert candidate.lineage["same_data"][0]["champion_value"] == pytest.approx(score["champion_value"])
    assert registry.get_model("risk").production_version == 1
    assert candidate.promotion_decision.startswith(f"on the candidate's holdout ({detail['holdout_rows']} rows)")
    assert "does not beat production v1" in candidate.promotion_decision
    # the compare answer reads the same-data scores back from DynamoDB
    from mlops.registry.service import compare_versions

    comparison = compare_versions(registry, "risk", 1, 2, store=S3ObjectStore())
    assert [(p.data, p.recorded_by, p.a, p.b) for p in comparison.same_data] == [
        ("candidate_holdout", 2, pytest.approx(score["champion_value"]), pytest.approx(score["candidate_value"])),
        ("recent_traffic", 2, pytest.approx(traffic["champion_value"]), pytest.approx(traffic["candidate_value"])),
    ]
    assert (comparison.better, comparison.better_basis) == (1, "same_data")
    assert comparison.schema_compatibility.compatible


def test_record_training_failure_handler_announces_an_import_lambda_gave_up_on(
    failure_handler: ModuleType, resources: test_resources.TestResources
) -> None:
    # GIVEN train_model timed out on every attempt at an import drop (an S3 event, not DatasetValidated)
    rejected = tap_bus(resources.event_bus_name, [DetailType.MODEL_IMPORT_REJECTED], name="import-failures")
    record = {
        "version": "1.0",
        "requestContext": {"requestId": "c0ffee", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {
            "Records": [
                {
                    "eventTime": "2026-12-02T10:00:00.000Z",
                    "userIdentity": {"principalId": "AWS:AROAUPLOADER:alice"},
                    "s3": {
                        "bucket": {"name": resources.data_bucket},
                        "object": {"key": "models/churn/incoming/big+model.onnx", "versionId": "v7"},
                    },
                }
            ]
        },
        "responsePayload": {"errorMessage": "Task timed out after 900.00 seconds"},
    }
    # WHEN the on-failure destination receives it
    result = failure_handler.lambda_handler(record, FakeLambdaContext())
    # THEN the import is announced as rejected, naming the file, the uploader and why
    assert result["status"] == "ImportFailed"
    [event] = drain(rejected)
    detail = event["detail"]
    assert detail["model_name"] == "churn"
    assert detail["source"]["key"] == "models/churn/incoming/big model.onnx"
    assert detail["source"]["version_id"] == "v7"
    assert detail["source"]["importer"] == "AWS:AROAUPLOADER:alice"
    assert detail["problems"] == [
        "the import did not finish: RetriesExhausted after 3 attempts: Task timed out after 900.00 seconds"
    ]
