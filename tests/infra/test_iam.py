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
    assert _prefixes(grants["s3:GetObject"]) == {
        "/datasets/*",
        "/contracts/*",
        "/reports/*",
        "/models/*",
        "/baselines/*",
    }
    assert _prefixes(grants["s3:PutObject"]) == {"/quarantine/*", "/reports/*"}
    assert _prefixes(grants["s3:DeleteObjectVersion"]) == {"/datasets/*"}
    assert "events:PutEvents" in grants
    # the dataset ledger: conditional puts on the registry table, no updates or deletes
    assert "dynamodb:PutItem" in grants
    for action in ("dynamodb:UpdateItem", "dynamodb:DeleteItem"):  # the idempotency table only
        assert all("Idempotency" in resource for resource in grants.get(action, ())), grants[action]
    # quarantines and holds reach the encrypted alarm topic
    assert {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"} <= set(grants)


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


def test_train_reads_only_datasets_and_contracts_of_the_data_bucket(template: dict[str, Any]) -> None:
    grants = _grants(template, "train_model")
    assert {a for a in grants if a.startswith("s3:")} == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"}
    # never quarantine/ or reports/: training trusts only what validation left under datasets/
    assert (
        _prefixes(grants["s3:GetObject"]) == _prefixes(grants["s3:GetObjectVersion"]) == {"/datasets/*", "/contracts/*"}
    )
    fn = template["Resources"][function_ids(template)["train_model"]]
    data_bucket = fn["Properties"]["Environment"]["Variables"]["DATA_BUCKET"]["Ref"]
    for action in ("s3:GetObject", "s3:GetObjectVersion"):
        assert all(data_bucket in resource for resource in grants[action]), action


def test_models_api_reads_artifacts_and_baselines_and_moves_rejected_datasets_only(template: dict[str, Any]) -> None:
    grants = _grants(template, "models_api")
    assert {a for a in grants if a.startswith("s3:")} == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:ListBucket",
    }
    # models/: artifact digests before a promotion; baselines/: compare's training data drift
    assert _prefixes(grants["s3:GetObject"]) == {"/models/*", "/baselines/*", "/datasets/*"}
    assert _prefixes(grants["s3:GetObjectVersion"]) == {"/datasets/*"}
    assert _prefixes(grants["s3:PutObject"]) == {"/quarantine/*"}
    assert _prefixes(grants["s3:DeleteObject"]) == _prefixes(grants["s3:DeleteObjectVersion"]) == {"/datasets/*"}
    # every dataset grant is on the data bucket, never the artifact bucket, and the other way round
    fn = template["Resources"][function_ids(template)["models_api"]]
    data_bucket = fn["Properties"]["Environment"]["Variables"]["DATA_BUCKET"]["Ref"]
    for action in ("s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucket"):
        assert all(data_bucket in resource for resource in grants[action]), action
    for resource in grants["s3:GetObject"]:
        assert (data_bucket in resource) == ("/datasets/*" in resource), resource
    # the ledger's review is a conditional PutItem and its listing a Query on the state index
    assert {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"} <= set(grants)
    assert any("/index/gsi1" in resource for resource in grants["dynamodb:Query"])


def _deny_statements(template: dict[str, Any], folder: str) -> list[dict[str, Any]]:
    return [s for s in _function_policy(template, folder) if s["Effect"] == "Deny"]


def test_registry_writers_cannot_update_or_delete_audit_records(template: dict[str, Any]) -> None:
    for folder in ("register_model", "models_api"):
        [deny] = _deny_statements(template, folder)
        assert set(as_list(deny["Action"])) == {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
        assert deny["Condition"] == {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["AUDIT#*"]}}
        allowed = _grants(template, folder)
        assert json.dumps(as_list(deny["Resource"])[0]) in allowed["dynamodb:UpdateItem"]


def test_production_changes_reach_the_encrypted_alarm_topic(template: dict[str, Any]) -> None:
    (topic_id,) = resources(template, "AWS::SNS::Topic")
    (key_id,) = resources(template, "AWS::KMS::Key")
    for folder in ("register_model", "models_api"):
        fn = template["Resources"][function_ids(template)[folder]]
        assert fn["Properties"]["Environment"]["Variables"]["ALARM_TOPIC_ARN"] == {"Ref": topic_id}
        grants = _grants(template, folder)
        assert grants["sns:Publish"] == {json.dumps({"Ref": topic_id})}
        assert grants["kms:GenerateDataKey"] == {json.dumps({"Fn::GetAtt": [key_id, "Arn"]})}


def test_models_api_roles_invoke_only_their_routes(template: dict[str, Any]) -> None:
    from infra.constructs.access import MODEL_ROUTES, invoke_path
    from mlops.registry.access import PERMISSIONS, Role

    policies = resources(template, "AWS::IAM::ManagedPolicy")
    by_role = {}
    for policy in policies.values():
        description = policy["Properties"]["Description"]
        role = next(r for r in Role if description.startswith(f"models API {r.value}:"))
        [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "execute-api:Invoke"
        routes = set()
        for arn in as_list(statement["Resource"]):
            tail = "".join(p for p in arn["Fn::Join"][1] if isinstance(p, str)).split("/v1/", 1)[1]
            method, _, path = tail.partition("/")
            routes.add((method, "/" + path))
        by_role[role] = routes
        assert len(policy["Properties"]["Roles"]) == 1
    for role in Role:
        expected = {(m, invoke_path(p)) for (m, p), action in MODEL_ROUTES.items() if action in PERMISSIONS[role]}
        assert by_role[role] == expected, role
    assert ("POST", "/models/*/versions/*/archive") not in by_role[Role.APPROVER]
    assert all(method == "GET" for method, _ in by_role[Role.READER])


def test_models_api_maps_role_sessions_and_local_admin(template: dict[str, Any]) -> None:
    fn = template["Resources"][function_ids(template)["models_api"]]
    variables = fn["Properties"]["Environment"]["Variables"]
    roles = resources(template, "AWS::IAM::Role")
    for name in ("ADMIN_PRINCIPALS", "APPROVER_PRINCIPALS", "READER_PRINCIPALS"):
        text = json.dumps(variables[name])
        assert ":assumed-role/" in text
        (role_ref,) = [
            part["Ref"]
            for part in variables[name]["Fn::Join"][1]
            if isinstance(part, dict) and "Ref" in part and part["Ref"] in roles
        ]
        assert roles[role_ref]["Properties"]["AssumeRolePolicyDocument"]
    assert "user/local-admin" in json.dumps(variables["ADMIN_PRINCIPALS"])
    assert "local-admin" not in json.dumps(variables["APPROVER_PRINCIPALS"])


def test_training_outcome_writers_move_ledger_entries_only(template: dict[str, Any]) -> None:
    registry_table = [
        lid
        for lid, table in resources(template, "AWS::DynamoDB::Table").items()
        if any(index["IndexName"] == "gsi1" for index in table["Properties"].get("GlobalSecondaryIndexes", []))
    ]
    for folder in ("train_model", "record_training_failure"):
        statements = _function_policy(template, folder)
        allowed = {
            action
            for s in statements
            if s["Effect"] == "Allow" and {"Fn::GetAtt": [*registry_table, "Arn"]} in as_list(s["Resource"])
            for action in as_list(s["Action"])
        }
        # read an entry, move its state with a conditional PutItem: no update, delete or query
        assert allowed == {"dynamodb:GetItem", "dynamodb:PutItem"}, folder
        denies = [s for s in statements if s["Effect"] == "Deny"]
        assert any(
            s["Action"] == "dynamodb:PutItem"
            and s["Condition"] == {"ForAnyValue:StringNotLike": {"dynamodb:LeadingKeys": ["MODEL#*"]}}
            for s in denies
        ), folder
