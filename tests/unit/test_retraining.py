"""Retraining on evidence: triggers read from events, the gates, the training set written under datasets/."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from mlops.contract import Retraining, parse_contract
from mlops.errors import BadRequestError
from mlops.events import DatasetRef
from mlops.layout import contract_key
from mlops.registry.records import AuditAction
from mlops.retraining.gates import before_reading, enough_labels
from mlops.retraining.service import retrain
from mlops.retraining.triggers import RetrainTrigger, TriggerKind, alarm_model, parse_trigger
from tests.support.challenger import write_labelled_traffic
from tests.support.datasets import InMemoryDatasetLedger, accepted_entry
from tests.support.fakes import InMemoryObjectStore
from tests.support.registry_fake import InMemoryRegistry, artifact_bytes, contract_document, trained_event

# the registry stamps audit events with the clock; the cooldown compares them with `now`
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
PREFIX = "mlops-model-"
DATA, ARTIFACTS = "data", "artifacts"
RULES = Retraining()  # cooldown 6 h, 200 new labels


def trigger(kind: TriggerKind = TriggerKind.ALARM, **fields: Any) -> RetrainTrigger:
    base = {"model": "risk", "kind": kind, "actor": "alarm:x", "reason": "quality alarm", "trigger_id": "t1"}
    return RetrainTrigger(**{**base, **fields})


# --- triggers ------------------------------------------------------------------------------------


def alarm_event(name: str, state: str = "ALARM") -> dict[str, Any]:
    return {
        "id": "e-1",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {"alarmName": name, "state": {"value": state, "reason": "Threshold Crossed: 1 datapoint"}},
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mlops-model-churn-quality", ("churn", "quality")),
        ("mlops-model-churn-drift", ("churn", "drift")),
        ("mlops-model-late-fees-quality", ("late-fees", "quality")),  # a model name with dashes
        ("mlops-model-churn-data-quality", None),  # data quality is not evidence the model is wrong
        ("mlops-model-churn-health", None),
        ("other-model-churn-drift", None),
    ],
)
def test_alarm_model_reads_drift_and_quality_alarms_only(name: str, expected: tuple[str, str] | None) -> None:
    assert alarm_model(name, PREFIX) == expected


def test_parse_trigger_takes_an_alarm_entering_alarm_and_ignores_it_leaving() -> None:
    found = parse_trigger(alarm_event("mlops-model-churn-quality"), alarm_prefix=PREFIX, now=NOW)
    assert found is not None
    assert (found.model, found.kind, found.trigger_id) == ("churn", TriggerKind.ALARM, "e-1")
    assert "quality alarm entered ALARM" in found.reason
    assert not found.skips_label_minimum
    assert not found.overrides_cooldown
    assert parse_trigger(alarm_event("mlops-model-churn-quality", "OK"), alarm_prefix=PREFIX, now=NOW) is None


def test_parse_trigger_reads_an_approvers_request_and_a_schedule() -> None:
    request = {
        "id": "e-2",
        "detail-type": "RetrainingRequested",
        "detail": {"model_name": "churn", "actor": "arn:approver", "reason": "new season", "request_id": "r-9"},
    }
    approver = parse_trigger(request, alarm_prefix=PREFIX, now=NOW)
    assert approver is not None
    assert (approver.kind, approver.actor, approver.trigger_id) == (TriggerKind.APPROVER, "arn:approver", "r-9")
    assert approver.skips_label_minimum
    assert not approver.overrides_cooldown
    scheduled = parse_trigger({"retrain": {"model": "churn", "schedule": "rate(7 days)"}}, alarm_prefix=PREFIX, now=NOW)
    assert scheduled is not None
    assert (scheduled.kind, scheduled.trigger_id) == (TriggerKind.SCHEDULE, f"schedule:churn@{NOW:%Y%m%dT%H%M}")


def test_parse_trigger_refuses_an_unknown_event() -> None:
    with pytest.raises(BadRequestError, match="not a retraining trigger"):
        parse_trigger({"detail-type": "Something"}, alarm_prefix=PREFIX, now=NOW)


# --- gates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("production", "last_started", "overrides", "passed", "gate"),
    [
        (None, None, False, False, "no_production"),
        (1, None, False, True, ""),
        (1, NOW - timedelta(hours=5, minutes=59), False, False, "cooldown"),
        (1, NOW - timedelta(hours=5, minutes=59), True, True, ""),  # an admin's override
        (1, NOW - timedelta(hours=6), False, True, ""),
    ],
)
def test_before_reading_needs_production_and_respects_the_cooldown(
    production: int | None, last_started: datetime | None, overrides: bool, passed: bool, gate: str
) -> None:
    decision = before_reading(
        trigger(overrides_cooldown=overrides), RULES, production_version=production, last_started=last_started, now=NOW
    )
    assert (decision.passed, decision.gate) == (passed, gate)


@pytest.mark.parametrize(
    ("rows", "approver", "passed"),
    [(199, False, False), (200, False, True), (0, True, True), (5000, False, True)],
)
def test_enough_labels_needs_the_minimum_unless_an_approver_asked(rows: int, approver: bool, passed: bool) -> None:
    decision = enough_labels(trigger(skips_label_minimum=approver), RULES, new_labelled_rows=rows)
    assert decision.passed is passed
    assert f"{rows} new labelled rows (minimum 200)" in decision.reason
    assert decision.gate == ("" if passed else "too_few_labels")


# --- the service ---------------------------------------------------------------------------------


def dataset(count: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [float(offset + i) for i in range(count)],
            "plan": ["basic" if i % 2 else "premium" for i in range(count)],
            "label": ["yes" if i % 3 else "no" for i in range(count)],
        }
    )


class World:
    """A model `risk` in production, its accepted dataset uploaded a day ago, its contract published."""

    def __init__(self, *, production: bool = True) -> None:
        self.store = InMemoryObjectStore()
        self.registry = InMemoryRegistry(self.store)
        self.ledger = InMemoryDatasetLedger()
        document = contract_document("risk")
        self.contract = parse_contract(document)
        self.store.put_bytes(DATA, contract_key("risk"), self.contract.model_dump_json().encode())
        if production:
            event = trained_event("risk", score=0.9, contract=document)
            self.store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes("risk-0.9"))
            self.registry.register(event, actor="trainer")
        buffer = io.StringIO()
        dataset(500).to_csv(buffer, index=False)
        version = self.store.put_bytes(DATA, "datasets/risk/first.csv", buffer.getvalue().encode())
        ref = DatasetRef(
            bucket=DATA,
            key="datasets/risk/first.csv",
            version_id=version,
            sha256="a" * 64,
            size_bytes=len(buffer.getvalue()),
            rows=500,
            uploaded_at=(NOW - timedelta(days=1)).isoformat(),
        )
        entry = accepted_entry(ref, model_name="risk", at=(NOW - timedelta(days=1)).isoformat())
        self.ledger.record(entry.model_copy(update={"contract_digest": self.contract.digest}))

    def traffic(self, rows: int, *, hours_ago: float = 3) -> None:
        write_labelled_traffic(
            self.store, ARTIFACTS, dataset(rows, offset=10_000), answered_at=NOW - timedelta(hours=hours_ago)
        )

    def retrain(self, the_trigger: RetrainTrigger, now: datetime = NOW):  # type: ignore[no-untyped-def]
        return retrain(
            the_trigger,
            registry=self.registry,
            ledger=self.ledger,
            store=self.store,
            data_bucket=DATA,
            artifact_bucket=ARTIFACTS,
            now=now,
        )

    def actions(self) -> list[str]:
        return [e.action for e in self.registry.audit_events("risk")]


def test_retrain_writes_the_last_dataset_plus_labelled_traffic_under_datasets_and_audits_why() -> None:
    world = World()
    world.traffic(300)
    world.traffic(50, hours_ago=30)  # answered before the dataset was uploaded: already in it
    outcome = world.retrain(trigger())
    assert outcome.started
    assert outcome.dataset_key is not None
    assert outcome.dataset_key.startswith(f"datasets/risk/retrain-{NOW:%Y%m%dT%H%M%S}Z-")
    assert outcome.dataset_key.endswith(".parquet")
    written = pd.read_parquet(io.BytesIO(world.store.get_bytes(DATA, outcome.dataset_key)))
    assert list(written.columns) == ["x", "plan", "label"]
    assert len(written) == 800  # 500 accepted rows + the 300 labelled since
    assert written["x"].iloc[500:].tolist() == [float(10_000 + i) for i in range(300)]
    assert written["label"].iloc[500:].tolist() == dataset(300)["label"].tolist()
    events = world.registry.audit_events("risk")
    assert [e.action for e in events][-2:] == [AuditAction.RETRAIN_REQUESTED, AuditAction.RETRAIN_STARTED]
    started = events[-1]
    assert started.actor == "alarm:x"
    assert started.reason == "quality alarm"
    assert started.after["dataset_key"] == outcome.dataset_key
    assert (started.after["base_rows"], started.after["traffic_rows"]) == (500, 300)
    assert "300 new labelled rows" in started.after["gates"]


def test_retrain_skips_with_too_few_labels_and_says_so_in_the_audit_trail() -> None:
    world = World()
    world.traffic(120)
    outcome = world.retrain(trigger())
    assert not outcome.started
    assert outcome.gate == "too_few_labels"
    skipped = world.registry.audit_events("risk")[-1]
    assert skipped.action == AuditAction.RETRAIN_SKIPPED
    assert skipped.reason == "too few labels: 120 new labelled rows (minimum 200)"
    assert not [k for k in world.store.objects if k[1].startswith("datasets/risk/retrain-")]  # type: ignore[attr-defined]


def test_an_approvers_request_retrains_without_the_label_minimum_but_not_within_the_cooldown() -> None:
    world = World()
    world.traffic(10)
    approver = trigger(TriggerKind.APPROVER, actor="arn:approver", trigger_id="r-1", skips_label_minimum=True)
    assert world.retrain(approver).started
    again = world.retrain(
        trigger(TriggerKind.APPROVER, actor="arn:approver", trigger_id="r-2", skips_label_minimum=True),
        now=NOW + timedelta(hours=1),
    )
    assert (again.started, again.gate) == (False, "cooldown")
    # the models API audits an approver's request itself: no retrain_requested from the service
    assert AuditAction.RETRAIN_REQUESTED not in world.actions()
    admin = trigger(
        TriggerKind.APPROVER, actor="arn:admin", trigger_id="r-3", skips_label_minimum=True, overrides_cooldown=True
    )
    assert world.retrain(admin, now=NOW + timedelta(hours=1)).started


def test_retrain_without_a_production_version_is_skipped_and_audited() -> None:
    world = World(production=False)
    world.traffic(300)
    outcome = world.retrain(trigger())
    assert (outcome.started, outcome.gate) == (False, "no_production")
    assert world.actions() == [AuditAction.RETRAIN_REQUESTED, AuditAction.RETRAIN_SKIPPED]


def test_a_redelivered_trigger_resumes_its_own_retraining_instead_of_hitting_its_cooldown() -> None:
    world = World()
    world.traffic(300)
    first = world.retrain(trigger())
    redelivered = world.retrain(trigger(), now=NOW + timedelta(minutes=5))
    assert redelivered.started
    assert redelivered.dataset_key == first.dataset_key
    assert world.actions().count(AuditAction.RETRAIN_STARTED) == 1
    assert world.actions().count(AuditAction.RETRAIN_REQUESTED) == 1


@pytest.mark.parametrize("schedule", ["rate(7 days)", "rate(1 hour)", "cron(0 3 ? * MON *)"])
def test_the_contract_accepts_an_eventbridge_schedule(schedule: str) -> None:
    contract = parse_contract({**contract_document("risk"), "retraining": {"schedule": schedule}})
    assert contract.retraining.schedule == schedule


@pytest.mark.parametrize("schedule", ["rate(0 days)", "every week", "rate(7 weeks)", ""])
def test_the_contract_refuses_a_schedule_eventbridge_would_refuse(schedule: str) -> None:
    from mlops.errors import ContractError

    with pytest.raises(ContractError, match=r"retraining\.schedule"):
        parse_contract({**contract_document("risk"), "retraining": {"schedule": schedule}})


def test_default_retraining_rules_leave_existing_contract_digests_unchanged() -> None:
    document = contract_document("risk")
    assert parse_contract(document).digest == parse_contract({**document, "retraining": {}}).digest
    assert parse_contract(document).digest != parse_contract({**document, "retraining": {"cooldown_hours": 1}}).digest
