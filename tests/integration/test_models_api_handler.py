"""functions/models_api through lambda_handler with API Gateway REST proxy events, on moto."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.registry.records import VersionStatus
from mlops.validation.decisions import dataset_id
from mlops.validation.ledger import DatasetState, LedgerChange, LedgerEntry
from mlops_local.handlers import load_handler_module
from tests.support.baselines import training_baseline
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import api_event, default_artifact, trained_event
from tests.support.resources import TestResources


@pytest.fixture
def resources(stack: TestResources, monkeypatch: pytest.MonkeyPatch) -> TestResources:
    names = stack
    monkeypatch.setenv("ADMIN_PRINCIPALS", "arn:aws:iam::123456789012:user/alice")
    return names


@pytest.fixture
def registry(resources: TestResources) -> DynamoRegistry:
    registry = DynamoRegistry(resources.registry_table)
    for score in (0.8, 0.75, 0.9):  # v1 production -> archived, v2 candidate, v3 production
        event = trained_event(score=score)  # its artifact is uploaded first, as the trainer does
        boto3.client("s3").put_object(
            Bucket=event.artifact_bucket, Key=event.artifact_key, Body=default_artifact(event)
        )
        registry.register(event, actor="register-model")
    return registry


@pytest.fixture
def handler(resources: TestResources, registry: DynamoRegistry) -> ModuleType:
    return load_handler_module("models_api")


def call(handler: ModuleType, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = handler.lambda_handler(api_event(method, path, body=body), FakeLambdaContext())
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"])


def test_models_api_handler_get_routes(handler: ModuleType) -> None:
    status, models = call(handler, "GET", "/models")
    assert (status, models[0]["name"], models[0]["latest_version"], models[0]["production_version"]) == (
        200,
        "churn",
        3,
        3,
    )

    status, versions = call(handler, "GET", "/models/churn/versions")
    assert status == 200
    assert [(v["version"], v["status"]) for v in versions] == [(1, "archived"), (2, "candidate"), (3, "production")]
    assert versions[2]["metrics"]["roc_auc"] == 0.9
    assert versions[2]["lineage"]["contract_digest"]

    status, audit = call(handler, "GET", "/models/churn/audit")
    assert status == 200
    assert [e["action"] for e in audit].count("registered") == 3


def test_models_api_handler_compare_reads_both_baselines_from_the_artifact_bucket(
    handler: ModuleType, registry: DynamoRegistry, resources: TestResources
) -> None:
    # GIVEN the baselines the trainer stored for v1 and v3; v3's training data has x moved by 1 sd
    s3 = boto3.client("s3")
    for number, baseline in ((1, training_baseline(seed=1)), (3, training_baseline(seed=3, shift=1.0))):
        artifact = registry.get_version("churn", number).artifact
        assert (artifact.bucket, artifact.baseline_key.startswith("baselines/churn/")) == (
            resources.artifact_bucket,
            True,
        )
        s3.put_object(Bucket=artifact.bucket, Key=artifact.baseline_key, Body=baseline.model_dump_json().encode())

    # WHEN the compare route runs through the handler
    status, comparison = call(handler, "GET", "/models/churn/compare?a=1&b=3")

    # THEN the response carries the PSI of v3's training data against v1's
    assert status == 200
    assert (comparison["a"]["version"], comparison["b"]["version"], comparison["better"]) == (1, 3, 3)
    drift = comparison["training_data_drift"]
    assert drift["features"]["x"] > 0.2
    assert drift["features"]["plan"] < 0.01
    assert drift["prediction"] > 0.2
    assert drift["max"] == max(drift["features"]["x"], drift["prediction"])
    assert drift["unavailable"] is None

    # v2 was registered without a baseline (NoSuchKey on S3): the comparison says so and still answers
    status, comparison = call(handler, "GET", "/models/churn/compare?a=1&b=2")
    assert status == 200
    assert comparison["training_data_drift"]["unavailable"].startswith(
        f"v2 has no baseline profile at s3://{resources.artifact_bucket}/baselines/churn/"
    )


def test_models_api_handler_rollback_audits_caller_and_publishes(
    handler: ModuleType, registry: DynamoRegistry, resources: TestResources
) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events")
    pattern = json.dumps({"source": ["mlops"], "detail-type": ["ModelRolledBack"]})
    events.put_rule(Name="tap", EventBusName=resources.event_bus_name, EventPattern=pattern)
    events.put_targets(Rule="tap", EventBusName=resources.event_bus_name, Targets=[{"Id": "q", "Arn": arn}])

    status, body = call(handler, "POST", "/models/churn/rollback", {"reason": "drift on v3", "to_version": None})

    assert (status, body["production_version"]) == (200, 1)
    assert registry.production("churn").version == 1  # type: ignore[union-attr]
    assert registry.get_version("churn", 3).status is VersionStatus.ARCHIVED
    event = registry.audit_events("churn")[-1]
    assert (event.action, event.actor, event.reason) == (
        "rolled_back",
        "arn:aws:iam::123456789012:user/alice",
        "drift on v3",
    )
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert (detail["from_version"], detail["to_version"], detail["actor"]) == (
        3,
        1,
        "arn:aws:iam::123456789012:user/alice",
    )

    status, body = call(handler, "POST", "/models/churn/rollback")
    assert (status, body["error"]) == (409, "ConflictError")


@pytest.mark.parametrize("body", [None, {"reason": "incident"}, {"reason": "incident", "to_version": 1}])
def test_models_api_handler_rollback_refuses_a_tampered_previous_version(
    handler: ModuleType, registry: DynamoRegistry, body: Any
) -> None:
    # GIVEN v3 serves, and v1 (production before it) had its artifact overwritten since
    v1 = registry.get_version("churn", 1).artifact
    boto3.client("s3").put_object(Bucket=v1.bucket, Key=v1.key, Body=b"t" * v1.size_bytes)

    # WHEN an admin rolls back, naming v1 or not
    status, response = call(handler, "POST", "/models/churn/rollback", body)

    # THEN the rollback is refused and v3 still serves: a tampered artifact never serves again
    assert (status, response["error"]) == (503, "IntegrityError")
    assert registry.production("churn").version == 3  # type: ignore[union-attr]
    assert registry.get_version("churn", 1).status is VersionStatus.ARCHIVED


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/models/Bad_Name/versions", 400, "BadRequestError"),
        ("GET", "/models/churn%23VERSION/audit", 400, "BadRequestError"),
        ("POST", "/models/..%2F..%2Fetc/rollback", 400, "BadRequestError"),
        ("GET", "/models/unknown/versions", 404, "ModelNotFoundError"),
        ("GET", "/models/unknown/audit", 404, "ModelNotFoundError"),
        ("POST", "/models/unknown/rollback", 404, "ModelNotFoundError"),
    ],
)
def test_models_api_handler_bad_and_unknown_names(
    handler: ModuleType, method: str, path: str, status: int, error: str
) -> None:
    got_status, body = call(handler, method, path)
    assert (got_status, body["error"]) == (status, error)


def test_models_api_handler_serves_openapi(handler: ModuleType) -> None:
    status, document = call(handler, "GET", "/openapi.json")
    assert status == 200
    assert {"/models", "/models/{name}/versions", "/models/{name}/audit", "/models/{name}/rollback"} <= set(
        document["paths"]
    )


def test_models_api_handler_promote_notifies_the_topic_and_announces(
    resources: TestResources, registry: DynamoRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the alarm topic with a queue subscribed, and v2's artifact in the bucket
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    monkeypatch.setenv("ALARM_TOPIC_ARN", topic)
    monkeypatch.setenv("APPROVER_PRINCIPALS", "arn:aws:sts::123456789012:assumed-role/approvers/*")
    v2 = registry.get_version("churn", 2)
    boto3.client("s3").put_object(Bucket=v2.artifact.bucket, Key=v2.artifact.key, Body=b"x" * v2.artifact.size_bytes)
    handler = load_handler_module("models_api")
    approver = "arn:aws:sts::123456789012:assumed-role/approvers/bob"

    def send(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        event = api_event(method, path, body=body, user_arn=approver)
        response = handler.lambda_handler(event, FakeLambdaContext())
        return response["statusCode"], json.loads(response["body"])

    # WHEN an approver approves v2 and promotes it, but its bytes were tampered with
    assert send("POST", "/models/churn/versions/2/approve", {"reason": "ok"})[0] == 200
    status, body = send("POST", "/models/churn/versions/2/promote")
    # THEN the promotion is refused and v2 is rejected for good
    assert (status, body["error"]) == (503, "IntegrityError")
    assert registry.get_version("churn", 2).status is VersionStatus.REJECTED

    # WHEN the approver rolls production back THEN subscribers hear about it
    status, body = send("POST", "/models/churn/rollback", {"reason": "drift"})
    assert (status, body["production_version"]) == (200, 1)
    [message] = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    note = json.loads(json.loads(message["Body"])["Message"])
    assert (note["action"], note["production_version"], note["previous_production"], note["actor"]) == (
        "rolled_back",
        1,
        3,
        approver,
    )
    # AND a reader-less stranger is refused
    event = api_event("GET", "/models", user_arn="arn:aws:iam::123456789012:user/mallory")
    assert handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 403


# ---- held datasets: the ledger on the registry table, objects in the data bucket ----

ADMIN = "arn:aws:iam::123456789012:user/alice"
APPROVER = "arn:aws:sts::123456789012:assumed-role/approvers/bob"
READER = "arn:aws:sts::123456789012:assumed-role/readers/carol"


def _held_dataset(resources: TestResources, name: str) -> LedgerEntry:
    """A dataset version in the data bucket that the validator held (written through the ledger adapter)."""
    key = f"datasets/churn/{name}"
    version = boto3.client("s3").put_object(Bucket=resources.data_bucket, Key=key, Body=b"tenure,churned\n1,no\n")[
        "VersionId"
    ]
    the_id = dataset_id(key, version)
    at = "2026-11-28T10:00:00+00:00"
    return DynamoDatasetLedger(resources.ledger_table).record(
        LedgerEntry(
            model_name="churn",
            dataset_id=the_id,
            state=DatasetState.HELD,
            bucket=resources.data_bucket,
            key=key,
            version_id=version,
            sha256="a" * 64,
            size_bytes=20,
            rows=1,
            uploader="AWS:AIDAUPLOADER",
            contract_digest="c" * 64,
            report_key=f"reports/churn/{the_id}.json",
            reasons=["label_flip: 12% of labels contradict the production model"],
            decided_at=at,
            history=[LedgerChange(at=at, state=DatasetState.HELD, actor="validate_dataset")],
        )
    )


def _tap(resources: TestResources, detail_type: str) -> str:
    """An SQS queue that receives every `detail_type` event on the bus."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName=f"tap-{detail_type}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = json.dumps({"source": ["mlops"], "detail-type": [detail_type]})
    events.put_rule(Name=f"tap-{detail_type}", EventBusName=resources.event_bus_name, EventPattern=pattern)
    events.put_targets(
        Rule=f"tap-{detail_type}", EventBusName=resources.event_bus_name, Targets=[{"Id": "q", "Arn": arn}]
    )
    return url


@pytest.fixture
def reviewers(resources: TestResources, registry: DynamoRegistry, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("APPROVER_PRINCIPALS", "arn:aws:sts::123456789012:assumed-role/approvers/*")
    monkeypatch.setenv("READER_PRINCIPALS", "arn:aws:sts::123456789012:assumed-role/readers/*")
    return load_handler_module("models_api")


def send(handler: ModuleType, method: str, path: str, body: Any = None, *, user: str = APPROVER) -> tuple[int, Any]:
    response = handler.lambda_handler(api_event(method, path, body=body, user_arn=user), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_models_api_handler_approving_a_held_dataset_publishes_dataset_validated(
    reviewers: ModuleType, resources: TestResources
) -> None:
    # GIVEN two held datasets in the ledger and a queue on the bus
    feb = _held_dataset(resources, "feb.csv")
    mar = _held_dataset(resources, "mar.csv")
    inbox = _tap(resources, "DatasetValidated")
    status, listed = send(reviewers, "GET", "/models/churn/datasets", user=READER)
    assert status == 200
    assert {d["dataset_id"] for d in listed} == {feb.dataset_id, mar.dataset_id}
    assert {d["state"] for d in listed} == {"held"}

    # WHEN an approver approves one
    status, body = send(
        reviewers, "POST", f"/models/churn/datasets/{feb.dataset_id}/review", {"decision": "approve", "reason": "ok"}
    )

    # THEN it is accepted in the ledger, audited, and training is announced on exactly that version
    assert (status, body["state"]) == (200, "accepted")
    stored = DynamoDatasetLedger(resources.ledger_table).get("churn", feb.dataset_id)
    assert stored is not None
    assert stored.state is DatasetState.ACCEPTED
    assert [(c.state, c.actor, c.reason) for c in stored.history][-1] == (DatasetState.ACCEPTED, APPROVER, "ok")
    [message] = boto3.client("sqs").receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert (detail["dataset"]["key"], detail["dataset"]["version_id"]) == (feb.key, feb.version_id)
    status, held = send(reviewers, "GET", "/models/churn/datasets?state=held", user=READER)
    assert [d["dataset_id"] for d in held] == [mar.dataset_id]
    status, accepted = send(reviewers, "GET", "/models/churn/datasets?state=accepted", user=READER)
    assert [d["dataset_id"] for d in accepted] == [feb.dataset_id]


def test_models_api_handler_rejecting_a_held_dataset_moves_it_to_quarantine(
    reviewers: ModuleType, resources: TestResources
) -> None:
    held = _held_dataset(resources, "feb.csv")
    path = f"/models/churn/datasets/{held.dataset_id}/review"

    # a reader may list but not review; an unknown dataset is 404
    assert send(reviewers, "POST", path, {"decision": "reject", "reason": "x"}, user=READER)[0] == 403
    missing = "/models/churn/datasets/feb.csv-0123456789abcdef/review"
    status, body = send(reviewers, "POST", missing, {"decision": "reject", "reason": "x"})
    assert (status, body["error"]) == (404, "NotFoundError")

    status, body = send(reviewers, "POST", path, {"decision": "reject", "reason": "labels contradict production"})

    assert (status, body["state"], body["quarantine_key"]) == (200, "quarantined", "quarantine/churn/feb.csv")
    s3 = boto3.client("s3")
    assert s3.get_object(Bucket=resources.data_bucket, Key="quarantine/churn/feb.csv")["Body"].read()
    versions = s3.list_object_versions(Bucket=resources.data_bucket, Prefix=held.key).get("Versions", [])
    assert versions == []  # the exact version was deleted, not hidden behind a delete marker
    stored = DynamoDatasetLedger(resources.ledger_table).get("churn", held.dataset_id)
    assert stored is not None
    assert stored.state is DatasetState.QUARANTINED

    # a second, different decision conflicts; the ledger keeps the first
    status, body = send(reviewers, "POST", path, {"decision": "approve", "reason": "changed my mind"}, user=ADMIN)
    assert (status, body["error"]) == (409, "ConflictError")
    # the same reviewer retrying the same decision redoes the (already done) move and succeeds
    status, body = send(reviewers, "POST", path, {"decision": "reject", "reason": "retry"})
    assert (status, body["state"]) == (200, "quarantined")
    status, quarantined = send(reviewers, "GET", "/models/churn/datasets?state=quarantined", user=READER)
    assert [d["dataset_id"] for d in quarantined] == [held.dataset_id]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/png"])
def test_models_api_handler_answers_415_to_a_body_it_cannot_read(handler: ModuleType, content_type: str) -> None:
    # GIVEN a rollback request whose body is declared in a media type the API does not take
    event = api_event("POST", "/models/churn/rollback", body={"reason": "bad release"})
    event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"]["Content-Type"] = [content_type]
    # WHEN it arrives
    response = handler.lambda_handler(event, FakeLambdaContext())
    # THEN the caller hears which media type to send, not an internal error
    body = json.loads(response["body"])
    assert response["statusCode"] == 415, body
    assert body["error"] == "UnsupportedMediaType"
    assert content_type in body["message"]
    assert "application/json" in body["message"]
