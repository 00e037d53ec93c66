"""The audit trail is tamper-evident on DynamoDB (moto): a raw PutItem that overwrites an audit
event, a DeleteItem that removes one, or a forged event beyond the chain head is detected by
`GET /models/{name}/audit/verify` (mlops.registry.service.verify_audit_trail)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.adapters.registry_dynamodb import DynamoRegistry, audit_pk, audit_sk
from mlops.registry.service import verify_audit_trail
from mlops_local.handlers import load_handler_module
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import api_event, default_artifact, trained_event
from tests.support.resources import TestResources

ADMIN = "arn:aws:iam::123456789012:user/alice"


@pytest.fixture
def registry(stack: TestResources, monkeypatch: pytest.MonkeyPatch) -> DynamoRegistry:
    monkeypatch.setenv("ADMIN_PRINCIPALS", ADMIN)
    registry = DynamoRegistry(stack.registry_table)
    for score in (0.8, 0.9):  # seq 1 registered v1, 2 promoted v1, 3 registered v2, 4 archived v1, 5 promoted v2
        event = trained_event(score=score)
        boto3.client("s3").put_object(
            Bucket=event.artifact_bucket, Key=event.artifact_key, Body=default_artifact(event)
        )
        registry.register(event, actor="register-model")
    return registry


def _raw_event(registry: DynamoRegistry, seq: int) -> dict[str, Any]:
    key = {"pk": {"S": audit_pk("churn")}, "sk": {"S": audit_sk(seq)}}
    return boto3.client("dynamodb").get_item(TableName=registry.table_name, Key=key)["Item"]


def _verify(handler: ModuleType) -> tuple[int, Any]:
    response = handler.lambda_handler(
        api_event("GET", "/models/churn/audit/verify", user_arn=ADMIN), FakeLambdaContext()
    )
    return response["statusCode"], json.loads(response["body"])


def test_audit_verify_detects_an_event_overwritten_by_a_raw_put_item(registry: DynamoRegistry) -> None:
    handler = load_handler_module("models_api")
    assert _verify(handler)[1]["ok"] is True

    # WHEN a role with PutItem rewrites event 2 (who promoted v1, and why)
    item = _raw_event(registry, 2)
    item["actor"] = {"S": "arn:aws:iam::123456789012:user/mallory"}
    item["reason"] = {"S": "approved by the board"}
    boto3.client("dynamodb").put_item(TableName=registry.table_name, Item=item)

    # THEN verify reports the chain broken at seq 2, overwritten
    status, body = _verify(handler)
    assert (status, body["ok"], body["first_bad_seq"], body["problem"]) == (200, False, 2, "overwritten")


def test_audit_verify_detects_a_deleted_event(registry: DynamoRegistry) -> None:
    key = {"pk": {"S": audit_pk("churn")}, "sk": {"S": audit_sk(3)}}
    boto3.client("dynamodb").delete_item(TableName=registry.table_name, Key=key)
    verdict = verify_audit_trail(registry, "churn")
    assert (verdict.ok, verdict.first_bad_seq, verdict.problem) == (False, 3, "deleted")


def test_audit_verify_detects_the_last_event_deleted(registry: DynamoRegistry) -> None:
    key = {"pk": {"S": audit_pk("churn")}, "sk": {"S": audit_sk(5)}}
    boto3.client("dynamodb").delete_item(TableName=registry.table_name, Key=key)
    verdict = verify_audit_trail(registry, "churn")
    assert (verdict.ok, verdict.first_bad_seq, verdict.problem) == (False, 5, "deleted")


def test_audit_verify_detects_a_forged_event_beyond_the_head(registry: DynamoRegistry) -> None:
    item = _raw_event(registry, 5)
    item["sk"] = {"S": audit_sk(6)}
    item["seq"] = {"N": "6"}
    boto3.client("dynamodb").put_item(TableName=registry.table_name, Item=item)
    verdict = verify_audit_trail(registry, "churn")
    assert (verdict.ok, verdict.first_bad_seq, verdict.problem) == (False, 6, "forged")


def test_audit_verify_detects_a_forged_alias_move(registry: DynamoRegistry) -> None:
    # an alias move says v1 served again, but no chained event records it
    moves = boto3.client("dynamodb").query(
        TableName=registry.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :alias)",
        ExpressionAttributeValues={":pk": {"S": audit_pk("churn")}, ":alias": {"S": "ALIAS#production#"}},
    )["Items"]
    forged = {**moves[-1], "sk": {"S": moves[-1]["sk"]["S"] + "x"}, "to_version": {"N": "1"}}
    boto3.client("dynamodb").put_item(TableName=registry.table_name, Item=forged)
    verdict = verify_audit_trail(registry, "churn")
    assert (verdict.ok, verdict.problem) == (False, "forged")


def test_audit_events_are_written_only_once_per_seq(registry: DynamoRegistry) -> None:
    # the chain head moves in the same transaction as the event: seqs are 1..head, no repeats
    events = registry.audit_events("churn")
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert registry.get_model("churn").audit_seq == 5
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
