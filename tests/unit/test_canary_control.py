"""control_canary's decisions over the in-memory registry: which events roll a canary back (and how
the audit names the alarm), and what the bake check does with each running canary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlops.registry.canary_control import (
    BAKE_CHECK_ACTOR,
    canary_alarm_model,
    canary_alarm_names,
    check_bakes,
    roll_back_on_alarm,
)
from mlops.registry.ports import NoNotifier
from mlops.registry.service import Lifecycle
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.support.registry_fake import InMemoryRegistry, artifact_bytes, trained_event

PREFIX = "MlopsStack-model-"
APPROVER = "arn:aws:sts::123456789012:assumed-role/mlops-approvers/bob"


class Alarms:
    def __init__(self, *firing: str) -> None:
        self.firing = set(firing)

    def in_alarm(self, names: list[str]) -> list[str]:
        return sorted(set(names) & self.firing)


@pytest.fixture
def setup() -> tuple[InMemoryRegistry, Lifecycle, RecordingPublisher]:
    store = InMemoryObjectStore()
    registry = InMemoryRegistry(artifacts=store)
    for score in (0.8, 0.75):  # v1 production, v2 candidate
        event = trained_event(score=score)
        store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes(f"churn-{score!r}"))
        registry.register(event, actor="trainer")
    publisher = RecordingPublisher()
    lifecycle = Lifecycle(registry, publisher, store, NoNotifier())
    lifecycle.approve("churn", 2, actor=APPROVER, reason="ok")
    lifecycle.start_canary("churn", 2, share=0.2, bake_minutes=30, actor=APPROVER, reason="try v2")
    return registry, lifecycle, publisher


def _state_change(alarm: str, value: str = "ALARM") -> dict[str, object]:
    return {
        "id": "e-1",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "detail": {"alarmName": alarm, "state": {"value": value, "reason": "Threshold Crossed: 1 datapoint [40.0]"}},
    }


@pytest.mark.parametrize(
    ("alarm", "model"),
    [
        (f"{PREFIX}churn-canary-errors", "churn"),
        (f"{PREFIX}fraud-canary-v2-canary-output", "fraud-canary-v2"),
        (f"{PREFIX}churn-drift", None),
        ("MlopsStack-control-canary-errors", None),  # the function's own error alarm
        (f"{PREFIX}churn-canary-other", None),
        # the wildcard rule also matches names whose model part no model could have
        (f"{PREFIX}Bad_Name-canary-errors", None),
        (f"{PREFIX}{'a' * 300}-canary-latency", None),
        (f"{PREFIX}-canary-errors", None),
    ],
)
def test_canary_alarm_names_round_trip(alarm: str, model: str | None) -> None:
    assert canary_alarm_model(alarm, PREFIX) == model
    assert all(canary_alarm_model(name, PREFIX) == "churn" for name in canary_alarm_names(PREFIX, "churn"))


def test_a_canary_alarm_entering_alarm_rolls_the_canary_back_once(setup: tuple) -> None:
    registry, lifecycle, _ = setup
    # leaving ALARM, or another alarm: nothing happens
    assert roll_back_on_alarm(lifecycle, _state_change(f"{PREFIX}churn-canary-errors", "OK"), prefix=PREFIX) is None
    assert roll_back_on_alarm(lifecycle, _state_change(f"{PREFIX}churn-drift"), prefix=PREFIX) is None
    assert registry.get_model("churn").canary is not None

    outcome = roll_back_on_alarm(lifecycle, _state_change(f"{PREFIX}churn-canary-errors"), prefix=PREFIX)
    assert outcome is not None
    assert (outcome.model, outcome.result, outcome.version) == ("churn", "rolled_back", 2)
    assert registry.get_model("churn").canary is None
    event = registry.audit_events("churn")[-1]
    assert (event.action, event.actor) == ("canary_rolled_back", f"alarm:{PREFIX}churn-canary-errors")
    assert event.reason.startswith(f"{PREFIX}churn-canary-errors entered ALARM: Threshold Crossed")
    # a redelivered state change finds nothing to roll back: no second audit event
    again = roll_back_on_alarm(lifecycle, _state_change(f"{PREFIX}churn-canary-errors"), prefix=PREFIX)
    assert again is not None
    assert again.result == "nothing"
    assert [e.action for e in registry.audit_events("churn")].count("canary_rolled_back") == 1


def test_bake_check_waits_rolls_back_a_firing_canary_and_promotes_a_baked_one(setup: tuple) -> None:
    registry, lifecycle, publisher = setup
    started = registry.get_model("churn").canary.started_at  # type: ignore[union-attr]

    # still baking
    [outcome] = check_bakes(lifecycle, registry, Alarms(), prefix=PREFIX, now=started + timedelta(minutes=29))
    assert outcome.result == "baking"

    # baked, but an alarm is in ALARM (its state change was missed): rolled back, not promoted
    firing = Alarms(f"{PREFIX}churn-canary-output")
    [outcome] = check_bakes(lifecycle, registry, firing, prefix=PREFIX, now=started + timedelta(minutes=31))
    assert outcome.result == "rolled_back"
    assert registry.get_model("churn").production_version == 1

    # a new canary, baked without alarms: promoted through the gates, announced, audited by the check
    lifecycle.start_canary("churn", 2, share=0.2, bake_minutes=1, actor=APPROVER, reason="again")
    model = registry.models["churn"]
    backdated = model.canary.model_copy(update={"started_at": datetime.now(UTC) - timedelta(minutes=2)})  # type: ignore[union-attr]
    registry.models["churn"] = model.model_copy(update={"canary": backdated})
    [outcome] = check_bakes(lifecycle, registry, Alarms(), prefix=PREFIX, now=datetime.now(UTC))
    assert (outcome.result, outcome.version) == ("promoted", 2)
    model = registry.get_model("churn")
    assert (model.production_version, model.canary) == (2, None)
    promoted = registry.audit_events("churn")[-1]
    assert (promoted.action, promoted.actor) == ("promoted", BAKE_CHECK_ACTOR)
    assert "without its alarms" in promoted.reason
    assert publisher.of_type("ModelPromoted")[-1].version == 2  # type: ignore[attr-defined]
    assert check_bakes(lifecycle, registry, Alarms(), prefix=PREFIX, now=datetime.now(UTC)) == []


@pytest.mark.parametrize(
    "detail",
    [
        {"alarmName": f"{PREFIX}Bad_Name-canary-errors", "state": {"value": "ALARM", "reason": "x"}},
        {"alarmName": f"{PREFIX}{'a' * 300}-canary-errors", "state": {"value": "ALARM", "reason": "x"}},
        {"alarmName": f"{PREFIX}churn-canary-errors", "state": "ALARM"},  # a malformed state
    ],
)
def test_an_alarm_event_no_model_could_own_is_ignored_not_raised(setup: tuple, detail: dict[str, object]) -> None:
    # a raise here would be retried into the dead-letter queue; the event concerns no canary
    registry, lifecycle, _ = setup
    event = {"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": detail}
    assert roll_back_on_alarm(lifecycle, event, prefix=PREFIX) is None
    assert registry.get_model("churn").canary is not None


def test_promoting_another_version_ends_the_running_canary_audited(setup: tuple) -> None:
    registry, lifecycle, _ = setup
    event = trained_event(score=0.7)  # v3, declined automatically (v1 scores higher)
    lifecycle.store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes("churn-0.7"))
    registry.register(event, actor="trainer")
    lifecycle.approve("churn", 3, actor=APPROVER, reason="ok")

    change = lifecycle.promote("churn", 3, actor="arn:aws:sts::123456789012:assumed-role/mlops-admins/eve", reason="go")

    assert (change.model.production_version, change.model.canary) == (3, None)
    last = registry.audit_events("churn")[-1]
    assert (last.action, last.version) == ("canary_stopped", 2)
    assert last.reason == "production changed by promotion of v3"
    # the bake check finds no canary left to promote over the manual promotion
    later = datetime.now(UTC) + timedelta(minutes=31)
    assert check_bakes(lifecycle, registry, Alarms(), prefix=PREFIX, now=later) == []
    assert registry.get_model("churn").production_version == 3
