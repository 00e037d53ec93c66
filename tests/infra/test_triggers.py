"""Each trigger reaches the right function: S3 -> validate, bus rules -> train/register,
schedule -> drift, API routes -> predict (API key) and models_api (IAM)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.support import (
    function_ids,
    integration_function_id,
    resources,
    routes,
    target_function_id,
)


def test_s3_notifications_datasets_to_validate_and_feedback_to_ingest(template: dict[str, Any]) -> None:
    # GIVEN the bucket-notifications custom resource
    (notification,) = resources(template, "Custom::S3BucketNotifications").values()
    configs = notification["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    # THEN exactly four configurations: ObjectCreated under datasets/ -> validate_dataset, under
    # feedback/ -> ingest_feedback, import drops (models/...onnx) -> train_model, under batch/ ->
    # score_batch; none of the
    # functions writes under another's prefix or its own
    functions = function_ids(template)
    found = {
        (
            frozenset((rule["Name"], rule["Value"]) for rule in config["Filter"]["Key"]["FilterRules"]),
            target_function_id(config["LambdaFunctionArn"]),
        )
        for config in configs
    }
    assert len(configs) == 4
    assert found == {
        (frozenset({("prefix", "datasets/")}), functions["validate_dataset"]),
        (frozenset({("prefix", "feedback/")}), functions["ingest_feedback"]),
        (frozenset({("prefix", "models/"), ("suffix", ".onnx")}), functions["train_model"]),
        (frozenset({("prefix", "batch/")}), functions["score_batch"]),
    }
    for config in configs:
        assert config["Events"] == ["s3:ObjectCreated:*"]
    bucket_ref = notification["Properties"]["BucketName"]["Ref"]
    assert template["Outputs"]["DataBucketName"]["Value"] == {"Ref": bucket_ref}


def test_s3_notification_import_drops_invoke_train_model(template: dict[str, Any]) -> None:
    # GIVEN the data bucket's notifications (the artifact bucket has none: training writes models/ there)
    (notification,) = resources(template, "Custom::S3BucketNotifications").values()
    assert template["Outputs"]["DataBucketName"]["Value"] == {"Ref": notification["Properties"]["BucketName"]["Ref"]}
    configs = notification["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    # THEN ObjectCreated of models/...onnx -> train_model (its import path)
    [config] = [
        c for c in configs if target_function_id(c["LambdaFunctionArn"]) == function_ids(template)["train_model"]
    ]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert sorted(config["Filter"]["Key"]["FilterRules"], key=lambda rule: rule["Name"]) == [
        {"Name": "prefix", "Value": "models/"},
        {"Name": "suffix", "Value": ".onnx"},
    ]


@pytest.mark.parametrize(
    ("detail_type", "folder"),
    [
        ("DatasetValidated", "train_model"),
        ("ModelTrained", "register_model"),
        ("RetrainingRequested", "retrain_model"),
        ("BatchPartRequested", "score_batch"),  # a large batch file fanned out to score_batch itself
    ],
)
def test_bus_rule_routes_detail_type_to_function(template: dict[str, Any], detail_type: str, folder: str) -> None:
    (bus_id,) = resources(template, "AWS::Events::EventBus")
    matching = [
        rule["Properties"]
        for rule in resources(template, "AWS::Events::Rule").values()
        if rule["Properties"].get("EventPattern", {}).get("detail-type") == [detail_type]
    ]
    assert len(matching) == 1
    (rule,) = matching
    assert rule["EventPattern"] == {"source": ["mlops"], "detail-type": [detail_type]}
    assert rule["EventBusName"] == {"Ref": bus_id}
    (target,) = rule["Targets"]
    assert target_function_id(target["Arn"]) == function_ids(template)[folder]
    assert "Arn" in target["DeadLetterConfig"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    (queue_id,) = resources(template, "AWS::SQS::Queue")
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_drift_and_quality_alarms_entering_alarm_reach_retrain_model_from_the_default_bus(
    template: dict[str, Any],
) -> None:
    retrain_model = function_ids(template)["retrain_model"]
    matching = [
        rule["Properties"]
        for rule in resources(template, "AWS::Events::Rule").values()
        if rule["Properties"].get("EventPattern", {}).get("source") == ["aws.cloudwatch"]
        and any(target_function_id(t["Arn"]) == retrain_model for t in rule["Properties"]["Targets"])
    ]
    assert len(matching) == 1  # (the canary alarms have their own rule: tests/infra/test_canary.py)
    (rule,) = matching
    assert "EventBusName" not in rule  # CloudWatch puts alarm state changes on the default bus
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"]["state"] == {"value": ["ALARM"]}
    # exactly the drift and live-quality alarms of each contract's model: names the alarms really carry
    names = pattern["detail"]["alarmName"]
    alarm_names = {a["Properties"]["AlarmName"] for a in resources(template, "AWS::CloudWatch::Alarm").values()}
    assert sorted(names) == ["MlopsStack-model-churn-drift", "MlopsStack-model-churn-quality"]
    assert set(names) <= alarm_names
    (target,) = rule["Targets"]
    assert target_function_id(target["Arn"]) == function_ids(template)["retrain_model"]
    assert "Arn" in target["DeadLetterConfig"]
    retrain = template["Resources"][function_ids(template)["retrain_model"]]["Properties"]
    assert retrain["Environment"]["Variables"]["ALARM_NAME_PREFIX"] == "MlopsStack-model-"


def test_dead_letter_queue_is_encrypted(template: dict[str, Any]) -> None:
    (queue,) = resources(template, "AWS::SQS::Queue").values()
    props = queue["Properties"]
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props


def test_schedules_invoke_detect_drift_and_evaluate_quality_hourly_each_on_its_own_rule(
    template: dict[str, Any],
) -> None:
    scheduled = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    ids = function_ids(template)
    # (control_canary's bake check and score_shadow have their own schedules: tests/infra/test_canary.py)
    challengers = {ids["control_canary"], ids["score_shadow"]}
    scheduled = [r for r in scheduled if target_function_id(r["Targets"][0]["Arn"]) not in challengers]
    targeted = set()
    for rule in scheduled:
        assert rule["ScheduleExpression"] == "rate(1 hour)"
        (target,) = rule["Targets"]  # one function per rule: a failure of one never retries the other
        targeted.add(target_function_id(target["Arn"]))
    assert len(scheduled) == 2
    assert targeted == {ids["detect_drift"], ids["evaluate_quality"]}


def test_api_routes_map_to_functions_with_their_auth(template: dict[str, Any]) -> None:
    functions = function_ids(template)
    found = routes(template)
    expected = {
        ("POST", "/models/{name}/predict"): ("predict", "NONE", True),
        ("POST", "/models/{name}/feedback"): ("record_feedback", "NONE", True),
        ("GET", "/models"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/versions"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/versions/{version}"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/compare"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/audit"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/audit/verify"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/served"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/aliases/{alias}/history"): ("models_api", "AWS_IAM", False),
        ("PUT", "/models/{name}/aliases/{alias}"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/versions/{version}/approve"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/versions/{version}/reject"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/versions/{version}/promote"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/versions/{version}/archive"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/rollback"): ("models_api", "AWS_IAM", False),
        ("GET", "/openapi.json"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/datasets"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/datasets/{dataset_id}/review"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/drift"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/drift/{report_id}"): ("models_api", "AWS_IAM", False),
        ("GET", "/models/{name}/quality"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/imports"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/retrain"): ("models_api", "AWS_IAM", False),
        ("GET", "/clients"): ("models_api", "AWS_IAM", False),
        ("POST", "/clients"): ("models_api", "AWS_IAM", False),
        ("POST", "/clients/{key_id}/revoke"): ("models_api", "AWS_IAM", False),
        ("POST", "/models/{name}/canary"): ("models_api", "AWS_IAM", False),
        ("DELETE", "/models/{name}/canary"): ("models_api", "AWS_IAM", False),
        ("PUT", "/models/{name}/shadow"): ("models_api", "AWS_IAM", False),
        ("DELETE", "/models/{name}/shadow"): ("models_api", "AWS_IAM", False),
    }
    assert set(found) == set(expected)
    for route, (folder, auth, key_required) in expected.items():
        method = found[route]
        assert integration_function_id(method, template) == functions[folder], route
        assert method["AuthorizationType"] == auth, route
        assert bool(method.get("ApiKeyRequired", False)) is key_required, route


def test_predict_validates_body_and_usage_plan_throttles_key(template: dict[str, Any]) -> None:
    predict = routes(template)[("POST", "/models/{name}/predict")]
    validator_id = predict["RequestValidatorId"]["Ref"]
    validator = template["Resources"][validator_id]["Properties"]
    assert validator["ValidateRequestBody"] is True
    assert "application/json" in predict["RequestModels"]
    plan = _stack_key_plan(template)
    throttle = plan["Properties"]["Throttle"]
    assert throttle["RateLimit"] > 0
    assert throttle["BurstLimit"] > 0
    (key_id,) = resources(template, "AWS::ApiGateway::ApiKey")
    (plan_key,) = resources(template, "AWS::ApiGateway::UsagePlanKey").values()
    assert plan_key["Properties"]["KeyId"] == {"Ref": key_id}
    assert template["Outputs"]["ApiKeyId"]["Value"] == {"Ref": key_id}


def test_feedback_route_validates_the_body_shape_and_shares_the_usage_plan(template: dict[str, Any]) -> None:
    feedback = routes(template)[("POST", "/models/{name}/feedback")]
    predict = routes(template)[("POST", "/models/{name}/predict")]
    assert feedback["ApiKeyRequired"] is True
    assert feedback["RequestValidatorId"] == predict["RequestValidatorId"]
    model_id = feedback["RequestModels"]["application/json"]["Ref"]
    schema = template["Resources"][model_id]["Properties"]["Schema"]
    assert schema["required"] == ["labels"]
    # no maxItems here: the function answers a 400 naming the limit, API Gateway only "Invalid request body"
    assert schema["properties"]["labels"] == {"type": "array", "minItems": 1}
    # the stack key's usage plan covers the whole stage, so the key and throttle of predict apply
    plan = _stack_key_plan(template)
    assert len(plan["Properties"]["ApiStages"]) == 1
    assert not plan["Properties"]["ApiStages"][0].get("Throttle")  # no per-method override


def _stack_key_plan(template: dict[str, Any]) -> dict[str, Any]:
    """The usage plan of the stack's own API key (the other one holds keys issued through /clients)."""
    (plan_key,) = resources(template, "AWS::ApiGateway::UsagePlanKey").values()
    return dict(template["Resources"][plan_key["Properties"]["UsagePlanId"]["Ref"]])


def test_api_stage_has_access_logs_and_tracing(template: dict[str, Any]) -> None:
    (stage,) = resources(template, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "DestinationArn" in props["AccessLogSetting"]


def test_train_model_failures_reach_record_training_failure(template: dict[str, Any]) -> None:
    # GIVEN train_model's asynchronous invoke configuration
    functions = function_ids(template)
    configs = {
        config["Properties"]["FunctionName"]["Ref"]: config["Properties"]
        for config in resources(template, "AWS::Lambda::EventInvokeConfig").values()
    }
    train = configs[functions["train_model"]]
    # THEN what Lambda gives up on (out of memory, timeout, event too old) goes to the function that
    # records training_failed in the ledger, after the retries
    destination = train["DestinationConfig"]["OnFailure"]["Destination"]
    assert target_function_id(destination) == functions["record_training_failure"]
    assert train["MaximumRetryAttempts"] == 2
    # and what that function cannot record lands in the dead-letter queue
    (queue_id,) = resources(template, "AWS::SQS::Queue")
    recorder = configs[functions["record_training_failure"]]
    assert recorder["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_refusals_of_a_retrainings_training_set_reach_retrain_model_and_nothing_else(
    template: dict[str, Any],
) -> None:
    # GIVEN the rules that carry a retraining's refused training set back to retrain_model
    retrain = function_ids(template)["retrain_model"]
    refusal_types = {"DatasetQuarantined", "DatasetHeld", "TrainingRejected", "TrainingFailed"}
    rules = [
        rule["Properties"]
        for rule in resources(template, "AWS::Events::Rule").values()
        if set(rule["Properties"].get("EventPattern", {}).get("detail-type", [])) & refusal_types
    ]
    # THEN every refusal type is routed, only for keys under datasets/<model>/retrain- of each contract
    routed: set[str] = set()
    for rule in rules:
        pattern = rule["EventPattern"]
        assert pattern["source"] == ["mlops"]
        routed |= set(pattern["detail-type"])
        detail = pattern["detail"]
        keys = detail["source_key"] if "source_key" in detail else detail["dataset"]["key"]
        assert keys == [{"prefix": "datasets/churn/retrain-"}]
        (target,) = rule["Targets"]
        assert target_function_id(target["Arn"]) == retrain
        assert "Arn" in target["DeadLetterConfig"]
    assert routed == refusal_types


def test_misplaced_uploads_reach_report_misplaced_upload_through_eventbridge(template: dict[str, Any]) -> None:
    # GIVEN the data bucket's notifications: its events also go to EventBridge
    (notification,) = resources(template, "Custom::S3BucketNotifications").values()
    assert notification["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"] == {}
    bucket_ref = notification["Properties"]["BucketName"]["Ref"]
    # THEN one rule: objects created in THAT bucket outside every owned prefix -> report_misplaced_upload
    function = function_ids(template)["report_misplaced_upload"]
    [rule] = [
        r
        for r in resources(template, "AWS::Events::Rule").values()
        if any(target_function_id(t["Arn"]) == function for t in r["Properties"].get("Targets", []))
    ]
    pattern = rule["Properties"]["EventPattern"]
    assert "EventBusName" not in rule["Properties"]  # S3 sends to the default bus
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": bucket_ref}]
    [outside] = pattern["detail"]["object"]["key"]
    assert sorted(outside["anything-but"]["wildcard"]) == sorted(
        [
            "datasets/*",
            "feedback/*",
            "models/*",
            "contracts/*",
            "quarantine/*",
            "reports/*",
            "misplaced/*",
            "batch/*",
            "predictions/*",
        ]
    )
    [target] = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target
    # AND the function may write only notices under misplaced/ (no read of anyone's data)
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if any(role["Ref"].startswith("DatasetsReportMisplacedUpload") for role in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(action.startswith("s3:") for action in _listed(statement["Action"]))
    ]
    assert [_listed(s["Action"]) for s in statements] == [["s3:PutObject"]]
    assert "misplaced/*" in json.dumps(statements[0]["Resource"])


def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]
