"""Property: whatever sequence of registrations, duplicates and rollbacks, versions never repeat or
skip and exactly the pointed-at version is in production (DynamoRegistry on moto)."""

from __future__ import annotations

import contextlib
import itertools

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.errors import ConflictError
from mlops.registry.records import VersionStatus
from tests.support.registry_fake import trained_event
from tests.support.resources import TestResources, create_resources

_models = itertools.count()

operations = st.lists(
    st.one_of(
        st.tuples(st.just("register"), st.integers(0, 12)),  # a score index; repeats are duplicate artifacts
        st.tuples(st.just("rollback"), st.none()),
    ),
    min_size=1,
    max_size=10,
)


@pytest.fixture(scope="module")
def registry(moto_endpoint: str) -> DynamoRegistry:
    """One table for the module (hypothesis runs many examples per test); each example uses a model
    of its own instead of a reset."""
    environment = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        names = TestResources(
            data_bucket="property-data",
            artifact_bucket="property-artifacts",
            registry_table="property-registry",
            idempotency_table="property-idempotency",
            event_bus_name="property-bus",
        )
        with contextlib.suppress(ClientError):  # left by an earlier run in this session
            create_resources(names)
        return DynamoRegistry(names.registry_table, dynamodb=boto3.client("dynamodb"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations)
def test_versions_never_repeat_and_one_production(registry: DynamoRegistry, ops: list[tuple[str, int | None]]) -> None:
    name = f"prop-{next(_models)}"
    seen: dict[int, int] = {}  # score index -> version
    for op, index in ops:
        if op == "register":
            assert index is not None
            result = registry.register(trained_event(name, score=0.7 + index / 100), actor="p")
            if index in seen:
                assert not result.created
                assert result.version.version == seen[index]
            else:
                assert result.created
                assert result.version.version == len(seen) + 1
                seen[index] = result.version.version
        elif seen:
            with contextlib.suppress(ConflictError):
                registry.rollback(name, actor="p", reason="")
    if not seen:
        return
    versions = registry.list_versions(name)
    assert [v.version for v in versions] == list(range(1, len(seen) + 1))
    record = registry.get_model(name)
    in_production = [v.version for v in versions if v.status is VersionStatus.PRODUCTION]
    assert in_production == ([] if record.production_version is None else [record.production_version])
    assert len(set(record.production_history)) == len(record.production_history)
