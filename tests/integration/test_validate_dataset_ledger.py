"""The dataset ledger on its own table (moto) and validate_dataset's three outcomes through
the handler: accepted, held (SNS notice), then a reviewer's decision."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.errors import ConflictError
from mlops.layout import contract_key
from mlops.validation.ledger import LedgerChange, LedgerEntry
from mlops.validation.report import DatasetState
from mlops.validation.review import review_held_dataset
from mlops_local.handlers import load_handler_module
from tests.integration.test_validate_dataset_handler import put, s3_event
from tests.support import datasets as ds
from tests.support import resources as test_resources
from tests.support.fakes import RecordingPublisher
from tests.support.lambda_context import FakeLambdaContext


def _entry(dataset_id: str, state: DatasetState, at: str) -> LedgerEntry:
    return LedgerEntry(
        model_name="churn",
        dataset_id=dataset_id,
        state=state,
        bucket="b",
        key=f"datasets/churn/{dataset_id}.csv",
        version_id="v1",
        sha256="0" * 64,
        size_bytes=10,
        rows=300,
        report_key=f"reports/churn/{dataset_id}.json",
        decided_at=at,
        history=[LedgerChange(at=at, state=state, actor="validate_dataset")],
    )


@pytest.fixture
def names(aws: str) -> test_resources.TestResources:
    return test_resources.create_resources()


def test_ledger_first_decision_wins_and_transitions_are_conditional(names: test_resources.TestResources) -> None:
    ledger = DynamoDatasetLedger(names.ledger_table)
    held = ledger.record(_entry("a", DatasetState.HELD, "2026-11-28T10:00:00+00:00"))

    again = ledger.record(_entry("a", DatasetState.ACCEPTED, "2026-11-28T11:00:00+00:00"))
    moved = ledger.transition(
        held, LedgerChange(at="2026-11-28T12:00:00+00:00", state=DatasetState.ACCEPTED, actor="x")
    )

    assert again.state is DatasetState.HELD
    assert moved.state is DatasetState.ACCEPTED
    assert ledger.get("churn", "a") == moved
    with pytest.raises(ConflictError):  # a second reviewer read "held" before the first wrote
        ledger.transition(held, LedgerChange(at="2026-11-28T12:00:01+00:00", state=DatasetState.QUARANTINED, actor="y"))


def test_ledger_queries_by_state_newest_first_and_hides_from_the_registry(names: test_resources.TestResources) -> None:
    ledger = DynamoDatasetLedger(names.ledger_table)
    for dataset_id, state, at in [
        ("old", DatasetState.ACCEPTED, "2026-11-01T00:00:00+00:00"),
        ("new", DatasetState.ACCEPTED, "2026-11-02T00:00:00+00:00"),
        ("wait", DatasetState.HELD, "2026-11-03T00:00:00+00:00"),
    ]:
        ledger.record(_entry(dataset_id, state, at))

    last = ledger.last_accepted("churn")

    assert last is not None
    assert last.dataset_id == "new"
    assert [e.dataset_id for e in ledger.by_state("churn", DatasetState.HELD)] == ["wait"]
    assert DynamoRegistry(names.registry_table).list_models() == []


def test_validate_dataset_holds_a_flood_of_duplicates_and_a_reviewer_approves(
    names: test_resources.TestResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the handler wired to the ledger and an alarm topic with a queue subscribed
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for name, value in {**names.env(), "ALARM_TOPIC_ARN": topic, "VALIDATION_BATCH_ROWS": "1000"}.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").put_object(Bucket=names.data_bucket, Key=contract_key("churn"), Body=ds.churn_contract_bytes())
    handler: ModuleType = load_handler_module("validate_dataset")
    first = put(names, "datasets/churn/jan.csv", ds.to_csv(ds.churn_frame(1_000, seed=1)))
    [accepted] = handler.lambda_handler(s3_event(names.data_bucket, first), FakeLambdaContext())["results"]

    # WHEN a dataset with 30% copies of one row arrives
    flood = put(names, "datasets/churn/feb.csv", ds.to_csv(ds.flood_duplicates(ds.churn_frame(700, seed=2), 300)))
    [held] = handler.lambda_handler(s3_event(names.data_bucket, flood), FakeLambdaContext())["results"]

    # THEN the first is accepted, the second held: in the ledger, with a summary on the topic
    assert (accepted["disposition"], held["disposition"]) == ("validated", "held")
    ledger = DynamoDatasetLedger(names.ledger_table)
    entry = ledger.get("churn", held["dataset_id"])
    assert entry is not None
    assert entry.state is DatasetState.HELD
    assert entry.uploader == "AWS:AIDAEXAMPLEUPLOADER"
    # the validator (it parses untrusted files) leaves the registry table untouched
    assert boto3.client("dynamodb").scan(TableName=names.registry_table)["Items"] == []
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    notices: list[dict[str, Any]] = [json.loads(m["Body"]) for m in messages]
    assert [n["Subject"] for n in notices] == ["Dataset held for review: churn"]
    assert "FAILED duplicate_rows" in notices[0]["Message"]

    # AND a reviewer's approval moves it to accepted and announces it for training
    publisher = RecordingPublisher()
    approved = review_held_dataset(
        ledger, handler.store, publisher, "churn", held["dataset_id"], "approve", "arn:aws:iam::1:role/approver", "ok"
    )
    assert approved.state is DatasetState.ACCEPTED
    assert ledger.get("churn", held["dataset_id"]) == approved
    assert len(publisher.events) == 1


class _LedgerWriteFailsOnce:
    """The handler's real ledger, whose first `record` fails as a throttled DynamoDB write would."""

    def __init__(self, ledger: DynamoDatasetLedger) -> None:
        self.ledger = ledger
        self.failures = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("ProvisionedThroughputExceededException")
        return self.ledger.record(entry)


@pytest.mark.parametrize("failing", ["notice", "ledger"])
def test_validate_dataset_retry_after_quarantine_records_the_state(
    names: test_resources.TestResources, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    # GIVEN the handler with an alarm topic, and a bad dataset
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for name, value in {**names.env(), "ALARM_TOPIC_ARN": topic, "VALIDATION_BATCH_ROWS": "1000"}.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=names.data_bucket, Key=contract_key("churn"), Body=ds.churn_contract_bytes())
    handler: ModuleType = load_handler_module("validate_dataset")
    ledger = handler.validator.ledger
    if failing == "ledger":
        monkeypatch.setattr(handler.validator, "ledger", _LedgerWriteFailsOnce(ledger))
    else:  # SNS refuses the notice: a topic that does not exist (a real error from the service)
        monkeypatch.setattr(handler.validator.notifier, "topic_arn", topic + "-gone")
    key = "datasets/churn/bad.csv"
    uploaded = put(names, key, ds.to_csv(ds.set_cell("plan", 2, "gold")(ds.churn_frame(300))))
    event = s3_event(names.data_bucket, uploaded)

    # WHEN the step after the move to quarantine/ fails, and Lambda retries the same event
    with pytest.raises(Exception):  # noqa: B017 - whatever the service raised
        handler.lambda_handler(event, FakeLambdaContext())
    assert s3.list_objects_v2(Bucket=names.data_bucket, Prefix=key).get("KeyCount", 0) == 0  # already moved
    monkeypatch.setattr(handler.validator.notifier, "topic_arn", topic)
    [outcome] = handler.lambda_handler(event, FakeLambdaContext())["results"]

    # THEN the dataset has its one recorded state, and the notice went out
    assert outcome["disposition"] == "quarantined"
    entry = ledger.get("churn", outcome["dataset_id"])
    assert entry is not None
    assert entry.state is DatasetState.QUARANTINED
    assert entry.quarantine_key == outcome["quarantine_key"]
    assert s3.list_objects_v2(Bucket=names.data_bucket, Prefix=entry.quarantine_key)["KeyCount"] == 1
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert "Dataset quarantined: churn" in [json.loads(m["Body"])["Subject"] for m in messages]


def test_ledger_last_accepted_still_finds_a_dataset_training_moved_on(names: test_resources.TestResources) -> None:
    # GIVEN an accepted dataset that trained and registered, after an older accepted one
    ledger = DynamoDatasetLedger(names.ledger_table)
    ledger.record(_entry("old", DatasetState.ACCEPTED, "2026-11-01T00:00:00+00:00"))
    new = ledger.record(_entry("new", DatasetState.ACCEPTED, "2026-11-02T00:00:00+00:00"))
    trained = ledger.transition(
        new, LedgerChange(at="2026-11-02T01:00:00+00:00", state=DatasetState.TRAINED, actor="train_model")
    )
    ledger.transition(
        trained,
        LedgerChange(at="2026-11-02T02:00:00+00:00", state=DatasetState.REGISTERED, actor="register_model"),
        model_version=4,
    )

    # THEN it is still the newest dataset validation accepted (the statistics' fallback reference)
    last = ledger.last_accepted("churn")
    assert last is not None
    assert (last.dataset_id, last.state, last.model_version) == ("new", DatasetState.REGISTERED, 4)
    # and a move the ledger does not allow is refused
    with pytest.raises(ConflictError, match="cannot move from registered to trained"):
        ledger.transition(last, LedgerChange(at="2026-11-03T00:00:00+00:00", state=DatasetState.TRAINED, actor="x"))
