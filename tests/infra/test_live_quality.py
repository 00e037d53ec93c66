"""evaluate_quality in the template: its per-model quality alarm (exact metric and dimensions,
feeding the model's composite), its dashboard graph, its settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.catalog import FUNCTIONS
from infra.constructs.monitoring import load_contracts
from mlops.quality import metrics as names
from mlops.settings import QualitySettings
from tests.infra.support import function_ids, resources

CONTRACTS = {c.name: c for c in load_contracts()}


def _alarms(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()]


@pytest.mark.parametrize("model", sorted(CONTRACTS))
def test_quality_alarm_per_contract_watches_quality_below_minimum_of_evaluate_quality(
    template: dict[str, Any], model: str
) -> None:
    [alarm] = [a for a in _alarms(template) if a["AlarmName"] == f"MlopsStack-model-{model}-quality"]
    assert alarm["MetricName"] == names.QUALITY_BELOW_MINIMUM
    assert alarm["Namespace"] == "MLOps"
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "service": FUNCTIONS["evaluate_quality"].service_name,
        "model": model,
    }
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "ignore"  # a day without enough labels keeps the state
    assert alarm["Period"] == 3600
    contract = CONTRACTS[model]
    assert f"live {contract.metric.name}" in alarm["AlarmDescription"]
    assert f"GET /models/{model}/quality" in alarm["AlarmDescription"]
    # it feeds the model's composite (the only notifier)
    alarm_ids = {lid for lid, r in resources(template, "AWS::CloudWatch::Alarm").items() if r["Properties"] is alarm}
    [composite] = [
        r["Properties"]
        for r in resources(template, "AWS::CloudWatch::CompositeAlarm").values()
        if r["Properties"]["AlarmName"] == f"MlopsStack-model-{model}-health"
    ]
    assert alarm_ids <= set(json.dumps(composite["AlarmRule"]).replace('"', " ").split())
    assert "AlarmActions" not in alarm


@pytest.mark.parametrize("model", sorted(CONTRACTS))
def test_model_dashboard_graphs_live_quality(template: dict[str, Any], model: str) -> None:
    [dashboard] = [
        r["Properties"]
        for r in resources(template, "AWS::CloudWatch::Dashboard").values()
        if r["Properties"]["DashboardName"] == f"MlopsStack-model-{model}"
    ]
    body = json.dumps(dashboard["DashboardBody"])
    for metric in (names.LIVE_ACCURACY, names.LIVE_ROC_AUC, names.LABELS_JOINED, names.QUALITY_BELOW_MINIMUM):
        assert metric in body
    assert "evaluate-quality" in body


def test_evaluate_quality_gets_exactly_its_settings(template: dict[str, Any]) -> None:
    fn = template["Resources"][function_ids(template)["evaluate_quality"]]
    variables = set(fn["Properties"]["Environment"]["Variables"])
    assert {"REGISTRY_TABLE", "ARTIFACT_BUCKET"} <= variables
    assert variables - {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} <= set(
        QualitySettings.env_names()
    ) | {name for name in variables if name.startswith("POWERTOOLS_")}
