"""The canary and pins on the moto server: the registry's writes (model item's `canary`, audit chain)
read back by DynamoRegistry and by predict's pydantic-free reader (production with its canary, a
pinned version, an alias)."""

from __future__ import annotations

import boto3
import pytest

from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.served_versions_dynamodb import DynamoServedVersions
from mlops.errors import ConflictError, NotFoundError, VersionNotFoundError
from mlops.registry.service import verify_audit_trail
from tests.integration.test_registry_dynamodb import ACTOR, ArtifactRegistry
from tests.support.registry_fake import assert_registry_invariants, trained_event
from tests.support.resources import create_resources

APPROVER = "arn:aws:sts::123456789012:assumed-role/mlops-approvers/bob"


@pytest.fixture
def tables(aws: str) -> tuple[DynamoRegistry, DynamoServedVersions]:
    resources = create_resources()
    return ArtifactRegistry(resources.registry_table), DynamoServedVersions(resources.registry_table)


def test_canary_and_pins_round_trip_through_dynamodb(tables: tuple[DynamoRegistry, DynamoServedVersions]) -> None:
    registry, served = tables
    for score in (0.8, 0.75, 0.9, 0.7):  # v1 archived, v2 candidate, v3 production, v4 candidate
        registry.register(trained_event(score=score), actor=ACTOR)
    registry.approve("churn", 2, actor=APPROVER, reason="reviewed")
    registry.reject("churn", 4, actor=APPROVER, reason="worse")
    registry.set_alias("churn", "staging", 2, actor=APPROVER, reason="stage it")

    # WHEN an approver starts a canary of v2 at 30 %
    registry.start_canary("churn", 2, share=0.3, bake_minutes=15, actor=APPROVER, reason="try v2")

    # THEN the model item carries it, and predict's reader serves production with the canary beside it
    assert registry.get_model("churn").canary.version == 2  # type: ignore[union-attr]
    production = served.production("churn")
    assert production is not None
    assert production.version == 3
    assert production.canary is not None
    assert (production.canary.version.version, production.canary.share) == (2, 0.3)
    assert production.canary.version.artifact.sha256 == registry.get_version("churn", 2).artifact.sha256

    # pins: a version, an alias; unknown and retired ones are refused naming them
    assert served.pinned("churn", 2).version == 2
    assert served.aliased("churn", "staging").version == 2
    with pytest.raises(VersionNotFoundError, match="no version 7"):
        served.pinned("churn", 7)
    with pytest.raises(ConflictError, match="v1 is archived"):
        served.pinned("churn", 1)
    with pytest.raises(ConflictError, match="v4 is rejected"):
        served.pinned("churn", 4)
    with pytest.raises(NotFoundError, match="no alias 'nightly'"):
        served.aliased("churn", "nightly")

    # WHEN the canary's alarm rolls it back: the attribute is removed, production untouched
    registry.end_canary("churn", rolled_back=True, version=2, actor="alarm:x-canary-errors", reason="x entered ALARM")
    assert registry.get_model("churn").canary is None
    assert served.production("churn").canary is None  # type: ignore[union-attr]
    assert [e.action for e in registry.audit_events("churn")][-2:] == ["canary_started", "canary_rolled_back"]

    # the shadow: set and cleared on the model item, audited, never seen by predict's reader
    assert registry.set_shadow("churn", 2, actor=APPROVER, reason="watch v2").shadow_version == 2
    assert registry.get_model("churn").shadow_version == 2
    assert served.production("churn").version == 3  # type: ignore[union-attr]
    assert registry.set_shadow("churn", None, actor=APPROVER, reason="done").shadow_version is None
    assert registry.get_model("churn").shadow_version is None
    assert [e.action for e in registry.audit_events("churn")][-2:] == ["shadow_set", "shadow_cleared"]
    assert verify_audit_trail(registry, "churn").ok
    assert_registry_invariants(registry, boto3.client("s3"))


def test_a_production_change_ends_the_canary_and_a_promoted_shadow_on_dynamodb(
    tables: tuple[DynamoRegistry, DynamoServedVersions],
) -> None:
    registry, served = tables
    for score in (0.8, 0.75, 0.9):  # v1 archived, v2 candidate, v3 production
        registry.register(trained_event(score=score), actor=ACTOR)
    registry.approve("churn", 2, actor=APPROVER, reason="reviewed")
    registry.start_canary("churn", 2, share=0.3, bake_minutes=15, actor=APPROVER, reason="try v2")

    # WHEN production is rolled back: the canary ends with it (a bake check cannot promote it later)
    registry.rollback("churn", actor=APPROVER, reason="incident")
    assert registry.get_model("churn").canary is None
    assert served.production("churn").canary is None  # type: ignore[union-attr]
    last = registry.audit_events("churn")[-1]
    assert (last.action, last.version, last.reason) == ("canary_stopped", 2, "production changed by rollback to v1")

    # WHEN the shadow version is promoted: the shadow is cleared (a shadow is another version)
    registry.set_shadow("churn", 2, actor=APPROVER, reason="watch v2")
    registry.promote("churn", 2, actor=ACTOR, reason="go")
    model = registry.get_model("churn")
    assert (model.production_version, model.shadow_version) == (2, None)
    assert [e.action for e in registry.audit_events("churn")][-3:] == ["archived", "promoted", "shadow_cleared"]
    assert verify_audit_trail(registry, "churn").ok
    assert_registry_invariants(registry, boto3.client("s3"))
