"""Property: whatever registrations, duplicates, approvals, promotions, rollbacks and alias moves
run CONCURRENTLY (threads, each with its own client of DynamoRegistry on moto, or the in-memory
fake), versions never repeat or skip, exactly the pointed-at version is in production, the audit
trail replays to the stored state (one event per state change) and its hash chain verifies."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.errors import ConflictError, NotFoundError
from mlops.registry.engine import RegistryEngine
from mlops.registry.records import AuditAction
from mlops.registry.service import verify_audit_trail
from tests.integration.test_registry_dynamodb import AtomicCalls
from tests.support.registry_fake import InMemoryRegistry, assert_registry_invariants, default_artifact, trained_event
from tests.support.resources import TestResources, create_resources

_models = itertools.count()
SCORES = 8

operation = st.one_of(
    st.tuples(st.just("register"), st.integers(0, SCORES - 1)),  # a score index; repeats are duplicates
    st.tuples(st.just("approve_promote"), st.integers(1, 4)),
    st.tuples(st.just("rollback"), st.none()),
    st.tuples(st.just("alias"), st.integers(1, 4)),
    st.tuples(st.just("reject"), st.integers(1, 4)),
)
# 2-3 threads, each a short sequence of operations, released together
schedules = st.lists(st.lists(operation, min_size=1, max_size=4), min_size=2, max_size=3)


class _Bucket:
    """The artifact bucket as assert_registry_invariants reads it."""

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return boto3.client("s3").get_object(Bucket=Bucket, Key=Key)


@pytest.fixture(scope="module")
def environment(moto_endpoint: str) -> Iterator[TestResources]:
    """One table and bucket for the module (hypothesis runs many examples per test); each example
    uses a model of its own instead of a reset."""
    variables = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in variables.items():
            patch.setenv(key, value)
        names = TestResources(
            data_bucket="property-data",
            artifact_bucket="mlops-artifacts",  # where trained_event's artifacts live
            registry_table="property-registry",
            idempotency_table="property-idempotency",
            event_bus_name="property-bus",
        )
        with contextlib.suppress(ClientError):  # left by an earlier run in this session
            create_resources(names)
        yield names


def _run(registry_for_thread: Any, name: str, schedule: list[list[tuple[str, int | None]]]) -> None:
    barrier = threading.Barrier(len(schedule))
    failures: list[BaseException] = []

    def work(operations: list[tuple[str, int | None]], thread: int) -> None:
        registry: RegistryEngine = registry_for_thread()
        barrier.wait()
        for op, argument in operations:
            try:
                if op == "register":
                    registry.register(trained_event(name, score=0.7 + (argument or 0) / 100), actor=f"t{thread}")
                elif op == "approve_promote":
                    registry.approve(name, argument or 1, actor=f"a{thread}", reason="")
                    registry.promote(name, argument or 1, actor=f"a{thread}", reason="")
                elif op == "rollback":
                    registry.rollback(name, actor=f"a{thread}", reason="")
                elif op == "alias":
                    registry.set_alias(name, "staging", argument or 1, actor=f"a{thread}", reason="")
                else:
                    registry.reject(name, argument or 1, actor=f"a{thread}", reason="")
            except (ConflictError, NotFoundError):
                pass  # refused by a rule, or lost a race: both are allowed outcomes
            except BaseException as error:
                failures.append(error)

    threads = [threading.Thread(target=work, args=(ops, i)) for i, ops in enumerate(schedule)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def _check(registry: RegistryEngine, name: str, schedule: list[list[tuple[str, int | None]]], bucket: Any) -> None:
    registered = {argument for ops in schedule for op, argument in ops if op == "register"}
    if not registered:
        return
    versions = registry.list_versions(name)  # type: ignore[attr-defined]
    # versions never repeat or skip: one per distinct artifact
    assert [v.version for v in versions] == list(range(1, len(registered) + 1))
    assert len({v.artifact.sha256 for v in versions}) == len(versions)
    events = registry.audit_events(name)  # type: ignore[attr-defined]
    assert sorted(e.version for e in events if e.action == AuditAction.REGISTERED) == [v.version for v in versions]
    record = registry.get_model(name)
    assert len(set(record.production_history)) == len(record.production_history)
    assert_registry_invariants(registry, bucket)  # one production version; audit replays to the state
    verdict = verify_audit_trail(registry, name)  # type: ignore[arg-type]
    assert verdict.ok, verdict


def _upload_artifacts(name: str, store: Any) -> None:
    for index in range(SCORES):
        event = trained_event(name, score=0.7 + index / 100)
        store.put_bytes(event.artifact_bucket, event.artifact_key, default_artifact(event))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedules)
def test_concurrent_operations_keep_the_registry_invariants_on_dynamodb(
    environment: TestResources, schedule: list[list[tuple[str, int | None]]]
) -> None:
    name = f"prop-{next(_models)}"
    store = S3ObjectStore()
    _upload_artifacts(name, store)
    # each thread its own client; AtomicCalls because moto does not isolate concurrent requests
    _run(lambda: DynamoRegistry(environment.registry_table, dynamodb=AtomicCalls(), artifacts=store), name, schedule)
    _check(DynamoRegistry(environment.registry_table, artifacts=store), name, schedule, _Bucket())


@settings(max_examples=40, deadline=None)
@given(schedules)
def test_concurrent_operations_keep_the_registry_invariants_in_memory(
    schedule: list[list[tuple[str, int | None]]],
) -> None:
    from tests.support.fakes import InMemoryObjectStore

    store = InMemoryObjectStore()
    registry = InMemoryRegistry(artifacts=store)
    _upload_artifacts("prop", store)
    _run(lambda: registry, "prop", schedule)

    class Bucket:
        def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
            import io

            return {"Body": io.BytesIO(store.get_bytes(Bucket, Key))}

    _check(registry, "prop", schedule, Bucket())
