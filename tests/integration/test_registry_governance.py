"""Lifecycle invariants of DynamoRegistry on moto: manual promotion, concurrent promotions,
crash-and-retry registration, idempotent requests, alias history and served-at, the audit
partition. Every test ends with `assert_registry_invariants` (one production alias per model,
pointing at an existing version whose artifact bytes match; audit trail replays to the state)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from mlops.adapters.registry_dynamodb import DynamoRegistry, audit_pk
from mlops.errors import ConflictError
from mlops.registry.records import AuditAction, VersionStatus
from mlops.registry.service import IdempotencyKeyReusedError
from tests.integration.test_registry_dynamodb import ArtifactRegistry, AtomicCalls, run_concurrently
from tests.support.registry_fake import assert_registry_invariants, contract_document, trained_event
from tests.support.resources import TestResources, create_resources

ACTOR = "arn:aws:lambda:us-east-1:123456789012:function:register-model"
ALICE = "arn:aws:sts::123456789012:assumed-role/approvers/alice"


@pytest.fixture
def resources(aws: str) -> TestResources:
    return create_resources()


@pytest.fixture
def registry(resources: TestResources) -> Iterator[DynamoRegistry]:
    registry = ArtifactRegistry(resources.registry_table)
    yield registry
    assert_registry_invariants(registry, boto3.client("s3"))


def _approved_candidates(registry: DynamoRegistry, count: int) -> list[int]:
    """v1 production, then `count` declined candidates, each approved."""
    registry.register(trained_event(score=0.9), actor=ACTOR)
    numbers = []
    for index in range(count):
        version = registry.register(trained_event(score=0.71 + index / 1000), actor=ACTOR).version.version
        registry.approve("churn", version, actor=ALICE, reason="reviewed")
        numbers.append(version)
    return numbers


def test_manual_promotion_mode_waits_for_approval(registry: DynamoRegistry) -> None:
    contract = {**contract_document(), "promotion": {"mode": "manual"}}
    result = registry.register(trained_event(score=0.8, contract=contract), actor=ACTOR)

    assert not result.promoted
    assert "requires manual approval" in result.decision
    assert registry.production("churn") is None

    registry.approve("churn", 1, actor=ALICE, reason="four eyes")
    change = registry.promote("churn", 1, actor=ALICE, reason="go")

    assert (change.model.production_version, change.previous_production) == (1, None)
    assert registry.production("churn").version == 1  # type: ignore[union-attr]
    assert [(m.from_version, m.to_version, m.actor) for m in registry.alias_history("churn")] == [(None, 1, ALICE)]


def test_rejected_version_is_final(registry: DynamoRegistry) -> None:
    registry.register(trained_event(score=0.9), actor=ACTOR)
    registry.register(trained_event(score=0.8), actor=ACTOR)
    registry.reject("churn", 2, actor=ALICE, reason="bias found")

    for attempt in (
        lambda: registry.approve("churn", 2, actor=ALICE, reason=""),
        lambda: registry.promote("churn", 2, actor=ALICE, reason=""),
        lambda: registry.set_alias("churn", "staging", 2, actor=ALICE, reason=""),
        lambda: registry.rollback("churn", actor=ALICE, reason="", to_version=2),
    ):
        with pytest.raises(ConflictError):
            attempt()
    assert registry.get_version("churn", 2).status is VersionStatus.REJECTED


def test_concurrent_promotions_exactly_one_wins(registry: DynamoRegistry) -> None:
    # GIVEN 8 approved versions WHEN 8 approvers promote a different one each, at once
    candidates = _approved_candidates(registry, 8)

    # every thread reads the same production before any of them writes: truly concurrent
    gate = threading.Barrier(len(candidates))

    def promote(index: int) -> Any:
        own = DynamoRegistry(registry.table_name, dynamodb=GatedCalls(gate))
        try:
            return own.promote("churn", candidates[index], actor=f"{ALICE}-{index}", reason="race")
        except ConflictError as error:
            return error

    outcomes = run_concurrently(len(candidates), promote)

    # THEN exactly one won, every other got a ConflictError, and one production version remains
    winners = [o for o in outcomes if not isinstance(o, ConflictError)]
    assert len(winners) == 1
    assert sum(isinstance(o, ConflictError) for o in outcomes) == len(candidates) - 1
    [winner] = winners
    assert registry.production("churn").version == winner.version.version  # type: ignore[union-attr]
    promoted = [e for e in registry.audit_events("churn") if e.action == AuditAction.PROMOTED]
    assert [e.version for e in promoted] == [1, winner.version.version]


def test_concurrent_duplicates_with_one_idempotency_key_change_state_once(registry: DynamoRegistry) -> None:
    [candidate] = _approved_candidates(registry, 1)

    def promote(_: int) -> Any:
        own = DynamoRegistry(registry.table_name, dynamodb=AtomicCalls())
        return own.promote("churn", candidate, actor=ALICE, reason="go", idempotency_key="req-42")

    outcomes = run_concurrently(6, promote)

    assert sorted(o.replayed for o in outcomes) == [False] + [True] * 5  # type: ignore[attr-defined]
    assert {o.model.production_version for o in outcomes} == {candidate}  # type: ignore[attr-defined]
    actions = [e.action for e in registry.audit_events("churn")]
    assert actions.count(AuditAction.PROMOTED) == 2  # v1 at registration, the candidate once
    with pytest.raises(IdempotencyKeyReusedError):
        registry.promote("churn", candidate, actor=ALICE, reason="other reason", idempotency_key="req-42")


def test_idempotent_rollback_retry_is_a_replay(registry: DynamoRegistry) -> None:
    registry.register(trained_event(score=0.8), actor=ACTOR)
    registry.register(trained_event(score=0.9), actor=ACTOR)

    first = registry.rollback("churn", actor=ALICE, reason="bad", idempotency_key="k1")
    again = registry.rollback("churn", actor=ALICE, reason="bad", idempotency_key="k1")

    assert (first.replayed, again.replayed) == (False, True)
    assert again.model == first.model
    assert [e.action for e in registry.audit_events("churn")].count(AuditAction.ROLLED_BACK) == 1


class GatedCalls(AtomicCalls):
    """AtomicCalls whose transactions wait until every thread has done its reads."""

    def __init__(self, gate: threading.Barrier) -> None:
        super().__init__()
        self._gate = gate

    def transact_write_items(self, **kwargs: Any) -> Any:
        self._gate.wait(timeout=30)
        with self._lock:
            return self._client.transact_write_items(**kwargs)


class CrashingCalls:
    """A DynamoDB client that dies (like a timed-out Lambda) on the n-th transaction."""

    def __init__(self, crash_on: int) -> None:
        self._client = boto3.client("dynamodb")
        self._transactions = 0
        self._crash_on = crash_on

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self._transactions += 1
        if self._transactions == self._crash_on:
            raise TimeoutError("Lambda timed out")
        return self._client.transact_write_items(**kwargs)


@pytest.mark.parametrize("crash_on", [1, 2])  # 1: before any registry write; 2: after allocation
def test_crash_between_artifact_and_registry_leaves_no_dangling_pointer(
    registry: DynamoRegistry, crash_on: int
) -> None:
    registry.register(trained_event(score=0.8), actor=ACTOR)  # v1 in production
    better = trained_event(score=0.9)
    crashing = ArtifactRegistry(registry.table_name, dynamodb=CrashingCalls(crash_on))

    with pytest.raises(TimeoutError):
        crashing.register(better, actor=ACTOR)

    # THEN production still points at v1, whose artifact is intact (checked by the invariants)
    assert registry.production("churn").version == 1  # type: ignore[union-attr]
    assert_registry_invariants(registry, boto3.client("s3"))

    # WHEN the event is retried THEN registration completes, once
    result = registry.register(better, actor=ACTOR)
    assert (result.version.version, result.promoted) == (2, True)
    again = registry.register(better, actor=ACTOR)
    assert (again.created, again.version.version) == (False, 2)
    actions = [(e.action, e.version) for e in registry.audit_events("churn")]
    assert actions.count((AuditAction.REGISTERED, 2)) == 1
    assert actions.count((AuditAction.PROMOTED, 2)) == 1


def test_served_at_answers_which_version_served_when(registry: DynamoRegistry) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    registry.register(trained_event(score=0.8), actor=ACTOR)
    registry.register(trained_event(score=0.9), actor=ACTOR)
    registry.rollback("churn", actor=ALICE, reason="drift")

    moves = registry.alias_history("churn")
    assert [(m.from_version, m.to_version) for m in moves] == [(None, 1), (1, 2), (2, 1)]
    assert registry.served_at("churn", before) is None
    for move in moves:
        assert registry.served_at("churn", move.at) == move
        assert registry.served_at("churn", move.at + timedelta(microseconds=500)).to_version == move.to_version  # type: ignore[union-attr]
    assert registry.served_at("churn", datetime.now(UTC)).to_version == 1  # type: ignore[union-attr]
    assert moves[-1].actor == ALICE
    assert moves[-1].reason == "drift"


def test_named_aliases_move_with_history(registry: DynamoRegistry) -> None:
    registry.register(trained_event(score=0.9), actor=ACTOR)
    registry.register(trained_event(score=0.8), actor=ACTOR)
    registry.register(trained_event(score=0.85), actor=ACTOR)

    registry.set_alias("churn", "challenger", 2, actor=ALICE, reason="shadow test")
    registry.set_alias("churn", "staging", 3, actor=ALICE, reason="")
    change = registry.set_alias("churn", "challenger", 3, actor=ALICE, reason="newer")

    assert change.model.aliases == {"challenger": 3, "staging": 3}
    assert registry.get_model("churn").aliases == {"challenger": 3, "staging": 3}
    history = registry.alias_history("churn", "challenger")
    assert [(m.from_version, m.to_version, m.reason) for m in history] == [(None, 2, "shadow test"), (2, 3, "newer")]
    assert registry.served_at("churn", history[0].at, "challenger").to_version == 2  # type: ignore[union-attr]


def test_archive_refuses_production_and_audit_lives_in_its_own_partition(
    registry: DynamoRegistry, resources: TestResources
) -> None:
    registry.register(trained_event(score=0.9), actor=ACTOR)
    registry.register(trained_event(score=0.8), actor=ACTOR)
    with pytest.raises(ConflictError, match="in production"):
        registry.archive("churn", 1, actor=ALICE, reason="")
    registry.archive("churn", 2, actor=ALICE, reason="superseded")
    assert registry.get_version("churn", 2).status is VersionStatus.ARCHIVED

    items = boto3.client("dynamodb").query(
        TableName=resources.registry_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": audit_pk("churn")}},
    )["Items"]
    kinds = sorted({item["sk"]["S"].split("#", 1)[0] for item in items})
    assert kinds == ["ALIAS", "EVENT"]
    assert len([i for i in items if i["sk"]["S"].startswith("EVENT#")]) == len(registry.audit_events("churn"))
