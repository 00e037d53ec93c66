"""Least privilege: no wildcard actions, prefix-scoped S3 grants, each function only what it uses."""

from __future__ import annotations

import json
from typing import Any

import pytest

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
        "ecr:GetAuthorizationToken",  # the managed-training job pulls train_model's image
    }
    # Step Functions delivers its logs through these, which take no resource (the state machine's role only)
    log_delivery = {
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }
    for lid, statement in _allow_statements(template):
        if "*" in as_list(statement["Resource"]):
            extra = log_delivery if lid.startswith("TrainingManagedStateMachineRoleDefaultPolicy") else set()
            assert set(as_list(statement["Action"])) <= allowed | extra, (lid, statement)


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
    # models/*/imports/*: import reports, in the data bucket (models/ and baselines/: the artifact bucket)
    assert _prefixes(grants["s3:PutObject"]) == {"/models/*", "/baselines/*", "/models/*/imports/*"}
    fn = template["Resources"][function_ids(template)["train_model"]]
    data_bucket = fn["Properties"]["Environment"]["Variables"]["DATA_BUCKET"]["Ref"]
    for resource in grants["s3:PutObject"]:
        assert (data_bucket in resource) == ("/imports/*" in resource), resource


def test_train_reads_only_datasets_contracts_and_import_drops_of_the_data_bucket(template: dict[str, Any]) -> None:
    grants = _grants(template, "train_model")
    assert {a for a in grants if a.startswith("s3:")} == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:ListBucket",
    }
    # never quarantine/ or reports/: training trusts only what validation left under datasets/;
    # imports read the dropped graph's version and the models API's record of who asked for it;
    # of the artifact bucket it reads models/ (the production graph it scores on the candidate's
    # holdout), captures/ and labels/ (recent labelled traffic)
    assert _prefixes(grants["s3:GetObjectVersion"]) == {"/datasets/*", "/contracts/*", "/models/*/incoming/*"}
    assert _prefixes(grants["s3:GetObject"]) == _prefixes(grants["s3:GetObjectVersion"]) | {
        "/models/*/requests/*",
        "/models/*",
        "/captures/*",
        "/labels/*",
    }
    fn = template["Resources"][function_ids(template)["train_model"]]
    data_bucket = fn["Properties"]["Environment"]["Variables"]["DATA_BUCKET"]["Ref"]
    assert all(data_bucket in resource for resource in grants["s3:GetObjectVersion"])
    assert _prefixes({r for r in grants["s3:GetObject"] if data_bucket not in r}) == {
        "/models/*",
        "/captures/*",
        "/labels/*",
    }


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
    # models/: artifact digests before a promotion; baselines/: compare's training data drift;
    # monitoring/: drift results (listed with a prefix condition, see IAM_TABLE)
    assert _prefixes(grants["s3:GetObject"]) == {"/models/*", "/baselines/*", "/monitoring/*", "/datasets/*"}
    assert _prefixes(grants["s3:GetObjectVersion"]) == {"/datasets/*"}
    assert _prefixes(grants["s3:PutObject"]) == {"/quarantine/*", "/models/*/incoming/*", "/models/*/requests/*"}
    assert _prefixes(grants["s3:DeleteObject"]) == _prefixes(grants["s3:DeleteObjectVersion"]) == {"/datasets/*"}
    # every dataset grant is on the data bucket, never the artifact bucket, and the other way round
    fn = template["Resources"][function_ids(template)["models_api"]]
    data_bucket = fn["Properties"]["Environment"]["Variables"]["DATA_BUCKET"]["Ref"]
    for action in ("s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
        assert all(data_bucket in resource for resource in grants[action]), action
    for resource in grants["s3:GetObject"]:
        assert (data_bucket in resource) == ("/datasets/*" in resource), resource


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
        # nobody is named in the default context: no role holds a policy (tests/infra/test_principals.py)
        assert policy["Properties"].get("Roles", []) == []
    for role in Role:
        expected = {(m, invoke_path(p)) for (m, p), action in MODEL_ROUTES.items() if action in PERMISSIONS[role]}
        assert by_role[role] == expected, role
    assert ("POST", "/models/*/versions/*/archive") not in by_role[Role.APPROVER]
    assert all(method == "GET" for method, _ in by_role[Role.READER])


# ---- the IAM table: every function role's exact statements ----------------------------------------

MODEL = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["MODEL#*"]}}
MODEL_OR_AUDIT = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["MODEL#*", "AUDIT#*"]}}
AUDIT_IMMUTABLE = {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["AUDIT#*"]}}

Grant = tuple[str, str, str, str]  # effect, action, resource (symbolic), condition (JSON, "" when none)


def _allow(actions: str, resources: str, condition: dict[str, Any] | None = None) -> set[Grant]:
    cond = json.dumps(condition, sort_keys=True) if condition else ""
    return {("Allow", a, r, cond) for a in actions.split() for r in resources.split()}


def _deny(actions: str, resources: str, condition: dict[str, Any]) -> set[Grant]:
    return {("Deny", a, r, json.dumps(condition, sort_keys=True)) for _, a, r, _ in _allow(actions, resources)}


APIGATEWAY = "arn:AWS::Partition:apigateway:AWS::Region::"
OWN_LOGS_AND_TRACES = _allow("logs:CreateLogStream logs:PutLogEvents", "own-logs") | _allow(
    "xray:PutTraceSegments xray:PutTelemetryRecords", "*"
)
DEAD_LETTERS = _allow("sqs:GetQueueAttributes sqs:GetQueueUrl sqs:SendMessage", "dead-letters")
IDEMPOTENCY = _allow("dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:DeleteItem", "idempotency")
ALARM_TOPIC = _allow("sns:Publish", "alarm-topic") | _allow("kms:Decrypt kms:GenerateDataKey", "alarm-key")
AUDIT_APPEND_ONLY = _deny(
    "dynamodb:UpdateItem dynamodb:DeleteItem dynamodb:BatchWriteItem", "registry", AUDIT_IMMUTABLE
)

# role -> exactly what it may do. The registry: validate_dataset, predict and detect_drift read the
# MODEL# partitions with GetItem only; the writers put MODEL#/AUDIT# items and update MODEL# items
# only (never delete, never batch). The dataset ledger is its own table.
IAM_TABLE: dict[str, set[Grant]] = {
    "validate_dataset": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | IDEMPOTENCY
    | ALARM_TOPIC
    | _allow("s3:GetObject s3:GetObjectVersion", "data/datasets/* data/contracts/* data/reports/*")
    | _allow("s3:GetObject", "artifacts/models/* artifacts/baselines/*")
    | _allow("s3:ListBucket", "data")
    | _allow("s3:PutObject", "data/quarantine/* data/reports/*")
    | _allow("s3:DeleteObject s3:DeleteObjectVersion", "data/datasets/*")
    | _allow("events:PutEvents", "bus")
    | _allow("dynamodb:GetItem", "registry", MODEL)
    | _allow("dynamodb:GetItem dynamodb:PutItem", "ledger")
    | _allow("dynamodb:Query", "ledger/index/gsi1"),
    "train_model": OWN_LOGS_AND_TRACES
    | IDEMPOTENCY
    | ALARM_TOPIC
    | _allow("s3:GetObject s3:GetObjectVersion", "data/datasets/* data/contracts/*")
    | _allow("s3:PutObject", "artifacts/models/* artifacts/baselines/*")
    # the production artifact and version, scored on the candidate's holdout and on recent labelled
    # traffic (fair champion/challenger)
    | _allow("s3:GetObject", "artifacts/models/* artifacts/captures/* artifacts/labels/*")
    | _allow("s3:ListBucket", "artifacts", {"StringLike": {"s3:prefix": ["captures/*", "labels/*"]}})
    | _allow("dynamodb:GetItem", "registry", MODEL)
    # imports: the dropped graph (exact version), the import's report; the last accepted dataset
    | _allow("s3:GetObject s3:GetObjectVersion", "data/models/*/incoming/*")
    | _allow("s3:PutObject", "data/models/*/imports/*")
    | _allow("s3:GetObject", "data/models/*/requests/*")
    | _allow("events:PutEvents", "bus")
    | _allow("dynamodb:GetItem dynamodb:PutItem", "ledger")
    | _allow("dynamodb:Query", "ledger/index/gsi1")
    # its on-failure destination (OOM, timeout, expired events), not the dead-letter queue
    | _allow("lambda:InvokeFunction", "function:record_training_failure function:record_training_failure:*")
    # past its budget: the managed engine's state machine (tests/infra/test_managed_training.py holds its roles)
    | _allow("states:StartExecution", "training-state-machine"),
    # retraining on evidence: reads the last accepted dataset and labelled traffic, writes only its
    # training set (datasets/<model>/retrain-*) and chained audit events
    "retrain_model": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | AUDIT_APPEND_ONLY
    | _allow("s3:GetObject s3:GetObjectVersion", "data/datasets/* data/contracts/*")
    | _allow("s3:PutObject", "data/datasets/*/retrain-*")
    | _allow("s3:GetObject", "artifacts/captures/* artifacts/labels/*")
    | _allow("s3:ListBucket", "artifacts", {"StringLike": {"s3:prefix": ["captures/*", "labels/*"]}})
    | _allow("dynamodb:GetItem dynamodb:Query dynamodb:PutItem", "registry", MODEL_OR_AUDIT)
    | _allow("dynamodb:UpdateItem", "registry", MODEL)
    | _allow("dynamodb:Query", "registry/index/gsi1")
    | _allow("dynamodb:Query", "ledger/index/gsi1"),
    # a data file outside every owned prefix: a notice under misplaced/, nothing read
    "report_misplaced_upload": OWN_LOGS_AND_TRACES | DEAD_LETTERS | _allow("s3:PutObject", "data/misplaced/*"),
    "record_training_failure": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | ALARM_TOPIC
    | _allow("events:PutEvents", "bus")
    | _allow("dynamodb:GetItem dynamodb:PutItem", "ledger"),
    "register_model": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | IDEMPOTENCY
    | ALARM_TOPIC
    | AUDIT_APPEND_ONLY
    | _allow("s3:GetObject s3:GetObjectVersion", "artifacts/models/* artifacts/baselines/*")
    | _allow("events:PutEvents", "bus")
    | _allow("dynamodb:GetItem dynamodb:UpdateItem", "registry", MODEL)
    | _allow("dynamodb:PutItem", "registry", MODEL_OR_AUDIT)
    | _allow("dynamodb:GetItem dynamodb:PutItem", "ledger"),
    "predict": OWN_LOGS_AND_TRACES
    | _allow("s3:GetObject", "artifacts/models/*")
    | _allow("s3:PutObject", "artifacts/captures/*")
    | _allow("dynamodb:GetItem", "registry", MODEL),
    "models_api": OWN_LOGS_AND_TRACES
    | ALARM_TOPIC
    | AUDIT_APPEND_ONLY
    | _allow("s3:GetObject", "artifacts/models/* artifacts/baselines/* artifacts/monitoring/* data/datasets/*")
    | _allow("s3:GetObjectVersion s3:DeleteObject s3:DeleteObjectVersion", "data/datasets/*")
    | _allow("s3:PutObject", "data/quarantine/*")
    # the upload URL of an import (POST /models/{name}/imports) is signed with this role
    | _allow("s3:PutObject", "data/models/*/incoming/* data/models/*/requests/*")
    | _allow("s3:ListBucket", "data")
    | _allow("s3:ListBucket", "artifacts", {"StringLike": {"s3:prefix": ["monitoring/*"]}})
    | _allow("events:PutEvents", "bus")
    | _allow("dynamodb:GetItem dynamodb:Query dynamodb:PutItem", "registry", MODEL_OR_AUDIT)
    | _allow("dynamodb:UpdateItem", "registry", MODEL)
    | _allow("dynamodb:Query", "registry/index/gsi1")
    | _allow("dynamodb:GetItem dynamodb:PutItem", "ledger")
    | _allow("dynamodb:Query", "ledger/index/gsi1")
    # prediction clients' API keys (/clients): create keys, put them in the clients' plan (found by
    # name: the listing), list and delete keys; never another plan, stage or API
    | _allow("apigateway:POST", f"{APIGATEWAY}/apikeys {APIGATEWAY}/usageplans/clients-plan/keys")
    | _allow("apigateway:GET", f"{APIGATEWAY}/apikeys {APIGATEWAY}/usageplans {APIGATEWAY}/usageplans/clients-plan")
    | _allow("apigateway:DELETE", f"{APIGATEWAY}/apikeys/*"),
    # canaries: ends and promotions in the registry (append-only audit), the promotion gate's artifact
    # read, ModelPromoted, the state of the model alarms only
    "control_canary": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | ALARM_TOPIC
    | AUDIT_APPEND_ONLY
    | _allow("s3:GetObject", "artifacts/models/*")
    | _allow("events:PutEvents", "bus")
    | _allow("dynamodb:GetItem dynamodb:Query dynamodb:PutItem", "registry", MODEL_OR_AUDIT)
    | _allow("dynamodb:UpdateItem", "registry", MODEL)
    | _allow("dynamodb:Query", "registry/index/gsi1")
    | _allow(
        "cloudwatch:DescribeAlarms", "arn:AWS::Partition:cloudwatch:AWS::Region:AWS::AccountId:alarm:MlopsStack-model-*"
    ),
    # the shadow: reads the registry, artifacts and captures; writes only each model's shadow statistics
    "score_shadow": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | _allow("s3:GetObject", "artifacts/models/* artifacts/captures/*")
    | _allow("s3:ListBucket", "artifacts", {"StringLike": {"s3:prefix": ["captures/*"]}})
    | _allow("s3:GetObject s3:PutObject", "artifacts/monitoring/*/shadow-state.json")
    | _allow("dynamodb:GetItem", "registry", MODEL)
    | _allow("dynamodb:Query", "registry/index/gsi1"),
    # labels in through the API: the production contract (GetItem), label objects out (labels/ only)
    "record_feedback": OWN_LOGS_AND_TRACES
    | _allow("s3:PutObject", "artifacts/labels/*")
    | _allow("dynamodb:GetItem", "registry", MODEL),
    # label files in: read feedback/, reports and quarantine of its own, labels/ out, no ledger or bus
    "ingest_feedback": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | IDEMPOTENCY
    | _allow("s3:GetObject s3:GetObjectVersion", "data/feedback/*")
    | _allow("s3:PutObject", "data/reports/*/feedback/* data/quarantine/_feedback/* artifacts/labels/*")
    | _allow("s3:DeleteObject s3:DeleteObjectVersion", "data/feedback/*")
    | _allow("s3:ListBucket", "data")
    | _allow("dynamodb:GetItem", "registry", MODEL),
    "detect_drift": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | ALARM_TOPIC  # its drift notice (DRIFT_NOTICE_TOPIC_ARN) on the encrypted alarm topic
    | _allow("s3:GetObject", "artifacts/baselines/* artifacts/captures/*")
    | _allow("s3:PutObject", "artifacts/monitoring/*")
    | _allow("dynamodb:GetItem", "registry", MODEL)
    | _allow("dynamodb:Query", "registry/index/gsi1")
    | _allow("s3:ListBucket", "artifacts", {"StringLike": {"s3:prefix": ["captures/*", "baselines/*"]}})
    | _allow("cloudwatch:PutMetricData", "*", {"StringEquals": {"cloudwatch:namespace": "MLOps"}}),
    # reads labels, captures and baselines; reads and writes only its own state and results
    "evaluate_quality": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | _allow("s3:GetObject", "artifacts/baselines/* artifacts/captures/* artifacts/labels/*")
    | _allow("s3:GetObject s3:PutObject", "artifacts/monitoring/*/quality/* artifacts/monitoring/*/quality-state.json")
    | _allow("dynamodb:GetItem", "registry", MODEL)
    | _allow("dynamodb:Query", "registry/index/gsi1")
    | _allow("s3:ListBucket", "artifacts", {"StringLike": {"s3:prefix": ["captures/*", "labels/*"]}})
    | _allow("cloudwatch:PutMetricData", "*", {"StringEquals": {"cloudwatch:namespace": "MLOps"}}),
    # batch files in: reads batch/ and the version's artifact, writes predictions/ only, its own ledger
    "score_batch": OWN_LOGS_AND_TRACES
    | DEAD_LETTERS
    | _allow("s3:GetObject s3:GetObjectVersion", "data/batch/*")
    | _allow("s3:PutObject", "data/predictions/*")
    | _allow("s3:GetObject", "artifacts/models/*")
    | _allow("dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem", "batch-ledger")
    | _allow("dynamodb:GetItem", "registry", MODEL)
    | _allow("events:PutEvents", "bus"),
}


def _symbols(template: dict[str, Any], folder: str) -> dict[str, str]:
    """Logical id -> a readable name for every resource a function's policy may name."""
    by_output = {
        "RegistryTableName": "registry",
        "LedgerTableName": "ledger",
        "IdempotencyTableName": "idempotency",
        "DataBucketName": "data",
        "ArtifactBucketName": "artifacts",
        "EventBusName": "bus",
        "DeadLetterQueueUrl": "dead-letters",
        "AlarmTopicArn": "alarm-topic",
    }
    symbols = {
        template["Outputs"][output]["Value"]["Ref"]: symbol
        for output, symbol in by_output.items()
        if output in template["Outputs"]
    }
    symbols |= {
        logical_id: "batch-ledger"
        for logical_id in resources(template, "AWS::DynamoDB::Table")
        if logical_id.startswith("BatchLedger")
    }
    (key_id,) = resources(template, "AWS::KMS::Key")
    fn = template["Resources"][function_ids(template)[folder]]
    functions = {lid: f"function:{name}" for name, lid in function_ids(template).items()}
    machines = {lid: "training-state-machine" for lid in resources(template, "AWS::StepFunctions::StateMachine")}
    plans = {
        lid: "clients-plan"
        for lid, plan in resources(template, "AWS::ApiGateway::UsagePlan").items()
        if str(plan["Properties"].get("UsagePlanName", "")).endswith("-clients")
    }
    own_logs = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    return symbols | functions | machines | plans | {key_id: "alarm-key", own_logs: "own-logs"}


def _symbolic(resource: Any, symbols: dict[str, str]) -> str:
    if isinstance(resource, str):
        return resource
    if "Ref" in resource:
        return symbols.get(resource["Ref"], resource["Ref"])
    if "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return symbols.get(logical_id, logical_id)
    if "Fn::Join" in resource:
        return "".join(_symbolic(part, symbols) for part in resource["Fn::Join"][1])
    raise AssertionError(f"unexpected resource expression {resource}")


def _role_grants(template: dict[str, Any], folder: str) -> set[Grant]:
    symbols = _symbols(template, folder)
    grants = set()
    for statement in _function_policy(template, folder):
        condition = json.dumps(statement["Condition"], sort_keys=True) if "Condition" in statement else ""
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                grants.add((statement["Effect"], action, _symbolic(resource, symbols), condition))
    return grants


def test_iam_table_covers_every_function() -> None:
    from infra.catalog import FUNCTIONS

    assert set(IAM_TABLE) == set(FUNCTIONS)


@pytest.mark.parametrize("folder", sorted(IAM_TABLE))
def test_function_role_holds_exactly_its_row_of_the_iam_table(template: dict[str, Any], folder: str) -> None:
    granted = _role_grants(template, folder)
    expected = IAM_TABLE[folder]
    assert sorted(granted - expected) == [], "wider than the IAM table"
    assert sorted(expected - granted) == [], "narrower than the IAM table (update the table if intended)"


MANAGED_TRAINING_POLICIES = ("TrainingManagedJobRoleDefaultPolicy", "TrainingManagedStateMachineRoleDefaultPolicy")


def test_every_policy_in_the_stack_belongs_to_a_function_role_or_cdk_internals(template: dict[str, Any]) -> None:
    function_roles = {
        template["Resources"][lid]["Properties"]["Role"]["Fn::GetAtt"][0] for lid in function_ids(template).values()
    }
    for lid, policy in resources(template, "AWS::IAM::Policy").items():
        roles = {ref["Ref"] for ref in policy["Properties"]["Roles"]}
        if roles <= function_roles:
            continue
        if lid.startswith(MANAGED_TRAINING_POLICIES):  # their exact grants: tests/infra/test_managed_training.py
            continue
        # CDK's bucket-notification handler: it may only set notifications on the data bucket
        assert lid.startswith("DatasetsDataBucketNotificationsHandlerPolicy"), lid
        [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "s3:PutBucketNotification", lid


def test_validate_dataset_cannot_write_the_registry(template: dict[str, Any]) -> None:
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    granted = _role_grants(template, "validate_dataset")
    assert {g for g in granted if g[0] == "Allow" and g[1] in writes and g[2].startswith("registry")} == set()
    assert {g for g in granted if g[0] == "Allow" and g[2].startswith("registry")} == _allow(
        "dynamodb:GetItem", "registry", MODEL
    )
