"""The hand-off to the managed engine on the moto server: train_model starts the state machine
(Step Functions, which moto records but does not run), and the engine's entry point (job.py, what
the SageMaker training job runs) trains the dataset the ledger names, with the same events, ledger
states and metrics as the Lambda path and the engine in the lineage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import boto3
import pytest

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.stepfunctions import StepFunctionsStarter
from mlops.events import DatasetRef, DatasetValidated, DetailType
from mlops.training.engine import ENGINE, job_name
from mlops.training.outcome import dataset_id_of
from mlops.training.service import HANDED_OFF
from mlops.validation.ledger import DatasetState
from mlops_local.handlers import FUNCTIONS_DIR, load_handler_module
from tests.integration.test_train_model_handler import dataset_validated, received, upload
from tests.support import resources as test_resources
from tests.support.bus import tap_bus
from tests.support.datasets import accepted_entry
from tests.support.lambda_context import FakeLambdaContext

ROLE = "arn:aws:iam::123456789012:role/training-state-machine"


@pytest.fixture
def resources(stack: test_resources.TestResources, monkeypatch: pytest.MonkeyPatch) -> test_resources.TestResources:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "train-model")
    return stack


@pytest.fixture
def state_machine(resources: test_resources.TestResources, monkeypatch: pytest.MonkeyPatch) -> str:
    definition = {"StartAt": "Train", "States": {"Train": {"Type": "Pass", "End": True}}}
    arn = boto3.client("stepfunctions").create_state_machine(
        name="managed-training", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    monkeypatch.setenv("TRAINING_STATE_MACHINE_ARN", arn)
    return arn


@pytest.fixture
def outcomes(resources: test_resources.TestResources) -> str:
    return tap_bus(resources.event_bus_name, [DetailType.MODEL_TRAINED, DetailType.TRAINING_REJECTED])


def accept(resources: test_resources.TestResources, event: dict) -> DatasetRef:  # type: ignore[type-arg]
    """The ledger entry validation writes for the dataset the event names."""
    ref = DatasetRef.model_validate(event["detail"]["dataset"])
    entry = accepted_entry(ref).model_copy(update={"contract_digest": event["detail"]["contract_digest"]})
    DynamoDatasetLedger(resources.ledger_table).record(entry)
    return ref


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the replay emits nothing
def test_train_model_handler_hands_a_dataset_at_the_threshold_to_the_state_machine_once(
    resources: test_resources.TestResources, state_machine: str, outcomes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN train_model with the engine's state machine and a lowered threshold
    monkeypatch.setenv("MANAGED_TRAINING_MIN_ROWS", "1000")
    handler = load_handler_module("train_model")
    data, version = upload(resources)
    event = dataset_validated(resources, data, version)
    ref = accept(resources, event)
    # WHEN the DatasetValidated event arrives, and again (EventBridge redelivers)
    result = handler.lambda_handler(event, FakeLambdaContext())
    again = handler.lambda_handler({**event, "id": "redelivered"}, FakeLambdaContext())
    # THEN one execution named after the dataset version carries the event, nothing trained here
    assert result["status"] == HANDED_OFF
    assert result["engine"] == ENGINE
    assert again == result
    sfn = boto3.client("stepfunctions")
    [execution] = sfn.list_executions(stateMachineArn=state_machine)["executions"]
    name = job_name(DatasetValidated.model_validate(event["detail"]))
    assert execution["name"] == name == result["job_name"]
    document = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert document["detail"]["dataset"]["key"] == ref.key
    assert document["job"] == {"name": name, "model_name": "churn", "dataset_id": dataset_id_of(ref)}
    assert received(outcomes) == []
    assert boto3.client("s3").list_objects_v2(Bucket=resources.artifact_bucket).get("KeyCount", 0) == 0
    # AND the ledger says where training went
    entry = DynamoDatasetLedger(resources.ledger_table).get("churn", dataset_id_of(ref))
    assert entry is not None
    assert entry.state is DatasetState.ACCEPTED
    assert entry.history[-1].reason.startswith(f"handed off to {ENGINE} (")
    assert entry.history[-1].actor == "train_model"


def test_step_functions_starter_starts_nothing_for_a_name_already_used(
    resources: test_resources.TestResources, state_machine: str
) -> None:
    starter = StepFunctionsStarter(state_machine)
    first = starter.start("train-churn-0123", {"job": {"name": "train-churn-0123"}})
    boto3.client("stepfunctions").stop_execution(executionArn=first.execution_id)  # closed, as after a run
    second = starter.start("train-churn-0123", {"job": {"name": "train-churn-0123"}})
    assert first.new
    assert not second.new
    assert second.execution_id == first.execution_id
    assert len(boto3.client("stepfunctions").list_executions(stateMachineArn=state_machine)["executions"]) == 1


def load_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_model_job", FUNCTIONS_DIR / "train_model" / "job.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_job_trains_the_dataset_the_ledger_names_with_the_engine_in_the_lineage(
    resources: test_resources.TestResources, outcomes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a handed-off dataset, and the variables the state machine gives the training job
    data, version = upload(resources)
    ref = accept(resources, dataset_validated(resources, data, version))
    monkeypatch.setenv("MODEL_NAME", "churn")
    monkeypatch.setenv("DATASET_ID", dataset_id_of(ref))
    monkeypatch.setenv("ENGINE_INSTANCE_TYPE", "ml.r5.2xlarge")
    monkeypatch.setenv("TRAINING_JOB_NAME", "train-churn-abc")
    # WHEN the job's entry point runs
    status = load_job().main()
    # THEN it trained as train_model does: ModelTrained, the ledger trained, and says where
    assert status == 0
    [trained] = received(outcomes)
    assert trained["detail-type"] == DetailType.MODEL_TRAINED
    trained_on = trained["detail"]["trained_on"]
    assert trained_on["engine"] == ENGINE
    assert trained_on["compute"] == "ml.r5.2xlarge"
    assert trained_on["job_id"] == "train-churn-abc"
    assert trained_on["seconds"] > 0
    assert trained["detail"]["dataset"]["sha256"] == ref.sha256
    entry = DynamoDatasetLedger(resources.ledger_table).get("churn", dataset_id_of(ref))
    assert entry is not None
    assert entry.state is DatasetState.TRAINED
    # AND train_model's metrics, with the same dimensions
    listed = boto3.client("cloudwatch").list_metrics(Namespace="MLOps", MetricName="ModelsTrained")["Metrics"]
    assert [sorted((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in listed] == [
        [("model", "churn"), ("service", "train-model")]
    ]


def test_training_job_fails_with_status_1_when_the_ledger_names_no_dataset(
    resources: test_resources.TestResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "MODEL_NAME": "churn",
        "DATASET_ID": "missing-0123456789abcdef",
        "ENGINE_INSTANCE_TYPE": "ml.r5.2xlarge",
        "TRAINING_JOB_NAME": "train-churn-missing",
    }.items():
        monkeypatch.setenv(name, value)
    assert load_job().main() == 1


def test_job_entry_point_is_in_the_training_image() -> None:
    dockerfile = (Path(FUNCTIONS_DIR) / "train_model" / "Dockerfile").read_text()
    assert "COPY functions/train_model/job.py ${LAMBDA_TASK_ROOT}/job.py" in dockerfile


def test_train_model_handler_records_lambda_as_where_a_dataset_within_its_budget_trained(
    resources: test_resources.TestResources, outcomes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAINING_STATE_MACHINE_ARN", raising=False)
    handler = load_handler_module("train_model")
    data, version = upload(resources)
    context = FakeLambdaContext(memory_limit_in_mb=3008)
    result = handler.lambda_handler(dataset_validated(resources, data, version), context)
    assert result["status"] == DetailType.MODEL_TRAINED
    [trained] = received(outcomes)
    trained_on = trained["detail"]["trained_on"]
    assert trained_on["engine"] == "lambda"
    assert trained_on["compute"] == "3008 MB"
    assert trained_on["memory_mb"] == 3008
    assert trained_on["job_id"] == context.aws_request_id
    assert trained_on["seconds"] > 0
