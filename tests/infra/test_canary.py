"""The canary's template (issue 13 item 2): per model three canary alarms on predict's per-variant
metrics (the names control_canary reads back), a default-bus rule from their ALARM to control_canary,
a bake-check schedule, and control_canary's narrow grants."""

from __future__ import annotations

import fnmatch
from typing import Any

from infra.constructs.canary import BAKE_CHECK_SCHEDULE
from mlops.registry.canary_control import canary_alarm_model
from tests.infra.support import function_ids, resources, target_function_id

PREFIX = "MlopsStack-model-"
NAMES = [f"{PREFIX}churn-canary-{signal}" for signal in ("errors", "latency", "output")]


def _control_rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    control = function_ids(template)["control_canary"]
    return [
        rule["Properties"]
        for rule in resources(template, "AWS::Events::Rule").values()
        if any(target_function_id(t["Arn"]) == control for t in rule["Properties"].get("Targets", []))
    ]


def test_canary_alarms_compare_the_variants_predict_publishes(template: dict[str, Any]) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if canary_alarm_model(a["Properties"]["AlarmName"], PREFIX)
    }
    assert sorted(alarms) == NAMES
    for name, alarm in alarms.items():
        assert canary_alarm_model(name, PREFIX) == "churn"
        assert "AlarmActions" not in alarm  # control_canary acts, through the rule below
        assert alarm["TreatMissingData"] == "notBreaching"
        metrics = [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]
        for metric in metrics:
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            # the exact set predict's EMF documents carry (CloudWatch matches the whole set)
            assert set(dimensions) == {"service", "model", "variant"}
            assert (dimensions["service"], dimensions["model"]) == ("predict", "churn")
            assert metric["Namespace"] == "MLOps"
    errors = alarms[NAMES[0]]
    expression = next(q["Expression"] for q in errors["Metrics"] if "Expression" in q)
    assert "100 * canary_errors / canary_requests" in expression
    output = next(q["Expression"] for q in alarms[NAMES[2]]["Metrics"] if "Expression" in q)
    assert "ABS(canary_output - champion_output)" in output  # churn is a classifier: the positive share


def test_canary_alarm_rule_and_bake_schedule_invoke_control_canary(template: dict[str, Any]) -> None:
    rules = _control_rules(template)
    [alarm_rule] = [r for r in rules if "EventPattern" in r]
    [schedule] = [r for r in rules if "ScheduleExpression" in r]
    assert "EventBusName" not in alarm_rule  # CloudWatch puts alarm state changes on the default bus
    pattern = alarm_rule["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail"]["state"] == {"value": ["ALARM"]}
    # wildcards, not names: a contract published later needs no change of the rule (local mode adopts
    # it without a restart; tests/e2e/test_local_contract_alarms.py)
    wildcards = [p["wildcard"] for p in pattern["detail"]["alarmName"]]
    assert all(any(fnmatch.fnmatchcase(name, w) for w in wildcards) for name in NAMES)
    assert not any(
        fnmatch.fnmatchcase(f"{PREFIX}churn-{s}", w) for s in ("drift", "quality", "health") for w in wildcards
    )
    assert schedule["ScheduleExpression"] == BAKE_CHECK_SCHEDULE
    for rule in rules:
        assert "Arn" in rule["Targets"][0]["DeadLetterConfig"]
    control = template["Resources"][function_ids(template)["control_canary"]]["Properties"]
    assert control["Environment"]["Variables"]["ALARM_NAME_PREFIX"] == PREFIX
    assert "ALARM_TOPIC_ARN" in control["Environment"]["Variables"]
    assert control["ReservedConcurrentExecutions"] >= 1


def test_control_canary_reads_only_the_model_alarms_states(template: dict[str, Any]) -> None:
    control = function_ids(template)["control_canary"]
    role = template["Resources"][control]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    [describe] = [s for s in statements if s["Action"] == "cloudwatch:DescribeAlarms"]
    resource = describe["Resource"]
    assert f":alarm:{PREFIX}*" in str(resource)
    assert all(s["Action"] != "dynamodb:DeleteItem" for s in statements)


def test_score_shadow_runs_on_its_own_schedule(template: dict[str, Any]) -> None:
    from infra.constructs.canary import SHADOW_SCHEDULE

    shadow = function_ids(template)["score_shadow"]
    [rule] = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(target_function_id(t["Arn"]) == shadow for t in r["Properties"].get("Targets", []))
    ]
    assert rule["ScheduleExpression"] == SHADOW_SCHEDULE
    assert "Arn" in rule["Targets"][0]["DeadLetterConfig"]
    # predict never reads the shadow: it is not in predict's settings, only in the registry item
    predict = template["Resources"][function_ids(template)["predict"]]["Properties"]
    assert not any("SHADOW" in name for name in predict["Environment"]["Variables"])
