"""Training's outcome in the dataset ledger: the moves it may make, and train_model's on-failure
destination records (out of memory, timeout, event too old) read into `training_failed`."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.errors import BadRequestError
from mlops.events import DatasetRef, DetailType
from mlops.training.outcome import dataset_id_of, failed_training, record_training_failure, record_training_outcome
from mlops.validation.ledger import TRANSITIONS, DatasetState, LedgerChange, LedgerEntry, can_move
from tests.support.datasets import InMemoryDatasetLedger, RecordingNotifier
from tests.support.fakes import RecordingPublisher

REF = DatasetRef(bucket="data", key="datasets/churn/big.csv", version_id="v1", sha256="ab" * 32, size_bytes=10, rows=5)


def ledger_with(state: DatasetState) -> InMemoryDatasetLedger:
    ledger = InMemoryDatasetLedger()
    at = "2026-12-01T00:00:00+00:00"
    ledger.record(
        LedgerEntry(
            model_name="churn",
            dataset_id=dataset_id_of(REF),
            state=state,
            bucket=REF.bucket,
            key=REF.key,
            version_id=REF.version_id,
            sha256=REF.sha256,
            size_bytes=REF.size_bytes,
            rows=REF.rows,
            report_key="reports/churn/x.json",
            decided_at=at,
            history=[LedgerChange(at=at, state=state, actor="validate_dataset")],
        )
    )
    return ledger


def destination_record(error: dict[str, Any] | None, condition: str = "RetriesExhausted") -> dict[str, Any]:
    """What Lambda sends an on-failure destination for an asynchronous invocation it gave up on."""
    return {
        "version": "1.0",
        "timestamp": "2026-12-02T10:00:00.000Z",
        "requestContext": {
            "requestId": "c0ffee",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:train:$LATEST",
            "condition": condition,
            "approximateInvokeCount": 3,
        },
        "requestPayload": {
            "version": "0",
            "id": "e1",
            "detail-type": "DatasetValidated",
            "source": "mlops",
            "detail": {
                "model_name": "churn",
                "dataset": REF.model_dump(mode="json"),
                "contract_digest": "d" * 64,
                "report_key": "reports/churn/x.json",
            },
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": error,
    }


def test_ledger_transitions_end_every_accepted_dataset_in_a_training_outcome() -> None:
    assert TRANSITIONS[DatasetState.ACCEPTED] == {
        DatasetState.ACCEPTED,  # the managed engine's hand-off is noted; the state waits for its outcome
        DatasetState.TRAINED,
        DatasetState.TRAINING_REJECTED,
        DatasetState.TRAINING_FAILED,
    }
    assert can_move(DatasetState.TRAINED, DatasetState.REGISTERED)
    assert not can_move(DatasetState.REGISTERED, DatasetState.TRAINING_FAILED)  # a late failure report
    assert not can_move(DatasetState.QUARANTINED, DatasetState.TRAINED)
    assert not can_move(DatasetState.HELD, DatasetState.TRAINED)  # training only follows acceptance
    assert all(target in DatasetState for targets in TRANSITIONS.values() for target in targets)
    assert set(TRANSITIONS) == set(DatasetState)


@pytest.mark.parametrize(
    ("error", "condition", "reason"),
    [
        (
            {"errorType": "Runtime.OutOfMemory", "errorMessage": "Runtime exited with error: signal: killed"},
            "RetriesExhausted",
            "RetriesExhausted after 3 attempts: Runtime.OutOfMemory: Runtime exited with error: signal: killed",
        ),
        (
            {"errorMessage": "2026-12-02T10:00:00Z c0ffee Task timed out after 900.00 seconds"},
            "RetriesExhausted",
            "RetriesExhausted after 3 attempts: 2026-12-02T10:00:00Z c0ffee Task timed out after 900.00 seconds",
        ),
        (None, "EventAgeExceeded", "EventAgeExceeded after 3 attempts"),
    ],
)
def test_failed_training_reads_why_lambda_gave_up(error: Any, condition: str, reason: str) -> None:
    failure = failed_training(destination_record(error, condition))
    assert failure.model_name == "churn"
    assert failure.dataset == REF
    assert failure.reason == reason


@pytest.mark.parametrize(
    "record",
    [[], {"requestPayload": {"detail": {"model_name": "churn"}}}, {"requestPayload": "x"}, {}],
)
def test_failed_training_refuses_a_record_naming_no_dataset(record: Any) -> None:
    with pytest.raises(BadRequestError, match=r"DatasetValidated|JSON object"):
        failed_training(record)


def test_record_training_failure_moves_an_accepted_dataset_and_announces_once() -> None:
    ledger, publisher, notifier = ledger_with(DatasetState.ACCEPTED), RecordingPublisher(), RecordingNotifier()
    failure = failed_training(destination_record({"errorType": "Runtime.OutOfMemory", "errorMessage": "killed"}))
    for _ in range(2):  # a duplicate delivery changes nothing
        entry = record_training_failure(
            ledger, "churn", failure.dataset, failure.reason, actor="t", publisher=publisher, notifier=notifier
        )
    assert entry is not None
    assert entry.state is DatasetState.TRAINING_FAILED
    assert [c.state for c in entry.history] == [DatasetState.ACCEPTED, DatasetState.TRAINING_FAILED]
    assert "Runtime.OutOfMemory" in entry.history[-1].reason
    [event] = publisher.of_type(DetailType.TRAINING_FAILED)
    assert event.reason == failure.reason  # type: ignore[attr-defined]
    [(subject, message)] = notifier.messages
    assert subject == "Training failed: churn"
    assert "Runtime.OutOfMemory" in message


def test_record_training_outcome_leaves_a_registered_dataset_alone() -> None:
    ledger = ledger_with(DatasetState.ACCEPTED)
    record_training_outcome(ledger, "churn", REF, DatasetState.TRAINED, actor="train_model", reason="model ab")
    record_training_outcome(
        ledger, "churn", REF, DatasetState.REGISTERED, actor="register_model", reason="v3", model_version=3
    )
    late = record_training_outcome(ledger, "churn", REF, DatasetState.TRAINING_FAILED, actor="x", reason="late")
    assert late is not None
    assert late.state is DatasetState.REGISTERED
    assert late.model_version == 3


def test_record_training_outcome_without_a_ledger_entry_records_nothing() -> None:
    assert (
        record_training_outcome(InMemoryDatasetLedger(), "churn", REF, DatasetState.TRAINED, actor="t", reason="")
        is None
    )
