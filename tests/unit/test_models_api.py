"""models_api routes over an in-memory registry: bodies, status codes, the OpenAPI document."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from mlops.events import DetailType, ModelRolledBack
from mlops.registry.access import AccessPolicy
from mlops_local.handlers import load_handler_module
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import InMemoryRegistry, api_event, artifact_bytes, trained_event

ADMIN = "arn:aws:iam::123456789012:user/alice"
APPROVER = "arn:aws:sts::123456789012:assumed-role/mlops-approvers/bob"
READER = "arn:aws:sts::123456789012:assumed-role/mlops-readers/carol"
ACCESS = AccessPolicy(
    admins=["arn:aws:iam::123456789012:user/alice"],
    approvers=["arn:aws:sts::123456789012:assumed-role/mlops-approvers/*"],
    readers=["arn:aws:sts::123456789012:assumed-role/mlops-readers/*"],
)


@pytest.fixture(scope="module")
def module() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGISTRY_TABLE", "registry")
        patch.setenv("EVENT_BUS_NAME", "bus")
        return load_handler_module("models_api")


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore()


@pytest.fixture
def registry(store: InMemoryObjectStore) -> InMemoryRegistry:
    registry = InMemoryRegistry()
    for score in (0.8, 0.75, 0.9):  # v1 production, v2 candidate, v3 production (v1 archived)
        event = trained_event(score=score)
        store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes(f"churn-{score!r}"))
        registry.register(event, actor="trainer")
    return registry


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def call(
    module: ModuleType, registry: InMemoryRegistry, publisher: RecordingPublisher, store: InMemoryObjectStore
) -> Any:
    app = module.build_app(registry, publisher, store=store, access=ACCESS)

    def call(
        method: str, path: str, body: Any = None, *, user: str = ADMIN, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        event = api_event(method, path, body=body, user_arn=user)
        event["headers"].update(headers or {})
        response = app.resolve(event, FakeLambdaContext())
        call.last = response  # type: ignore[attr-defined]
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
        "/models/{name}",
        "/models/{name}/versions",
        "/models/{name}/versions/{version}",
        "/models/{name}/versions/{version}/approve",
        "/models/{name}/versions/{version}/reject",
        "/models/{name}/versions/{version}/promote",
        "/models/{name}/versions/{version}/archive",
        "/models/{name}/compare",
        "/models/{name}/audit",
        "/models/{name}/aliases/{alias}",
        "/models/{name}/aliases/{alias}/history",
        "/models/{name}/served",
        "/models/{name}/rollback",
    }
    assert "post" in document["paths"]["/models/{name}/rollback"]
    assert "RollbackRequest" in json.dumps(document["components"])


# ---- governance: lifecycle routes, roles, idempotency ----


def test_models_api_approve_then_promote_archives_the_champion(
    call: Any, registry: InMemoryRegistry, publisher: RecordingPublisher
) -> None:
    # GIVEN v2, a candidate the policy declined WHEN an approver approves and promotes it
    status, body = call("POST", "/models/churn/versions/2/approve", {"reason": "reviewed"}, user=APPROVER)
    assert (status, body["status"]) == (200, "approved")
    status, body = call("POST", "/models/churn/versions/2/promote", {"reason": "ship it"}, user=APPROVER)

    # THEN v2 serves, v3 is archived, each change is audited and announced
    assert (status, body["production_version"], body["production_history"]) == (200, 2, [1, 3, 2])
    assert registry.production("churn").version == 2  # type: ignore[union-attr]
    assert registry.get_version("churn", 3).status.value == "archived"
    trail = [(e.action, e.version, e.actor) for e in registry.audit_events("churn")][-3:]
    assert trail == [("approved", 2, APPROVER), ("archived", 3, APPROVER), ("promoted", 2, APPROVER)]
    assert [d.version for d in publisher.of_type(DetailType.MODEL_APPROVED)] == [2]  # type: ignore[attr-defined]
    [promoted] = publisher.of_type(DetailType.MODEL_PROMOTED)
    assert (promoted.version, promoted.previous_version, promoted.actor) == (2, 3, APPROVER)  # type: ignore[attr-defined]
    moves = registry.alias_history("churn")
    assert [(m.from_version, m.to_version) for m in moves][-1] == (3, 2)


def test_models_api_rejected_version_can_never_be_promoted(call: Any) -> None:
    assert call("POST", "/models/churn/versions/2/reject", {"reason": "biased"}, user=APPROVER)[0] == 200
    for path in ("approve", "promote"):
        status, body = call("POST", f"/models/churn/versions/2/{path}", user=APPROVER)
        assert (status, body["error"]) == (409, "ConflictError")
    status, body = call("POST", "/models/churn/rollback", {"to_version": 2})
    assert status == 409


def test_models_api_promote_refuses_a_candidate_and_rejects_a_tampered_artifact(
    call: Any, registry: InMemoryRegistry, store: InMemoryObjectStore, publisher: RecordingPublisher
) -> None:
    status, body = call("POST", "/models/churn/versions/2/promote", user=APPROVER)
    assert (status, body["error"]) == (409, "ConflictError")
    assert "approve it before promoting" in body["message"]

    call("POST", "/models/churn/versions/2/approve", user=APPROVER)
    artifact = registry.get_version("churn", 2).artifact
    store.put_bytes(artifact.bucket, artifact.key, b"x" * artifact.size_bytes)  # same size, other bytes

    status, body = call("POST", "/models/churn/versions/2/promote", user=APPROVER)

    assert (status, body["error"]) == (503, "IntegrityError")
    assert registry.get_version("churn", 2).status.value == "rejected"
    assert registry.production("churn").version == 3  # type: ignore[union-attr]
    assert "integrity check failed" in registry.audit_events("churn")[-1].reason
    assert [d.version for d in publisher.of_type(DetailType.MODEL_REJECTED)] == [2]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "status"),
    [
        (READER, "GET", "/models", None, 200),
        (READER, "GET", "/models/churn/audit", None, 200),
        (READER, "POST", "/models/churn/versions/2/approve", None, 403),
        (READER, "POST", "/models/churn/rollback", None, 403),
        (APPROVER, "POST", "/models/churn/versions/2/archive", None, 403),
        (APPROVER, "POST", "/models/churn/versions/2/approve", None, 200),
        (ADMIN, "POST", "/models/churn/versions/2/archive", None, 200),
        ("arn:aws:iam::999999999999:user/stranger", "GET", "/models", None, 403),
        ("", "GET", "/models", None, 403),
    ],
)
def test_models_api_checks_the_callers_role(
    call: Any, user: str, method: str, path: str, body: Any, status: int
) -> None:
    got, answer = call(method, path, body, user=user)
    assert got == status, answer
    if status == 403:
        assert answer["error"] == "ForbiddenError"


def test_models_api_api_keys_never_authorise_admin_actions(module: ModuleType, registry: InMemoryRegistry) -> None:
    app = module.build_app(registry, RecordingPublisher(), store=InMemoryObjectStore(), access=ACCESS)
    event = api_event("POST", "/models/churn/rollback", user_arn=ADMIN)
    event["requestContext"]["identity"]["apiKey"] = "prediction-key"
    response = app.resolve(event, FakeLambdaContext())
    assert response["statusCode"] == 403
    assert registry.production("churn").version == 3  # type: ignore[union-attr]


def test_models_api_idempotency_key_replays_instead_of_changing_twice(
    call: Any, registry: InMemoryRegistry, publisher: RecordingPublisher
) -> None:
    for path in ("/models/churn/versions/2/approve", "/models/churn/versions/2/promote"):
        call("POST", path, user=APPROVER)
    headers = {"Idempotency-Key": "rollback-2026-01-01"}

    first = call("POST", "/models/churn/rollback", {"reason": "r"}, headers=headers)
    assert "Idempotent-Replayed" not in call.last["multiValueHeaders"]  # type: ignore[attr-defined]
    again = call("POST", "/models/churn/rollback", {"reason": "r"}, headers=headers)

    assert first == again
    assert first[1]["production_version"] == 3
    assert call.last["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]  # type: ignore[attr-defined]
    assert [e.action for e in registry.audit_events("churn")].count("rolled_back") == 1
    assert len(publisher.of_type(DetailType.MODEL_ROLLED_BACK)) == 1
    status, body = call("POST", "/models/churn/rollback", {"reason": "other"}, headers=headers)
    assert (status, body["error"]) == (422, "IdempotencyKeyReusedError")


def test_models_api_aliases_served_at_and_compare(call: Any, registry: InMemoryRegistry) -> None:
    status, body = call("PUT", "/models/churn/aliases/challenger", {"version": 2, "reason": "shadow"}, user=APPROVER)
    assert (status, body["aliases"]) == (200, {"challenger": 2})
    status, history = call("GET", "/models/churn/aliases/challenger/history", user=READER)
    assert [(m["from_version"], m["to_version"], m["actor"]) for m in history] == [(None, 2, APPROVER)]

    moves = registry.alias_history("churn")
    status, served = call("GET", f"/models/churn/served?at={moves[0].at.isoformat().replace('+00:00', 'Z')}")
    assert (status, served["to_version"]) == (200, 1)
    status, served = call("GET", "/models/churn/served?at=2000-01-01T00:00:00Z")
    assert status == 404

    status, comparison = call("GET", "/models/churn/compare?a=1&b=3", user=READER)
    assert status == 200
    assert comparison["better"] == 3
    assert comparison["metrics"]["roc_auc"]["delta"] == pytest.approx(0.1)
    assert comparison["same_dataset"] is True
    assert comparison["params"]["C"] == {"a": 0.5, "b": 0.5, "same": True}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("GET", "/models/churn/versions/abc", None, 400, "BadRequestError"),
        ("GET", "/models/churn/versions/0", None, 400, "BadRequestError"),
        ("GET", "/models/churn/versions/-1", None, 400, "BadRequestError"),
        ("GET", "/models/churn/versions/99999999999", None, 400, "BadRequestError"),
        ("GET", "/models/churn/versions/9", None, 404, "VersionNotFoundError"),
        ("POST", "/models/churn/versions/1.5/approve", None, 400, "BadRequestError"),
        ("POST", "/models/nope/versions/1/approve", None, 404, "ModelNotFoundError"),
        ("POST", "/models/churn/versions/1/approve", None, 409, "ConflictError"),  # archived
        ("POST", "/models/churn/versions/3/archive", None, 409, "ConflictError"),  # production
        ("POST", "/models/churn/versions/3/promote", None, 409, "ConflictError"),
        ("PUT", "/models/churn/aliases/production", {"version": 2}, 400, "BadRequestError"),
        ("PUT", "/models/churn/aliases/Bad%23Alias", {"version": 2}, 400, "BadRequestError"),
        ("PUT", "/models/churn/aliases/staging", {"version": 1}, 409, "ConflictError"),
        ("PUT", "/models/churn/aliases/staging", {"version": 0}, 422, "RequestValidationError"),
        ("GET", "/models/churn/compare?a=1", None, 422, "RequestValidationError"),
        ("GET", "/models/churn/served?at=yesterday", None, 422, "RequestValidationError"),
        ("GET", "/models/churn/served?at=2026-01-01T00:00:00", None, 400, "BadRequestError"),
    ],
)
def test_models_api_governance_errors_are_4xx(
    call: Any, method: str, path: str, body: Any, status: int, error: str
) -> None:
    got_status, got = call(method, path, body)
    assert (got_status, got["error"]) == (status, error), got
