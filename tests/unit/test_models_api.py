"""models_api routes over an in-memory registry: bodies, status codes, the OpenAPI document."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest

from mlops.errors import NotFoundError
from mlops.events import DatasetQuarantined, DatasetValidated, DetailType, ModelRolledBack, SameDataScore
from mlops.layout import quarantine_key
from mlops.registry.access import AccessPolicy
from mlops.validation.decisions import dataset_id
from mlops.validation.ledger import DatasetState, LedgerChange, LedgerEntry
from mlops_local.handlers import load_handler_module
from tests.support.baselines import training_baseline
from tests.support.datasets import InMemoryDatasetLedger, RecordingNotifier
from tests.support.drift import InMemoryDriftResults
from tests.support.fakes import FlakyPublisher, InMemoryObjectStore, RecordingPublisher
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import (
    InMemoryRegistry,
    api_event,
    artifact_bytes,
    contract_document,
    default_artifact,
    trained_event,
)

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
        patch.setenv("LEDGER_TABLE", "ledger")
        patch.setenv("EVENT_BUS_NAME", "bus")
        patch.setenv("DATA_BUCKET", "data")
        patch.setenv("ARTIFACT_BUCKET", "artifacts")
        return load_handler_module("models_api")


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore()


@pytest.fixture
def registry(store: InMemoryObjectStore) -> InMemoryRegistry:
    registry = InMemoryRegistry(artifacts=store)
    for score in (0.8, 0.75, 0.9):  # v1 production, v2 candidate, v3 production (v1 archived)
        event = trained_event(score=score)
        store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes(f"churn-{score!r}"))
        registry.register(event, actor="trainer")
    return registry


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def ledger() -> InMemoryDatasetLedger:
    return InMemoryDatasetLedger()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def drift_results() -> InMemoryDriftResults:
    return InMemoryDriftResults()


@pytest.fixture
def call(
    module: ModuleType,
    registry: InMemoryRegistry,
    publisher: RecordingPublisher,
    store: InMemoryObjectStore,
    ledger: InMemoryDatasetLedger,
    notifier: RecordingNotifier,
    drift_results: InMemoryDriftResults,
) -> Any:
    app = module.build_app(
        registry,
        publisher,
        store=store,
        access=ACCESS,
        ledger=ledger,
        drift_results=drift_results,
        dataset_notifier=notifier,
    )

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
        "/models/{name}/audit/verify",
        "/models/{name}/aliases/{alias}",
        "/models/{name}/aliases/{alias}/history",
        "/models/{name}/served",
        "/models/{name}/rollback",
        "/models/{name}/datasets",
        "/models/{name}/datasets/{dataset_id}/review",
        "/models/{name}/predict",  # served by the predict function, documented with the rest
        "/models/{name}/feedback",  # served by record_feedback, documented with the rest
        "/models/{name}/drift",
        "/models/{name}/drift/{report_id}",
        "/models/{name}/quality",
        "/models/{name}/imports",
        "/models/{name}/retrain",
        "/clients",  # prediction clients' API keys
        "/clients/{key_id}/revoke",
        "/models/{name}/canary",
        "/models/{name}/shadow",
    }
    assert {"post", "delete"} <= set(document["paths"]["/models/{name}/canary"])
    assert "CanaryRequest" in json.dumps(document["components"])
    predict_parameters = {p["name"] for p in document["paths"]["/models/{name}/predict"]["post"]["parameters"]}
    assert predict_parameters == {"name", "version", "alias"}
    assert "post" in document["paths"]["/models/{name}/rollback"]
    assert "RollbackRequest" in json.dumps(document["components"])
    assert "training data" in document["paths"]["/models/{name}/compare"]["get"]["summary"]
    assert "same data" in document["paths"]["/models/{name}/compare"]["get"]["summary"]
    schemas = document["components"]["schemas"]
    assert {"same_data", "same_data_unavailable", "better_basis", "schema_compatibility"} <= set(
        schemas["VersionComparison"]["properties"]
    )
    assert {"compatible", "summary", "breaks", "notes"} <= set(schemas["SchemaCompatibility"]["properties"])
    assert {"data", "rows", "a", "b", "recorded_by", "unavailable"} <= set(schemas["SameDataPair"]["properties"])
    assert schemas["VersionComparison"]["properties"]["training_data_drift"] == {
        "$ref": "#/components/schemas/TrainingDataDrift"
    }
    assert {"features", "prediction", "max", "not_compared", "unavailable"} <= set(
        schemas["TrainingDataDrift"]["properties"]
    )


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


def _api_key_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """What API Gateway sends for a route that requires an API key and no IAM (as predict does):
    the key in the identity, no caller ARN. Only a misconfigured admin route would receive it (the
    template's routes are checked in tests/infra/test_triggers.py; local mode refuses an API key on
    an IAM route in tests/integration/test_local_runtime.py)."""
    event = api_event(method, path, body=body)
    identity = event["requestContext"]["identity"]
    identity.update({"apiKey": "prediction-key", "apiKeyId": "k1"})
    for field in ("accessKey", "caller", "user", "userArn", "accountId"):
        identity[field] = None  # API Gateway sends null for what no IAM signature provided
    event["headers"]["x-api-key"] = "prediction-key"
    return event


def test_models_api_api_keys_never_authorise_admin_actions(module: ModuleType, registry: InMemoryRegistry) -> None:
    ledger = InMemoryDatasetLedger()
    app = module.build_app(
        registry,
        RecordingPublisher(),
        store=InMemoryObjectStore(),
        access=ACCESS,
        ledger=ledger,
        drift_results=InMemoryDriftResults(),
    )
    response = app.resolve(_api_key_event("POST", "/models/churn/rollback"), FakeLambdaContext())
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
    # at-least-once: the replay announces the same rollback again (consumers dedupe)
    assert [(e.from_version, e.to_version) for e in publisher.of_type(DetailType.MODEL_ROLLED_BACK)] == [(2, 3)] * 2  # type: ignore[attr-defined]
    status, body = call("POST", "/models/churn/rollback", {"reason": "other"}, headers=headers)
    assert (status, body["error"]) == (422, "IdempotencyKeyReusedError")


@pytest.mark.parametrize(
    ("method", "path", "body", "kind", "announced"),
    [
        ("POST", "/models/churn/versions/2/approve", None, DetailType.MODEL_APPROVED, ("candidate", "approved")),
        ("POST", "/models/churn/versions/2/reject", None, DetailType.MODEL_REJECTED, ("candidate", "rejected")),
        ("POST", "/models/churn/versions/2/archive", None, DetailType.MODEL_ARCHIVED, ("candidate", "archived")),
        ("POST", "/models/churn/rollback", {"reason": "r"}, DetailType.MODEL_ROLLED_BACK, (3, 1)),
        ("PUT", "/models/churn/aliases/staging", {"version": 2}, DetailType.MODEL_ALIAS_MOVED, (None, 2)),
        ("POST", "/models/churn/versions/2/promote", None, DetailType.MODEL_PROMOTED, (3, 2)),
    ],
)
def test_models_api_replay_announces_a_change_whose_first_announcement_failed(
    module: ModuleType,
    registry: InMemoryRegistry,
    store: InMemoryObjectStore,
    ledger: InMemoryDatasetLedger,
    method: str,
    path: str,
    body: Any,
    kind: str,
    announced: tuple[Any, Any],
) -> None:
    if path.endswith("/promote"):
        registry.approve("churn", 2, actor=ADMIN, reason="reviewed")
    publisher, notifier = FlakyPublisher(failures=1), RecordingNotifier()
    app = module.build_app(
        registry,
        publisher,
        store=store,
        access=ACCESS,
        ledger=ledger,
        drift_results=InMemoryDriftResults(),
        notifier=notifier,
    )
    event = api_event(method, path, body=body, user_arn=ADMIN)
    event["headers"]["Idempotency-Key"] = "k-1"
    # GIVEN the change was written but the bus refused its announcement
    assert app.resolve(event, FakeLambdaContext())["statusCode"] == 500
    assert publisher.events == []

    # WHEN the client retries with the same Idempotency-Key
    response = app.resolve(event, FakeLambdaContext())

    # THEN the change is replayed (not made twice) and announced this time
    assert response["statusCode"] == 200
    assert response["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]
    [detail] = publisher.of_type(kind)
    fields = {
        DetailType.MODEL_ROLLED_BACK: ("from_version", "to_version"),
        DetailType.MODEL_ALIAS_MOVED: ("from_version", "to_version"),
        DetailType.MODEL_PROMOTED: ("previous_version", "version"),
    }.get(kind, ("from_status", "to_status"))
    assert tuple(getattr(detail, field) for field in fields) == announced
    if kind in (DetailType.MODEL_ROLLED_BACK, DetailType.MODEL_PROMOTED):
        [(subject, _)] = notifier.messages
        assert f"production is now v{announced[1]}" in subject


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
    # no baseline profiles in the store: the comparison still answers, saying why there is no drift
    drift = comparison["training_data_drift"]
    assert (drift["features"], drift["max"]) == ({}, None)
    assert drift["unavailable"].startswith("v1 has no baseline profile at s3://mlops-artifacts/baselines/churn/")


def test_models_api_compare_reports_the_drift_between_training_data(
    call: Any, registry: InMemoryRegistry, store: InMemoryObjectStore
) -> None:
    # GIVEN v1 trained on x ~ N(0, 1) and v3 on x ~ N(1, 1), both with the same mix of plans
    for number, baseline in ((1, training_baseline(seed=1)), (3, training_baseline(seed=3, shift=1.0))):
        artifact = registry.get_version("churn", number).artifact
        store.put_bytes(artifact.bucket, artifact.baseline_key, baseline.model_dump_json().encode(), "application/json")

    # WHEN a reader compares them
    status, comparison = call("GET", "/models/churn/compare?a=1&b=3", user=READER)

    # THEN x and the predictions drifted, plan did not, and max is the largest PSI
    assert status == 200
    drift = comparison["training_data_drift"]
    assert set(drift) == {"features", "prediction", "max", "not_compared", "unavailable"}
    assert drift["features"]["x"] > 0.2
    assert drift["features"]["plan"] < 0.01
    assert drift["prediction"] > 0.2
    assert drift["max"] == max(drift["features"]["x"], drift["prediction"])
    assert (drift["not_compared"], drift["unavailable"]) == ({}, None)

    # a version compared with itself has not drifted
    status, comparison = call("GET", "/models/churn/compare?a=3&b=3", user=READER)
    assert (status, comparison["training_data_drift"]["max"]) == (200, 0.0)


def test_models_api_compare_survives_a_baseline_that_is_not_a_profile(
    call: Any, registry: InMemoryRegistry, store: InMemoryObjectStore
) -> None:
    for number in (1, 3):
        artifact = registry.get_version("churn", number).artifact
        store.put_bytes(artifact.bucket, artifact.baseline_key, b'{"model_name": "churn"}', "application/json")

    status, comparison = call("GET", "/models/churn/compare?a=1&b=3")

    assert status == 200
    assert comparison["training_data_drift"]["unavailable"].endswith("is not a baseline profile")


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


@pytest.mark.parametrize("value", [True, "2", 2.0, "1"])
@pytest.mark.parametrize(
    ("method", "path", "field"),
    [("POST", "/models/churn/rollback", "to_version"), ("PUT", "/models/churn/aliases/staging", "version")],
)
def test_models_api_version_fields_are_strict_integers(
    call: Any, registry: InMemoryRegistry, method: str, path: str, field: str, value: Any
) -> None:
    status, body = call(method, path, {field: value})

    assert (status, body["error"]) == (422, "RequestValidationError")
    assert any(detail["loc"][-1] == field for detail in body["details"]), body
    assert registry.production("churn").version == 3  # type: ignore[union-attr]
    assert registry.get_model("churn").aliases == {}


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"reason": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"to_version": ' + "9" * 5000 + "}",
    ],
    ids=["nested-100000", "reason-nested-5000", "integer-5000-digits"],
)
@pytest.mark.parametrize("encoded", [False, True], ids=["text", "base64"])
def test_models_api_body_json_cannot_hold_is_400(
    module: ModuleType, registry: InMemoryRegistry, ledger: InMemoryDatasetLedger, body: str, encoded: bool
) -> None:
    event = api_event("POST", "/models/churn/rollback", user_arn=ADMIN)
    event["body"] = base64.b64encode(body.encode()).decode() if encoded else body
    event["isBase64Encoded"] = encoded
    app = module.build_app(
        registry,
        RecordingPublisher(),
        store=InMemoryObjectStore(),
        access=ACCESS,
        ledger=ledger,
        drift_results=InMemoryDriftResults(),
    )

    response = app.resolve(event, FakeLambdaContext())

    assert response["statusCode"] == 400
    got = json.loads(response["body"])
    assert got["error"] == "BadRequestError"
    assert got["message"].startswith("request body is not valid JSON: ")
    assert registry.production("churn").version == 3  # type: ignore[union-attr]


# ---- held datasets: list by ledger state, review ----

DATA = "data"


def _dataset(
    ledger: InMemoryDatasetLedger, store: InMemoryObjectStore, name: str, state: DatasetState, at: str
) -> LedgerEntry:
    key = f"datasets/churn/{name}"
    version = store.put_bytes(DATA, key, b"tenure,plan,churned\n1,basic,no\n")
    entry = LedgerEntry(
        model_name="churn",
        dataset_id=dataset_id(key, version),
        state=state,
        bucket=DATA,
        key=key,
        version_id=version,
        sha256="a" * 64,
        size_bytes=32,
        rows=1,
        uploader="AWS:AIDAUPLOADER",
        contract_digest="c" * 64,
        report_key=f"reports/churn/{dataset_id(key, version)}.json",
        reasons=["duplicate_rows: 30% of rows are copies"] if state is DatasetState.HELD else [],
        decided_at=at,
        history=[LedgerChange(at=at, state=state, actor="validate_dataset")],
    )
    return ledger.record(entry)


@pytest.fixture
def held(ledger: InMemoryDatasetLedger, store: InMemoryObjectStore) -> LedgerEntry:
    _dataset(ledger, store, "jan.csv", DatasetState.ACCEPTED, "2026-11-01T00:00:00+00:00")
    _dataset(ledger, store, "feb.csv", DatasetState.HELD, "2026-11-02T00:00:00+00:00")
    return _dataset(ledger, store, "mar.csv", DatasetState.HELD, "2026-11-03T00:00:00+00:00")


def _review_path(entry: LedgerEntry) -> str:
    return f"/models/churn/datasets/{entry.dataset_id}/review"


def test_models_api_lists_held_datasets_newest_first_by_default(call: Any, held: LedgerEntry) -> None:
    status, body = call("GET", "/models/churn/datasets", user=READER)

    assert status == 200
    assert [d["key"] for d in body] == ["datasets/churn/mar.csv", "datasets/churn/feb.csv"]
    first = body[0]
    assert (first["dataset_id"], first["state"], first["version_id"]) == (held.dataset_id, "held", held.version_id)
    assert (first["sha256"], first["uploader"], first["report_key"]) == ("a" * 64, "AWS:AIDAUPLOADER", held.report_key)
    assert first["reasons"] == ["duplicate_rows: 30% of rows are copies"]
    assert first["decided_at"] == "2026-11-03T00:00:00+00:00"
    assert [h["actor"] for h in first["history"]] == ["validate_dataset"]


@pytest.mark.parametrize(
    ("state", "keys"), [("accepted", ["jan.csv"]), ("quarantined", []), ("held", ["mar.csv", "feb.csv"])]
)
def test_models_api_lists_datasets_by_state(call: Any, held: LedgerEntry, state: str, keys: list[str]) -> None:
    status, body = call("GET", f"/models/churn/datasets?state={state}", user=READER)
    assert status == 200
    assert [d["key"].rsplit("/", 1)[1] for d in body] == keys


def test_models_api_approving_a_held_dataset_starts_training_and_is_audited(
    call: Any, held: LedgerEntry, ledger: InMemoryDatasetLedger, publisher: RecordingPublisher
) -> None:
    status, body = call("POST", _review_path(held), {"decision": "approve", "reason": "known promo"}, user=APPROVER)

    assert (status, body["state"], body["dataset_id"]) == (200, "accepted", held.dataset_id)
    assert [(h["state"], h["actor"], h["reason"]) for h in body["history"]][-1] == ("accepted", APPROVER, "known promo")
    assert ledger.get("churn", held.dataset_id).state is DatasetState.ACCEPTED  # type: ignore[union-attr]
    [validated] = publisher.of_type(DetailType.DATASET_VALIDATED)
    assert isinstance(validated, DatasetValidated)
    assert (validated.dataset.key, validated.dataset.version_id) == (held.key, held.version_id)


def test_models_api_rejecting_a_held_dataset_quarantines_and_notifies(
    call: Any,
    held: LedgerEntry,
    store: InMemoryObjectStore,
    publisher: RecordingPublisher,
    notifier: RecordingNotifier,
) -> None:
    status, body = call("POST", _review_path(held), {"decision": "reject", "reason": "poisoned"}, user=ADMIN)

    assert (status, body["state"], body["quarantine_key"]) == (200, "quarantined", quarantine_key(held.key))
    assert store.get_bytes(DATA, quarantine_key(held.key))
    with pytest.raises(NotFoundError):
        store.get_bytes(DATA, held.key, held.version_id)
    [moved] = publisher.of_type(DetailType.DATASET_QUARANTINED)
    assert isinstance(moved, DatasetQuarantined)
    [(subject, message)] = notifier.messages
    assert subject == "Held dataset rejected: churn"
    assert ADMIN in message
    assert "poisoned" in message


def test_models_api_a_second_different_review_conflicts_and_the_same_one_retries(
    call: Any, held: LedgerEntry, publisher: RecordingPublisher
) -> None:
    assert call("POST", _review_path(held), {"decision": "reject", "reason": "bad"}, user=APPROVER)[0] == 200

    status, body = call("POST", _review_path(held), {"decision": "approve", "reason": "fine"}, user=ADMIN)
    assert (status, body["error"]) == (409, "ConflictError")
    status, body = call("POST", _review_path(held), {"decision": "reject", "reason": "retry"}, user=APPROVER)
    assert (status, body["state"]) == (200, "quarantined")
    assert not publisher.of_type(DetailType.DATASET_VALIDATED)


@pytest.mark.parametrize(
    ("user", "status"),
    [(READER, 403), ("arn:aws:iam::999999999999:user/stranger", 403), (APPROVER, 200), (ADMIN, 200)],
)
def test_models_api_only_approvers_and_admins_review_datasets(
    call: Any, held: LedgerEntry, ledger: InMemoryDatasetLedger, user: str, status: int
) -> None:
    got, body = call("POST", _review_path(held), {"decision": "approve", "reason": "ok"}, user=user)
    assert got == status, body
    if status == 403:
        assert body["error"] == "ForbiddenError"
        assert ledger.get("churn", held.dataset_id).state is DatasetState.HELD  # type: ignore[union-attr]


def test_models_api_api_keys_never_review_datasets(
    module: ModuleType, registry: InMemoryRegistry, held: LedgerEntry, ledger: InMemoryDatasetLedger
) -> None:
    app = module.build_app(
        registry,
        RecordingPublisher(),
        store=InMemoryObjectStore(),
        access=ACCESS,
        ledger=ledger,
        drift_results=InMemoryDriftResults(),
    )
    for method, path, body in [
        ("POST", _review_path(held), {"decision": "approve", "reason": "ok"}),
        ("GET", "/models/churn/datasets", None),
    ]:
        assert app.resolve(_api_key_event(method, path, body), FakeLambdaContext())["statusCode"] == 403
    assert ledger.get("churn", held.dataset_id).state is DatasetState.HELD  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (
            "/models/churn/datasets/nope-0123456789abcdef/review",
            {"decision": "approve", "reason": "x"},
            404,
            "NotFoundError",
        ),
        ("/models/other/datasets/{id}/review", {"decision": "approve", "reason": "x"}, 404, "NotFoundError"),
        ("/models/churn/datasets/{id}/review", {"decision": "maybe", "reason": "x"}, 400, "BadRequestError"),
        ("/models/churn/datasets/{id}/review", {"decision": "approve", "reason": " "}, 400, "BadRequestError"),
        ("/models/churn/datasets/{id}/review", {"decision": "approve"}, 400, "BadRequestError"),
        ("/models/churn/datasets/nope/review", {"decision": "approve", "reason": "x"}, 400, "BadRequestError"),
        (
            "/models/churn/datasets/a%2F..%2Fb-0123456789abcdef/review",
            {"decision": "approve", "reason": "x"},
            400,
            "BadRequestError",
        ),
        (
            "/models/churn/datasets/a%23b-0123456789abcdef/review",
            {"decision": "approve", "reason": "x"},
            400,
            "BadRequestError",
        ),
        (
            "/models/churn/datasets/a/b-0123456789abcdef/review",
            {"decision": "approve", "reason": "x"},
            400,
            "BadRequestError",
        ),
        (
            "/models/churn/datasets/a#b-0123456789abcdef/review",
            {"decision": "approve", "reason": "x"},
            400,
            "BadRequestError",
        ),
        ("/models/Churn/datasets/{id}/review", {"decision": "approve", "reason": "x"}, 400, "BadRequestError"),
        (
            "/models/churn/datasets/{id}/review",
            {"decision": "approve", "reason": "x", "extra": 1},
            422,
            "RequestValidationError",
        ),
        ("/models/churn/datasets/{id}/review", None, 422, "RequestValidationError"),
        (
            "/models/churn/datasets/{id}/review",
            {"decision": "approve", "reason": "x" * 1001},
            422,
            "RequestValidationError",
        ),
    ],
)
def test_models_api_dataset_review_errors(
    call: Any, held: LedgerEntry, ledger: InMemoryDatasetLedger, path: str, body: Any, status: int, error: str
) -> None:
    got_status, got = call("POST", path.replace("{id}", held.dataset_id), body, user=APPROVER)
    assert (got_status, got["error"]) == (status, error), got
    assert ledger.get("churn", held.dataset_id).state is DatasetState.HELD  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/models/churn/datasets?state=deleted", 422, "RequestValidationError"),
        ("/models/Bad_Name/datasets", 400, "BadRequestError"),
        ("/models/churn%23DATASET/datasets", 400, "BadRequestError"),
    ],
)
def test_models_api_dataset_listing_errors(call: Any, path: str, status: int, error: str) -> None:
    got_status, got = call("GET", path, user=READER)
    assert (got_status, got["error"]) == (status, error), got


def test_models_api_dataset_review_joins_the_models_audit_chain(
    call: Any, registry: InMemoryRegistry, held: LedgerEntry
) -> None:
    # WHEN an approver approves a held dataset
    status, _ = call("POST", _review_path(held), {"decision": "approve", "reason": "known promo"}, user=APPROVER)
    assert status == 200

    # THEN the decision is an audit event of the model, chained like every other one
    event = registry.audit_events("churn")[-1]
    assert (event.action, event.actor, event.reason) == ("dataset_reviewed", APPROVER, "known promo")
    assert event.after == {"dataset_id": held.dataset_id, "decision": "approve", "state": "accepted"}
    status, verdict = call("GET", "/models/churn/audit/verify", user=READER)
    assert (status, verdict["ok"], verdict["head_seq"]) == (200, True, event.seq)


def test_models_api_four_eyes_contract_needs_a_second_person_to_promote(
    call: Any, registry: InMemoryRegistry, store: InMemoryObjectStore
) -> None:
    # GIVEN a model whose contract requires four eyes; its first version is not promoted automatically
    contract = {**contract_document("fraud"), "promotion": {"four_eyes": True}}
    event = trained_event("fraud", score=0.9, contract=contract)
    store.put_bytes(event.artifact_bucket, event.artifact_key, default_artifact(event))
    assert not registry.register(event, actor="trainer").promoted
    other = "arn:aws:sts::123456789012:assumed-role/mlops-approvers/dave"

    # WHEN bob approves it and promotes it himself THEN he is refused with a clear 409
    assert call("POST", "/models/fraud/versions/1/approve", {"reason": "ok"}, user=APPROVER)[0] == 200
    status, body = call("POST", "/models/fraud/versions/1/promote", {"reason": "go"}, user=APPROVER)
    assert (status, body["error"]) == (409, "ConflictError")
    assert "four eyes" in body["message"]
    assert registry.production("fraud") is None

    # WHEN another approver promotes it THEN it serves
    status, body = call("POST", "/models/fraud/versions/1/promote", {"reason": "go"}, user=other)
    assert (status, body["production_version"]) == (200, 1)


def test_models_api_audit_verify_reports_an_intact_chain(call: Any) -> None:
    status, body = call("GET", "/models/churn/audit/verify", user=READER)
    assert (status, body["ok"], body["problem"], body["events"]) == (200, True, None, body["head_seq"])
    assert body["alias_moves_checked"] == 2
    assert call("GET", "/models/unknown/audit/verify", user=READER)[0] == 404


def test_models_api_compare_shows_both_versions_on_the_same_data_and_the_schema_verdict(
    call: Any, registry: InMemoryRegistry, store: InMemoryObjectStore
) -> None:
    # GIVEN v4, trained while v3 served: its holdout scored both (v4 better on its own holdout, worse
    # on the same rows), and its contract narrows x to [0, 10]
    document = contract_document()
    document["features"][0] |= {"min": 0, "max": 10}
    event = trained_event(score=0.97, contract=document)
    same = SameDataScore(
        data="candidate_holdout",
        metric_name="roc_auc",
        rows=30,
        candidate_value=0.97,
        champion_version=3,
        champion_sha256="c" * 64,
        champion_value=0.99,
    )
    event = event.model_copy(update={"same_data": [same]})
    store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes("churn-0.97"))
    result = registry.register(event, actor="trainer")
    assert not result.promoted
    # WHEN a reader compares production v3 with v4
    status, comparison = call("GET", "/models/churn/compare?a=3&b=4", user=READER)
    # THEN the same-data scores decide which is better, and the breaking change is named
    assert status == 200
    assert comparison["same_data"] == [
        {
            "data": "candidate_holdout",
            "description": "the candidate's holdout (30 rows)",
            "rows": 30,
            "metric_name": "roc_auc",
            "a": 0.99,
            "b": 0.97,
            "delta": pytest.approx(-0.02),
            "recorded_by": 4,
            "unavailable": None,
        }
    ]
    assert (comparison["better"], comparison["better_basis"]) == (3, "same_data")
    assert comparison["metrics"]["roc_auc"]["delta"] == pytest.approx(0.07)  # own holdouts say otherwise
    compatibility = comparison["schema_compatibility"]
    assert compatibility["compatible"] is False
    assert compatibility["breaks"] == [
        {"feature": "x", "kind": "range_narrowed", "detail": "range narrowed from [-inf, inf] to [0, 10]"}
    ]
    assert compatibility["summary"] == (
        "would reject requests v3 accepts: x: range narrowed from [-inf, inf] to [0, 10]"
    )
    assert "schema: the candidate would reject requests production v3 accepts" in result.decision
    # the other way round, v4's record is read from the same lineage
    status, flipped = call("GET", "/models/churn/compare?a=4&b=3", user=READER)
    assert [(p["a"], p["b"], p["recorded_by"]) for p in flipped["same_data"]] == [(0.97, 0.99, 4)]
    assert flipped["better"] == 3
    assert flipped["schema_compatibility"]["compatible"] is True


def test_models_api_compare_says_why_there_is_no_same_data_score(call: Any) -> None:
    status, comparison = call("GET", "/models/churn/compare?a=1&b=3", user=READER)
    assert status == 200
    assert comparison["same_data"] == []
    assert comparison["better_basis"] == "own_holdouts"
    assert comparison["same_data_unavailable"].startswith("neither v1 nor v3 was trained while the other served")
    assert comparison["schema_compatibility"] == {
        "compatible": True,
        "summary": "accepts every request v1 accepts",
        "breaks": [],
        "notes": [],
    }
