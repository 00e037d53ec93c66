"""models_api routes over an in-memory registry: bodies, status codes, the OpenAPI document."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from mlops.events import DetailType, ModelRolledBack
from mlops_local.handlers import load_handler_module
from tests.support.fakes import RecordingPublisher
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import InMemoryRegistry, api_event, trained_event


@pytest.fixture(scope="module")
def module() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGISTRY_TABLE", "registry")
        patch.setenv("EVENT_BUS_NAME", "bus")
        return load_handler_module("models_api")


@pytest.fixture
def registry() -> InMemoryRegistry:
    registry = InMemoryRegistry()
    for score in (0.8, 0.75, 0.9):  # v1 production, v2 candidate, v3 production (v1 archived)
        registry.register(trained_event(score=score), actor="trainer")
    return registry


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def call(module: ModuleType, registry: InMemoryRegistry, publisher: RecordingPublisher) -> Any:
    app = module.build_app(registry, publisher)

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = app.resolve(api_event(method, path, body=body), FakeLambdaContext())
        return response["statusCode"], json.loads(response["body"]) if response["body"] else None

    return call


def test_models_api_lists_models(call: Any) -> None:
    status, body = call("GET", "/models")
    assert status == 200
    assert [(m["name"], m["latest_version"], m["production_version"]) for m in body] == [("churn", 3, 3)]


def test_models_api_lists_versions_with_lineage(call: Any) -> None:
    status, body = call("GET", "/models/churn/versions")
    assert status == 200
    assert [(v["version"], v["status"]) for v in body] == [(1, "archived"), (2, "candidate"), (3, "production")]
    v2 = body[1]
    assert v2["metrics"]["roc_auc"] == 0.75
    assert "does not beat" in v2["promotion_decision"]
    assert len(v2["artifact_sha256"]) == 64
    assert v2["lineage"]["dataset_key"] == "datasets/churn/train.csv"
    assert v2["lineage"]["training_rows"] == 400


def test_models_api_rollback_is_audited_with_caller_and_announced(
    call: Any, registry: InMemoryRegistry, publisher: RecordingPublisher
) -> None:
    status, body = call("POST", "/models/churn/rollback", {"reason": "bad predictions"})

    assert status == 200
    assert (body["production_version"], body["production_history"]) == (1, [1])
    event = registry.audit_events("churn")[-1]
    assert (event.action, event.actor, event.reason) == (
        "rolled_back",
        "arn:aws:iam::123456789012:user/alice",
        "bad predictions",
    )
    assert event.request_id  # the API Gateway request id
    [announced] = publisher.of_type(DetailType.MODEL_ROLLED_BACK)
    assert isinstance(announced, ModelRolledBack)
    assert (announced.from_version, announced.to_version) == (3, 1)


def test_models_api_rollback_without_body(call: Any) -> None:
    status, body = call("POST", "/models/churn/rollback")
    assert (status, body["production_version"]) == (200, 1)


def test_models_api_rollback_conflict_is_409(call: Any) -> None:
    call("POST", "/models/churn/rollback")
    status, body = call("POST", "/models/churn/rollback", {"reason": "again"})
    assert status == 409
    assert body["error"] == "ConflictError"
    assert "nothing to roll back to" in body["message"]


def test_models_api_audit(call: Any) -> None:
    status, body = call("GET", "/models/churn/audit")
    assert status == 200
    assert [e["action"] for e in body][:2] == ["registered", "promoted"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("GET", "/models/nope/versions", None, 404, "ModelNotFoundError"),
        ("GET", "/models/nope/audit", None, 404, "ModelNotFoundError"),
        ("POST", "/models/nope/rollback", None, 404, "ModelNotFoundError"),
        ("GET", "/models/Churn/versions", None, 400, "BadRequestError"),
        ("GET", "/models/churn%23MODEL/versions", None, 400, "BadRequestError"),
        ("GET", "/models/churn%2Fx/audit", None, 400, "BadRequestError"),
        ("GET", "/models/ch#urn/versions", None, 400, "BadRequestError"),
        ("GET", "/models/" + "x" * 64 + "/versions", None, 400, "BadRequestError"),
        ("POST", "/models/churn/rollback", {"to_version": 99}, 404, "VersionNotFoundError"),
        ("POST", "/models/churn/rollback", {"to_version": 2}, 409, "ConflictError"),
        ("POST", "/models/churn/rollback", {"to_version": "x"}, 422, "RequestValidationError"),
        ("POST", "/models/churn/rollback", {"surprise": 1}, 422, "RequestValidationError"),
        ("POST", "/models/churn/rollback", "not json{", 422, "RequestValidationError"),
        ("POST", "/models/churn/rollback", [1, 2], 422, "RequestValidationError"),
        ("GET", "/nothing", None, 404, "NotFound"),
    ],
)
def test_models_api_errors_have_json_bodies(
    call: Any, method: str, path: str, body: Any, status: int, error: str
) -> None:
    got_status, got = call(method, path, body)
    assert (got_status, got["error"]) == (status, error)
    assert got["message"]


def test_models_api_serves_its_openapi_document(call: Any) -> None:
    status, document = call("GET", "/openapi.json")
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/models",
        "/models/{name}/versions",
        "/models/{name}/audit",
        "/models/{name}/rollback",
    }
    assert "post" in document["paths"]["/models/{name}/rollback"]
    assert "RollbackRequest" in json.dumps(document["components"])
