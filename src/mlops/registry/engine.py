"""ModelRegistry's changes over a few storage primitives: read the state, call the decision in
mlops.registry.lifecycle, commit its plan atomically (conditioned on the state read), retry a
lost race, replay an idempotent request. DynamoRegistry and the in-memory fake subclass it and
implement only the primitives, so both execute the same decisions.

Retries: registration (version allocation, the promotion decision) re-decides after any lost
race. A person's change (approve, promote, rollback, alias, ...) re-decides after a race that left
what it depended on (the plan's `guard`) unchanged, e.g. an unrelated audit event; otherwise it is
a ConflictError (of two concurrent promotions exactly one wins).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from mlops.contract import parse_contract
from mlops.errors import (
    BadRequestError,
    ConflictError,
    IntegrityError,
    MlopsError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from mlops.registry import lifecycle
from mlops.registry.lifecycle import ArtifactCheck, Plan
from mlops.registry.names import (
    IdempotencyKeyReusedError,
    require_alias,
    require_model_name,
    require_sha256,
    require_version,
)
from mlops.registry.records import (
    Artifact,
    AuditAction,
    AuditEvent,
    Change,
    ModelRecord,
    ModelVersion,
    RegistrationResult,
    VersionStatus,
)

if TYPE_CHECKING:
    from mlops.events import ModelTrained
    from mlops.ports import ObjectStore

MAX_ATTEMPTS = 30
T = TypeVar("T")


class ArtifactRejectedError(IntegrityError):
    """Promotion found the artifact changed: the version was rejected (audited); `change` is that rejection."""

    def __init__(self, message: str, change: Change) -> None:
        super().__init__(message)
        self.change = change


class NoArtifactStoreError(MlopsError):
    """A registry built without an artifact store cannot verify an artifact, so it promotes nothing."""


class StoredRequest:
    """An idempotent request, committed with the change it made: its key, fingerprint and outcome."""

    def __init__(self, key: str, fingerprint: str, action: str, result: str) -> None:
        self.key, self.fingerprint, self.action, self.result = key, fingerprint, action, result

    @property
    def key_hash(self) -> str:
        return request_key_hash(self.key)


def request_key_hash(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


class RegistryEngine:
    """The registry's changes. Subclasses implement `_load_model`, `_load_version`, `_load_claim`,
    `_load_request` and `_commit` (all or nothing, False on a failed condition)."""

    def __init__(self, artifacts: ObjectStore | None = None) -> None:
        self._artifacts = artifacts

    # ---- primitives ----

    def _load_model(self, name: str) -> ModelRecord | None:
        raise NotImplementedError

    def _load_version(self, name: str, number: int) -> ModelVersion | None:
        raise NotImplementedError

    def _load_claim(self, name: str, sha256: str) -> int | None:
        raise NotImplementedError

    def _load_request(self, name: str, key_hash: str) -> tuple[str, str] | None:
        """(fingerprint, stored result JSON) of an idempotent request, or None."""
        raise NotImplementedError

    def _commit(self, plan: Plan, request: StoredRequest | None) -> bool:
        raise NotImplementedError

    def _artifact_store(self) -> ObjectStore | None:
        return self._artifacts

    # ---- reads every registry shares ----

    def get_model(self, name: str) -> ModelRecord:
        model = self._load_model(require_model_name(name))
        if model is None:
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        return model

    def get_version(self, name: str, version: int) -> ModelVersion:
        found = self._load_version(require_model_name(name), version)
        if found is None:
            self.get_model(name)  # ModelNotFoundError first, when the whole model is unknown
            raise VersionNotFoundError(f"{name} has no version {version}")
        return found

    def production(self, name: str) -> ModelVersion | None:
        """The production version, or None when the model has none. Raises ModelNotFoundError."""
        return self._champion_of(self.get_model(name))

    def _champion_of(self, model: ModelRecord) -> ModelVersion | None:
        """The production version `model` names: a decision reads the champion from the same model
        read it is guarded by (a second read of the model could see a concurrent promotion, and the
        plan would archive and promote one version at once)."""
        number = model.production_version
        return None if number is None else self.get_version(model.name, number)

    # ---- the production gate ----

    def _verify(self) -> ArtifactCheck:
        """The artifact check the production gate runs; each artifact is hashed once per request."""
        store = self._artifact_store()
        if store is None:

            def refuse(artifact: Artifact) -> None:
                raise NoArtifactStoreError(
                    "this registry has no artifact store to verify artifacts; it promotes nothing"
                )

            return refuse
        from mlops.registry.integrity import verify_stored_artifact

        return functools.cache(functools.partial(verify_stored_artifact, store))

    # ---- registration ----

    def register(self, trained: ModelTrained, *, actor: str, request_id: str = "") -> RegistrationResult:
        """Record `trained` as the model's next version, then decide its automatic promotion.

        A second registration of the same artifact returns the existing version (`created=False`).
        Raises BadRequestError/ContractError for an invalid event, ConflictError when contention
        outlasts the retries.
        """
        name = require_model_name(trained.model_name)
        sha = require_sha256(trained.artifact_sha256)
        contract = parse_contract(trained.contract, source=f"contract of {name}")
        if contract.name != name:
            raise BadRequestError(f"the contract is for {contract.name!r}, the event for {name!r}")
        for attempt in range(MAX_ATTEMPTS):
            claimed = self._load_claim(name, sha)
            if claimed is not None:
                version, created = self.get_version(name, claimed), False
                break
            plan = lifecycle.plan_registration(
                self._load_model(name), trained, actor=actor, request_id=request_id, now=_now()
            )
            if self._commit(plan, None):
                version, created = plan.outcome, True
                break
            _backoff(attempt)
        else:
            raise ConflictError(f"could not allocate a version of {name} after {MAX_ATTEMPTS} attempts (contention)")
        if version.status in (VersionStatus.CANDIDATE, VersionStatus.APPROVED) and not version.promotion_decision:
            # new, or a retry of a registration interrupted before its promotion decision
            return self._decide(version, created=created, actor=actor, request_id=request_id)
        return RegistrationResult(
            version=version,
            created=created,
            promoted=False,
            decision=version.promotion_decision or f"artifact already registered as v{version.version}",
        )

    def _decide(self, version: ModelVersion, *, created: bool, actor: str, request_id: str) -> RegistrationResult:
        name, verify = version.model_name, self._verify()
        for attempt in range(MAX_ATTEMPTS):
            current = self.get_version(name, version.version)
            if current.promotion_decision:  # a concurrent duplicate decided first
                return RegistrationResult(
                    version=current, created=created, promoted=False, decision=current.promotion_decision
                )
            model = self.get_model(name)
            champion = self._champion_of(model)
            try:
                plan = lifecycle.plan_promotion_decision(
                    model,
                    current,
                    champion,
                    created=created,
                    actor=actor,
                    request_id=request_id,
                    now=_now(),
                    verify=verify,
                )
            except ConflictError:  # read between a concurrent change's writes: read again
                _backoff(attempt)
                continue
            if self._commit(plan, None):
                return plan.outcome  # type: ignore[no-any-return]
            _backoff(attempt)
        raise ConflictError(f"could not decide the promotion of {name} v{version.version} (contention)")

    # ---- a person's changes ----

    def _change(
        self,
        name: str,
        decide: Callable[[], Plan],
        *,
        fingerprint: list[Any],
        idempotency_key: str,
        conflict: str,
        result_type: type[Any] = Change,
    ) -> Any:
        """Decide and commit, retrying races that left the decision's guard unchanged; an idempotency
        key seen before returns the stored outcome (`replayed`)."""
        digest = hashlib.sha256(json.dumps(fingerprint, default=str).encode()).hexdigest()

        def replay() -> Any:
            if not idempotency_key:
                return None
            stored = self._load_request(name, request_key_hash(idempotency_key))
            if stored is None:
                return None
            if stored[0] != digest:
                raise IdempotencyKeyReusedError(
                    "this idempotency key was used for a different request; use a new key for a new request"
                )
            outcome = result_type.model_validate_json(stored[1])
            return outcome.model_copy(update={"replayed": True}) if result_type is Change else outcome

        if (earlier := replay()) is not None:
            return earlier
        guard: tuple[Any, ...] | None = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                plan = decide()
            except ConflictError:
                # a concurrent duplicate may have committed between our replay check and our reads
                if (earlier := replay()) is not None:
                    return earlier
                raise
            if guard is not None and plan.guard != guard:
                raise ConflictError(conflict)
            guard = plan.guard
            request = (
                StoredRequest(idempotency_key, digest, fingerprint[0], plan.outcome.model_dump_json())
                if idempotency_key
                else None
            )
            if self._commit(plan, request):
                return plan.outcome
            if (earlier := replay()) is not None:
                return earlier  # a concurrent duplicate of this request committed first
            _backoff(attempt)
        raise ConflictError(conflict)

    def approve(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        """candidate -> approved. Raises ModelNotFoundError, VersionNotFoundError, ConflictError."""
        return self._set_status(
            name, version, VersionStatus.APPROVED, AuditAction.APPROVED, actor, reason, request_id, idempotency_key
        )

    def reject(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        """candidate/approved -> rejected, for good. Raises as `approve`."""
        return self._set_status(
            name, version, VersionStatus.REJECTED, AuditAction.REJECTED, actor, reason, request_id, idempotency_key
        )

    def archive(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        """candidate/approved -> archived (production leaves only by promotion or rollback). Raises as `approve`."""
        return self._set_status(
            name, version, VersionStatus.ARCHIVED, AuditAction.ARCHIVED, actor, reason, request_id, idempotency_key
        )

    def _set_status(
        self,
        name: str,
        number: int,
        target: VersionStatus,
        action: AuditAction,
        actor: str,
        reason: str,
        request_id: str,
        idempotency_key: str,
    ) -> Change:
        require_model_name(name)
        require_version(number)

        def decide() -> Plan:
            return lifecycle.plan_status(
                self.get_model(name),
                self.get_version(name, number),
                target,
                action,
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
            )

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=[action.value, actor, number, reason],
            idempotency_key=idempotency_key,
            conflict=f"{name} v{number} changed meanwhile; retry",
        )

    def promote(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        """An approved version becomes production once its artifact passes the production gate; the
        current one is archived. Raises ModelNotFoundError, VersionNotFoundError, ConflictError (not
        approved, already production, four eyes, production moved meanwhile), ArtifactRejectedError
        (the artifact changed: the version is now rejected) or NotFoundError (artifact gone)."""
        require_model_name(name)
        require_version(version)
        verify = self._verify()

        def decide() -> Plan:
            model = self.get_model(name)
            return lifecycle.plan_promote(
                model,
                self.get_version(name, version),
                self._champion_of(model),
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
                verify=verify,
            )

        try:
            return self._change(  # type: ignore[no-any-return]
                name,
                decide,
                fingerprint=["promote", actor, version, reason],
                idempotency_key=idempotency_key,
                conflict=f"production of {name} changed while promoting v{version}; retry",
            )
        except IntegrityError as error:
            rejection = self._reject_tampered(name, version, error, actor=actor, request_id=request_id)
            raise ArtifactRejectedError(str(error), rejection) from error

    def _reject_tampered(self, name: str, number: int, error: Exception, *, actor: str, request_id: str) -> Change:
        def decide() -> Plan:
            return lifecycle.plan_integrity_rejection(
                self.get_model(name),
                self.get_version(name, number),
                error,
                actor=actor,
                request_id=request_id,
                now=_now(),
            )

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["reject", actor, number],
            idempotency_key="",
            conflict=f"{name} v{number} changed meanwhile; retry",
        )

    def rollback(
        self,
        name: str,
        *,
        actor: str,
        reason: str,
        request_id: str = "",
        to_version: int | None = None,
        idempotency_key: str = "",
    ) -> Change:
        """Make the previous production version (or `to_version`, an earlier one) production again,
        once its artifact passes the production gate. Raises ModelNotFoundError,
        VersionNotFoundError (unknown `to_version`), ConflictError (nothing to roll back to,
        production changed meanwhile), IntegrityError/NotFoundError (its artifact changed or is gone)."""
        require_model_name(name)
        if to_version is not None:
            require_version(to_version)
        verify = self._verify()

        def decide() -> Plan:
            model = self.get_model(name)
            if to_version is not None:
                self.get_version(name, to_version)
            current, target, history = lifecycle.rollback_versions(model, to_version)
            return lifecycle.plan_rollback(
                model,
                self.get_version(name, current),
                self.get_version(name, target),
                history,
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
                verify=verify,
            )

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["rollback", actor, to_version, reason],
            idempotency_key=idempotency_key,
            conflict=f"production of {name} changed while rolling back; retry",
        )

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str,
        request_id: str = "",
        idempotency_key: str = "",
    ) -> Change:
        """Point a named alias (not `production`) at a version; the move is kept as history.

        Raises BadRequestError (invalid alias, `production`), ModelNotFoundError,
        VersionNotFoundError, ConflictError (rejected/archived version, concurrent move).
        """
        require_model_name(name)
        require_alias(alias)
        require_version(version)

        def decide() -> Plan:
            return lifecycle.plan_alias(
                self.get_model(name),
                alias,
                self.get_version(name, version),
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
            )

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["set_alias", actor, alias, version, reason],
            idempotency_key=idempotency_key,
            conflict=f"aliases of {name} changed meanwhile; retry",
        )

    def start_canary(
        self,
        name: str,
        version: int,
        *,
        share: float,
        bake_minutes: int,
        actor: str,
        reason: str,
        request_id: str = "",
        idempotency_key: str = "",
    ) -> Change:
        """`version` (approved) answers `share` of the production requests (lifecycle.plan_canary_start).
        Raises BadRequestError, ModelNotFoundError, VersionNotFoundError, ConflictError."""
        require_model_name(name)
        require_version(version)

        def decide() -> Plan:
            return lifecycle.plan_canary_start(
                self.get_model(name),
                self.get_version(name, version),
                share=share,
                bake_minutes=bake_minutes,
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
            )

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["start_canary", actor, version, share, bake_minutes, reason],
            idempotency_key=idempotency_key,
            conflict=f"the canary of {name} changed meanwhile; retry",
        )

    def end_canary(
        self,
        name: str,
        *,
        rolled_back: bool,
        actor: str,
        reason: str,
        version: int | None = None,
        request_id: str = "",
        idempotency_key: str = "",
    ) -> Change:
        """Stop the canary (`version`: only if it is that one). Raises ModelNotFoundError, ConflictError."""
        require_model_name(name)

        def decide() -> Plan:
            model = self.get_model(name)
            if model.canary is None or (version is not None and model.canary.version != version):
                raise ConflictError(f"{name} runs no canary" + (f" v{version}" if version is not None else ""))
            return lifecycle.plan_canary_end(
                model,
                self.get_version(name, model.canary.version),
                rolled_back=rolled_back,
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
            )

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["end_canary", actor, rolled_back, version, reason],
            idempotency_key=idempotency_key,
            conflict=f"the canary of {name} changed meanwhile; retry",
        )

    def set_shadow(
        self,
        name: str,
        version: int | None,
        *,
        actor: str,
        reason: str,
        request_id: str = "",
        idempotency_key: str = "",
    ) -> ModelRecord:
        """Set (or clear, `version` None) the model's shadow. Raises ModelNotFoundError,
        VersionNotFoundError, ConflictError."""
        require_model_name(name)
        if version is not None:
            require_version(version)

        def decide() -> Plan:
            model = self.get_model(name)
            plan = lifecycle.plan_shadow(
                model,
                self.get_version(name, version) if version is not None else None,
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
            )
            plan.outcome = plan.model_after
            return plan

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["set_shadow", actor, version, reason],
            idempotency_key=idempotency_key,
            conflict=f"the shadow of {name} changed meanwhile; retry",
            result_type=ModelRecord,
        )

    def promote_canary(self, name: str, *, actor: str, reason: str, request_id: str = "") -> Change:
        """The canary that baked its declared minutes becomes production through `plan_promote`
        (approved, four eyes, the production gate). Raises ConflictError (no canary, still baking,
        a gate), IntegrityError/NotFoundError (its artifact changed or is gone)."""
        require_model_name(name)
        verify = self._verify()

        def decide() -> Plan:
            model = self.get_model(name)
            canary = model.canary
            if canary is None:
                raise ConflictError(f"{name} runs no canary")
            now = _now()
            if not lifecycle.canary_baked(canary, now):
                raise ConflictError(f"{name}'s canary v{canary.version} bakes until {canary.bake_minutes} minutes")
            plan = lifecycle.plan_promote(
                model,
                self.get_version(name, canary.version),
                self._champion_of(model),
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=now,
                verify=verify,
            )
            plan.guard = (*plan.guard, canary)
            return plan

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["promote_canary", actor, reason],
            idempotency_key="",
            conflict=f"production or the canary of {name} changed while promoting it; retry",
        )

    def record_dataset_review(
        self, name: str, dataset_id: str, decision: str, state: str, *, actor: str, reason: str, request_id: str = ""
    ) -> AuditEvent:
        """Chain a dataset review decision into the model's audit trail. Recording the same reviewer's
        same decision again (a retried review) returns the first event."""
        require_model_name(name)

        def decide() -> Plan:
            return lifecycle.plan_dataset_review(
                self._load_model(name),
                name,
                dataset_id,
                decision,
                state,
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
            )

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["dataset_review", actor, dataset_id, decision],
            idempotency_key=f"dataset-review#{dataset_id}#{decision}#{actor}",
            conflict=f"the audit trail of {name} changed meanwhile; retry",
            result_type=AuditEvent,
        )

    def record_retraining(
        self,
        name: str,
        action: AuditAction,
        details: dict[str, Any],
        *,
        actor: str,
        reason: str,
        request_id: str = "",
        idempotency_key: str = "",
    ) -> AuditEvent:
        """Chain a retraining trigger, skip or start into the model's audit trail. The same
        `idempotency_key` again (a redelivered event) returns the first event."""
        require_model_name(name)

        def decide() -> Plan:
            return lifecycle.plan_retraining_event(
                self._load_model(name),
                name,
                action,
                details,
                actor=actor,
                reason=reason,
                request_id=request_id,
                now=_now(),
            )

        return self._change(  # type: ignore[no-any-return]
            name,
            decide,
            fingerprint=["retraining", action.value, actor, reason],
            idempotency_key=idempotency_key,
            conflict=f"the audit trail of {name} changed meanwhile; retry",
            result_type=AuditEvent,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
