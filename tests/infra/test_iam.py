"""Least privilege: no wildcard actions, prefix-scoped S3 grants, each function only what it uses."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.support import as_list, function_ids, resources


def _allow_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for lid, policy in resources(template, "AWS::IAM::Policy").items():
        found += [(lid, s) for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    for lid, role in resources(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            found += [(lid, s) for s in inline["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    return found


def _function_policy(template: dict[str, Any], folder: str) -> list[dict[str, Any]]:
    fn = template["Resources"][function_ids(template)[folder]]
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _grants(template: dict[str, Any], folder: str) -> dict[str, set[str]]:
    """action -> flattened resources (JSON text) granted to the function."""
    grants: dict[str, set[str]] = {}
    for statement in _function_policy(template, folder):
        for action in as_list(statement["Action"]):
            grants.setdefault(action, set()).update(json.dumps(r) for r in as_list(statement["Resource"]))
    return grants


def test_no_allow_statement_has_a_wildcard_action(template: dict[str, Any]) -> None:
    offenders = [
        (lid, s["Action"]) for lid, s in _allow_statements(template) if any("*" in a for a in as_list(s["Action"]))
    ]
    assert offenders == []


def test_star_resources_only_for_actions_without_resource_scoping(template: dict[str, Any]) -> None:
    allowed = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "cloudwatch:PutMetricData",
        "s3:PutBucketNotification",
    }
    for lid, statement in _allow_statements(template):
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= allowed, (lid, statement)


def test_put_metric_data_is_conditioned_on_the_namespace(template: dict[str, Any]) -> None:
    statements = [s for _, s in _allow_statements(template) if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert statements
    for statement in statements:
        assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MLOps"}}


def _prefixes(resources_json: set[str]) -> set[str]:
    """The literal suffix after a bucket ARN, e.g. `/datasets/*`."""
    suffixes = set()
    for text in resources_json:
        resource = json.loads(text)
        if isinstance(resource, dict) and "Fn::Join" in resource:
            suffixes.add("".join(p for p in resource["Fn::Join"][1] if isinstance(p, str)))
    return suffixes


def test_validate_grants_are_prefix_scoped(template: dict[str, Any]) -> None:
    grants = _grants(template, "validate_dataset")
    assert _prefixes(grants["s3:GetObject"]) == {"/datasets/*", "/contracts/*"}
    assert _prefixes(grants["s3:PutObject"]) == {"/quarantine/*", "/reports/*"}
    assert _prefixes(grants["s3:DeleteObjectVersion"]) == {"/datasets/*"}
    assert "events:PutEvents" in grants


def test_predict_reads_models_writes_captures_and_never_writes_the_registry(template: dict[str, Any]) -> None:
    grants = _grants(template, "predict")
    assert _prefixes(grants["s3:GetObject"]) == {"/models/*"}
    assert _prefixes(grants["s3:PutObject"]) == {"/captures/*"}
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & set(grants)
    assert "events:PutEvents" not in grants


def test_drift_writes_only_monitoring_prefix(template: dict[str, Any]) -> None:
    grants = _grants(template, "detect_drift")
    assert _prefixes(grants["s3:PutObject"]) == {"/monitoring/*"}
    assert _prefixes(grants["s3:GetObject"]) == {"/baselines/*", "/captures/*"}
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem"} & set(grants)


def test_train_writes_models_and_baselines_only(template: dict[str, Any]) -> None:
    grants = _grants(template, "train_model")
    assert _prefixes(grants["s3:PutObject"]) == {"/models/*", "/baselines/*"}


def test_models_api_has_no_s3_access(template: dict[str, Any]) -> None:
    assert not [a for a in _grants(template, "models_api") if a.startswith("s3:")]
