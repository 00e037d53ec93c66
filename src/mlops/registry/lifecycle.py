"""The registry's lifecycle rules as plain decisions: each function takes the state it needs (the
model record, the versions involved, the actor, the request) and returns a `Plan`, the writes
that make the change (model record before -> after, version statuses before -> after, chained
audit events, alias moves, an artifact claim) and its outcome. It raises ConflictError or
BadRequestError for a change the rules refuse. A registry (DynamoDB adapter, in-memory fake)
only reads the state, calls a decision, and applies the plan atomically, conditioned on the
state it read (mlops.registry.engine runs that loop once for both).

One rule decides what may serve: `production_gate` runs before any version becomes production
(automatic promotion, promote, rollback with or without a target).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops.contract import Contract, parse_contract
from mlops.contract_compat import input_compatibility
from mlops.errors import BadRequestError, ConflictError, IntegrityError, NotFoundError
from mlops.registry.audit_chain import event_hash
from mlops.registry.names import PRODUCTION_ALIAS
from mlops.registry.policy import (
    PromotionDecision,
    apply_compatibility,
    apply_promotion_mode,
    decide_promotion,
    same_data_of,
)
from mlops.registry.records import (
    AliasMove,
    Artifact,
    AuditAction,
    AuditEvent,
    Canary,
    Change,
    ModelRecord,
    ModelVersion,
    RegistrationResult,
    VersionStatus,
    candidate_from_trained,
)
from mlops.registry.transitions import check_transition, rollback_target

if TYPE_CHECKING:
    from mlops.events import ModelTrained

S = VersionStatus
ArtifactCheck = Callable[[Artifact], None]  # raises IntegrityError or NotFoundError


@dataclass
class Plan:
    """The writes of one change, applied all or nothing. `model_before` None creates the model;
    `versions` pairs (before, after), before None creates the version. `guard` is what the decision
    depended on: when a lost race changed it, a retry is a conflict instead of a new decision."""

    name: str
    model_before: ModelRecord | None
    model_after: ModelRecord
    versions: list[tuple[ModelVersion | None, ModelVersion]] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)
    moves: list[AliasMove] = field(default_factory=list)
    claim: str | None = None  # artifact sha256 claimed for the created version
    outcome: Any = None
    guard: tuple[Any, ...] = ()


class _Draft:
    """Collects a plan's writes; chains each audit event onto the model's head."""

    def __init__(self, name: str, model: ModelRecord | None, *, actor: str, request_id: str, now: datetime) -> None:
        self.name, self.actor, self.request_id, self.now = name, actor, request_id, now
        self.before = model
        self.model = model or ModelRecord(name=name, latest_version=0, updated_at=now)
        self.plan = Plan(name=name, model_before=model, model_after=self.model)

    def version(self, before: ModelVersion | None, after: ModelVersion) -> ModelVersion:
        self.plan.versions.append((before, after))
        return after

    def status(self, version: ModelVersion, target: VersionStatus, **fields: Any) -> ModelVersion:
        return self.version(version, version.model_copy(update={"status": target, **fields}))

    def audit(
        self,
        action: AuditAction,
        version: int | None,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        reason: str = "",
    ) -> AuditEvent:
        seq = self.model.audit_seq + 1
        event = AuditEvent(
            model_name=self.name,
            at=self.now,
            event_id=str(uuid.uuid4()),
            action=action.value,
            actor=self.actor,
            version=version,
            before=before or {},
            after=after or {},
            reason=reason,
            request_id=self.request_id,
            seq=seq,
            prev_hash=self.model.audit_hash,
        )
        event = event.model_copy(update={"hash": event_hash(event)})
        self.model = self.model.model_copy(update={"audit_seq": seq, "audit_hash": event.hash})
        self.plan.events.append(event)
        return event

    def move(self, alias: str, from_version: int | None, to_version: int, reason: str) -> None:
        """An alias move, referencing the chained audit event just written (its `audit_seq`)."""
        self.plan.moves.append(
            AliasMove(
                model_name=self.name,
                alias=alias,
                at=self.now,
                from_version=from_version,
                to_version=to_version,
                actor=self.actor,
                reason=reason,
                request_id=self.request_id,
                event_id=str(uuid.uuid4()),
                audit_seq=self.model.audit_seq,
            )
        )

    def finish(self, outcome: Any, *, guard: tuple[Any, ...] = (), **model_fields: Any) -> Plan:
        self.model = self.model.model_copy(update={**model_fields, "updated_at": self.now})
        self.plan.model_after, self.plan.outcome, self.plan.guard = self.model, outcome, guard
        return self.plan


# ---- the rules ----


def four_eyes(version: ModelVersion) -> bool:
    """Does the version's contract require two different people to approve and promote it?"""
    return _contract(version).promotion.four_eyes


def production_gate(version: ModelVersion, verify: ArtifactCheck) -> None:
    """The one check before any version becomes production: its artifact still holds the bytes
    registered for it. Raises IntegrityError or NotFoundError (nothing may serve them)."""
    verify(version.artifact)


def _contract(version: ModelVersion) -> Contract:
    return parse_contract(version.contract, source=f"contract of {version.model_name} v{version.version}")


def _hand_over_production(
    draft: _Draft,
    champion: ModelVersion | None,
    successor: ModelVersion,
    *,
    action: AuditAction,
    reason: str,
    history: list[int],
    rollback: bool = False,
    **successor_fields: Any,
) -> ModelVersion:
    """The current production version (if any) is archived and `successor` takes production."""
    production = champion.version if champion else None
    if champion is not None:
        check_transition(champion.status, S.ARCHIVED)
        draft.status(champion, S.ARCHIVED)
        draft.audit(
            AuditAction.ARCHIVED,
            champion.version,
            before={"status": S.PRODUCTION.value},
            after={"status": S.ARCHIVED.value, "replaced_by": successor.version},
            reason=reason,
        )
    check_transition(successor.status, S.PRODUCTION, rollback=rollback)
    promoted = draft.status(successor, S.PRODUCTION, **successor_fields)
    before: dict[str, Any] = {"production_version": production, "status": successor.status.value}
    after: dict[str, Any] = {"production_version": successor.version, "status": S.PRODUCTION.value}
    if rollback:
        before["production_history"], after["production_history"] = list(draft.model.production_history), history
    draft.audit(action, successor.version, before=before, after=after, reason=reason)
    draft.move(PRODUCTION_ALIAS, production, successor.version, reason)
    _end_displaced_roles(draft, successor.version, action)
    return promoted


def _end_displaced_roles(draft: _Draft, production: int, action: AuditAction) -> None:
    """A production change ends the running canary (else a later bake check would promote it over
    this change) and clears a shadow that became production (a shadow is another version)."""
    rollback = action is AuditAction.ROLLED_BACK
    cause = "rollback" if rollback else "promotion"
    canary = draft.model.canary
    if canary is not None:
        if canary.version != production or rollback:  # a promoted canary simply won
            draft.audit(
                AuditAction.CANARY_STOPPED,
                canary.version,
                before={"canary": canary.model_dump(mode="json")},
                after={"canary": None, "production_version": production},
                reason=f"production changed by {cause} {'to' if rollback else 'of'} v{production}",
            )
        draft.model = draft.model.model_copy(update={"canary": None})
    if draft.model.shadow_version == production:
        draft.audit(
            AuditAction.SHADOW_CLEARED,
            production,
            before={"shadow_version": production},
            after={"shadow_version": None},
            reason=f"v{production} became production by {cause}",
        )
        draft.model = draft.model.model_copy(update={"shadow_version": None})


def plan_registration(
    model: ModelRecord | None, trained: ModelTrained, *, actor: str, request_id: str, now: datetime
) -> Plan:
    """The model's next version, a candidate, claiming its artifact (outcome: the version)."""
    number = (model.latest_version if model else 0) + 1
    draft = _Draft(trained.model_name, model, actor=actor, request_id=request_id, now=now)
    version = draft.version(None, candidate_from_trained(trained, number, now))
    draft.audit(
        AuditAction.REGISTERED,
        number,
        after={"status": version.status.value, "artifact_sha256": trained.artifact_sha256, "metrics": version.metrics}
        | _import_provenance(trained),
    )
    draft.plan.claim = trained.artifact_sha256
    return draft.finish(version, latest_version=number)


def _import_provenance(trained: ModelTrained) -> dict[str, Any]:
    """What the audit trail keeps of a model built elsewhere: who imported which file (none for trained ones)."""
    if trained.imported is None:
        return {}
    return {
        "origin": trained.origin,
        "importer": trained.imported.importer,
        "source_key": trained.imported.key,
        "source_sha256": trained.imported.sha256,
        "import_reason": trained.imported.reason,
    }


def automatic_decision(version: ModelVersion, champion: ModelVersion | None) -> PromotionDecision:
    """Should a newly registered version replace production without a person? The contract's
    metric policy (on the same data as the champion when training recorded it), then schema
    compatibility with the champion's contract, then the contract's mode; a four-eyes contract
    never promotes automatically."""
    contract = _contract(version)
    decision = decide_promotion(
        contract.metric,
        version.metrics,
        champion.metrics if champion else None,
        champion_version=champion.version if champion else None,
        same_data=same_data_of(version.lineage),
    )
    if champion is not None:
        decision = apply_compatibility(
            decision, input_compatibility(champion.contract, version.contract), champion.version
        )
    decision = apply_promotion_mode(decision, contract.promotion.mode)
    if contract.promotion.four_eyes and decision.promote:
        return PromotionDecision(False, f"{decision.reason}; the contract requires two people to approve and promote")
    return decision


def plan_promotion_decision(
    model: ModelRecord,
    version: ModelVersion,
    champion: ModelVersion | None,
    *,
    created: bool,
    actor: str,
    request_id: str,
    now: datetime,
    verify: ArtifactCheck,
) -> Plan:
    """Record whether a new version is promoted automatically (outcome: a RegistrationResult). An
    artifact that fails the production gate rejects the version instead."""
    decision = automatic_decision(version, champion)
    draft = _Draft(model.name, model, actor=actor, request_id=request_id, now=now)
    production = champion.version if champion else None
    if decision.promote:
        try:
            production_gate(version, verify)
        except (IntegrityError, NotFoundError) as error:
            return plan_integrity_rejection(
                model, version, error, actor=actor, request_id=request_id, now=now, created=created
            )
        promoted = _hand_over_production(
            draft,
            champion,
            version,
            action=AuditAction.PROMOTED,
            reason=decision.reason,
            history=[*model.production_history, version.version],
            promotion_decision=decision.reason,
        )
        result = RegistrationResult(
            version=promoted, created=created, promoted=True, decision=decision.reason, previous_production=production
        )
        return draft.finish(
            result, production_version=version.version, production_history=[*model.production_history, version.version]
        )
    decided = draft.version(version, version.model_copy(update={"promotion_decision": decision.reason}))
    draft.audit(
        AuditAction.PROMOTION_DECLINED,
        version.version,
        before={"production_version": production},
        after={"production_version": production},
        reason=decision.reason,
    )
    return draft.finish(RegistrationResult(version=decided, created=created, promoted=False, decision=decision.reason))


def plan_integrity_rejection(
    model: ModelRecord,
    version: ModelVersion,
    error: Exception,
    *,
    actor: str,
    request_id: str,
    now: datetime,
    created: bool | None = None,
) -> Plan:
    """A candidate or approved version whose artifact failed the production gate is rejected for
    good. Outcome: a RegistrationResult at registration (`created` given), else the Change."""
    reason = f"integrity check failed: {error}"
    draft = _Draft(model.name, model, actor=actor, request_id=request_id, now=now)
    check_transition(version.status, S.REJECTED)
    rejected = draft.status(version, S.REJECTED, promotion_decision=version.promotion_decision or reason)
    draft.audit(
        AuditAction.REJECTED,
        version.version,
        before={"status": version.status.value},
        after={"status": S.REJECTED.value},
        reason=reason,
    )
    draft.finish(None, guard=(version.status,))
    draft.plan.outcome = (
        RegistrationResult(version=rejected, created=created, promoted=False, decision=reason)
        if created is not None
        else Change(
            action=AuditAction.REJECTED.value, model=draft.model, version=rejected, from_status=version.status.value
        )
    )
    return draft.plan


def plan_status(
    model: ModelRecord,
    version: ModelVersion,
    target: VersionStatus,
    action: AuditAction,
    *,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
) -> Plan:
    """approve (candidate -> approved), reject (-> rejected, final), archive (never production)."""
    if version.status is S.PRODUCTION and target is S.ARCHIVED:
        raise ConflictError(
            f"{model.name} v{version.version} is in production; promote another version or roll back instead of "
            "archiving it"
        )
    check_transition(version.status, target)
    draft = _Draft(model.name, model, actor=actor, request_id=request_id, now=now)
    fields = {"approved_by": actor} if target is S.APPROVED else {}
    changed = draft.status(version, target, **fields)
    draft.audit(
        action, version.version, before={"status": version.status.value}, after={"status": target.value}, reason=reason
    )
    ends_canary = model.canary is not None and model.canary.version == version.version and target is not S.APPROVED
    draft.finish(None, guard=(version.status,), **({"canary": None} if ends_canary else {}))
    draft.plan.outcome = Change(
        action=action.value, model=draft.model, version=changed, from_status=version.status.value
    )
    return draft.plan


def plan_promote(
    model: ModelRecord,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    *,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
    verify: ArtifactCheck,
) -> Plan:
    """An approved version becomes production, archiving the current one. Raises ConflictError
    (not approved, already production, four eyes broken), IntegrityError/NotFoundError (gate)."""
    name, number = model.name, candidate.version
    if candidate.status is S.PRODUCTION:
        raise ConflictError(f"{name} v{number} is already the production version")
    check_transition(candidate.status, S.PRODUCTION)
    if candidate.status is not S.APPROVED:
        raise ConflictError(f"{name} v{number} is {candidate.status.value}; approve it before promoting it")
    if four_eyes(candidate) and candidate.approved_by == actor:
        raise ConflictError(
            f"{name}'s contract requires four eyes: v{number} was approved by the same person promoting it; "
            "another approver must promote it"
        )
    production_gate(candidate, verify)
    draft = _Draft(name, model, actor=actor, request_id=request_id, now=now)
    history = [*model.production_history, number]
    promoted = _hand_over_production(
        draft, champion, candidate, action=AuditAction.PROMOTED, reason=reason, history=history
    )
    draft.finish(
        None,
        guard=(model.production_version, tuple(model.production_history), candidate.status),
        production_version=number,
        production_history=history,
    )
    draft.plan.outcome = Change(
        action=AuditAction.PROMOTED.value,
        model=draft.model,
        version=promoted,
        previous_production=model.production_version,
    )
    return draft.plan


def rollback_versions(model: ModelRecord, to_version: int | None) -> tuple[int, int, list[int]]:
    """(current production, the version a rollback restores, the history after). Raises ConflictError."""
    if model.production_version is None:
        raise ConflictError(f"{model.name} has no production version to roll back")
    history = list(model.production_history)
    if not history or history[-1] != model.production_version:
        raise ConflictError(f"{model.name}: production history does not end with v{model.production_version}")
    target, after = rollback_target(history, to_version)
    return model.production_version, target, after


def plan_rollback(
    model: ModelRecord,
    current: ModelVersion,
    restored: ModelVersion,
    history: list[int],
    *,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
    verify: ArtifactCheck,
) -> Plan:
    """Production back to `restored` (from rollback_versions), its artifact verified first."""
    check_transition(current.status, S.ARCHIVED)
    check_transition(restored.status, S.PRODUCTION, rollback=True)
    production_gate(restored, verify)
    draft = _Draft(model.name, model, actor=actor, request_id=request_id, now=now)
    back = _hand_over_production(
        draft, current, restored, action=AuditAction.ROLLED_BACK, reason=reason, history=history, rollback=True
    )
    draft.finish(
        None,
        guard=(model.production_version, tuple(model.production_history)),
        production_version=restored.version,
        production_history=history,
    )
    draft.plan.outcome = Change(
        action=AuditAction.ROLLED_BACK.value, model=draft.model, version=back, previous_production=current.version
    )
    return draft.plan


def plan_alias(
    model: ModelRecord,
    alias: str,
    target: ModelVersion,
    *,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
) -> Plan:
    """Point a named alias (never `production`) at a version that may serve."""
    if alias == PRODUCTION_ALIAS:
        raise BadRequestError("the production alias moves only by promote or rollback")
    if target.status in (S.REJECTED, S.ARCHIVED):
        raise ConflictError(f"{model.name} v{target.version} is {target.status.value}; an alias cannot point at it")
    current = model.aliases.get(alias)
    if current == target.version:
        raise ConflictError(f"alias {alias} of {model.name} already points at v{target.version}")
    draft = _Draft(model.name, model, actor=actor, request_id=request_id, now=now)
    draft.audit(
        AuditAction.ALIAS_MOVED,
        target.version,
        before={"alias": alias, "version": current},
        after={"alias": alias, "version": target.version},
        reason=reason,
    )
    draft.move(alias, current, target.version, reason)
    draft.finish(None, guard=(tuple(sorted(model.aliases.items())),), aliases={**model.aliases, alias: target.version})
    draft.plan.outcome = Change(
        action=AuditAction.ALIAS_MOVED.value, model=draft.model, version=target, previous_version=current
    )
    return draft.plan


MAX_CANARY_SHARE = 0.5  # a canary is a minority of the traffic: the champion answers the rest
MAX_BAKE_MINUTES = 7 * 24 * 60


def plan_canary_start(
    model: ModelRecord,
    version: ModelVersion,
    *,
    share: float,
    bake_minutes: int,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
) -> Plan:
    """`version` answers `share` of the production requests; after `bake_minutes` without its
    alarms it is promoted through `plan_promote` (so it must be approved, like any promotion).
    Raises BadRequestError (share or bake out of range), ConflictError (no production, the
    production version itself, not approved, another canary running)."""
    name = model.name
    if not 0 < share <= MAX_CANARY_SHARE:
        raise BadRequestError(f"share must be above 0 and at most {MAX_CANARY_SHARE}, got {share}")
    if not 1 <= bake_minutes <= MAX_BAKE_MINUTES:
        raise BadRequestError(f"bake_minutes must be 1 to {MAX_BAKE_MINUTES}, got {bake_minutes}")
    if model.production_version is None:
        raise ConflictError(f"{name} has no production version for a canary to share traffic with")
    if version.version == model.production_version:
        raise ConflictError(f"{name} v{version.version} is the production version; a canary is another version")
    if version.status is not S.APPROVED:
        raise ConflictError(
            f"{name} v{version.version} is {version.status.value}; approve it first (a canary that bakes without "
            "alarms is promoted, through the same gates as any promotion)"
        )
    if model.canary is not None:
        raise ConflictError(f"{name} already runs v{model.canary.version} as its canary; stop it first")
    canary = Canary(version=version.version, share=share, bake_minutes=bake_minutes, started_at=now, started_by=actor)
    draft = _Draft(name, model, actor=actor, request_id=request_id, now=now)
    draft.audit(
        AuditAction.CANARY_STARTED,
        version.version,
        before={"canary": None, "production_version": model.production_version},
        after={"canary": canary.model_dump(mode="json")},
        reason=reason,
    )
    draft.finish(None, guard=(None, model.production_version, version.status), canary=canary)
    draft.plan.outcome = Change(action=AuditAction.CANARY_STARTED.value, model=draft.model, version=version)
    return draft.plan


def plan_canary_end(
    model: ModelRecord,
    version: ModelVersion,
    *,
    rolled_back: bool,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
) -> Plan:
    """The canary `version` stops taking traffic: stopped by an approver, or rolled back (its
    alarm fired: `actor` is the alarm). The version keeps its status. Raises ConflictError."""
    canary = model.canary
    if canary is None or canary.version != version.version:
        raise ConflictError(f"{model.name} runs no canary" + (f" v{version.version}" if canary else ""))
    action = AuditAction.CANARY_ROLLED_BACK if rolled_back else AuditAction.CANARY_STOPPED
    draft = _Draft(model.name, model, actor=actor, request_id=request_id, now=now)
    draft.audit(
        action,
        canary.version,
        before={"canary": canary.model_dump(mode="json")},
        after={"canary": None, "production_version": model.production_version},
        reason=reason,
    )
    draft.finish(None, guard=(canary,), canary=None)
    draft.plan.outcome = Change(action=action.value, model=draft.model, version=version)
    return draft.plan


def plan_shadow(
    model: ModelRecord,
    version: ModelVersion | None,
    *,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
) -> Plan:
    """Set (`version`) or clear (None) the shadow: a challenger that scores the production model's
    captures off the response path (mlops.shadow). Raises ConflictError (the production version, a
    rejected or archived one, nothing to clear)."""
    name = model.name
    if version is None:
        if model.shadow_version is None:
            raise ConflictError(f"{name} has no shadow")
        cleared = model.shadow_version
        draft = _Draft(name, model, actor=actor, request_id=request_id, now=now)
        draft.audit(AuditAction.SHADOW_CLEARED, cleared, before={"shadow_version": cleared}, after={}, reason=reason)
        return draft.finish(None, guard=(cleared,), shadow_version=None)
    if version.version == model.production_version:
        raise ConflictError(f"{name} v{version.version} is the production version; a shadow is another version")
    if version.status in (S.REJECTED, S.ARCHIVED):
        raise ConflictError(f"{name} v{version.version} is {version.status.value}; it cannot shadow production")
    if model.shadow_version == version.version:
        raise ConflictError(f"{name} v{version.version} already shadows production")
    draft = _Draft(name, model, actor=actor, request_id=request_id, now=now)
    draft.audit(
        AuditAction.SHADOW_SET,
        version.version,
        before={"shadow_version": model.shadow_version},
        after={"shadow_version": version.version},
        reason=reason,
    )
    return draft.finish(None, guard=(model.shadow_version, version.status), shadow_version=version.version)


def canary_baked(canary: Canary, now: datetime) -> bool:
    """Has the canary run its declared bake period?"""
    return (now - canary.started_at).total_seconds() >= canary.bake_minutes * 60


def plan_dataset_review(
    model: ModelRecord | None,
    name: str,
    dataset_id: str,
    decision: str,
    state: str,
    *,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
) -> Plan:
    """A reviewer's decision on a held dataset, chained into the model's audit trail (the model
    record is created when no version was registered yet). Outcome: the audit event."""
    draft = _Draft(name, model, actor=actor, request_id=request_id, now=now)
    event = draft.audit(
        AuditAction.DATASET_REVIEWED,
        None,
        after={"dataset_id": dataset_id, "decision": decision, "state": state},
        reason=reason,
    )
    return draft.finish(event)


def plan_retraining_event(
    model: ModelRecord | None,
    name: str,
    action: AuditAction,
    details: dict[str, Any],
    *,
    actor: str,
    reason: str,
    request_id: str,
    now: datetime,
) -> Plan:
    """A retraining trigger, skip, start or refusal (mlops.retraining), chained into the model's audit trail.
    Outcome: the audit event."""
    if action not in (
        AuditAction.RETRAIN_REQUESTED,
        AuditAction.RETRAIN_SKIPPED,
        AuditAction.RETRAIN_STARTED,
        AuditAction.RETRAIN_REFUSED,
    ):
        raise ValueError(f"{action} is not a retraining event")
    draft = _Draft(name, model, actor=actor, request_id=request_id, now=now)
    event = draft.audit(action, None, after=details, reason=reason)
    return draft.finish(event)
