"""Registry use cases the handlers call: register a trained model, roll back, and the API views."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.contract import is_valid_model_name
from mlops.errors import BadRequestError, IntegrityError
from mlops.events import DetailType, ModelPromoted, ModelRegistered, ModelRolledBack, ModelTrained
from mlops.ports import EventPublisher, ObjectStore
from mlops.registry.ports import ModelRegistry
from mlops.registry.records import AuditEvent, ModelRecord, ModelVersion, RegistrationResult

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


def require_model_name(name: str) -> str:
    """Raises BadRequestError unless `name` is a valid model name (no key delimiters, no slashes)."""
    if not isinstance(name, str) or not is_valid_model_name(name):
        raise BadRequestError(f"{name!r} is not a valid model name (lowercase letters, digits and '-', 1-63 chars)")
    return name


def require_sha256(digest: str) -> str:
    if not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest):
        raise BadRequestError(f"{digest!r} is not a lowercase hex SHA-256 digest")
    return digest


def verify_artifact(store: ObjectStore, trained: ModelTrained, *, artifact_bucket: str) -> None:
    """Check the artifact is in our artifact bucket and its bytes hash to `artifact_sha256`.

    Raises BadRequestError (wrong bucket, malformed digest), NotFoundError (no such object) or
    IntegrityError (size or digest mismatch).
    """
    require_sha256(trained.artifact_sha256)
    if trained.artifact_bucket != artifact_bucket:
        raise BadRequestError(
            f"artifact s3://{trained.artifact_bucket}/{trained.artifact_key} is outside the artifact bucket "
            f"{artifact_bucket}"
        )
    info = store.head(trained.artifact_bucket, trained.artifact_key)
    if info.size != trained.artifact_bytes:
        raise IntegrityError(
            f"artifact s3://{artifact_bucket}/{trained.artifact_key} is {info.size} bytes, the event says "
            f"{trained.artifact_bytes}; refusing to register it"
        )
    digest = hashlib.sha256()
    with store.open(trained.artifact_bucket, trained.artifact_key) as body:  # type: ignore[attr-defined]
        while chunk := body.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != trained.artifact_sha256:
        raise IntegrityError(
            f"artifact s3://{artifact_bucket}/{trained.artifact_key} has SHA-256 {digest.hexdigest()}, the event says "
            f"{trained.artifact_sha256}; refusing to register it"
        )


def register_trained_model(
    trained: ModelTrained,
    *,
    registry: ModelRegistry,
    store: ObjectStore,
    publisher: EventPublisher,
    artifact_bucket: str,
    actor: str,
    request_id: str = "",
) -> RegistrationResult:
    """Verify the artifact, register the version (promoting it if the policy says so), announce it.

    Nothing is recorded when verification fails. A duplicate (same artifact) announces nothing new.
    """
    require_model_name(trained.model_name)
    verify_artifact(store, trained, artifact_bucket=artifact_bucket)
    result = registry.register(trained, actor=actor, request_id=request_id)
    version = result.version
    if result.created:
        publisher.publish(
            DetailType.MODEL_REGISTERED,
            ModelRegistered(
                model_name=version.model_name,
                version=version.version,
                status=version.status.value,
                artifact_bucket=version.artifact.bucket,
                artifact_key=version.artifact.key,
                artifact_sha256=version.artifact.sha256,
                metric_name=version.metric_name,
                metrics=version.metrics,
                promoted=result.promoted,
                decision=result.decision,
            ),
        )
    if result.promoted:
        publisher.publish(
            DetailType.MODEL_PROMOTED,
            ModelPromoted(
                model_name=version.model_name,
                version=version.version,
                previous_version=result.previous_production,
                artifact_bucket=version.artifact.bucket,
                artifact_key=version.artifact.key,
                artifact_sha256=version.artifact.sha256,
                metric_name=version.metric_name,
                metrics=version.metrics,
                reason=result.decision,
            ),
        )
    return result


def rollback_model(
    name: str,
    *,
    registry: ModelRegistry,
    publisher: EventPublisher,
    actor: str,
    reason: str = "",
    to_version: int | None = None,
    request_id: str = "",
) -> ModelRecord:
    """Move production back to the previous (or a given earlier) production version and announce it.

    Raises BadRequestError, ModelNotFoundError, VersionNotFoundError or ConflictError.
    """
    require_model_name(name)
    before = registry.get_model(name)
    record = registry.rollback(name, actor=actor, reason=reason, request_id=request_id, to_version=to_version)
    assert record.production_version is not None  # a rollback always leaves a production version
    restored = registry.get_version(name, record.production_version)
    publisher.publish(
        DetailType.MODEL_ROLLED_BACK,
        ModelRolledBack(
            model_name=name,
            from_version=before.production_version or 0,
            to_version=restored.version,
            artifact_bucket=restored.artifact.bucket,
            artifact_key=restored.artifact.key,
            artifact_sha256=restored.artifact.sha256,
            actor=actor,
            reason=reason,
        ),
    )
    return record


# ---- views the models API returns (their schemas appear in the OpenAPI document) ----


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class ModelSummary(_View):
    name: str
    latest_version: int
    production_version: int | None = None
    production_history: list[int] = Field(default_factory=list)
    updated_at: datetime


class LineageSummary(_View):
    dataset_key: str | None = None
    dataset_version_id: str | None = None
    dataset_sha256: str | None = None
    contract_digest: str | None = None
    seed: int | None = None
    training_rows: int | None = None
    holdout_rows: int | None = None
    onnx_max_abs_diff: float | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)


class VersionSummary(_View):
    model_name: str
    version: int
    status: str
    metric_name: str
    metrics: dict[str, float]
    artifact_key: str
    artifact_sha256: str
    artifact_bytes: int
    created_at: datetime
    promotion_decision: str
    lineage: LineageSummary


class RollbackRequest(_View):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(default="", max_length=1000)
    to_version: int | None = Field(default=None, ge=1)


def summarize_model(record: ModelRecord) -> ModelSummary:
    return ModelSummary(
        name=record.name,
        latest_version=record.latest_version,
        production_version=record.production_version,
        production_history=list(record.production_history),
        updated_at=record.updated_at,
    )


def summarize_version(version: ModelVersion) -> VersionSummary:
    lineage: dict[str, Any] = version.lineage
    dataset: dict[str, Any] = lineage.get("dataset") or {}
    return VersionSummary(
        model_name=version.model_name,
        version=version.version,
        status=version.status.value,
        metric_name=version.metric_name,
        metrics=version.metrics,
        artifact_key=version.artifact.key,
        artifact_sha256=version.artifact.sha256,
        artifact_bytes=version.artifact.size_bytes,
        created_at=version.created_at,
        promotion_decision=version.promotion_decision,
        lineage=LineageSummary(
            dataset_key=dataset.get("key"),
            dataset_version_id=dataset.get("version_id"),
            dataset_sha256=dataset.get("sha256"),
            contract_digest=lineage.get("contract_digest"),
            seed=lineage.get("seed"),
            training_rows=lineage.get("training_rows"),
            holdout_rows=lineage.get("holdout_rows"),
            onnx_max_abs_diff=lineage.get("onnx_max_abs_diff"),
            library_versions=dict(lineage.get("library_versions") or {}),
        ),
    )


def model_summaries(registry: ModelRegistry) -> list[ModelSummary]:
    return [summarize_model(record) for record in registry.list_models()]


def version_summaries(registry: ModelRegistry, name: str) -> list[VersionSummary]:
    require_model_name(name)
    return [summarize_version(version) for version in registry.list_versions(name)]


def audit_trail(registry: ModelRegistry, name: str) -> list[AuditEvent]:
    require_model_name(name)
    return registry.audit_events(name)
