"""The managed engine in the template: train_model's image run as a SageMaker training job by a
state machine (`.sync`, every failure caught and recorded), and the least privilege of its roles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.support import as_list, function_ids, resources
from tests.infra.test_iam import ALARM_TOPIC, MODEL, Grant, _allow, _symbolic, _symbols


def _only(template: dict[str, Any], type_name: str) -> tuple[str, dict[str, Any]]:
    [(lid, resource)] = resources(template, type_name).items()
    return lid, resource


def _definition(template: dict[str, Any]) -> dict[str, Any]:
    """The state machine's definition, with every CloudFormation expression as `<...>`."""
    _, machine = _only(template, "AWS::StepFunctions::StateMachine")
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else f"<{json.dumps(p)}>".replace('"', "'") for p in parts))


def _grants(template: dict[str, Any], role_prefix: str) -> set[Grant]:
    symbols = _symbols(template, "train_model")
    [(_, policy)] = [
        (lid, p) for lid, p in resources(template, "AWS::IAM::Policy").items() if lid.startswith(role_prefix)
    ]
    grants = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        condition = json.dumps(statement["Condition"], sort_keys=True) if "Condition" in statement else ""
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                try:
                    symbolic = _symbolic(resource, symbols)
                except AssertionError:  # the CDK assets repository: an ARN joined from pseudo parameters
                    symbolic = "cdk-container-assets" if "container-assets" in json.dumps(resource) else "?"
                grants.add((statement["Effect"], action, symbolic, condition))
    return grants


@pytest.fixture(scope="module")
def definition(template: dict[str, Any]) -> dict[str, Any]:
    return _definition(template)


def test_state_machine_runs_train_models_image_as_a_sagemaker_training_job_and_waits(
    template: dict[str, Any], definition: dict[str, Any]
) -> None:
    train = definition["States"][definition["StartAt"]]
    assert train["Type"] == "Task"
    assert train["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")  # .sync: waits for the job
    parameters = train["Parameters"]
    assert parameters["TrainingJobName.$"] == "$.job.name"  # named per dataset version by train_model
    algorithm = parameters["AlgorithmSpecification"]
    assert algorithm["ContainerEntrypoint"] == ["python3", "/var/task/job.py"]
    # the very image train_model runs (one asset, one build)
    fn = template["Resources"][function_ids(template)["train_model"]]
    image = fn["Properties"]["Code"]["ImageUri"]["Fn::Sub"]
    assert algorithm["TrainingImage"] == f"<{json.dumps({'Fn::Sub': image})}>".replace('"', "'")
    assert parameters["ResourceConfig"]["InstanceType"] == "ml.r5.2xlarge"
    assert parameters["StoppingCondition"]["MaxRuntimeInSeconds"] == 8 * 3600
    environment = parameters["Environment"]
    assert environment["MODEL_NAME.$"] == "$.job.model_name"
    assert environment["DATASET_ID.$"] == "$.job.dataset_id"
    assert set(environment) >= {"DATA_BUCKET", "ARTIFACT_BUCKET", "EVENT_BUS_NAME", "LEDGER_TABLE", "REGISTRY_TABLE"}
    assert "AlarmTopic" in environment["ALARM_TOPIC_ARN"]  # rejections and failures are announced
    assert definition["States"][train["Next"]]["Type"] == "Succeed"


def test_job_environment_is_what_the_jobs_settings_declare(definition: dict[str, Any]) -> None:
    from mlops.settings import TrainJobSettings

    train = definition["States"][definition["StartAt"]]
    given = {name.removesuffix(".$") for name in train["Parameters"]["Environment"]}
    declared = set(TrainJobSettings.env_names())
    assert given <= declared
    required = declared - set(TrainJobSettings.env_defaults()) - {"TRAINING_JOB_NAME"}  # SageMaker sets it
    assert required <= given


def test_every_failure_of_the_job_is_recorded_by_record_training_failure_then_fails(
    template: dict[str, Any], definition: dict[str, Any]
) -> None:
    train = definition["States"][definition["StartAt"]]
    [catch] = train["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]  # job failed, stopped at its limit, image not pulled
    record = definition["States"][catch["Next"]]
    assert record["Resource"].endswith(":states:::lambda:invoke")
    function = template["Resources"][function_ids(template)["record_training_failure"]]
    assert "TrainingRecordTrainingFailureFunction" in record["Parameters"]["FunctionName"]
    assert function is not None
    payload = record["Parameters"]["Payload"]
    # the on-failure destination record's shape: record_training_failure reads it unchanged
    assert payload["requestPayload"] == {"detail.$": "$.detail"}
    assert payload["responsePayload"] == {"errorType.$": "$.error.Error", "errorMessage.$": "$.error.Cause"}
    assert definition["States"][record["Next"]]["Type"] == "Fail"  # the execution shows failed


def test_state_machine_logs_and_traces_without_execution_data(template: dict[str, Any]) -> None:
    _, machine = _only(template, "AWS::StepFunctions::StateMachine")
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    logging = machine["Properties"]["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False


def test_training_job_role_holds_exactly_train_models_training_grants(template: dict[str, Any]) -> None:
    expected = (
        _allow("s3:GetObject s3:GetObjectVersion", "data/datasets/* data/contracts/*")
        | _allow("s3:PutObject", "artifacts/models/* artifacts/baselines/* artifacts/managed-training/*")
        | _allow("s3:GetObject", "artifacts/models/* artifacts/captures/* artifacts/labels/*")
        | _allow("s3:ListBucket", "artifacts", {"StringLike": {"s3:prefix": ["captures/*", "labels/*"]}})
        | _allow("dynamodb:GetItem", "registry", MODEL)
        | _allow("dynamodb:GetItem dynamodb:PutItem", "ledger")
        | _allow("events:PutEvents", "bus")
        | _allow("cloudwatch:PutMetricData", "*", {"StringEquals": {"cloudwatch:namespace": "MLOps"}})
        | _allow(
            "logs:CreateLogGroup logs:CreateLogStream logs:PutLogEvents logs:DescribeLogStreams",
            "arn:AWS::Partition:logs:AWS::Region:AWS::AccountId:log-group:/aws/sagemaker/TrainingJobs:*",
        )
        | _allow("ecr:BatchCheckLayerAvailability ecr:BatchGetImage ecr:GetDownloadUrlForLayer", "cdk-container-assets")
        | _allow("ecr:GetAuthorizationToken", "*")
        | ALARM_TOPIC
    )
    granted = _grants(template, "TrainingManagedJobRole")
    assert sorted(granted - expected) == [], "wider than train_model's training"
    assert sorted(expected - granted) == []
    _, role = next((lid, r) for lid, r in resources(template, "AWS::IAM::Role").items() if "ManagedJobRole" in lid)
    [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]  # no AmazonSageMakerFullAccess


def test_state_machine_role_starts_only_its_jobs_and_passes_only_the_job_role(template: dict[str, Any]) -> None:
    granted = _grants(template, "TrainingManagedStateMachineRole")
    account = "arn:AWS::Partition:{service}:AWS::Region:AWS::AccountId:{what}"
    job_role = next(lid for lid in resources(template, "AWS::IAM::Role") if lid.startswith("TrainingManagedJobRole"))
    expected = (
        _allow(
            "sagemaker:CreateTrainingJob sagemaker:DescribeTrainingJob sagemaker:StopTrainingJob",
            account.format(service="sagemaker", what="training-job/train-*"),
        )
        | _allow(
            "events:PutTargets events:PutRule events:DescribeRule",
            account.format(service="events", what="rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"),
        )
        | _allow("iam:PassRole", job_role, {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
        | _allow("lambda:InvokeFunction", "function:record_training_failure function:record_training_failure:*")
    )
    scoped = {g for g in granted if g[2] != "*"}
    assert sorted(scoped ^ expected) == []
    unscoped = {g[1] for g in granted if g[2] == "*"}
    assert all(action.startswith(("logs:", "xray:")) for action in unscoped)  # log delivery and tracing only


def test_train_model_may_start_the_state_machine_and_is_told_its_arn(template: dict[str, Any]) -> None:
    machine_id, _ = _only(template, "AWS::StepFunctions::StateMachine")
    fn = template["Resources"][function_ids(template)["train_model"]]
    assert fn["Properties"]["Environment"]["Variables"]["TRAINING_STATE_MACHINE_ARN"] == {"Ref": machine_id}
