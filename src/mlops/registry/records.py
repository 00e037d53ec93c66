"""Registry records as typed values (what DynamoDB stores, independent of DynamoDB)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # the inference path imports records; it needs no event models
    from mlops.events import ModelTrained


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    APPROVED = "approved"
    REJECTED = "rejected"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class Artifact(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    sha256: str
    size_bytes: int
    baseline_key: str


class ModelVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    version: int
    status: VersionStatus
    metric_name: str
    metrics: dict[str, float]
    artifact: Artifact
    contract: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    promotion_decision: str = ""
    approved_by: str = ""  # who approved it (four eyes: that person may not also promote it)


class Canary(BaseModel):
    """A challenger answering `share` of the production requests until it is promoted (after
    `bake_minutes` without its alarms) or ended (stopped, or rolled back by an alarm)."""

    model_config = ConfigDict(frozen=True)

    version: int
    share: float
    bake_minutes: int
    started_at: datetime
    started_by: str


class ModelRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    latest_version: int
    production_version: int | None = None
    production_history: list[int] = Field(default_factory=list)
    # named aliases (`staging`, `challenger`, ...) -> version; `production` is production_version
    aliases: dict[str, int] = Field(default_factory=dict)
    canary: Canary | None = None
    shadow_version: int | None = None  # a challenger scoring production's captures off the response path
    updated_at: datetime
    # the head of the audit hash chain (mlops.registry.audit_chain), moved with every audit event
    audit_seq: int = 0
    audit_hash: str = "0" * 64


class AuditEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    at: datetime
    event_id: str
    action: str
    actor: str
    version: int | None = None
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""
    request_id: str = ""
    seq: int = 0  # position in the model's hash chain (1, 2, ...)
    prev_hash: str = ""
    hash: str = ""


class AliasMove(BaseModel):
    """One move of an alias, kept forever: which version an alias pointed at from `at` on."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    alias: str
    at: datetime
    from_version: int | None = None
    to_version: int | None = None
    actor: str
    reason: str = ""
    request_id: str = ""
    event_id: str
    audit_seq: int | None = None  # the chained audit event that records this move


class Change(BaseModel):
    """The outcome of one state change: the model after it and the version it acted on.

    `replayed` is True when an idempotency key matched an earlier request: nothing changed now,
    but the change is announced again (at-least-once: the first announcement may have failed).
    `from_status` (approve, reject, archive) and `previous_version` (alias moves: where the alias
    pointed) keep what a replay can no longer read from the registry; None in results stored
    before they existed.
    """

    model_config = ConfigDict(frozen=True)

    action: str
    model: ModelRecord
    version: ModelVersion
    previous_production: int | None = None
    from_status: str | None = None
    previous_version: int | None = None
    replayed: bool = False


class RegistrationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: ModelVersion
    created: bool  # False when this artifact was already registered (duplicate event)
    promoted: bool
    decision: str  # why it was or was not promoted
    previous_production: int | None = None


class AuditAction(StrEnum):
    """What an audit event records (the `action` of an AuditEvent)."""

    REGISTERED = "registered"
    PROMOTED = "promoted"
    ARCHIVED = "archived"
    PROMOTION_DECLINED = "promotion_declined"
    ROLLED_BACK = "rolled_back"
    APPROVED = "approved"
    REJECTED = "rejected"
    ALIAS_MOVED = "alias_moved"
    DATASET_REVIEWED = "dataset_reviewed"
    # retraining on evidence (mlops.retraining): a trigger, a gate's refusal, a training set written
    RETRAIN_REQUESTED = "retrain_requested"
    RETRAIN_SKIPPED = "retrain_skipped"
    RETRAIN_STARTED = "retrain_started"
    RETRAIN_REFUSED = "retrain_refused"  # its training set was refused by the dataset gate or training
    # a canary (issue 13): started by an approver, stopped by one, or rolled back by its alarm; a
    # canary that baked without alarms is `promoted` like any version
    CANARY_STARTED = "canary_started"
    CANARY_STOPPED = "canary_stopped"
    CANARY_ROLLED_BACK = "canary_rolled_back"
    SHADOW_SET = "shadow_set"
    SHADOW_CLEARED = "shadow_cleared"


def candidate_from_trained(trained: ModelTrained, version: int, now: datetime) -> ModelVersion:
    """A newly registered version of a trained model: a candidate, with its lineage."""
    return ModelVersion(
        model_name=trained.model_name,
        version=version,
        status=VersionStatus.CANDIDATE,
        metric_name=trained.metric_name,
        metrics=dict(trained.metrics),
        artifact=Artifact(
            bucket=trained.artifact_bucket,
            key=trained.artifact_key,
            sha256=trained.artifact_sha256,
            size_bytes=trained.artifact_bytes,
            baseline_key=trained.baseline_key,
        ),
        contract=dict(trained.contract),
        lineage={
            "dataset": trained.dataset.model_dump(mode="json"),
            "contract_digest": trained.contract_digest,
            "seed": trained.seed,
            "params": dict(trained.params),
            "library_versions": dict(trained.library_versions),
            "training_rows": trained.training_rows,
            "holdout_rows": trained.holdout_rows,
            "onnx_max_abs_diff": trained.onnx_max_abs_diff,
            # the champion on the candidate's data (mlops.registry.policy decides on it)
            **({"same_data": [s.model_dump(mode="json") for s in trained.same_data]} if trained.same_data else {}),
            "origin": trained.origin,
            **({"imported": trained.imported.model_dump(mode="json")} if trained.imported else {}),
            **({"trained_on": trained.trained_on.model_dump(mode="json")} if trained.trained_on else {}),
        },
        created_at=now,
    )
