"""train_model's routing: past Lambda's budget a dataset is handed to the managed engine, once per
dataset version, noted in the ledger; the engine's own run records where it trained."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops.events import DetailType, ModelTrained, TrainedOn, TrainingRejected
from mlops.registry.records import candidate_from_trained
from mlops.training import capacity, capacity_measured
from mlops.training.engine import ENGINE, ManagedEngine, Started, job_name
from mlops.training.outcome import dataset_id_of
from mlops.training.service import HANDED_OFF, train_from_event
from mlops.validation.ledger import DatasetState
from tests.support.datasets import InMemoryDatasetLedger, accepted_entry
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.unit.test_training_service import ARTIFACTS, DATA, stage

# a train_model with room for its libraries and not a byte for data
LAMBDA_TOO_SMALL_MB = math.floor(capacity_measured.RUNTIME_MIB / capacity.PLANNED_SHARE)


class RecordingStarter:
    """The state machine's start, as Step Functions answers it: one execution per name."""

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}

    def start(self, name: str, document: dict[str, Any]) -> Started:
        new = name not in self.executions
        self.executions.setdefault(name, document)
        return Started(f"arn:aws:states:us-east-1:123456789012:execution:train:{name}", new)


def engine(starter: RecordingStarter, *, min_rows: int = 0) -> ManagedEngine:
    return ManagedEngine(starter=starter, instance_type="ml.m5.4xlarge", min_rows=min_rows)


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore()


def ledger_with(event) -> InMemoryDatasetLedger:  # type: ignore[no-untyped-def]
    ledger = InMemoryDatasetLedger()
    ledger.record(accepted_entry(event.dataset))
    return ledger


def route(event, store, publisher, ledger, the_engine, memory_mb=LAMBDA_TOO_SMALL_MB):  # type: ignore[no-untyped-def]
    return train_from_event(
        event,
        store=store,
        publisher=publisher,
        data_bucket=DATA,
        artifact_bucket=ARTIFACTS,
        ledger=ledger,
        memory_mb=memory_mb,
        engine=the_engine,
    )


def test_train_from_event_hands_a_dataset_past_the_lambda_budget_to_the_engine(store: InMemoryObjectStore) -> None:
    # GIVEN a dataset the Lambda function's memory cannot hold, and an engine that can
    event = stage(store)
    ledger, publisher, starter = ledger_with(event), RecordingPublisher(), RecordingStarter()
    # WHEN train_model receives it
    outcome = route(event, store, publisher, ledger, engine(starter))
    # THEN the engine's run starts with the event, nothing trains here and nothing is announced yet
    assert outcome.detail_type == HANDED_OFF
    assert outcome.handed_off is not None
    assert outcome.handed_off.engine == ENGINE
    assert outcome.handed_off.new
    assert "needs about" in outcome.handed_off.reason
    assert list(starter.executions) == [job_name(event)]
    document = starter.executions[job_name(event)]
    assert document["detail"] == event.model_dump(mode="json")
    assert document["job"] == {
        "name": job_name(event),
        "model_name": "churn",
        "dataset_id": dataset_id_of(event.dataset),
    }
    assert publisher.events == []
    # AND the ledger says where it went, still accepted until the engine's outcome
    entry = ledger.get("churn", dataset_id_of(event.dataset))
    assert entry is not None
    assert entry.state is DatasetState.ACCEPTED
    assert entry.history[-1].reason.startswith(f"handed off to {ENGINE} (ml.m5.4xlarge, job {job_name(event)})")


def test_train_from_event_hands_off_a_duplicate_event_once(store: InMemoryObjectStore) -> None:
    event = stage(store)
    ledger, starter = ledger_with(event), RecordingStarter()
    route(event, store, RecordingPublisher(), ledger, engine(starter))
    history = ledger.get("churn", dataset_id_of(event.dataset)).history  # type: ignore[union-attr]
    again = route(event, store, RecordingPublisher(), ledger, engine(starter))
    assert again.handed_off is not None
    assert not again.handed_off.new
    assert len(starter.executions) == 1
    assert ledger.get("churn", dataset_id_of(event.dataset)).history == history  # type: ignore[union-attr]


def test_train_from_event_hands_off_at_the_engine_threshold_even_when_lambda_fits(store: InMemoryObjectStore) -> None:
    event = stage(store, rows=400)
    starter = RecordingStarter()
    outcome = route(event, store, RecordingPublisher(), ledger_with(event), engine(starter, min_rows=400), None)
    assert outcome.detail_type == HANDED_OFF
    assert outcome.handed_off is not None
    assert "threshold of 400 rows" in outcome.handed_off.reason


def test_train_from_event_trains_in_lambda_below_the_threshold(store: InMemoryObjectStore) -> None:
    event = stage(store, rows=400)
    starter, publisher = RecordingStarter(), RecordingPublisher()
    outcome = route(event, store, publisher, ledger_with(event), engine(starter, min_rows=401), None)
    assert outcome.detail_type == DetailType.MODEL_TRAINED
    assert starter.executions == {}


def test_train_from_event_rejects_a_dataset_past_the_engine_too(store: InMemoryObjectStore) -> None:
    # GIVEN a dataset past the managed engine's memory (validation's rows count, before reading a byte)
    staged = stage(store)
    event = staged.model_copy(update={"dataset": staged.dataset.model_copy(update={"rows": 2_000_000_000})})
    ledger, publisher, starter = ledger_with(event), RecordingPublisher(), RecordingStarter()
    outcome = route(event, store, publisher, ledger, engine(starter))
    assert outcome.detail_type == DetailType.TRAINING_REJECTED
    assert isinstance(outcome.detail, TrainingRejected)
    assert "the managed engine (ml.r5.2xlarge) holds at most" in outcome.detail.reason
    assert starter.executions == {}
    assert ledger.get("churn", dataset_id_of(event.dataset)).state is DatasetState.TRAINING_REJECTED  # type: ignore[union-attr]


def test_train_from_event_records_where_it_trained_in_the_event_and_the_lineage(store: InMemoryObjectStore) -> None:
    event = stage(store)
    where = TrainedOn(engine="sagemaker", compute="ml.m5.4xlarge", memory_mb=65_536, job_id=job_name(event))
    outcome = train_from_event(
        event,
        store=store,
        publisher=RecordingPublisher(),
        data_bucket=DATA,
        artifact_bucket=ARTIFACTS,
        trained_on=where,
    )
    assert isinstance(outcome.detail, ModelTrained)
    assert outcome.detail.trained_on is not None
    assert outcome.detail.trained_on.engine == "sagemaker"
    assert outcome.detail.trained_on.job_id == job_name(event)
    assert outcome.detail.trained_on.seconds > 0
    lineage = candidate_from_trained(outcome.detail, 1, datetime.now(UTC)).lineage
    assert lineage["trained_on"] == outcome.detail.trained_on.model_dump(mode="json")


def test_job_name_is_a_valid_training_job_and_execution_name_per_dataset_version(store: InMemoryObjectStore) -> None:
    event = stage(store)
    name = job_name(event)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)
    other = event.model_copy(update={"dataset": event.dataset.model_copy(update={"version_id": "another-version"})})
    assert job_name(other) != name
    assert job_name(event) == name


def test_local_state_machines_refuse_a_state_they_cannot_run() -> None:
    from mlops_local.state_machines import LocalStateMachine, _check_supported
    from mlops_local.template import TemplateError

    definition = {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": 1, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
    with pytest.raises(TemplateError, match="does not run state Wait"):
        _check_supported(LocalStateMachine("Machine", "arn:aws:states:::stateMachine:m", definition))


def test_local_state_machines_place_results_and_read_parameters_as_step_functions_does() -> None:
    from mlops_local.state_machines import _parameters, _place

    data = {"detail": {"model_name": "churn"}, "job": {"name": "train-churn-1"}}
    assert _parameters({"TrainingJobName.$": "$.job.name", "Fixed": {"A": 1}}, data) == {
        "TrainingJobName": "train-churn-1",
        "Fixed": {"A": 1},
    }
    assert _place(data, "$.error", {"Error": "E"})["error"] == {"Error": "E"}
    assert "error" not in data  # the input is not changed in place
    assert _place(data, None, {"ignored": True}) == data
