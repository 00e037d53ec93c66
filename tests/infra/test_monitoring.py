"""Alarms and dashboards: per contract (drift, data quality, model loads, drift checks, one notifying
composite), per function (errors, throttles), the API (5xx rate, predict p99), dead letters, captures;
exact metrics and dimensions, thresholds, and which alarms notify the encrypted topic."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.catalog import FUNCTIONS
from infra.constructs.monitoring import load_contracts
from mlops.settings import PredictSettings
from tests.infra.support import function_ids, resources

CONTRACTS = sorted(c.name for c in load_contracts())
DRIFT_DIMENSIONS = {"service": "detect-drift"}


def _metric_alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources(template, "AWS::CloudWatch::Alarm").items()}


def _composites(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources(template, "AWS::CloudWatch::CompositeAlarm").items()}


def _dims(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}


def _one(template: dict[str, Any], metric: str, **dimensions: Any) -> tuple[str, dict[str, Any]]:
    """The single alarm on `metric` whose dimensions include `dimensions`."""
    found = [
        (lid, a)
        for lid, a in _metric_alarms(template).items()
        if a.get("MetricName") == metric and dimensions.items() <= _dims(a).items()
    ]
    assert len(found) == 1, (metric, dimensions, [lid for lid, _ in found])
    return found[0]


def _topic(template: dict[str, Any]) -> dict[str, str]:
    (topic_id,) = resources(template, "AWS::SNS::Topic")
    return {"Ref": topic_id}


def _rule_children(composite: dict[str, Any]) -> tuple[str, set[str]]:
    """The rule with each child ARN as `<logical id>`, and the set of child logical ids."""
    parts = composite["AlarmRule"]["Fn::Join"][1]
    text, children = "", set()
    for part in parts:
        if isinstance(part, dict):
            logical_id, attribute = part["Fn::GetAtt"]
            assert attribute == "Arn"
            children.add(logical_id)
            text += f"<{logical_id}>"
        else:
            text += part
    return text, children


@pytest.mark.parametrize("model", CONTRACTS)
def test_drift_alarm_per_contract_matches_the_drift_detected_metric_exactly(
    template: dict[str, Any], model: str
) -> None:
    _, alarm = _one(template, "DriftDetected", model=model)
    # Powertools adds `service` to every metric; CloudWatch matches the dimension set exactly.
    assert _dims(alarm) == {**DRIFT_DIMENSIONS, "model": model}
    assert alarm["Namespace"] == "MLOps"
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 3600, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    # a window too small to judge publishes nothing: only a window that scored clean clears it
    assert alarm["TreatMissingData"] == "ignore"
    assert f"Model {model}" in json.dumps(alarm["AlarmDescription"])
    assert f"GET /models/{model}/drift" in json.dumps(alarm["AlarmDescription"])


@pytest.mark.parametrize("model", CONTRACTS)
def test_data_quality_alarm_per_contract_is_its_own_signal(template: dict[str, Any], model: str) -> None:
    _, alarm = _one(template, "DataQualityIssues", model=model)
    assert _dims(alarm) == {**DRIFT_DIMENSIONS, "model": model}
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 3600, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "ignore"
    assert f"GET /models/{model}/drift" in json.dumps(alarm["AlarmDescription"])


@pytest.mark.parametrize("model", CONTRACTS)
def test_drift_check_failure_and_late_capture_alarms_per_contract(template: dict[str, Any], model: str) -> None:
    _, failures = _one(template, "DriftCheckFailures", model=model)
    assert _dims(failures) == {**DRIFT_DIMENSIONS, "model": model}
    assert (failures["Statistic"], failures["Period"], failures["Threshold"]) == ("Sum", 3600, 1)
    # either of the last two hourly runs failed for this model
    assert (failures["EvaluationPeriods"], failures["DatapointsToAlarm"]) == (2, 1)
    assert failures["TreatMissingData"] == "notBreaching"
    _, late = _one(template, "CapturesLate", model=model)
    assert _dims(late) == {**DRIFT_DIMENSIONS, "model": model}
    assert (late["Statistic"], late["Period"], late["Threshold"], late["EvaluationPeriods"]) == ("Sum", 3600, 1, 2)
    assert "DatapointsToAlarm" not in late  # two hours in a row


def test_model_load_failure_alarm_per_contract_matches_the_predict_metric(template: dict[str, Any]) -> None:
    by_model = {
        _dims(a)["model"]: a for a in _metric_alarms(template).values() if a.get("MetricName") == "ModelLoadFailures"
    }
    assert sorted(by_model) == CONTRACTS
    alarm = by_model["churn"]
    # exactly what functions/predict emits: Powertools' `service` plus `model`
    assert _dims(alarm) == {"service": "predict", "model": "churn"}
    assert alarm["Namespace"] == "MLOps"
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # retries back off to one per 5 minutes at most: any failure within 3 periods keeps it in ALARM
    assert alarm["Period"] == 300
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 1)
    longest_retry = float(PredictSettings.env_defaults()["MODEL_LOAD_RETRY_MAX_SECONDS"])
    assert alarm["Period"] * (alarm["EvaluationPeriods"] - 1) >= longest_retry
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("model", CONTRACTS)
def test_model_composite_notifies_once_while_any_model_alarm_is_raised(template: dict[str, Any], model: str) -> None:
    children = {
        _one(template, metric, model=model)[0]
        for metric in (
            "DriftDetected",
            "DataQualityIssues",
            "QualityBelowMinimum",
            "ModelLoadFailures",
            "DriftCheckFailures",
            "QualityCheckFailures",
        )
    }
    # the canary alarms (they roll the canary back by themselves) feed it too: someone hears of a rollback
    canary = {lid for lid, a in _metric_alarms(template).items() if f"-model-{model}-canary-" in a["AlarmName"]}
    assert len(canary) == 3
    children |= canary
    [composite] = [c for c in _composites(template).values() if c["AlarmName"] == f"MlopsStack-model-{model}-health"]
    rule, referenced = _rule_children(composite)
    assert referenced == children
    assert rule == "(" + " OR ".join(f'ALARM("<{child}>")' for child in _order(rule)) + ")"
    assert composite["AlarmActions"] == [_topic(template)]
    assert composite["OKActions"] == [_topic(template)]
    assert f"Model {model}" in json.dumps(composite["AlarmDescription"])
    assert f"GET /models/{model}/drift" in json.dumps(composite["AlarmDescription"])


def _order(rule: str) -> list[str]:
    return re.findall(r"<([^>]+)>", rule)


def test_only_composites_notify_and_every_metric_alarm_feeds_exactly_one(template: dict[str, Any]) -> None:
    composites = _composites(template)
    fed: dict[str, list[str]] = {}
    for lid, composite in composites.items():
        for child in _rule_children(composite)[1]:
            fed.setdefault(child, []).append(lid)
        assert composite["AlarmActions"] == composite["OKActions"] == [_topic(template)]
    for lid, alarm in _metric_alarms(template).items():
        assert not alarm.get("AlarmActions"), f"{lid} notifies by itself"
        assert not alarm.get("OKActions"), f"{lid} notifies by itself"
        assert len(fed.get(lid, [])) == 1, f"{lid} feeds {fed.get(lid)}"
    names = {c["AlarmName"] for c in composites.values()}
    assert {"MlopsStack-serving-health", "MlopsStack-pipeline-health"} <= names
    assert len(composites) == 2 + len(CONTRACTS)


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_every_function_has_errors_and_throttles_alarms(template: dict[str, Any], folder: str) -> None:
    function_id = function_ids(template)[folder]
    for metric in ("Errors", "Throttles"):
        _, alarm = _one(template, metric, FunctionName={"Ref": function_id})
        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 300, 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    _, throttles = _one(template, "Throttles", FunctionName={"Ref": function_id})
    # a throttled API call is a refused request; async pipeline invokes are retried for hours
    assert throttles["EvaluationPeriods"] == (1 if folder in {"predict", "record_feedback", "models_api"} else 6)


def _api_dimensions(template: dict[str, Any]) -> dict[str, Any]:
    (api,) = resources(template, "AWS::ApiGateway::RestApi").values()
    ((stage_id, stage),) = resources(template, "AWS::ApiGateway::Stage").items()
    assert stage["Properties"]["StageName"] == "v1"
    return {"ApiName": api["Properties"]["Name"], "Stage": {"Ref": stage_id}}


def test_api_is_named_after_the_stack_so_its_metrics_are_its_own(template: dict[str, Any]) -> None:
    # API Gateway's metrics are keyed by ApiName: two stacks' APIs both named "Api" would share them
    assert _api_dimensions(template)["ApiName"] == "MlopsStack-api"


def test_api_5xx_rate_alarm_divides_5xx_by_requests_on_the_stage(template: dict[str, Any]) -> None:
    [alarm] = [a for a in _metric_alarms(template).values() if a["AlarmName"] == "MlopsStack-api-5xx-rate"]
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    [expression] = [q for q in queries.values() if q.get("ReturnData", True) and "Expression" in q]
    assert expression["Expression"] == "IF(requests >= 10, 100 * errors / requests, 0)"
    for query_id, metric in (("errors", "5XXError"), ("requests", "Count")):
        stat = queries[query_id]["MetricStat"]
        assert queries[query_id]["ReturnData"] is False
        assert stat["Metric"]["Namespace"] == "AWS/ApiGateway"
        assert stat["Metric"]["MetricName"] == metric
        assert {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]} == _api_dimensions(template)
        assert (stat["Stat"], stat["Period"]) == ("Sum", 300)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (5, "GreaterThanThreshold")
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)
    assert alarm["TreatMissingData"] == "notBreaching"


def test_predict_p99_latency_alarm_watches_the_predict_method(template: dict[str, Any]) -> None:
    _, alarm = _one(template, "Latency", Resource="/models/{name}/predict")
    assert alarm["Namespace"] == "AWS/ApiGateway"
    assert _dims(alarm) == {**_api_dimensions(template), "Method": "POST", "Resource": "/models/{name}/predict"}
    assert alarm["ExtendedStatistic"] == "p99"
    assert "Statistic" not in alarm
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (300, 3, 1000)
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # method-level metrics exist only with detailed metrics on the stage
    (stage,) = resources(template, "AWS::ApiGateway::Stage").values()
    assert any(s.get("MetricsEnabled") for s in stage["Properties"]["MethodSettings"])


def _dead_letter_queue_ids(template: dict[str, Any]) -> set[str]:
    """Every queue that receives failed events or invocations: rule targets' and functions' destinations."""
    found = set()
    for rule in resources(template, "AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            if "DeadLetterConfig" in target:
                found.add(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    for config in resources(template, "AWS::Lambda::EventInvokeConfig").values():
        destination = config["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination and "Fn::GetAtt" in destination:
            target = destination["Fn::GetAtt"][0]
            if template["Resources"][target]["Type"] == "AWS::SQS::Queue":
                found.add(target)
    return found


def test_every_dead_letter_queue_has_a_depth_alarm(template: dict[str, Any]) -> None:
    queues = _dead_letter_queue_ids(template)
    assert queues, "expected the event backbone's dead-letter queue"
    for queue_id in queues:
        _, alarm = _one(
            template, "ApproximateNumberOfMessagesVisible", QueueName={"Fn::GetAtt": [queue_id, "QueueName"]}
        )
        assert alarm["Namespace"] == "AWS/SQS"
        assert len(alarm["Dimensions"]) == 1
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Maximum", 300, 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_capture_drop_alarm_matches_what_predict_publishes(template: dict[str, Any]) -> None:
    # predict adds CaptureRecordsDropped to its shared metric set: `service` only, no model dimension
    _, alarm = _one(template, "CaptureRecordsDropped")
    assert _dims(alarm) == {"service": "predict"}
    assert alarm["Namespace"] == "MLOps"
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1, 1)


def test_serving_and_pipeline_composites_split_the_operational_alarms(template: dict[str, Any]) -> None:
    by_name = {c["AlarmName"]: _rule_children(c)[1] for c in _composites(template).values()}
    alarms = _metric_alarms(template)
    names = {lid: alarms[lid]["AlarmName"] for lid in alarms}
    serving = {names[lid] for lid in by_name["MlopsStack-serving-health"]}
    pipeline = {names[lid] for lid in by_name["MlopsStack-pipeline-health"]}
    assert serving == {
        "MlopsStack-predict-errors",
        "MlopsStack-predict-throttles",
        "MlopsStack-record-feedback-errors",
        "MlopsStack-record-feedback-throttles",
        "MlopsStack-models-api-errors",
        "MlopsStack-models-api-throttles",
        "MlopsStack-api-5xx-rate",
        "MlopsStack-predict-latency-p99",
        "MlopsStack-capture-drops",
        "MlopsStack-waf-blocked-requests",
    }
    others = [f.replace("_", "-") for f in FUNCTIONS if f not in {"predict", "record_feedback", "models_api"}]
    assert pipeline == (
        {f"MlopsStack-{f}-{kind}" for f in others for kind in ("errors", "throttles")}
        | {"MlopsStack-dead-letters-0"}
        | {f"MlopsStack-model-{m}-late-captures" for m in CONTRACTS}
    )


def _dashboard(template: dict[str, Any], name: str) -> dict[str, Any]:
    """The dashboard body as JSON, each CloudFormation reference written as `<logical id>`."""
    [dashboard] = [
        d["Properties"]
        for d in resources(template, "AWS::CloudWatch::Dashboard").values()
        if d["Properties"]["DashboardName"] == name
    ]
    body = dashboard["DashboardBody"]
    if isinstance(body, dict):
        parts = body["Fn::Join"][1]
        body = "".join(p if isinstance(p, str) else f"<{p.get('Ref') or p.get('Fn::GetAtt', ['?'])[0]}>" for p in parts)
    return json.loads(body)


def _graphed(dashboard: dict[str, Any]) -> list[list[Any]]:
    return [m for w in dashboard["widgets"] if w["type"] == "metric" for m in w["properties"].get("metrics", [])]


@pytest.mark.parametrize("model", CONTRACTS)
def test_model_dashboard_shows_drift_quality_rows_serving_and_the_report(template: dict[str, Any], model: str) -> None:
    dashboard = _dashboard(template, f"MlopsStack-model-{model}")
    graphed = _graphed(dashboard)
    drift = {m[1] for m in graphed if m[0] == "MLOps" and model in m and "detect-drift" in m}
    assert {
        "DriftDetected",
        "PredictionDrift",
        "DriftedFeatureShare",
        "DriftScore",
        "DataQualityIssues",
        "DriftWindowRows",
        "CapturesLate",
        "DriftCheckFailures",
    } <= drift
    assert {m[1] for m in graphed if m[0] == "MLOps" and model in m and "predict" in m} >= {"ModelLoadFailures"}
    assert {m[1] for m in graphed if m[0] == "AWS/ApiGateway"} >= {"Count", "Latency", "5XXError"}
    text = " ".join(w["properties"].get("markdown", "") for w in dashboard["widgets"] if w["type"] == "text")
    assert f"GET /models/{model}/drift" in text
    alarm_widgets = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    assert alarm_widgets, "the model's alarm states"


def test_pipeline_dashboard_shows_every_function_the_api_and_dead_letters(template: dict[str, Any]) -> None:
    dashboard = _dashboard(template, "MlopsStack-pipeline")
    graphed = _graphed(dashboard)
    for folder, function_id in function_ids(template).items():
        for metric in ("Invocations", "Errors", "Throttles", "Duration"):
            assert any(m[:2] == ["AWS/Lambda", metric] and f"<{function_id}>" in m for m in graphed), (folder, metric)
    assert {m[1] for m in graphed if m[0] == "AWS/ApiGateway"} >= {"Count", "5XXError", "4XXError", "Latency"}
    assert any(m[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"] for m in graphed)
    assert {m[1] for m in graphed if m[0] == "MLOps"} >= {"CaptureRecordsWritten", "CaptureRecordsDropped"}
    expressions = [m[0].get("expression", "") for m in graphed if isinstance(m[0], dict)]
    assert any("ModelsTrained" in e and "SEARCH" in e for e in expressions)


def test_alarm_topic_uses_a_key_cloudwatch_may_use(template: dict[str, Any]) -> None:
    (topic,) = resources(template, "AWS::SNS::Topic").values()
    (key_id, key) = next(iter(resources(template, "AWS::KMS::Key").items()))
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in statements if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert cloudwatch, "CloudWatch cannot publish alarms to the topic"
    actions = {a for s in cloudwatch for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= actions


def test_drift_function_knows_the_notice_topic_and_the_report_base_url(template: dict[str, Any]) -> None:
    fn = template["Resources"][function_ids(template)["detect_drift"]]
    variables = fn["Properties"]["Environment"]["Variables"]
    assert variables["DRIFT_NOTICE_TOPIC_ARN"] == _topic(template)
    # the API's stage URL, exactly the ApiUrl output (https://<api>.execute-api.<region>.<suffix>/v1/)
    assert variables["REPORT_BASE_URL"] == template["Outputs"]["ApiUrl"]["Value"]


def test_the_longest_model_name_keeps_alarm_names_and_descriptions_within_cloudwatch_limits() -> None:
    # GIVEN a contract with the longest name the name rule allows, and a long deployed API URL
    from aws_cdk import App, Stack
    from aws_cdk import aws_sns as sns

    from infra.constructs.alarms import ModelAlarms
    from infra.constructs.monitoring import CONTRACTS_DIR
    from mlops.contract import parse_contract

    document = json.loads((CONTRACTS_DIR / "churn.json").read_text())
    contract = parse_contract(json.dumps(document | {"name": "m" * 63}), source="longest.json")
    stack = Stack(App(), "MlopsStack")
    url = "https://abcdefghij.execute-api.ap-southeast-2.amazonaws.com/v1/"
    ModelAlarms(stack, "Alarms", contract=contract, topic=sns.Topic(stack, "Topic"), api_url=url)
    from aws_cdk.assertions import Template

    rendered = Template.from_stack(stack).to_json()["Resources"].values()
    alarms = [r["Properties"] for r in rendered if r["Type"].startswith("AWS::CloudWatch::")]
    assert len(alarms) == 8
    for alarm in alarms:
        # THEN names stay within 255 characters and descriptions within 1024 (CloudWatch's limits)
        assert len(alarm["AlarmName"]) <= 255, alarm["AlarmName"]
        assert len(alarm["AlarmDescription"]) <= 1024, alarm["AlarmDescription"]
