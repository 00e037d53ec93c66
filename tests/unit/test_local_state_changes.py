"""Which stand-in requests may change kept data (a periodic save is skipped while none came)."""

from __future__ import annotations

import pytest

from mlops_local.state import _may_change_persisted_data


def _signed(service: str) -> str:
    return f"AWS4-HMAC-SHA256 Credential=AKIALOCALMLOPS000001/20261203/us-east-1/{service}/aws4_request, Signed..."


@pytest.mark.parametrize(
    ("method", "service", "target", "changes"),
    [
        ("GET", "s3", "", False),  # GetObject, ListObjectsV2
        ("HEAD", "s3", "", False),
        ("PUT", "s3", "", True),  # PutObject
        ("DELETE", "s3", "", True),
        ("POST", "dynamodb", "DynamoDB_20120810.PutItem", True),
        ("POST", "dynamodb", "DynamoDB_20120810.TransactWriteItems", True),
        ("POST", "dynamodb", "DynamoDB_20120810.Query", False),
        ("POST", "dynamodb", "DynamoDB_20120810.BatchGetItem", False),
        ("POST", "sqs", "AmazonSQS.ReceiveMessage", False),  # the trigger queues are polled every second
        ("POST", "sqs", "AmazonSQS.DeleteMessage", True),
        ("POST", "sqs", "AmazonSQS.SendMessage", True),
        ("POST", "sns", "", True),  # form-encoded: the action is in the body, so unsure means changed
        ("POST", "monitoring", "GraniteServiceVersion20100801.PutMetricData", False),  # not kept by the stand-in
        ("POST", "events", "AWSEvents.PutEvents", False),
        ("POST", "apigateway", "", True),  # CreateApiKey, CreateUsagePlanKey: an issued client key is kept
        ("DELETE", "apigateway", "", True),  # DeleteApiKey: a revocation is kept
        ("GET", "apigateway", "", False),
    ],
)
def test_local_state_request_may_change_kept_data(method: str, service: str, target: str, changes: bool) -> None:
    environ = {"REQUEST_METHOD": method, "HTTP_AUTHORIZATION": _signed(service)}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    assert _may_change_persisted_data(environ) is changes


def test_local_state_unsigned_write_counts_as_a_change() -> None:
    assert _may_change_persisted_data({"REQUEST_METHOD": "PUT"}) is True
