"""Canary through the models API (issue 13 item 2): an approver starts and stops it, every change is
in the audit chain, a rollback by its alarm names the alarm, and a canary that baked is promoted
through the same gates as any promotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops.errors import ConflictError
from mlops.registry.records import Canary
from mlops.registry.service import Lifecycle, verify_audit_trail
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.support.registry_fake import InMemoryRegistry
from tests.unit.test_models_api import (  # noqa: F401  (its fixtures: the same app and registry)
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

ALARM = "alarm:MlopsStack-model-churn-canary-errors"


def test_models_api_starts_and_stops_a_canary_audited(call: Any, registry: InMemoryRegistry) -> None:  # noqa: F811
    # GIVEN v3 in production and v2 a candidate: a canary must be approved first (it may be promoted)
    status, body = call("POST", "/models/churn/canary", {"version": 2, "share": 0.2, "bake_minutes": 30}, user=APPROVER)
    assert status == 409, body
    assert "approve it first" in body["message"]
    assert call("POST", "/models/churn/versions/2/approve", {"reason": "holdout reviewed"}, user=APPROVER)[0] == 200

    # out-of-range shares and bakes are refused, naming the field
    for bad in ({"share": 0.6}, {"share": 0}, {"bake_minutes": 0}):
        status, body = call("POST", "/models/churn/canary", {"version": 2, "share": 0.2, "bake_minutes": 30} | bad)
        assert status == 422, body
        assert next(iter(bad)) in str(body["details"])
    assert call("POST", "/models/churn/canary", {"version": 2, "share": 0.2, "bake_minutes": 30}, user=READER)[0] == 403

    status, body = call(
        "POST",
        "/models/churn/canary",
        {"version": 2, "share": 0.2, "bake_minutes": 30, "reason": "try v2"},
        user=APPROVER,
    )
    assert status == 200, body
    assert body["canary"]["version"] == 2
    assert body["canary"]["share"] == 0.2
    assert call("GET", "/models/churn")[1]["canary"]["bake_minutes"] == 30
    # one canary at a time; production cannot be its own canary
    assert call("POST", "/models/churn/canary", {"version": 3, "share": 0.1, "bake_minutes": 5})[0] == 409

    status, body = call("DELETE", "/models/churn/canary", {"reason": "enough"}, user=APPROVER)
    assert (status, body["canary"]) == (200, None)
    assert call("DELETE", "/models/churn/canary", user=APPROVER)[0] == 409  # nothing to stop

    events = [(e.action, e.version, e.actor, e.reason) for e in registry.audit_events("churn")]
    assert events[-2:] == [("canary_started", 2, APPROVER, "try v2"), ("canary_stopped", 2, APPROVER, "enough")]
    assert verify_audit_trail(registry, "churn").ok


def _lifecycle(registry: InMemoryRegistry, store: InMemoryObjectStore) -> Lifecycle:  # noqa: F811
    from mlops.registry.ports import NoNotifier

    return Lifecycle(registry, RecordingPublisher(), store, NoNotifier())


def test_canary_rolled_back_by_its_alarm_names_it_and_a_baked_canary_is_promoted(
    registry: InMemoryRegistry,  # noqa: F811
    store: InMemoryObjectStore,  # noqa: F811
) -> None:
    lifecycle = _lifecycle(registry, store)
    lifecycle.approve("churn", 2, actor=APPROVER, reason="ok")
    lifecycle.start_canary("churn", 2, share=0.5, bake_minutes=10, actor=APPROVER, reason="try")

    # WHEN its alarm fires, the canary ends by itself: audited with the alarm as actor and reason
    change = lifecycle.stop_canary(
        "churn", rolled_back=True, version=2, actor=ALARM, reason="MlopsStack-model-churn-canary-errors entered ALARM"
    )
    assert change.model.canary is None
    last = registry.audit_events("churn")[-1]
    assert (last.action, last.actor, last.version) == ("canary_rolled_back", ALARM, 2)
    assert "entered ALARM" in last.reason
    assert registry.get_model("churn").production_version == 3  # production untouched

    # a canary still baking is not promoted; one that baked is, through plan_promote's gates
    lifecycle.start_canary("churn", 2, share=0.5, bake_minutes=10, actor=APPROVER, reason="again")
    with pytest.raises(ConflictError, match="bakes"):
        lifecycle.promote_canary("churn", actor="canary-bake", reason="baked")
    model = registry.models["churn"]
    canary = model.canary
    assert canary is not None
    registry.models["churn"] = model.model_copy(
        update={"canary": Canary(**{**canary.model_dump(), "started_at": datetime.now(UTC) - timedelta(minutes=11)})}
    )
    change = lifecycle.promote_canary("churn", actor="canary-bake", reason="baked 10 minutes without alarms")
    assert change.model.production_version == 2
    assert change.model.canary is None
    actions = [e.action for e in registry.audit_events("churn")[-3:]]
    assert actions == ["canary_started", "archived", "promoted"]
    assert verify_audit_trail(registry, "churn").ok


def test_models_api_sets_and_clears_a_shadow_audited_and_compare_shows_its_agreement(
    call: Any,  # noqa: F811
    registry: InMemoryRegistry,  # noqa: F811
    store: InMemoryObjectStore,  # noqa: F811
) -> None:
    import json as json_module

    from mlops.shadow import shadow_state_key

    # production (v3) cannot shadow itself; a retired version (v1, archived) cannot shadow
    assert call("PUT", "/models/churn/shadow", {"version": 3}, user=APPROVER)[0] == 409
    assert call("PUT", "/models/churn/shadow", {"version": 1}, user=APPROVER)[0] == 409
    assert call("PUT", "/models/churn/shadow", {"version": 2}, user=READER)[0] == 403
    status, body = call("PUT", "/models/churn/shadow", {"version": 2, "reason": "watch v2"}, user=APPROVER)
    assert (status, body["shadow_version"]) == (200, 2), body

    # GIVEN score_shadow stored statistics for the pair: compare (either order) shows them
    bucket = registry.get_version("churn", 3).artifact.bucket
    state = {
        "production_version": 3,
        "shadow_version": 2,
        "rows": 120,
        "unscored": 1,
        "objects": 3,
        "updated_at": "2026-12-03T07:00:00+00:00",
        "classification": True,
        "summary": {"label_agreement": 0.9, "mean_probability_difference": 0.05, "max_probability_difference": 0.4},
    }
    store.put_bytes(bucket, shadow_state_key("churn"), json_module.dumps(state).encode())
    status, compared = call("GET", "/models/churn/compare?a=3&b=2")
    assert status == 200, compared
    assert compared["shadow"]["rows"] == 120
    assert compared["shadow"]["statistics"]["label_agreement"] == 0.9
    assert call("GET", "/models/churn/compare?a=1&b=2")[1]["shadow"] is None

    status, body = call("DELETE", "/models/churn/shadow", {"reason": "seen enough"}, user=APPROVER)
    assert (status, body["shadow_version"]) == (200, None)
    assert call("DELETE", "/models/churn/shadow", user=APPROVER)[0] == 409
    events = [(e.action, e.version, e.reason) for e in registry.audit_events("churn")[-2:]]
    assert events == [("shadow_set", 2, "watch v2"), ("shadow_cleared", 2, "seen enough")]
    assert verify_audit_trail(registry, "churn").ok


def test_a_rollback_ends_the_running_canary_so_the_bake_check_cannot_promote_it_later(
    registry: InMemoryRegistry,  # noqa: F811
    store: InMemoryObjectStore,  # noqa: F811
) -> None:
    lifecycle = _lifecycle(registry, store)
    lifecycle.approve("churn", 2, actor=APPROVER, reason="ok")
    lifecycle.start_canary("churn", 2, share=0.2, bake_minutes=10, actor=APPROVER, reason="try")

    change = lifecycle.rollback("churn", actor=APPROVER, reason="incident: back to v1")

    assert (change.model.production_version, change.model.canary) == (1, None)
    last = registry.audit_events("churn")[-1]
    assert (last.action, last.version, last.actor) == ("canary_stopped", 2, APPROVER)
    assert last.reason == "production changed by rollback to v1"
    with pytest.raises(ConflictError, match="runs no canary"):
        lifecycle.promote_canary("churn", actor="schedule:canary-bake-check", reason="baked")
    assert registry.get_model("churn").production_version == 1
    assert verify_audit_trail(registry, "churn").ok


def test_promoting_the_shadow_version_clears_the_shadow_audited(
    call: Any,  # noqa: F811
    registry: InMemoryRegistry,  # noqa: F811
) -> None:
    assert call("PUT", "/models/churn/shadow", {"version": 2, "reason": "watch v2"}, user=APPROVER)[0] == 200
    assert call("POST", "/models/churn/versions/2/approve", {"reason": "ok"}, user=APPROVER)[0] == 200

    status, body = call("POST", "/models/churn/versions/2/promote", {"reason": "go"}, user=ADMIN)

    assert status == 200, body
    model = call("GET", "/models/churn")[1]
    assert (model["production_version"], model["shadow_version"]) == (2, None)
    last = registry.audit_events("churn")[-1]
    assert (last.action, last.version, last.before, last.after) == (
        "shadow_cleared",
        2,
        {"shadow_version": 2},
        {"shadow_version": None},
    )
    assert last.reason == "v2 became production by promotion"
    assert verify_audit_trail(registry, "churn").ok
