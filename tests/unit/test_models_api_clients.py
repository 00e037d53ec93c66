"""models_api /clients: approvers issue and revoke prediction clients' API keys, audited, never logged."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from mlops.client_keys import KeyAction
from mlops.registry.access import AccessPolicy
from mlops_local.handlers import load_handler_module
from tests.support.client_keys import InMemoryIssueAttempts, InMemoryKeyAudit, InMemoryKeyGateway
from tests.support.datasets import InMemoryDatasetLedger
from tests.support.drift import InMemoryDriftResults
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import InMemoryRegistry, api_event

ADMIN = "arn:aws:iam::123456789012:user/alice"
APPROVER = "arn:aws:sts::123456789012:assumed-role/mlops-approvers/bob"
READER = "arn:aws:sts::123456789012:assumed-role/mlops-readers/carol"
ACCESS = AccessPolicy(
    admins=[ADMIN],
    approvers=["arn:aws:sts::123456789012:assumed-role/mlops-approvers/*"],
    readers=["arn:aws:sts::123456789012:assumed-role/mlops-readers/*"],
)


@pytest.fixture(scope="module")
def module() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "REGISTRY_TABLE": "registry",
            "LEDGER_TABLE": "ledger",
            "EVENT_BUS_NAME": "bus",
            "DATA_BUCKET": "data",
            "ARTIFACT_BUCKET": "artifacts",
        }.items():
            patch.setenv(name, value)
        return load_handler_module("models_api")


@pytest.fixture
def gateway() -> InMemoryKeyGateway:
    return InMemoryKeyGateway()


@pytest.fixture
def audit() -> InMemoryKeyAudit:
    return InMemoryKeyAudit()


def _app(module: ModuleType, gateway: InMemoryKeyGateway | None, audit: InMemoryKeyAudit | None) -> Any:
    store = InMemoryObjectStore()
    return module.build_app(
        InMemoryRegistry(artifacts=store),
        RecordingPublisher(),
        store=store,
        access=ACCESS,
        ledger=InMemoryDatasetLedger(),
        drift_results=InMemoryDriftResults(),
        client_key_gateway=gateway,
        key_audit=audit,
        issue_attempts=InMemoryIssueAttempts(),
    )


@pytest.fixture
def call(module: ModuleType, gateway: InMemoryKeyGateway, audit: InMemoryKeyAudit) -> Any:
    app = _app(module, gateway, audit)
    answers: list[dict[str, Any]] = []

    def call(
        method: str, path: str, body: Any = None, *, user: str = APPROVER, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        event = api_event(method, path, body=body, user_arn=user, resource=_resource(path))
        event["headers"] |= headers or {}
        event["multiValueHeaders"] |= {name: [value] for name, value in (headers or {}).items()}
        if path.endswith("/revoke"):
            event["pathParameters"] = {"key_id": path.split("/")[2]}
        response = app.resolve(event, FakeLambdaContext())
        answers.append(response)
        return response["statusCode"], json.loads(response["body"]) if response["body"] else None

    call.answers = answers  # type: ignore[attr-defined]  # every raw answer, for headers
    return call


def _resource(path: str) -> str:
    return "/clients/{key_id}/revoke" if path.endswith("/revoke") else path


def test_models_api_approver_issues_a_client_key_shown_once_and_audited(
    call: Any, gateway: InMemoryKeyGateway, audit: InMemoryKeyAudit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the function's log stream (its Powertools Logger's handler)
    lines = io.StringIO()
    for handler in logging.getLogger("models_api").handlers:
        monkeypatch.setattr(handler, "stream", lines)
    status, issued = call("POST", "/clients", {"client": "acme", "reason": "new partner"})
    assert status == 201, issued
    assert issued["value"] == gateway.value_of(issued["key_id"])
    assert issued["key_id"] in gateway.in_plan
    assert issued["usage_plan"]["quota_limit"] == 1000
    [event] = audit.events()
    assert (event.action, event.actor, event.key_id) == (KeyAction.ISSUED, APPROVER, issued["key_id"])
    # the value is in the answer only: not in the function's logs, not in the listing
    logged = lines.getvalue()
    assert issued["key_id"] in logged
    assert issued["fingerprint"] in logged
    assert issued["value"] not in logged
    status, listed = call("GET", "/clients")
    assert status == 200
    assert [(k["client"], k["key_id"]) for k in listed] == [("acme", issued["key_id"])]
    assert "value" not in listed[0]


def test_models_api_revoking_a_client_key_deletes_it_and_audits_the_reason(
    call: Any, gateway: InMemoryKeyGateway, audit: InMemoryKeyAudit
) -> None:
    _, issued = call("POST", "/clients", {"client": "acme", "reason": "new partner"})
    status, revoked = call("POST", f"/clients/{issued['key_id']}/revoke", {"reason": "contract ended"}, user=ADMIN)
    assert status == 200, revoked
    assert revoked["enabled"] is False
    assert gateway.keys == {}
    assert [(e.action, e.actor, e.reason) for e in audit.events()][-1] == (KeyAction.REVOKED, ADMIN, "contract ended")
    again = call("POST", f"/clients/{issued['key_id']}/revoke", {"reason": "twice"})
    assert again[0] == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/clients", {"client": "acme", "reason": "r"}),
        ("GET", "/clients", None),
        ("POST", "/clients/abc123/revoke", {"reason": "r"}),
    ],
)
def test_models_api_readers_may_not_manage_client_keys(
    call: Any, gateway: InMemoryKeyGateway, method: str, path: str, body: Any
) -> None:
    status, answer = call(method, path, body, user=READER)
    assert status == 403, answer
    assert gateway.keys == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"client": "Acme Corp", "reason": "r"}, 422),
        ({"client": "acme"}, 422),
        ({"client": "acme", "reason": "r", "value": "chosen-by-the-caller-000"}, 422),
    ],
)
def test_models_api_refuses_bad_client_key_requests(
    call: Any, gateway: InMemoryKeyGateway, body: Any, status: int
) -> None:
    answer = call("POST", "/clients", body)
    assert answer[0] == status, answer
    assert gateway.keys == {}


def test_models_api_refuses_a_malformed_key_id(call: Any) -> None:
    status, answer = call("POST", "/clients/bad.id!/revoke", {"reason": "r"})
    assert status == 400, answer
    assert "key id" in answer["message"]


def test_models_api_without_a_clients_usage_plan_answers_503(module: ModuleType) -> None:
    app = _app(module, None, None)
    event = api_event(
        "POST", "/clients", body={"client": "acme", "reason": "r"}, user_arn=APPROVER, resource="/clients"
    )
    response = app.resolve(event, FakeLambdaContext())
    assert response["statusCode"] == 503
    assert "usage plan" in json.loads(response["body"])["message"]


def test_models_api_retried_client_key_issue_answers_the_first_key_without_its_value(
    call: Any, gateway: InMemoryKeyGateway, audit: InMemoryKeyAudit
) -> None:
    # GIVEN a key issued with an Idempotency-Key
    body, retry = {"client": "acme", "reason": "new partner"}, {"Idempotency-Key": "onboard-acme-1"}
    status, first = call("POST", "/clients", body, headers=retry)
    assert status == 201, first
    # WHEN the same request is sent again with the same Idempotency-Key (a retry after a lost answer)
    status, again = call("POST", "/clients", body, headers=retry)
    # THEN no second key exists: the first answer again, marked replayed, without the value (shown once)
    assert status == 201, again
    assert list(gateway.keys) == [first["key_id"]]
    assert [e.action for e in audit.events()] == [KeyAction.ISSUED]
    assert (again["key_id"], again["fingerprint"], again["client"]) == (
        first["key_id"],
        first["fingerprint"],
        "acme",
    )
    assert again["value"] is None
    assert "shown once" in again["message"]
    assert call.answers[-1]["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]
    # a new Idempotency-Key is a new request: a second key
    status, second = call("POST", "/clients", body, headers={"Idempotency-Key": "onboard-acme-2"})
    assert status == 201
    assert second["key_id"] != first["key_id"]
    assert second["value"]


def test_models_api_idempotency_key_reused_for_another_client_key_request_is_refused(
    call: Any, gateway: InMemoryKeyGateway
) -> None:
    retry = {"Idempotency-Key": "k-1"}
    assert call("POST", "/clients", {"client": "acme", "reason": "r"}, headers=retry)[0] == 201
    status, answer = call("POST", "/clients", {"client": "bolt", "reason": "r"}, headers=retry)
    assert status == 422, answer
    assert answer["error"] == "IdempotencyKeyReusedError"
    assert len(gateway.keys) == 1


class _RecordingSubsegment:
    def __init__(self) -> None:
        self.metadata: list[tuple[str, Any]] = []

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self.metadata.append((key, value))

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any = None, remote: bool = False) -> None:
        pass


class _RecordingTraceProvider:
    """Stands in for the X-Ray provider: keeps what the handler's tracing would send to X-Ray."""

    def __init__(self) -> None:
        self.subsegments: list[_RecordingSubsegment] = []

    @contextlib.contextmanager
    def in_subsegment(self, name: str = "", **kwargs: Any) -> Iterator[_RecordingSubsegment]:
        subsegment = _RecordingSubsegment()
        self.subsegments.append(subsegment)
        yield subsegment


def test_models_api_tracing_never_puts_an_issued_key_value_in_the_trace(
    module: ModuleType, gateway: InMemoryKeyGateway, audit: InMemoryKeyAudit, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _RecordingTraceProvider()
    monkeypatch.setattr(module.tracer, "provider", provider)
    monkeypatch.setattr(module, "app", _app(module, gateway, audit))
    event = api_event("POST", "/clients", body={"client": "acme", "reason": "new partner"}, user_arn=APPROVER)
    response = module.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 201, response
    value = json.loads(response["body"])["value"]
    [subsegment] = provider.subsegments  # the handler was traced ...
    assert value not in repr(subsegment.metadata)  # ... without its answer
    assert subsegment.metadata == []
