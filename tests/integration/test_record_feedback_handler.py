"""record_feedback end to end on the moto server: API Gateway REST events in, the production
contract from the registry table, label objects out under labels/ of the artifact bucket."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.contract import parse_contract
from mlops.feedback import MAX_LABELS_PER_REQUEST
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.labels import decode_labels, merge_labels
from mlops.layout import labels_prefix
from mlops_local.apigw import browser_like_headers, rest_proxy_event
from mlops_local.handlers import load_handler_module
from tests.support.lambda_context import FakeLambdaContext
from tests.support.resources import TestResources

CHURN = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())


def register(resources: TestResources, contract: dict[str, Any], *, production: int | None = 1) -> None:
    """A model item and its version 1 as the registry stores them (only what feedback reads matters)."""
    table = boto3.resource("dynamodb").Table(resources.registry_table)
    name = contract["name"]
    now = datetime.now(UTC).isoformat()
    table.put_item(
        Item=json.loads(
            json.dumps(
                {
                    "pk": f"MODEL#{name}",
                    "sk": "VERSION#0000000001",
                    "model_name": name,
                    "version": 1,
                    "status": "production" if production else "candidate",
                    "artifact": {"bucket": resources.artifact_bucket, "key": "k", "sha256": "0" * 64, "size_bytes": 1},
                    "contract": contract,
                    "created_at": now,
                    "updated_at": now,
                }
            ),
            parse_float=Decimal,
        )
    )
    model: dict[str, Any] = {"pk": f"MODEL#{name}", "sk": "MODEL", "name": name, "latest_version": 1}
    if production:
        model["production_version"] = production
    table.put_item(Item=model)


@pytest.fixture
def handler(stack: TestResources) -> ModuleType:
    register(stack, CHURN.model_dump(mode="json"))
    return load_handler_module("record_feedback")


def feedback_event(name: str, body: Any, *, base64_encoded: bool = False) -> dict[str, Any]:
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    return rest_proxy_event(
        "POST",
        f"/models/{name}/feedback",
        "/models/{name}/feedback",
        body=text,
        path_parameters={"name": name},
        headers=browser_like_headers("test-api-key"),
        identity={"sourceIp": "203.0.113.7", "userAgent": "python-requests/2.32", "apiKey": "test-api-key"},
        base64_encoded=base64_encoded,
    )


def invoke(handler: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler.lambda_handler(event, FakeLambdaContext(function_name="record_feedback"))
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"])


def ids(minutes_ago: float, count: int = 1) -> list[str]:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return new_prediction_ids(count, clock=lambda: at.timestamp())


def label_objects(resources: TestResources, model: str = "churn") -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=resources.artifact_bucket, Prefix=labels_prefix(model))
    return [item["Key"] for item in listing.get("Contents", [])]


def read(resources: TestResources, key: str) -> Any:
    body = boto3.client("s3").get_object(Bucket=resources.artifact_bucket, Key=key)["Body"].read()
    return decode_labels(body)


def test_feedback_writes_label_objects_and_answers_what_was_accepted(handler: ModuleType, stack: TestResources) -> None:
    # GIVEN labels for predictions of two minutes, one sent twice
    first, second = ids(10, 2), ids(2)
    labels = [{"prediction_id": i, "label": "yes"} for i in [*first, *second]]
    labels.append({"prediction_id": first[0], "label": "no"})  # a conflicting repeat: the first counts
    # WHEN they are posted
    status, answer = invoke(handler, feedback_event("churn", {"labels": labels}))
    # THEN 200, what was accepted and absorbed, and one object per prediction minute
    assert status == 200
    assert answer == {
        "model": "churn",
        "received": 4,
        "accepted": 3,
        "absorbed": {"duplicates": 0, "conflicts": 1},
        "label_objects": 2,
        "horizon_hours": 168.0,
    }
    keys = label_objects(stack)
    assert len(keys) == 2
    merged = merge_labels(read(stack, key) for key in keys)
    assert merged.labels == {first[0]: "yes", first[1]: "yes", second[0]: "yes"}


def test_feedback_accepts_a_base64_body(handler: ModuleType, stack: TestResources) -> None:
    body = base64.b64encode(json.dumps({"labels": [{"prediction_id": ids(1)[0], "label": "no"}]}).encode()).decode()
    status, answer = invoke(handler, feedback_event("churn", body, base64_encoded=True))
    assert (status, answer["accepted"]) == (200, 1)


def test_feedback_refuses_the_whole_request_naming_each_item(handler: ModuleType, stack: TestResources) -> None:
    good, unknown_class = ids(1, 2)
    old = ids(60 * 24 * 8)[0]
    labels = [
        {"prediction_id": good, "label": "yes"},
        {"prediction_id": unknown_class, "label": "perhaps"},
        {"prediction_id": old, "label": "no"},
        {"prediction_id": "zz", "label": "no"},
        {"prediction_id": good, "value": 1.0},
    ]
    status, answer = invoke(handler, feedback_event("churn", {"labels": labels}))
    assert status == 400
    assert answer["error"] == "LabelsRefused"
    assert answer["problems_total"] == 4
    assert [(p["index"], p["prediction_id"], p["reason"]) for p in answer["details"]] == [
        (1, unknown_class, "unknown_class"),
        (2, old, "older_than_horizon"),
        (3, "zz", "malformed_prediction_id"),
        (4, good, "wrong_label_type"),
    ]
    assert answer["message"].startswith("4 of 5 labels refused, none recorded; labels[1]:")
    assert label_objects(stack) == []  # all or nothing: the good label was not written either


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (None, 400, "request body is empty"),
        ('{"labels": "x"}', 400, "request body must be"),
        ({"labels": [{"prediction_id": "a", "label": "no"}] * (MAX_LABELS_PER_REQUEST + 1)}, 400, "1001 labels"),
    ],
)
def test_feedback_bad_bodies_are_400_naming_the_problem(
    handler: ModuleType, stack: TestResources, body: Any, status: int, message: str
) -> None:
    got, answer = invoke(handler, feedback_event("churn", body))
    assert got == status
    assert answer["error"] == "BadRequestError"
    assert answer["message"].startswith(message)


def test_feedback_for_an_unknown_model_is_404_and_without_production_409(
    handler: ModuleType, stack: TestResources
) -> None:
    body = {"labels": [{"prediction_id": ids(1)[0], "label": "no"}]}
    status, answer = invoke(handler, feedback_event("nosuch", body))
    assert (status, answer["error"]) == (404, "ModelNotFoundError")
    register(stack, {**CHURN.model_dump(mode="json"), "name": "fresh"}, production=None)
    status, answer = invoke(handler, feedback_event("fresh", body))
    assert (status, answer["error"]) == (409, "ConflictError")
    assert "no production version" in answer["message"]


def test_feedback_for_a_regression_model_takes_values(stack: TestResources) -> None:
    contract = parse_contract(
        {
            "name": "price",
            "problem_type": "regression",
            "target": {"name": "y"},
            "features": [{"name": "x", "type": "numeric"}],
            "estimator": {"name": "ridge"},
            "metric": {"name": "rmse"},
            "monitoring": {"feedback": {"horizon_hours": 1}},
        }
    )
    register(stack, contract.model_dump(mode="json"))
    handler = load_handler_module("record_feedback")
    fresh, stale = ids(1)[0], ids(90)[0]
    status, answer = invoke(handler, feedback_event("price", {"labels": [{"prediction_id": fresh, "value": 12}]}))
    assert (status, answer["accepted"], answer["horizon_hours"]) == (200, 1, 1.0)
    assert read(stack, label_objects(stack, "price")[0]).labels == [12.0]
    status, answer = invoke(handler, feedback_event("price", {"labels": [{"prediction_id": stale, "value": 1}]}))
    assert (status, answer["details"][0]["reason"]) == (400, "older_than_horizon")
