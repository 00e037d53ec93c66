"""The alarms per contract (drift, model load failures): metric, exact dimensions, threshold, actions
to the encrypted topic."""

from __future__ import annotations

from typing import Any

from infra.constructs.monitoring import load_contracts
from mlops.settings import PredictSettings
from tests.infra.support import resources


def test_alarm_per_contract_matches_the_drift_metric_exactly(template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    alarms = [a for a in alarms if a["MetricName"] == "DriftScore"]
    assert len(alarms) == 1  # contracts/ holds one contract, churn
    (topic_id,) = resources(template, "AWS::SNS::Topic")
    by_model = {}
    for alarm in alarms:
        dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        by_model[dims["model"]] = (alarm, dims)
    alarm, dims = by_model["churn"]
    # Powertools adds `service` to every metric; CloudWatch matches the dimension set exactly.
    assert dims == {"service": "detect-drift", "model": "churn"}
    assert len(alarm["Dimensions"]) == 2
    assert alarm["Namespace"] == "MLOps"
    assert alarm["MetricName"] == "DriftScore"
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Period"] == 3600
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["Threshold"] == 0.2  # contracts/churn.json monitoring.psi_alarm_threshold
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert alarm["OKActions"] == [{"Ref": topic_id}]


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


def test_model_load_failure_alarm_per_contract_matches_the_predict_metric(template: dict[str, Any]) -> None:
    contracts = {c.name for c in load_contracts()}
    (topic_id,) = resources(template, "AWS::SNS::Topic")
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    by_model = {
        {d["Name"]: d["Value"] for d in a["Dimensions"]}["model"]: a
        for a in alarms
        if a["MetricName"] == "ModelLoadFailures"
    }
    assert set(by_model) == contracts
    alarm = by_model["churn"]
    # exactly what functions/predict emits: Powertools' `service` plus `model`
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": "predict", "model": "churn"}
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
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert alarm["OKActions"] == [{"Ref": topic_id}]
