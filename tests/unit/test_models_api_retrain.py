"""POST /models/{name}/retrain: an approver asks, the request is audited and queued for retrain_model."""

# The fixtures come from test_models_api (imported by name), so the test parameters shadow them.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

from mlops.retraining.triggers import RETRAINING_REQUESTED, RetrainingRequested
from tests.support.fakes import RecordingPublisher
from tests.support.registry_fake import InMemoryRegistry
from tests.unit.test_models_api import (  # noqa: F401 - fixtures
    ADMIN,
    APPROVER,
    READER,
    call,
    drift_results,
    ledger,
    module,
    notifier,
    publisher,
    registry,
    store,
)


def test_retrain_request_is_audited_and_queued_for_retrain_model(
    call: Any, registry: InMemoryRegistry, publisher: RecordingPublisher
) -> None:
    status, body = call("POST", "/models/churn/retrain", {"reason": "new pricing launched"}, user=APPROVER)
    assert status == 202, body
    assert body["status"] == "accepted"
    event = registry.audit_events("churn")[-1]
    assert (event.action, event.actor, event.reason) == ("retrain_requested", APPROVER, "new pricing launched")
    assert body["audit_seq"] == event.seq
    [queued] = publisher.of_type(RETRAINING_REQUESTED)
    assert isinstance(queued, RetrainingRequested)
    assert (queued.model_name, queued.actor, queued.reason, queued.override_cooldown) == (
        "churn",
        APPROVER,
        "new pricing launched",
        False,
    )
    assert queued.request_id == event.request_id != ""


def test_retrain_request_needs_a_reason_an_approver_and_a_known_model(
    call: Any, registry: InMemoryRegistry, publisher: RecordingPublisher
) -> None:
    before = len(registry.audit_events("churn"))
    status, body = call("POST", "/models/churn/retrain", {"reason": "  "}, user=APPROVER)
    assert status == 400
    assert "needs a reason" in body["message"]
    status, _ = call("POST", "/models/churn/retrain", {"reason": "please"}, user=READER)
    assert status == 403
    status, _ = call("POST", "/models/nosuch/retrain", {"reason": "please"}, user=APPROVER)
    assert status == 404
    assert len(registry.audit_events("churn")) == before
    assert publisher.of_type(RETRAINING_REQUESTED) == []


def test_only_an_admin_may_override_the_cooldown(call: Any, publisher: RecordingPublisher) -> None:
    status, body = call("POST", "/models/churn/retrain", {"reason": "now", "override_cooldown": True}, user=APPROVER)
    assert status == 403
    assert "admin" in body["message"]
    status, _ = call("POST", "/models/churn/retrain", {"reason": "now", "override_cooldown": True}, user=ADMIN)
    assert status == 202
    [queued] = publisher.of_type(RETRAINING_REQUESTED)
    assert queued.override_cooldown is True  # type: ignore[attr-defined]
