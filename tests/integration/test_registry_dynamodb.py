"""DynamoRegistry against the moto server: allocation, promotion, duplicates, rollback, races."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import boto3
import pytest

from mlops.adapters.registry_dynamodb import DynamoRegistry, from_dynamo, to_dynamo
from mlops.errors import BadRequestError, ConflictError, ModelNotFoundError, VersionNotFoundError
from mlops.events import ModelTrained
from mlops.registry.records import AuditAction, RegistrationResult, VersionStatus
from tests.support.registry_fake import assert_registry_invariants, contract_document, default_artifact, trained_event
from tests.support.resources import TestResources, create_resources

ACTOR = "arn:aws:lambda:us-east-1:123456789012:function:register-model"


@pytest.fixture
def resources(aws: str) -> TestResources:
    return create_resources()


class ArtifactRegistry(DynamoRegistry):
    """Uploads each event's artifact first, as the trainer does before announcing it."""

    def register(self, trained: ModelTrained, *, actor: str, request_id: str = "") -> RegistrationResult:
        boto3.client("s3").put_object(
            Bucket=trained.artifact_bucket, Key=trained.artifact_key, Body=default_artifact(trained)
        )
        return super().register(trained, actor=actor, request_id=request_id)


@pytest.fixture
def registry(resources: TestResources) -> Iterator[DynamoRegistry]:
    registry = ArtifactRegistry(resources.registry_table)
    yield registry
    assert_one_production_version(registry)
    assert_registry_invariants(registry, boto3.client("s3"))


class AtomicCalls:
    """A DynamoDB client whose calls run one at a time, as DynamoDB itself isolates each request.

    Needed because moto 5.2.5 does not isolate concurrent requests: a cancelled transaction
    restores a deep copy of the whole table taken when it began, erasing writes other threads made
    meanwhile. Our code still interleaves freely *between* calls, which is where its races live.
    """

    _lock = threading.Lock()

    def __init__(self) -> None:
        self._client = boto3.client("dynamodb")

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name == "get_paginator":
            return attribute

        def call(*args: object, **kwargs: object) -> object:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def run_concurrently(count: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(i)` on `count` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    results: list[object] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results.append(work(index))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def assert_one_production_version(registry: DynamoRegistry) -> None:
    """The invariant: per model, at most one version is in production, and it is the one the
    model item points at (and the top of its production history)."""
    for record in registry.list_models():
        in_production = [v.version for v in registry.list_versions(record.name) if v.status is VersionStatus.PRODUCTION]
        expected = [] if record.production_version is None else [record.production_version]
        assert in_production == expected, f"{record.name}: production versions {in_production}, pointer {expected}"
        if record.production_version is not None:
            assert record.production_history[-1] == record.production_version


def test_register_first_version_goes_to_production(registry: DynamoRegistry) -> None:
    # GIVEN a model never seen WHEN its first version is registered
    result = registry.register(trained_event(score=0.8), actor=ACTOR, request_id="req-1")

    # THEN it is v1, in production, with its lineage recorded
    assert (result.created, result.promoted, result.previous_production) == (True, True, None)
    assert result.version.version == 1
    assert "no production version" in result.decision
    stored = registry.get_version("churn", 1)
    assert stored.status is VersionStatus.PRODUCTION
    assert stored.metrics == {"roc_auc": 0.8, "accuracy": 0.75, "tiny": 1e-12}
    assert stored.lineage["seed"] == 42
    assert stored.lineage["onnx_max_abs_diff"] == 1.5e-7
    assert stored.lineage["dataset"]["key"] == "datasets/churn/train.csv"
    assert stored.lineage["params"] == {"C": 0.5, "max_iter": 200, "class_weight": None}
    assert stored.contract["metric"]["at_least"] == 0.7
    assert stored.promotion_decision == result.decision
    record = registry.get_model("churn")
    assert (record.latest_version, record.production_version, record.production_history) == (1, 1, [1])
    assert registry.production("churn") == stored
    actions = [e.action for e in registry.audit_events("churn")]
    assert actions == [AuditAction.REGISTERED, AuditAction.PROMOTED]


def test_register_worse_version_stays_candidate_with_reason(registry: DynamoRegistry) -> None:
    registry.register(trained_event(score=0.8), actor=ACTOR)

    result = registry.register(trained_event(score=0.75), actor=ACTOR)

    assert (result.version.version, result.created, result.promoted) == (2, True, False)
    assert result.version.status is VersionStatus.CANDIDATE
    assert "does not beat production v1" in result.decision
    assert registry.get_version("churn", 2).promotion_decision == result.decision
    assert registry.production("churn").version == 1  # type: ignore[union-attr]
    declined = registry.audit_events("churn")[-1]
    assert (declined.action, declined.version, declined.reason) == (AuditAction.PROMOTION_DECLINED, 2, result.decision)


def test_register_below_minimum_is_not_promoted_even_without_champion(registry: DynamoRegistry) -> None:
    result = registry.register(trained_event(score=0.6), actor=ACTOR)

    assert not result.promoted
    assert "does not meet the contract minimum" in result.decision
    assert registry.production("churn") is None
    assert registry.get_model("churn").production_version is None


def test_register_better_version_replaces_production_and_archives_old(registry: DynamoRegistry) -> None:
    registry.register(trained_event(score=0.8), actor=ACTOR)
    registry.register(trained_event(score=0.75), actor=ACTOR)

    result = registry.register(trained_event(score=0.9), actor=ACTOR)

    assert (result.version.version, result.promoted, result.previous_production) == (3, True, 1)
    statuses = {v.version: v.status for v in registry.list_versions("churn")}
    assert statuses == {1: VersionStatus.ARCHIVED, 2: VersionStatus.CANDIDATE, 3: VersionStatus.PRODUCTION}
    record = registry.get_model("churn")
    assert (record.latest_version, record.production_version, record.production_history) == (3, 3, [1, 3])
    trail = [(e.action, e.version) for e in registry.audit_events("churn")][-3:]
    assert trail == [(AuditAction.REGISTERED, 3), (AuditAction.ARCHIVED, 1), (AuditAction.PROMOTED, 3)]


def test_register_duplicate_artifact_returns_existing_version(registry: DynamoRegistry) -> None:
    event = trained_event(score=0.8)
    first = registry.register(event, actor=ACTOR)

    again = registry.register(event, actor=ACTOR)

    assert (again.created, again.promoted, again.version.version) == (False, False, first.version.version)
    assert registry.get_model("churn").latest_version == 1
    assert len(registry.list_versions("churn")) == 1
    assert [e.action for e in registry.audit_events("churn")].count(AuditAction.REGISTERED) == 1


def test_rollback_restores_previous_production_and_is_audited(registry: DynamoRegistry) -> None:
    registry.register(trained_event(score=0.8), actor=ACTOR)
    registry.register(trained_event(score=0.9), actor=ACTOR)

    record = registry.rollback(
        "churn", actor="arn:aws:iam::1:user/alice", reason="bad predictions", request_id="r-9"
    ).model

    assert (record.production_version, record.production_history) == (1, [1])
    assert registry.get_model("churn").production_version == 1
    assert registry.production("churn").version == 1  # type: ignore[union-attr]
    assert registry.get_version("churn", 2).status is VersionStatus.ARCHIVED
    event = registry.audit_events("churn")[-1]
    assert (event.action, event.actor, event.reason, event.request_id) == (
        AuditAction.ROLLED_BACK,
        "arn:aws:iam::1:user/alice",
        "bad predictions",
        "r-9",
    )
    assert (event.before["production_version"], event.after["production_version"]) == (2, 1)
    # nothing left below v1
    with pytest.raises(ConflictError, match="nothing to roll back to"):
        registry.rollback("churn", actor="alice", reason="again")


def test_rollback_to_named_version_and_then_a_new_champion(registry: DynamoRegistry) -> None:
    for score in (0.8, 0.85, 0.9):
        registry.register(trained_event(score=score), actor=ACTOR)
    assert registry.get_model("churn").production_history == [1, 2, 3]

    record = registry.rollback("churn", actor="bob", reason="", to_version=1).model

    assert (record.production_version, record.production_history) == (1, [1])
    # a later better model is compared with the restored champion
    result = registry.register(trained_event(score=0.82), actor=ACTOR)
    assert result.promoted
    assert result.previous_production == 1
    assert registry.get_model("churn").production_history == [1, 4]


@pytest.mark.parametrize(
    ("to_version", "error"),
    [(3, ConflictError), (2, ConflictError), (99, VersionNotFoundError)],
)
def test_rollback_refuses_bad_targets(registry: DynamoRegistry, to_version: int, error: type[Exception]) -> None:
    registry.register(trained_event(score=0.8), actor=ACTOR)
    registry.register(trained_event(score=0.7), actor=ACTOR)  # v2 candidate, never production
    registry.register(trained_event(score=0.9), actor=ACTOR)  # v3 production

    with pytest.raises(error):
        registry.rollback("churn", actor="bob", reason="", to_version=to_version)
    assert registry.get_model("churn").production_version == 3


def test_rollback_without_production_is_a_conflict(registry: DynamoRegistry) -> None:
    registry.register(trained_event(score=0.1), actor=ACTOR)
    with pytest.raises(ConflictError, match="no production version"):
        registry.rollback("churn", actor="bob", reason="")


def test_reads_of_unknown_model_raise_not_found(registry: DynamoRegistry) -> None:
    for call in (
        lambda: registry.get_model("nope"),
        lambda: registry.get_version("nope", 1),
        lambda: registry.list_versions("nope"),
        lambda: registry.production("nope"),
        lambda: registry.audit_events("nope"),
        lambda: registry.rollback("nope", actor="a", reason=""),
    ):
        with pytest.raises(ModelNotFoundError):
            call()
    registry.register(trained_event(score=0.8), actor=ACTOR)
    with pytest.raises(VersionNotFoundError):
        registry.get_version("churn", 2)


@pytest.mark.parametrize("name", ["Churn", "a/b", "churn#VERSION", "", "x" * 64, "../etc"])
def test_invalid_model_names_are_bad_requests(registry: DynamoRegistry, name: str) -> None:
    with pytest.raises(BadRequestError):
        registry.get_model(name)


def test_list_models_and_lower_is_better_metric(registry: DynamoRegistry) -> None:
    contract = contract_document("prices", metric="rmse", threshold=10.0)
    registry.register(trained_event("prices", score=5.0, contract=contract), actor=ACTOR)
    worse = registry.register(trained_event("prices", score=6.0, contract=contract), actor=ACTOR)
    better = registry.register(trained_event("prices", score=4.0, contract=contract), actor=ACTOR)
    registry.register(trained_event("churn", score=0.8), actor=ACTOR)

    assert not worse.promoted
    assert "lower is better" in worse.decision
    assert better.promoted
    assert [(m.name, m.latest_version, m.production_version) for m in registry.list_models()] == [
        ("churn", 1, 1),
        ("prices", 3, 3),
    ]


def test_concurrent_registrations_allocate_versions_without_gaps_or_repeats(registry: DynamoRegistry) -> None:
    # GIVEN 8 threads, each with its own artifact of one model, released at once
    events = [trained_event(score=0.71 + i / 100) for i in range(8)]

    def register(index: int) -> int:
        own = ArtifactRegistry(registry.table_name, dynamodb=AtomicCalls())
        return own.register(events[index], actor=ACTOR).version.version

    versions = run_concurrently(len(events), register)

    # THEN versions 1..8, each once, and the model's counter agrees
    assert sorted(versions) == list(range(1, 9))  # type: ignore[type-var]
    assert [v.version for v in registry.list_versions("churn")] == list(range(1, 9))
    assert registry.get_model("churn").latest_version == 8
    # the best of them ended in production, whatever the order of the promotions
    assert registry.production("churn").metrics["roc_auc"] == pytest.approx(0.78)  # type: ignore[union-attr]


def test_concurrent_duplicates_of_one_artifact_make_one_version(registry: DynamoRegistry) -> None:
    event = trained_event(score=0.8)

    def register(_: int) -> tuple[int, bool]:
        result = ArtifactRegistry(registry.table_name, dynamodb=AtomicCalls()).register(event, actor=ACTOR)
        return result.version.version, result.created

    results = run_concurrently(4, register)

    assert sorted(results) == [(1, False), (1, False), (1, False), (1, True)]  # type: ignore[type-var]
    assert registry.get_model("churn").latest_version == 1
    assert registry.production("churn").version == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value",
    [0.1, 1e-12, 1.0, 123456789.123, -0.5, 10**20, {"a": [1.5, None, True, "x"]}, float("nan"), float("inf")],
)
def test_dynamo_number_conversion_round_trips(value: object) -> None:
    back = from_dynamo(to_dynamo(value))
    if isinstance(value, float) and value != value:
        assert back == "NaN"
    elif value == float("inf"):
        assert back == "Infinity"
    else:
        assert back == value
