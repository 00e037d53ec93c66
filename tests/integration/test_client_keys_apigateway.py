"""Client API keys on moto's API Gateway and their audit in the registry table (the adapters)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from mlops.adapters.apigateway_keys import ApiGatewayClientKeys
from mlops.adapters.client_key_audit_dynamodb import (
    CLIENT_KEYS_AUDIT_PK,
    CLIENT_KEYS_REQUESTS_PK,
    DynamoIssueAttempts,
    DynamoKeyAudit,
)
from mlops.client_keys import (
    ClientKeyNotFoundError,
    IssuedClientKey,
    IssueKeyRequest,
    KeyAction,
    RevokeKeyRequest,
    client_keys,
    issue_client_key,
    revoke_client_key,
)
from mlops.errors import ServiceUnavailableError
from mlops.registry.names import IdempotencyKeyReusedError
from tests.support.resources import TestResources

ACTOR = "arn:aws:iam::123456789012:user/alice"


@pytest.fixture
def plan_id(aws: str) -> str:
    apigateway = boto3.client("apigateway")
    return str(
        apigateway.create_usage_plan(
            name="clients",
            throttle={"rateLimit": 20.0, "burstLimit": 40},
            quota={"limit": 200_000, "period": "DAY", "offset": 0},
        )["id"]
    )


def test_client_key_adapters_issue_list_and_revoke_on_api_gateway(stack: TestResources, plan_id: str) -> None:
    apigateway = boto3.client("apigateway")
    gateway, audit = ApiGatewayClientKeys("clients"), DynamoKeyAudit(stack.registry_table)
    # the stack's own key, which /clients neither lists nor revokes
    stack_key = apigateway.create_api_key(name="ApiKey", enabled=True)
    now = datetime.now(UTC)

    issued = issue_client_key(
        gateway, audit, IssueKeyRequest(client="acme", reason="new partner"), actor=ACTOR, request_id="r1", now=now
    )

    # THEN API Gateway holds the key, enabled, in the clients' plan, with the value handed out
    held = apigateway.get_api_key(apiKey=issued.key_id, includeValue=True)
    assert (held["name"], held["enabled"], held["value"]) == ("client-acme", True, issued.value)
    in_plan = apigateway.get_usage_plan_keys(usagePlanId=plan_id)["items"]
    assert [key["id"] for key in in_plan] == [issued.key_id]
    assert issued.usage_plan.quota_limit == 200_000
    assert issued.usage_plan.quota_period == "DAY"
    assert [k.key_id for k in client_keys(gateway)] == [issued.key_id]

    revoke_client_key(
        gateway, audit, issued.key_id, RevokeKeyRequest(reason="ended"), actor=ACTOR, request_id="r2", now=now
    )
    remaining = [key["id"] for key in apigateway.get_api_keys()["items"]]
    assert remaining == [stack_key["id"]]
    with pytest.raises(ClientKeyNotFoundError):
        gateway.delete_key(issued.key_id)
    with pytest.raises(ServiceUnavailableError, match="no usage plan named elsewhere"):
        ApiGatewayClientKeys("elsewhere").usage_plan()

    # AND the audit items hold who, why and the fingerprint, never the value
    events = audit.events()
    assert [(e.action, e.client, e.key_id, e.actor) for e in events] == [
        (KeyAction.ISSUED, "acme", issued.key_id, ACTOR),
        (KeyAction.REVOKED, "acme", issued.key_id, ACTOR),
    ]
    items = boto3.client("dynamodb").query(
        TableName=stack.registry_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": CLIENT_KEYS_AUDIT_PK}},
    )["Items"]
    assert len(items) == 2
    assert issued.value not in str(items)
    assert all(item["fingerprint"]["S"] == issued.fingerprint for item in items)


def test_client_key_audit_items_are_written_once(stack: TestResources) -> None:
    from botocore.exceptions import ClientError

    from mlops.client_keys import KeyEvent

    audit = DynamoKeyAudit(stack.registry_table)
    event = KeyEvent(
        action=KeyAction.ISSUED,
        client="acme",
        key_id="k1",
        fingerprint="sha256:0",
        actor=ACTOR,
        reason="r",
        at=datetime(2026, 12, 3, tzinfo=UTC),
    )
    audit.record(event)
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        audit.record(event.model_copy(update={"reason": "rewritten"}))
    assert [e.reason for e in audit.events()] == ["r"]


def test_client_key_issue_retried_with_its_idempotency_key_issues_one_key_and_stores_no_value(
    stack: TestResources, plan_id: str
) -> None:
    gateway, audit = ApiGatewayClientKeys("clients"), DynamoKeyAudit(stack.registry_table)
    attempts = DynamoIssueAttempts(stack.registry_table)
    request = IssueKeyRequest(client="acme", reason="new partner")

    def issue(key: str, body: IssueKeyRequest = request) -> IssuedClientKey:
        return issue_client_key(
            gateway,
            audit,
            body,
            actor=ACTOR,
            request_id="r1",
            now=datetime.now(UTC),
            idempotency_key=key,
            attempts=attempts,
        )

    # GIVEN a key issued with an Idempotency-Key; WHEN the request is retried with it
    first, again = issue("onboard-acme"), issue("onboard-acme")
    # THEN API Gateway holds one key, the retry names it without its value
    assert [key["id"] for key in boto3.client("apigateway").get_api_keys()["items"]] == [first.key_id]
    assert (again.replayed, again.key_id, again.fingerprint, again.value) == (
        True,
        first.key_id,
        first.fingerprint,
        None,
    )
    assert [e.action for e in audit.events()] == [KeyAction.ISSUED]
    # the stored record holds the key's id and fingerprint, never its value nor the Idempotency-Key itself
    items = boto3.client("dynamodb").query(
        TableName=stack.registry_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": CLIENT_KEYS_REQUESTS_PK}},
    )["Items"]
    assert len(items) == 1
    stored = json.dumps(items)
    assert first.key_id in stored
    assert first.value is not None
    assert first.value not in stored
    assert "onboard-acme" not in stored
    # the same Idempotency-Key with another request is refused, and issues nothing
    with pytest.raises(IdempotencyKeyReusedError):
        issue("onboard-acme", IssueKeyRequest(client="bolt", reason="new partner"))
    assert len(boto3.client("apigateway").get_api_keys()["items"]) == 1
