"""The train_model stage with in-memory fakes: artifacts, events and the reasons for rejection."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
import pytest

from mlops.contract import parse_contract
from mlops.errors import BadRequestError
from mlops.events import DatasetRef, DatasetValidated, DetailType, ModelTrained, TrainingRejected
from mlops.layout import artifact_key, baseline_key, contract_key
from mlops.profile import BaselineProfile
from mlops.training.outcome import dataset_id_of
from mlops.training.service import parse_dataset_validated, reject_malformed, train_from_event
from mlops.validation.ledger import DatasetState
from mlops_local.sample_data import churn_dataset
from tests.support.datasets import InMemoryDatasetLedger, RecordingNotifier, accepted_entry
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher

CONTRACT_TEXT = (Path(__file__).resolve().parents[2] / "contracts" / "churn.json").read_text()
CONTRACT = parse_contract(CONTRACT_TEXT)
DATA, ARTIFACTS = "data", "artifacts"
KEY = "datasets/churn/2024-06.csv"


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore()


def stage(store: InMemoryObjectStore, rows: int = 400) -> DatasetValidated:
    store.put_bytes(DATA, contract_key("churn"), CONTRACT_TEXT.encode(), "application/json")
    data = churn_dataset(rows).to_csv(index=False).encode()
    version = store.put_bytes(DATA, KEY, data, "text/csv")
    ref = DatasetRef(
        bucket=DATA,
        key=KEY,
        version_id=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        rows=rows,
    )
    return DatasetValidated(
        model_name="churn", dataset=ref, contract_digest=CONTRACT.digest, report_key="reports/x.json"
    )


def run(event: DatasetValidated, store: InMemoryObjectStore, publisher: RecordingPublisher):
    return train_from_event(event, store=store, publisher=publisher, data_bucket=DATA, artifact_bucket=ARTIFACTS)


def test_train_from_event_stores_artifact_and_baseline_and_publishes_model_trained(store: InMemoryObjectStore) -> None:
    publisher = RecordingPublisher()
    outcome = run(stage(store), store, publisher)
    assert outcome.trained
    [trained] = publisher.of_type(DetailType.MODEL_TRAINED)
    assert isinstance(trained, ModelTrained)
    artifact = store.get_bytes(ARTIFACTS, trained.artifact_key)
    assert trained.artifact_key == artifact_key("churn", trained.artifact_sha256)
    assert hashlib.sha256(artifact).hexdigest() == trained.artifact_sha256
    assert trained.artifact_bytes == len(artifact)
    assert trained.baseline_key == baseline_key("churn", trained.artifact_sha256)
    BaselineProfile.model_validate_json(store.get_bytes(ARTIFACTS, trained.baseline_key))
    assert parse_contract(trained.contract).digest == trained.contract_digest == CONTRACT.digest
    assert trained.metric_name == "roc_auc"
    assert trained.training_rows + trained.holdout_rows == 400
    assert onnx.load_from_string(artifact).graph.input[0].name == "tenure_months"


def test_train_from_event_rejects_a_dataset_changed_since_validation(store: InMemoryObjectStore) -> None:
    event = stage(store)
    store.put_bytes(DATA, KEY, churn_dataset(50).to_csv(index=False).encode())  # a newer version, same key
    # the event names the old version, which the fake no longer has; a tampered digest is the same story
    tampered = event.model_copy(update={"dataset": event.dataset.model_copy(update={"version_id": None})})
    publisher = RecordingPublisher()
    outcome = run(tampered, store, publisher)
    assert not outcome.trained
    [rejected] = publisher.of_type(DetailType.TRAINING_REJECTED)
    assert isinstance(rejected, TrainingRejected)
    assert "changed since validation: SHA-256" in rejected.reason
    assert not list(store.list(ARTIFACTS, ""))


def test_train_from_event_rejects_a_contract_changed_since_validation(store: InMemoryObjectStore) -> None:
    event = stage(store)
    changed = {**json.loads(CONTRACT_TEXT), "description": "edited"}
    store.put_bytes(DATA, contract_key("churn"), json.dumps(changed).encode())
    publisher = RecordingPublisher()
    run(event, store, publisher)
    [rejected] = publisher.of_type(DetailType.TRAINING_REJECTED)
    assert "contract contracts/churn.json changed since the dataset was validated" in rejected.reason  # type: ignore[attr-defined]


def test_train_from_event_rejects_a_missing_dataset_version(store: InMemoryObjectStore) -> None:
    event = stage(store)
    missing = event.model_copy(update={"dataset": event.dataset.model_copy(update={"version_id": "v999"})})
    publisher = RecordingPublisher()
    run(missing, store, publisher)
    [rejected] = publisher.of_type(DetailType.TRAINING_REJECTED)
    assert "no longer exists" in rejected.reason  # type: ignore[attr-defined]


def test_train_from_event_rejects_a_model_that_cannot_be_trained(store: InMemoryObjectStore) -> None:
    publisher = RecordingPublisher()
    run(stage(store, rows=12), store, publisher)
    [rejected] = publisher.of_type(DetailType.TRAINING_REJECTED)
    assert "too few to train" in rejected.reason  # type: ignore[attr-defined]
    assert not publisher.of_type(DetailType.MODEL_TRAINED)


@pytest.mark.parametrize(
    ("bucket", "key", "reason"),
    [
        (DATA, "quarantine/churn/rejected.csv", "is not under datasets/churn/ of model 'churn'"),
        ("someone-elses-bucket", KEY, "is not in the data bucket 'data'"),
        (DATA, "datasets/fraud/2024-06.csv", "is not under datasets/churn/ of model 'churn'"),
        (DATA, "datasets/churn/../../quarantine/churn/rejected.csv", "is not under datasets/churn/"),
        (DATA, "reports/churn/x.csv", "is not under datasets/churn/"),
    ],
)
def test_train_from_event_rejects_a_dataset_outside_the_models_datasets_prefix(
    store: InMemoryObjectStore, bucket: str, key: str, reason: str
) -> None:
    # GIVEN a DatasetValidated event naming an object that exists, with a matching SHA-256,
    # but not one validation could have accepted for this model
    event = stage(store)
    data = churn_dataset(400).to_csv(index=False).encode()
    version = store.put_bytes(bucket, key, data, "text/csv")
    elsewhere = event.dataset.model_copy(
        update={"bucket": bucket, "key": key, "version_id": version, "sha256": hashlib.sha256(data).hexdigest()}
    )
    publisher = RecordingPublisher()
    # WHEN it is trained on
    outcome = run(event.model_copy(update={"dataset": elsewhere}), store, publisher)
    # THEN nothing is trained and the rejection says why
    assert not outcome.trained
    [rejected] = publisher.of_type(DetailType.TRAINING_REJECTED)
    assert isinstance(rejected, TrainingRejected)
    assert reason in rejected.reason
    assert f"s3://{bucket}/{key}" in rejected.reason
    assert not publisher.of_type(DetailType.MODEL_TRAINED)
    assert not list(store.list(ARTIFACTS, ""))


@pytest.mark.parametrize(
    ("detail_type", "detail", "reason"),
    [
        ("DatasetValidated", None, "detail: Input should be a valid dictionary"),
        ("DatasetValidated", {}, "model_name: Field required"),
        ("DatasetValidated", {"model_name": "churn", "dataset": {"bucket": "data"}}, "dataset.key: Field required"),
        ("ModelTrained", {"model_name": "churn"}, "handles DatasetValidated events, got 'ModelTrained'"),
        (None, {"model_name": "churn"}, "got None"),
    ],
)
def test_parse_dataset_validated_names_what_does_not_parse(detail_type: object, detail: object, reason: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        parse_dataset_validated(detail_type, detail)
    assert reason in str(raised.value)


def test_reject_malformed_publishes_when_model_and_dataset_can_be_read(store: InMemoryObjectStore) -> None:
    detail = stage(store).model_dump(mode="json")
    del detail["contract_digest"]
    publisher = RecordingPublisher()
    rejected = reject_malformed("DatasetValidated", detail, "contract_digest: Field required", publisher=publisher)
    assert publisher.of_type(DetailType.TRAINING_REJECTED) == [rejected]
    assert rejected is not None
    assert rejected.model_name == "churn"
    assert rejected.dataset.key == KEY


@pytest.mark.parametrize(
    ("detail_type", "detail"),
    [
        ("DatasetValidated", None),
        ("DatasetValidated", ["not", "a", "dict"]),
        ("DatasetValidated", {"model_name": "churn"}),
        ("DatasetValidated", {"model_name": "churn", "dataset": {"bucket": "data", "key": KEY}}),
        ("DatasetValidated", {"dataset": {"bucket": "data", "key": KEY, "sha256": "0", "size_bytes": 1, "rows": 1}}),
        (
            "ModelTrained",
            {"model_name": "churn", "dataset": {"bucket": "d", "key": KEY, "sha256": "0", "size_bytes": 1, "rows": 1}},
        ),
    ],
)
def test_reject_malformed_publishes_nothing_it_cannot_attribute(detail_type: str, detail: object) -> None:
    publisher = RecordingPublisher()
    assert reject_malformed(detail_type, detail, "bad", publisher=publisher) is None
    assert not publisher.of_type(DetailType.TRAINING_REJECTED)


# ---- the dataset's ledger entry records training's outcome (issue items 8 and 9) ----


def accepted_in_ledger(event: DatasetValidated) -> InMemoryDatasetLedger:
    """A ledger holding the event's dataset as validation left it: accepted."""
    ledger = InMemoryDatasetLedger()
    ledger.record(accepted_entry(event.dataset))
    return ledger


def run_with_ledger(event: DatasetValidated, store: Any, publisher: Any, ledger: Any, **kwargs: Any):
    notifier = RecordingNotifier()
    outcome = train_from_event(
        event,
        store=store,
        publisher=publisher,
        data_bucket=DATA,
        artifact_bucket=ARTIFACTS,
        ledger=ledger,
        notifier=notifier,
        **kwargs,
    )
    return outcome, notifier


def test_train_from_event_records_trained_with_the_artifact_in_the_ledger(store: InMemoryObjectStore) -> None:
    event = stage(store)
    ledger = accepted_in_ledger(event)
    outcome, _ = run_with_ledger(event, store, RecordingPublisher(), ledger)
    entry = ledger.get("churn", dataset_id_of(event.dataset))
    assert entry.state is DatasetState.TRAINED
    assert entry.artifact_sha256 == outcome.model.sha256
    assert entry.history[-1].actor == "train_model"
    assert "roc_auc" in entry.history[-1].reason


def test_train_from_event_records_a_rejection_in_the_ledger_and_notifies(store: InMemoryObjectStore) -> None:
    event = stage(store, rows=12)
    ledger = accepted_in_ledger(event)
    _, notifier = run_with_ledger(event, store, RecordingPublisher(), ledger)
    entry = ledger.get("churn", dataset_id_of(event.dataset))
    assert entry.state is DatasetState.TRAINING_REJECTED
    assert "too few to train" in entry.history[-1].reason
    [(subject, message)] = notifier.messages
    assert subject == "Training rejected: churn"
    assert "too few to train" in message


class _BrokenStore(InMemoryObjectStore):
    """Refuses to write artifacts, as S3 does when it is down."""

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        if bucket == ARTIFACTS:
            raise ConnectionError("S3 is unreachable")
        return super().put_bytes(bucket, key, data, content_type)


def test_train_from_event_records_an_unexpected_error_as_training_failed_and_raises() -> None:
    store = _BrokenStore()
    event = stage(store)
    ledger = accepted_in_ledger(event)
    publisher = RecordingPublisher()
    with pytest.raises(ConnectionError):
        run_with_ledger(event, store, publisher, ledger)
    entry = ledger.get("churn", dataset_id_of(event.dataset))
    assert entry.state is DatasetState.TRAINING_FAILED
    assert entry.history[-1].reason == "ConnectionError: S3 is unreachable"
    [failed] = publisher.of_type(DetailType.TRAINING_FAILED)
    assert failed.reason == "ConnectionError: S3 is unreachable"  # type: ignore[attr-defined]
    # WHEN the retry succeeds THEN the entry moves on to trained
    store.put_bytes = InMemoryObjectStore.put_bytes.__get__(store)  # type: ignore[method-assign]
    run_with_ledger(event, store, publisher, ledger)
    assert ledger.get("churn", dataset_id_of(event.dataset)).state is DatasetState.TRAINED


def test_train_from_event_rejects_a_dataset_over_the_memory_budget_before_reading_it(
    store: InMemoryObjectStore,
) -> None:
    # GIVEN a dataset whose rows x columns need more memory than the function has
    event = stage(store)
    huge = event.model_copy(update={"dataset": event.dataset.model_copy(update={"rows": 50_000_000})})
    ledger = accepted_in_ledger(huge)
    reads: list[str] = []
    original = store.get_bytes
    store.get_bytes = lambda b, k, v=None: reads.append(k) or original(b, k, v)  # type: ignore[method-assign]
    outcome, _ = run_with_ledger(huge, store, RecordingPublisher(), ledger)
    # THEN it is rejected with the numbers, without loading the dataset
    assert not outcome.trained
    assert KEY not in reads
    assert "needs about" in outcome.detail.reason
    assert "3008 MB" in outcome.detail.reason
    assert ledger.get("churn", dataset_id_of(huge.dataset)).state is DatasetState.TRAINING_REJECTED
