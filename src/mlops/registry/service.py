"""Registry use cases the handlers call: register a trained model, the lifecycle changes (approve,
reject, promote, rollback, archive, aliases), each announced on the bus (and production changes
to the notification topic), and the API views (lists, compare, audit, served-at)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from mlops.contract import SUPPORTED_METRICS
from mlops.contract_compat import input_compatibility
from mlops.drift.stability import TrainingDataDrift, training_data_drift
from mlops.errors import BadRequestError, IntegrityError, NotFoundError
from mlops.events import (
    DetailType,
    ModelAliasMoved,
    ModelPromoted,
    ModelRegistered,
    ModelRolledBack,
    ModelStatusChanged,
    ModelTrained,
)
from mlops.ports import EventPublisher, ObjectStore
from mlops.profile_schema import BaselineProfile
from mlops.registry.audit_chain import verify_chain
from mlops.registry.engine import ArtifactRejectedError
from mlops.registry.integrity import object_sha256
from mlops.registry.lifecycle import MAX_BAKE_MINUTES, MAX_CANARY_SHARE
from mlops.registry.names import (  # `X as X`: re-exported for the handlers and tests
    ALIAS_PATTERN as ALIAS_PATTERN,
)
from mlops.registry.names import (
    MAX_VERSION,
    require_alias,
    require_model_name,
    require_sha256,
    require_version,
)
from mlops.registry.names import IdempotencyKeyReusedError as IdempotencyKeyReusedError
from mlops.registry.names import parse_version as parse_version
from mlops.registry.policy import same_data_of
from mlops.registry.ports import ModelRegistry, Notifier
from mlops.registry.records import (
    AliasMove,
    AuditEvent,
    Canary,
    Change,
    ModelRecord,
    ModelVersion,
    RegistrationResult,
    VersionStatus,
)
from mlops.shadow import read_agreement


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
    digest = object_sha256(store, trained.artifact_bucket, trained.artifact_key)
    if digest != trained.artifact_sha256:
        raise IntegrityError(
            f"artifact s3://{artifact_bucket}/{trained.artifact_key} has SHA-256 {digest}, the event says "
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
    notifier: Notifier | None = None,
) -> RegistrationResult:
    """Verify the artifact, register the version (promoting it if the policy says so), announce it:
    `ModelRegistered`, and `ModelPromoted` plus a production notice to `notifier` when it is in
    production by this registration.

    Announcements are at-least-once: a retry after a failed publish (the registry write done, the
    artifact now a duplicate) announces again, so consumers dedupe by model, version and action.
    Nothing is recorded when verification fails.
    """
    require_model_name(trained.model_name)
    verify_artifact(store, trained, artifact_bucket=artifact_bucket)
    result = registry.register(trained, actor=actor, request_id=request_id)
    version = result.version
    promoted, previous = result.promoted, result.previous_production
    if not promoted:
        # a duplicate: if this registration promoted it before, that announcement may be the lost one
        record = registry.get_model(version.model_name)
        if record.production_version == version.version:
            history = record.production_history
            promoted, previous = True, (history[-2] if len(history) >= 2 else None)
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
            promoted=promoted,
            decision=result.decision,
        ),
    )
    if promoted:
        publisher.publish(
            DetailType.MODEL_PROMOTED,
            ModelPromoted(
                model_name=version.model_name,
                version=version.version,
                previous_version=previous,
                artifact_bucket=version.artifact.bucket,
                artifact_key=version.artifact.key,
                artifact_sha256=version.artifact.sha256,
                metric_name=version.metric_name,
                metrics=version.metrics,
                reason=result.decision,
            ),
        )
        if notifier is not None:
            notifier.notify(
                f"{version.model_name}: production is now v{version.version} (promoted)",
                {
                    "model_name": version.model_name,
                    "action": "promoted",
                    "production_version": version.version,
                    "previous_production": previous,
                    "actor": actor,
                    "reason": result.decision,
                },
            )
    return result


class Lifecycle:
    """The lifecycle changes behind the models API: each one registry transaction, then the
    announcement. Announcements are at-least-once: a replayed idempotent request (which changes
    nothing) announces the same change again, in case the first attempt failed after its write;
    consumers dedupe by model, version and action."""

    def __init__(
        self, registry: ModelRegistry, publisher: EventPublisher, store: ObjectStore, notifier: Notifier
    ) -> None:
        self.registry = registry
        self.publisher = publisher
        self.store = store
        self.notifier = notifier

    def approve(self, name: str, version: int, **who: Any) -> Change:
        change = self.registry.approve(require_model_name(name), require_version(version), **who)
        self._status_event(DetailType.MODEL_APPROVED, change, VersionStatus.CANDIDATE, who)
        return change

    def reject(self, name: str, version: int, **who: Any) -> Change:
        before = self.registry.get_version(require_model_name(name), require_version(version)).status
        change = self.registry.reject(name, version, **who)
        self._status_event(DetailType.MODEL_REJECTED, change, before, who)
        return change

    def archive(self, name: str, version: int, **who: Any) -> Change:
        before = self.registry.get_version(require_model_name(name), require_version(version)).status
        change = self.registry.archive(name, version, **who)
        self._status_event(DetailType.MODEL_ARCHIVED, change, before, who)
        return change

    def promote(self, name: str, version: int, **who: Any) -> Change:
        """Promote (the registry verifies the artifact first). An artifact that fails its integrity
        check rejects the version (audited, announced) and raises IntegrityError: it can never be
        promoted."""
        require_model_name(name)
        require_version(version)
        try:
            change = self.registry.promote(name, version, **who)
        except ArtifactRejectedError as error:
            rejected = error.change
            before = VersionStatus(rejected.from_status or VersionStatus.APPROVED.value)
            self._status_event(DetailType.MODEL_REJECTED, rejected, before, {**who, "reason": str(error)})
            raise IntegrityError(str(error)) from error
        self._announce_promotion(change, who)
        return change

    def start_canary(self, name: str, version: int, *, share: float, bake_minutes: int, **who: Any) -> Change:
        """An approved version answers `share` of the production requests (audited `canary_started`)."""
        return self.registry.start_canary(  # type: ignore[attr-defined, no-any-return]
            require_model_name(name), require_version(version), share=share, bake_minutes=bake_minutes, **who
        )

    def stop_canary(self, name: str, *, rolled_back: bool = False, version: int | None = None, **who: Any) -> Change:
        """End the canary: an approver's stop, or its alarm's rollback (audited with the reason)."""
        return self.registry.end_canary(  # type: ignore[attr-defined, no-any-return]
            require_model_name(name), rolled_back=rolled_back, version=version, **who
        )

    def set_shadow(self, name: str, version: int | None, **who: Any) -> ModelRecord:
        """Set (or clear, None) the version that scores production's captures (audited)."""
        return self.registry.set_shadow(require_model_name(name), version, **who)  # type: ignore[attr-defined, no-any-return]

    def promote_canary(self, name: str, **who: Any) -> Change:
        """The canary that baked without alarms becomes production (the gates of any promotion)."""
        who = {k: v for k, v in who.items() if k != "idempotency_key"}
        change = self.registry.promote_canary(require_model_name(name), **who)  # type: ignore[attr-defined]
        self._announce_promotion(change, who)
        return change  # type: ignore[no-any-return]

    def _announce_promotion(self, change: Change, who: dict[str, Any]) -> None:
        name = change.model.name
        promoted = change.version
        self.publisher.publish(
            DetailType.MODEL_PROMOTED,
            ModelPromoted(
                model_name=name,
                version=promoted.version,
                previous_version=change.previous_production,
                artifact_bucket=promoted.artifact.bucket,
                artifact_key=promoted.artifact.key,
                artifact_sha256=promoted.artifact.sha256,
                metric_name=promoted.metric_name,
                metrics=promoted.metrics,
                reason=who.get("reason", ""),
                actor=who["actor"],
            ),
        )
        self._notify_production(change, who)

    def rollback(self, name: str, *, to_version: int | None = None, **who: Any) -> Change:
        """Production back to the previous (or a named earlier) production version; the registry's
        production gate verifies the restored artifact first. Raises BadRequestError,
        ModelNotFoundError, VersionNotFoundError, ConflictError, IntegrityError."""
        require_model_name(name)
        if to_version is not None:
            require_version(to_version)
        change = self.registry.rollback(name, to_version=to_version, **who)
        restored = change.version
        self.publisher.publish(
            DetailType.MODEL_ROLLED_BACK,
            ModelRolledBack(
                model_name=name,
                from_version=change.previous_production or 0,
                to_version=restored.version,
                artifact_bucket=restored.artifact.bucket,
                artifact_key=restored.artifact.key,
                artifact_sha256=restored.artifact.sha256,
                actor=who["actor"],
                reason=who.get("reason", ""),
            ),
        )
        self._notify_production(change, who)
        return change

    def set_alias(self, name: str, alias: str, version: int, **who: Any) -> Change:
        require_model_name(name)
        previous = self.registry.get_model(name).aliases.get(require_alias(alias))
        change = self.registry.set_alias(name, alias, require_version(version), **who)
        self.publisher.publish(
            DetailType.MODEL_ALIAS_MOVED,
            ModelAliasMoved(
                model_name=name,
                alias=alias,
                # a replay reads the alias after the move; the change recorded where it was before
                from_version=change.previous_version if change.replayed else previous,
                to_version=version,
                actor=who["actor"],
                reason=who.get("reason", ""),
            ),
        )
        return change

    def _status_event(self, kind: str, change: Change, before: VersionStatus, who: dict[str, Any]) -> None:
        self.publisher.publish(
            kind,
            ModelStatusChanged(
                model_name=change.version.model_name,
                version=change.version.version,
                # a replay reads the status after the change; the change recorded the one before
                from_status=change.from_status or before.value,
                to_status=change.version.status.value,
                actor=who["actor"],
                reason=who.get("reason", ""),
            ),
        )

    def _notify_production(self, change: Change, who: dict[str, Any]) -> None:
        name = change.model.name
        subject = f"{name}: production is now v{change.version.version} ({change.action})"
        self.notifier.notify(
            subject,
            {
                "model_name": name,
                "action": change.action,
                "production_version": change.version.version,
                "previous_production": change.previous_production,
                "actor": who["actor"],
                "reason": who.get("reason", ""),
                "request_id": who.get("request_id", ""),
            },
        )


# ---- views the models API returns (their schemas appear in the OpenAPI document) ----


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class ModelSummary(_View):
    name: str
    latest_version: int
    production_version: int | None = None
    production_history: list[int] = Field(default_factory=list)
    aliases: dict[str, int] = Field(default_factory=dict)
    canary: Canary | None = Field(default=None, description="the challenger answering a share of the requests")
    shadow_version: int | None = Field(default=None, description="the challenger scoring production's requests")
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
    params: dict[str, Any] = Field(default_factory=dict)
    origin: str = "trained"  # or "imported": built elsewhere, scored on the suite's holdout
    imported: dict[str, Any] | None = None  # the source file, its SHA-256 and who imported it
    # where and how it trained: engine (lambda | sagemaker), compute, memory_mb, job_id, seconds
    trained_on: dict[str, Any] | None = None


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


class ShadowRequest(_View):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: StrictInt = Field(ge=1, le=MAX_VERSION, description="a version that is neither production nor retired")
    reason: str = Field(default="", max_length=1000)


class CanaryStopRequest(_View):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(default="", max_length=1000)


class RollbackRequest(_View):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(default="", max_length=1000)
    # strict: JSON true, "2" and 2.0 are not version numbers
    to_version: StrictInt | None = Field(default=None, ge=1, le=MAX_VERSION)


class ChangeRequest(_View):
    """Body of approve, reject, promote and archive: why (recorded in the audit trail)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(default="", max_length=1000)


class CanaryRequest(_View):
    """Start a canary: an approved `version` answers `share` of the production requests and is
    promoted after `bake_minutes` without its alarms (which roll it back by themselves)."""

    version: int = Field(ge=1, description="an approved version of the model")
    share: float = Field(gt=0, le=MAX_CANARY_SHARE, description="share of the production requests it answers")
    bake_minutes: int = Field(ge=1, le=MAX_BAKE_MINUTES, description="minutes without alarms before promotion")
    reason: str = Field(default="", max_length=1_000)


class AliasRequest(_View):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: StrictInt = Field(ge=1, le=MAX_VERSION)  # strict, as RollbackRequest.to_version
    reason: str = Field(default="", max_length=1000)


class ValuePair(_View):
    a: Any = None
    b: Any = None
    same: bool


class MetricPair(_View):
    a: float | None = None
    b: float | None = None
    delta: float | None = None  # b - a


class SameDataPair(_View):
    """Both versions scored on the same rows: recorded when one was trained while the other served
    (mlops.training.champion); `a`/`b` None when the serving one could not be scored (`unavailable`)."""

    data: str  # candidate_holdout | recent_traffic
    description: str  # e.g. "the candidate's holdout (800 rows)"
    rows: int
    metric_name: str
    a: float | None = None
    b: float | None = None
    delta: float | None = None  # b - a
    recorded_by: int  # the version whose training scored both
    unavailable: str | None = None


class InputBreak(_View):
    feature: str
    kind: str  # new_required_feature | null_refused | type_changed | categories_removed | range_narrowed
    detail: str


class SchemaCompatibility(_View):
    """Would b reject requests a accepts? The rule the automatic promotion applies (mlops.contract_compat)."""

    compatible: bool
    summary: str
    breaks: list[InputBreak] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class VersionComparison(_View):
    """Two versions side by side: metrics, params, lineage, the PSI of b's training data against
    a's (from their baseline profiles), both versions on the same data when the registry recorded
    it, and whether b accepts every request a accepts."""

    model_name: str
    a: VersionSummary
    b: VersionSummary
    primary_metric: str
    better: int | None = Field(
        default=None,
        description="The version with the better primary metric (on the same data when recorded); "
        "null when tied, unknown or the same-data sets disagree",
    )
    better_basis: str = Field(
        default="own_holdouts",
        description="same_data: both versions scored on the same rows; own_holdouts: each on its own holdout",
    )
    same_data: list[SameDataPair] = Field(
        default_factory=list,
        description="Both versions on the same rows, recorded when one was trained while the other served",
    )
    same_data_unavailable: str | None = Field(default=None, description="Why there is no same-data score")
    schema_compatibility: SchemaCompatibility = Field(
        description="Whether b accepts every request a accepts (the automatic promotion's schema rule)"
    )
    metrics: dict[str, MetricPair]
    params: dict[str, ValuePair]
    same_dataset: bool
    same_contract: bool
    library_versions: dict[str, ValuePair]
    training_data_drift: TrainingDataDrift
    shadow: ShadowView | None = Field(
        default=None,
        description="When one version shadows the other in production: their agreement on the requests "
        "production answered (scored off the response path by score_shadow)",
    )


class ShadowView(_View):
    production_version: int
    shadow_version: int
    rows: int = Field(description="captured requests both versions scored")
    unscored: int = Field(description="captured requests the shadow's contract refused")
    updated_at: str
    statistics: dict[str, float | None] = Field(
        description="classification: label_agreement, mean_probability_difference, max_probability_difference "
        "(the largest per-class difference of a row); regression: mean_difference (shadow - production), "
        "mean_absolute_difference, max_absolute_difference, rms_difference"
    )


def shadow_view(store: ObjectStore, bucket: str, name: str, a: int, b: int) -> ShadowView | None:
    """The stored shadow statistics when {a, b} is the pair they describe."""
    found = read_agreement(store, bucket, name)
    if found is None or {found.production_version, found.shadow_version} != {a, b}:
        return None
    return ShadowView(
        production_version=found.production_version,
        shadow_version=found.shadow_version,
        rows=found.rows,
        unscored=found.unscored,
        updated_at=found.updated_at,
        statistics=found.summary,
    )


def summarize_model(record: ModelRecord) -> ModelSummary:
    return ModelSummary(
        name=record.name,
        latest_version=record.latest_version,
        production_version=record.production_version,
        production_history=list(record.production_history),
        aliases=dict(record.aliases),
        canary=record.canary,
        shadow_version=record.shadow_version,
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
            params=dict(lineage.get("params") or {}),
            origin=lineage.get("origin") or "trained",
            imported=lineage.get("imported"),
            trained_on=lineage.get("trained_on"),
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


class AuditVerification(_View):
    """Is a model's audit trail intact? `problem`: overwritten (an event's hash does not match),
    deleted (a seq is missing) or forged (an event beyond the chain head); `first_bad_seq` names it."""

    model_name: str
    ok: bool
    events: int
    head_seq: int
    first_bad_seq: int | None = None
    problem: str | None = None
    detail: str = ""
    alias_moves_checked: int = 0


def verify_audit_trail(registry: ModelRegistry, name: str) -> AuditVerification:
    """Recompute the model's audit hash chain against the head its model record keeps, and check
    every alias move references a chained event that records it. Raises ModelNotFoundError."""
    record = registry.get_model(require_model_name(name))
    events = registry.audit_events(name)
    verdict = verify_chain(events, record.audit_seq, record.audit_hash)
    result = AuditVerification(
        model_name=name,
        ok=verdict.ok,
        events=len(events),
        head_seq=verdict.head_seq,
        first_bad_seq=verdict.first_bad_seq,
        problem=verdict.problem,
        detail=verdict.detail,
    )
    if not verdict.ok:
        return result
    by_seq = {event.seq: event for event in events}
    aliases = {"production", *record.aliases}
    moves = [move for alias in sorted(aliases) for move in registry.alias_history(name, alias)]
    for move in moves:
        event = by_seq.get(move.audit_seq or 0)
        target = (
            None
            if event is None
            else event.after.get("version" if move.alias != "production" else "production_version")
        )
        if event is None or target != move.to_version:
            return result.model_copy(
                update={
                    "ok": False,
                    "first_bad_seq": move.audit_seq,
                    "problem": "forged",
                    "detail": f"the {move.alias} move to v{move.to_version} at {move.at.isoformat()} has no chained event",
                    "alias_moves_checked": moves.index(move),
                }
            )
    return result.model_copy(update={"alias_moves_checked": len(moves)})


def version_summary(registry: ModelRegistry, name: str, version: int) -> VersionSummary:
    return summarize_version(registry.get_version(require_model_name(name), require_version(version)))


def alias_history(registry: ModelRegistry, name: str, alias: str) -> list[AliasMove]:
    return registry.alias_history(require_model_name(name), require_alias(alias))


def served_at(registry: ModelRegistry, name: str, at: datetime, alias: str = "production") -> AliasMove | None:
    """Which version `alias` pointed at, at `at` (the last move at or before it)."""
    return registry.served_at(require_model_name(name), at, require_alias(alias))


def compare_versions(registry: ModelRegistry, name: str, a: int, b: int, *, store: ObjectStore) -> VersionComparison:
    """Metrics, params, lineage of two versions of one model, side by side, and the drift of b's
    training data against a's (read from each version's baseline profile in `store`). When one was
    trained while the other served, both versions' scores on the same rows (`same_data`) decide
    `better`; `schema_compatibility` says whether b accepts every request a accepts.

    Raises BadRequestError, ModelNotFoundError, VersionNotFoundError; a baseline that is missing
    or not a profile leaves `training_data_drift.unavailable` set instead of failing the request.
    """
    require_model_name(name)
    left, right = registry.get_version(name, require_version(a)), registry.get_version(name, require_version(b))
    metrics = {
        metric: MetricPair(
            a=left.metrics.get(metric),
            b=right.metrics.get(metric),
            delta=(right.metrics[metric] - left.metrics[metric])
            if metric in left.metrics and metric in right.metrics
            else None,
        )
        for metric in sorted(set(left.metrics) | set(right.metrics))
    }
    primary = left.metric_name
    higher_wins = SUPPORTED_METRICS.get(primary, (None, True))[1]
    same_data, same_data_unavailable = _same_data(left, right)
    scored = [(p.a, p.b) for p in same_data if p.metric_name == primary and p.a is not None and p.b is not None]
    pair = metrics.get(primary)
    if scored:
        basis, winners = "same_data", {_winner(ours, theirs, higher_wins, a, b) for ours, theirs in scored}
        better = winners.pop() if len(winners) == 1 else None
    else:
        own = [] if pair is None or pair.a is None or pair.b is None else [(pair.a, pair.b)]
        basis, better = "own_holdouts", _winner(*own[0], higher_wins, a, b) if own else None
    verdict = input_compatibility(left.contract, right.contract)
    return VersionComparison(
        model_name=name,
        a=summarize_version(left),
        b=summarize_version(right),
        primary_metric=primary,
        better=better,
        better_basis=basis,
        same_data=same_data,
        same_data_unavailable=same_data_unavailable,
        schema_compatibility=SchemaCompatibility(
            compatible=verdict.compatible,
            summary=verdict.summary(f"v{a}"),
            breaks=[InputBreak(feature=x.feature, kind=x.kind.value, detail=x.detail) for x in verdict.breaks],
            notes=list(verdict.notes),
        ),
        metrics=metrics,
        params=_pairs(left.lineage.get("params") or {}, right.lineage.get("params") or {}),
        same_dataset=(left.lineage.get("dataset") or {}).get("sha256")
        == (right.lineage.get("dataset") or {}).get("sha256"),
        same_contract=left.lineage.get("contract_digest") == right.lineage.get("contract_digest"),
        library_versions=_pairs(
            left.lineage.get("library_versions") or {}, right.lineage.get("library_versions") or {}
        ),
        training_data_drift=_training_data_drift(store, left, right),
        shadow=shadow_view(store, left.artifact.bucket, name, a, b),
    )


def _winner(a_value: float, b_value: float, higher_wins: bool, a: int, b: int) -> int | None:
    if a_value == b_value:
        return None
    return b if (b_value > a_value) == higher_wins else a


def _same_data(left: ModelVersion, right: ModelVersion) -> tuple[list[SameDataPair], str | None]:
    """The same-data scores one version's training recorded against the other (the one serving then)."""
    for trained, other, flipped in ((right, left, False), (left, right, True)):
        found = [c for c in same_data_of(trained.lineage) if c.champion_version == other.version]
        if found:
            pairs = []
            for c in found:
                ours, theirs = (
                    (c.champion_value, c.candidate_value) if not flipped else (c.candidate_value, c.champion_value)
                )
                pairs.append(
                    SameDataPair(
                        data=c.data,
                        description=c.description,
                        rows=c.rows,
                        metric_name=c.metric_name,
                        a=ours,
                        b=theirs,
                        delta=theirs - ours if ours is not None and theirs is not None else None,
                        recorded_by=trained.version,
                        unavailable=c.unavailable,
                    )
                )
            return pairs, None
    if left.version == right.version:
        return [], "a version compared with itself"
    return [], (
        f"neither v{left.version} nor v{right.version} was trained while the other served production, "
        "so no same-data score was recorded; metrics are each version's own holdout"
    )


def _training_data_drift(store: ObjectStore, left: ModelVersion, right: ModelVersion) -> TrainingDataDrift:
    profiles = []
    for version in (left, right):
        location = f"s3://{version.artifact.bucket}/{version.artifact.baseline_key}"
        try:
            data = store.get_bytes(version.artifact.bucket, version.artifact.baseline_key)
            profiles.append(BaselineProfile.model_validate_json(data))
        except NotFoundError:
            return TrainingDataDrift(unavailable=f"v{version.version} has no baseline profile at {location}")
        except ValidationError:
            return TrainingDataDrift(unavailable=f"v{version.version}'s {location} is not a baseline profile")
    return training_data_drift(*profiles)


def _pairs(left: dict[str, Any], right: dict[str, Any]) -> dict[str, ValuePair]:
    return {
        key: ValuePair(a=left.get(key), b=right.get(key), same=left.get(key) == right.get(key))
        for key in sorted(set(left) | set(right))
    }
