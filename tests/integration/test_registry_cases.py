"""One suite of registry cases, run against the in-memory fake and DynamoRegistry on moto (a
parametrized fixture), so the fake can never drift from the adapter. Every case ends with the
invariants: one production version, audit trail replays to the state, the hash chain verifies."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mlops.errors import ConflictError, IntegrityError
from mlops.events import ModelTrained
from mlops.ports import ObjectStore
from mlops.registry.engine import RegistryEngine
from mlops.registry.records import AuditAction, VersionStatus
from mlops.registry.service import verify_audit_trail
from tests.support.fakes import InMemoryObjectStore
from tests.support.registry_fake import (
    InMemoryRegistry,
    assert_registry_invariants,
    contract_document,
    default_artifact,
    trained_event,
)

TRAINER = "arn:aws:lambda:us-east-1:123456789012:function:register-model"
ALICE = "arn:aws:sts::123456789012:assumed-role/approvers/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/approvers/bob"


@dataclass
class Setup:
    registry: RegistryEngine
    store: ObjectStore
    new_client: Callable[[], RegistryEngine]  # another client of the same registry (a thread's own)

    def register(self, event: ModelTrained) -> Any:
        """Upload the artifact first, as the trainer does, then register it."""
        self.store.put_bytes(event.artifact_bucket, event.artifact_key, default_artifact(event))
        return self.registry.register(event, actor=TRAINER)

    def tamper(self, version: int, name: str = "churn") -> None:
        artifact = self.registry.get_version(name, version).artifact
        self.store.put_bytes(artifact.bucket, artifact.key, b"x" * artifact.size_bytes)


@pytest.fixture(params=["memory", "dynamodb"])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    if request.param == "memory":
        store: ObjectStore = InMemoryObjectStore()
        registry: RegistryEngine = InMemoryRegistry(artifacts=store)
        made = Setup(registry, store, lambda: registry)
    else:
        request.getfixturevalue("aws")
        from mlops.adapters.registry_dynamodb import DynamoRegistry
        from mlops.adapters.s3 import S3ObjectStore
        from tests.integration.test_registry_dynamodb import AtomicCalls
        from tests.support.resources import create_resources

        names = create_resources()
        store = S3ObjectStore()
        made = Setup(
            DynamoRegistry(names.registry_table, artifacts=store),
            store,
            lambda: DynamoRegistry(names.registry_table, dynamodb=AtomicCalls(), artifacts=store),
        )
    yield made
    for record in made.registry.list_models():
        verdict = verify_audit_trail(made.registry, record.name)  # type: ignore[arg-type]
        assert verdict.ok, verdict
    if made.registry.list_models():
        _assert_invariants(made)


def _assert_invariants(setup: Setup) -> None:
    assert_registry_invariants(setup.registry, _S3View(setup.store))


class _S3View:
    """assert_registry_invariants reads artifacts with `get_object`; this serves it from any store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        import io

        return {"Body": io.BytesIO(self.store.get_bytes(Bucket, Key))}


def _trail(setup: Setup, name: str = "churn") -> list[tuple[str, int | None, dict[str, Any], dict[str, Any]]]:
    return [(e.action, e.version, e.before, e.after) for e in setup.registry.audit_events(name)]


def test_registry_case_registration_promotes_and_archives_with_the_same_trail(setup: Setup) -> None:
    setup.register(trained_event(score=0.8))
    setup.register(trained_event(score=0.9))
    setup.register(trained_event(score=0.85))

    events = setup.registry.audit_events("churn")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    trail = [(action, version, before, after) for action, version, before, after in _trail(setup)]
    sha1, sha2, sha3 = (setup.registry.get_version("churn", v).artifact.sha256 for v in (1, 2, 3))
    metrics = {"roc_auc": 0.8, "accuracy": 0.75, "tiny": 1e-12}
    assert trail[0] == ("registered", 1, {}, {"status": "candidate", "artifact_sha256": sha1, "metrics": metrics})
    assert trail[1:] == [
        (
            "promoted",
            1,
            {"production_version": None, "status": "candidate"},
            {"production_version": 1, "status": "production"},
        ),
        ("registered", 2, {}, {"status": "candidate", "artifact_sha256": sha2, "metrics": {**metrics, "roc_auc": 0.9}}),
        ("archived", 1, {"status": "production"}, {"status": "archived", "replaced_by": 2}),
        (
            "promoted",
            2,
            {"production_version": 1, "status": "candidate"},
            {"production_version": 2, "status": "production"},
        ),
        (
            "registered",
            3,
            {},
            {"status": "candidate", "artifact_sha256": sha3, "metrics": {**metrics, "roc_auc": 0.85}},
        ),
        ("promotion_declined", 3, {"production_version": 2}, {"production_version": 2}),
    ]
    moves = setup.registry.alias_history("churn")
    assert [(m.from_version, m.to_version, m.audit_seq) for m in moves] == [(None, 1, 2), (1, 2, 5)]


def test_registry_case_duplicate_artifact_is_the_same_version(setup: Setup) -> None:
    first = setup.register(trained_event(score=0.8))
    again = setup.register(trained_event(score=0.8))
    assert (first.created, again.created, again.version.version) == (True, False, 1)
    assert [a for a, *_ in _trail(setup)] == ["registered", "promoted"]


def test_registry_case_approve_promote_rollback_and_aliases(setup: Setup) -> None:
    registry = setup.registry
    setup.register(trained_event(score=0.9))
    setup.register(trained_event(score=0.8))
    registry.approve("churn", 2, actor=ALICE, reason="reviewed")
    assert registry.get_version("churn", 2).approved_by == ALICE
    promoted = registry.promote("churn", 2, actor=ALICE, reason="go")
    assert (promoted.previous_production, promoted.model.production_history) == (1, [1, 2])
    back = registry.rollback("churn", actor=BOB, reason="drift")
    assert (back.version.version, back.previous_production, back.model.production_history) == (1, 2, [1])
    registry.set_alias("churn", "challenger", 1, actor=ALICE, reason="shadow")
    with pytest.raises(ConflictError):
        registry.set_alias("churn", "challenger", 2, actor=ALICE, reason="archived now")
    assert [a for a, *_ in _trail(setup)][-5:] == ["archived", "promoted", "archived", "rolled_back", "alias_moved"]
    assert [(m.from_version, m.to_version) for m in registry.alias_history("churn")] == [(None, 1), (1, 2), (2, 1)]


def test_registry_case_idempotent_requests_replay(setup: Setup) -> None:
    registry = setup.registry
    setup.register(trained_event(score=0.9))
    setup.register(trained_event(score=0.8))
    first = registry.approve("churn", 2, actor=ALICE, reason="ok", idempotency_key="k")
    again = registry.approve("churn", 2, actor=ALICE, reason="ok", idempotency_key="k")
    assert (first.replayed, again.replayed, again.from_status) == (False, True, "candidate")
    assert [a for a, *_ in _trail(setup)].count("approved") == 1


def test_registry_case_rejected_is_final(setup: Setup) -> None:
    registry = setup.registry
    setup.register(trained_event(score=0.9))
    setup.register(trained_event(score=0.8))
    registry.reject("churn", 2, actor=ALICE, reason="bias")
    for attempt in (
        lambda: registry.approve("churn", 2, actor=ALICE, reason=""),
        lambda: registry.promote("churn", 2, actor=ALICE, reason=""),
        lambda: registry.rollback("churn", actor=ALICE, reason="", to_version=2),
        lambda: registry.archive("churn", 1, actor=ALICE, reason=""),
    ):
        with pytest.raises(ConflictError):
            attempt()


@pytest.mark.parametrize("to_version", [None, 1])
def test_registry_case_rollback_verifies_the_restored_artifact(setup: Setup, to_version: int | None) -> None:
    # GIVEN v1 was production, v2 replaced it, and v1's artifact was then tampered with
    setup.register(trained_event(score=0.8))
    setup.register(trained_event(score=0.9))
    setup.tamper(1)

    # WHEN someone rolls back (to the previous production version, named or not)
    with pytest.raises(IntegrityError):
        setup.registry.rollback("churn", actor=ALICE, reason="incident", to_version=to_version)

    # THEN nothing changed: v2 still serves, v1 stays archived
    assert setup.registry.production("churn").version == 2  # type: ignore[union-attr]
    assert setup.registry.get_version("churn", 1).status is VersionStatus.ARCHIVED
    assert [a for a, *_ in _trail(setup)][-1] == "promoted"


def test_registry_case_promote_of_a_tampered_artifact_rejects_it(setup: Setup) -> None:
    setup.register(trained_event(score=0.9))
    setup.register(trained_event(score=0.8))
    setup.registry.approve("churn", 2, actor=ALICE, reason="ok")
    setup.tamper(2)
    with pytest.raises(IntegrityError):
        setup.registry.promote("churn", 2, actor=BOB, reason="go")
    assert setup.registry.get_version("churn", 2).status is VersionStatus.REJECTED
    assert setup.registry.production("churn").version == 1  # type: ignore[union-attr]


def test_registry_case_auto_promotion_of_a_tampered_artifact_rejects_it(setup: Setup) -> None:
    # the artifact changes between its upload and the promotion decision
    event = trained_event(score=0.8)
    setup.store.put_bytes(event.artifact_bucket, event.artifact_key, b"y" * event.artifact_bytes)
    result = setup.registry.register(event, actor=TRAINER)
    assert (result.promoted, result.version.status) == (False, VersionStatus.REJECTED)
    assert "integrity check failed" in result.decision
    assert setup.registry.production("churn") is None


def test_registry_case_four_eyes_needs_two_people(setup: Setup) -> None:
    contract = {**contract_document(), "promotion": {"four_eyes": True}}
    # GIVEN a contract requiring four eyes: a version that beats the minimum is not auto-promoted
    result = setup.register(trained_event(score=0.8, contract=contract))
    assert not result.promoted
    assert "two people" in result.decision
    # WHEN alice approves and promotes it THEN she is refused; bob may promote it
    setup.registry.approve("churn", 1, actor=ALICE, reason="looks good")
    with pytest.raises(ConflictError, match="four eyes"):
        setup.registry.promote("churn", 1, actor=ALICE, reason="go")
    change = setup.registry.promote("churn", 1, actor=BOB, reason="go")
    assert change.model.production_version == 1


def test_registry_case_dataset_reviews_join_the_chain(setup: Setup) -> None:
    # a review before any version exists creates the model's trail
    event = setup.registry.record_dataset_review(
        "churn", "train.csv-0123456789abcdef", "approve", "accepted", actor=ALICE, reason="known promo"
    )
    again = setup.registry.record_dataset_review(
        "churn", "train.csv-0123456789abcdef", "approve", "accepted", actor=ALICE, reason="known promo"
    )
    assert (event.seq, again.seq, event.action) == (1, 1, AuditAction.DATASET_REVIEWED)
    assert setup.registry.get_model("churn").latest_version == 0
    setup.register(trained_event(score=0.8))
    assert [(e.seq, e.action) for e in setup.registry.audit_events("churn")] == [
        (1, "dataset_reviewed"),
        (2, "registered"),
        (3, "promoted"),
    ]


def test_registry_case_concurrent_changes_keep_the_invariants(setup: Setup) -> None:
    # GIVEN v1 in production and three approved candidates
    setup.register(trained_event(score=0.95))
    for score in (0.81, 0.82, 0.83):
        version = setup.register(trained_event(score=score)).version.version
        setup.registry.approve("churn", version, actor=ALICE, reason="ok")
    barrier = threading.Barrier(6)
    outcomes: list[Any] = []

    def run(work: Callable[[RegistryEngine], Any]) -> None:
        client = setup.new_client()
        barrier.wait()
        try:
            outcomes.append(work(client))
        except ConflictError as error:
            outcomes.append(error)

    works: list[Callable[[RegistryEngine], Any]] = [
        lambda r: r.promote("churn", 2, actor=BOB, reason="a"),
        lambda r: r.promote("churn", 3, actor=BOB, reason="b"),
        lambda r: r.set_alias("churn", "staging", 4, actor=BOB, reason="c"),
        lambda r: r.register(trained_event(score=0.5), actor=TRAINER),
        lambda r: r.register(trained_event(score=0.51), actor=TRAINER),
        lambda r: r.reject("churn", 4, actor=BOB, reason="d"),
    ]
    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN versions never repeat, every registration got its own, one production version remains
    versions = [v.version for v in setup.registry.list_versions("churn")]
    assert versions == [1, 2, 3, 4, 5, 6]
    registered = [e.version for e in setup.registry.audit_events("churn") if e.action == AuditAction.REGISTERED]
    assert sorted(registered) == versions
    promotions = [o for o in outcomes if getattr(o, "action", None) == "promoted"]
    assert 1 <= len(promotions) <= 2
