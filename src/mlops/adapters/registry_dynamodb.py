"""ModelRegistry on one DynamoDB table (item layout in docs/DESIGN.md, "Registry table").

Every change is one `transact_write_items`: allocating a version (model item's `latest_version`,
the version item, the `ARTIFACT#<sha256>` claim and an audit event), promoting (the model item's
`production_version` moved conditionally from the value we read, both version statuses, audit
events, the alias move) and rolling back. A lost race cancels the whole transaction; we re-read
and retry allocation and promotion decisions, and report a concurrent change as a conflict.

Audit events and alias moves live in their own partition, `AUDIT#<name>`, written only with
`attribute_not_exists` puts, so an IAM Deny on UpdateItem/DeleteItem conditioned on
`dynamodb:LeadingKeys` `AUDIT#*` makes them append-only for the functions' roles.
Mutations that carry an idempotency key store their outcome as `REQUEST#<sha256(key)>` in the
same transaction: a retry returns the stored outcome (`replayed=True`) and changes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlops.adapters.aws import client
from mlops.adapters.registry_items import MODEL_SK, VERSION_PREFIX, model_pk, version_sk
from mlops.adapters.registry_items import from_dynamo as from_dynamo
from mlops.adapters.registry_items import from_item as _from_item
from mlops.adapters.registry_items import item_key as _key
from mlops.contract import Metric, PromotionMode, parse_contract
from mlops.errors import BadRequestError, ConflictError, ModelNotFoundError, VersionNotFoundError
from mlops.registry.policy import apply_promotion_mode, decide_promotion
from mlops.registry.records import (
    AliasMove,
    AuditAction,
    AuditEvent,
    Change,
    ModelRecord,
    ModelVersion,
    RegistrationResult,
    VersionStatus,
    candidate_from_trained,
)
from mlops.registry.service import (
    IdempotencyKeyReusedError,
    require_alias,
    require_model_name,
    require_sha256,
    require_version,
)
from mlops.registry.transitions import check_transition, rollback_target

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    from mlops.events import ModelTrained

MODELS_INDEX = "gsi1"
MODELS_INDEX_PK = "MODELS"
ARTIFACT_PREFIX = "ARTIFACT#"
AUDIT_PREFIX = "AUDIT#"  # the append-only partition: pk AUDIT#<name>
EVENT_PREFIX = "EVENT#"
ALIAS_PREFIX = "ALIAS#"
REQUEST_PREFIX = "REQUEST#"
PRODUCTION_ALIAS = "production"

_MAX_ATTEMPTS = 30
_RETRYABLE_REASONS = {"ConditionalCheckFailed", "TransactionConflict"}
_TICK = timedelta(microseconds=1)
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


@functools.cache
def _boto3_types() -> tuple[TypeSerializer, TypeDeserializer]:
    """boto3's (de)serializers, imported on first use: `import boto3` costs the predict function's
    cold start ~15 ms (s3transfer, boto3's session) and its read path never needs them."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _serialize(value: Any) -> dict[str, Any]:
    return _boto3_types()[0].serialize(value)


def artifact_sk(sha256: str) -> str:
    return f"{ARTIFACT_PREFIX}{sha256}"


def audit_pk(name: str) -> str:
    return f"{AUDIT_PREFIX}{name}"


def audit_sk(at: datetime, event_id: str) -> str:
    return f"{EVENT_PREFIX}{_iso(at)}#{event_id}"


def alias_sk(alias: str, at: datetime, event_id: str) -> str:
    return f"{ALIAS_PREFIX}{alias}#{_iso(at)}#{event_id}"


def request_sk(idempotency_key: str) -> str:
    return f"{REQUEST_PREFIX}{hashlib.sha256(idempotency_key.encode()).hexdigest()}"


class DynamoRegistry:
    """The model registry on DynamoDB. Methods raise ModelNotFoundError, VersionNotFoundError,
    ConflictError (a transition not allowed, a lost race) and BadRequestError (invalid names)."""

    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    # ---- registration and promotion ----

    def register(self, trained: ModelTrained, *, actor: str, request_id: str = "") -> RegistrationResult:
        """Record `trained` as the model's next version, then promote it if the policy says so.

        A second registration of the same artifact returns the existing version (`created=False`).
        Raises BadRequestError/ContractError for an invalid event, ConflictError when contention
        outlasts the retries.
        """
        name = require_model_name(trained.model_name)
        require_sha256(trained.artifact_sha256)
        contract = parse_contract(trained.contract, source=f"contract of {name}")
        if contract.name != name:
            raise BadRequestError(f"the contract is for {contract.name!r}, the event for {name!r}")
        version, created = self._allocate(trained, actor=actor, request_id=request_id)
        if version.status in (VersionStatus.CANDIDATE, VersionStatus.APPROVED) and not version.promotion_decision:
            # New, or a retry of a registration interrupted before its promotion decision.
            return self._decide(
                version,
                contract.metric,
                contract.promotion.mode,
                created=created,
                actor=actor,
                request_id=request_id,
            )
        return RegistrationResult(
            version=version,
            created=created,
            promoted=False,
            decision=version.promotion_decision or f"artifact already registered as v{version.version}",
        )

    def _allocate(self, trained: ModelTrained, *, actor: str, request_id: str) -> tuple[ModelVersion, bool]:
        name, sha = trained.model_name, trained.artifact_sha256
        for attempt in range(_MAX_ATTEMPTS):
            claimed = self._get(model_pk(name), artifact_sk(sha))
            if claimed is not None:
                return self.get_version(name, int(claimed["version"])), False
            model = self._get(model_pk(name), MODEL_SK)
            current = int(model["latest_version"]) if model else 0
            now = _now()
            version = candidate_from_trained(trained, current + 1, now)
            if model is None:
                model_write = self._put(
                    {
                        "pk": model_pk(name),
                        "sk": MODEL_SK,
                        "gsi1pk": MODELS_INDEX_PK,
                        "gsi1sk": name,
                        "name": name,
                        "latest_version": version.version,
                        "production_history": [],
                        "aliases": {},
                        "created_at": _iso(now),
                        "updated_at": _iso(now),
                    },
                    condition="attribute_not_exists(pk)",
                )
            else:
                model_write = self._update(
                    model_pk(name),
                    MODEL_SK,
                    "SET latest_version = :new, updated_at = :now",
                    condition="latest_version = :current",
                    values={":new": version.version, ":now": _iso(now), ":current": current},
                )
            items = [
                model_write,
                self._put(_version_item(version, now), condition="attribute_not_exists(pk)"),
                self._put(
                    {"pk": model_pk(name), "sk": artifact_sk(sha), "version": version.version, "created_at": _iso(now)},
                    condition="attribute_not_exists(pk)",
                ),
                self._audit_put(
                    name,
                    AuditAction.REGISTERED,
                    actor=actor,
                    version=version.version,
                    after={"status": version.status.value, "artifact_sha256": sha, "metrics": version.metrics},
                    request_id=request_id,
                    at=now,
                ),
            ]
            if self._transact(items):
                return version, True
            _backoff(attempt)
        raise ConflictError(f"could not allocate a version of {name} after {_MAX_ATTEMPTS} attempts (contention)")

    def _decide(
        self,
        version: ModelVersion,
        metric: Metric,
        mode: PromotionMode,
        *,
        created: bool,
        actor: str,
        request_id: str,
    ) -> RegistrationResult:
        name = version.model_name
        for attempt in range(_MAX_ATTEMPTS):
            model = self._model_item(name)
            production = _opt_int(model.get("production_version"))
            champion = self.get_version(name, production) if production is not None else None
            if champion is not None and champion.status is not VersionStatus.PRODUCTION:
                _backoff(attempt)  # read between a concurrent promotion's writes: read again
                continue
            decision = decide_promotion(
                metric, version.metrics, champion.metrics if champion else None, champion_version=production
            )
            decision = apply_promotion_mode(decision, mode)
            now = _now()
            undecided = "#status = :from AND (attribute_not_exists(promotion_decision) OR promotion_decision = :empty)"
            decided_values = {
                ":from": version.status.value,
                ":empty": "",
                ":reason": decision.reason,
                ":now": _iso(now),
            }
            if decision.promote:
                check_transition(version.status, VersionStatus.PRODUCTION)
                items = [
                    self._move_production(name, production, version.version, now),
                    self._update(
                        model_pk(name),
                        version_sk(version.version),
                        "SET #status = :to, promotion_decision = :reason, updated_at = :now",
                        condition=undecided,
                        values={**decided_values, ":to": VersionStatus.PRODUCTION.value},
                        names={"#status": "status"},
                    ),
                    self._audit_put(
                        name,
                        AuditAction.PROMOTED,
                        actor=actor,
                        version=version.version,
                        before={"production_version": production, "status": version.status.value},
                        after={"production_version": version.version, "status": VersionStatus.PRODUCTION.value},
                        reason=decision.reason,
                        request_id=request_id,
                        at=now + _TICK,  # sorts after the champion's "archived" event
                    ),
                    self._alias_put(
                        name,
                        PRODUCTION_ALIAS,
                        production,
                        version.version,
                        actor=actor,
                        reason=decision.reason,
                        request_id=request_id,
                        at=now + _TICK,
                    ),
                ]
                if champion is not None:
                    check_transition(champion.status, VersionStatus.ARCHIVED)
                    items += self._archive(
                        name, champion.version, actor=actor, request_id=request_id, at=now, by=version.version
                    )
            else:
                items = [
                    self._update(
                        model_pk(name),
                        version_sk(version.version),
                        "SET promotion_decision = :reason, updated_at = :now",
                        condition=undecided,
                        values=decided_values,
                        names={"#status": "status"},
                    ),
                    self._audit_put(
                        name,
                        AuditAction.PROMOTION_DECLINED,
                        actor=actor,
                        version=version.version,
                        before={"production_version": production},
                        after={"production_version": production},
                        reason=decision.reason,
                        request_id=request_id,
                        at=now,
                    ),
                ]
            if self._transact(items):
                status = VersionStatus.PRODUCTION if decision.promote else version.status
                return RegistrationResult(
                    version=version.model_copy(update={"status": status, "promotion_decision": decision.reason}),
                    created=created,
                    promoted=decision.promote,
                    decision=decision.reason,
                    previous_production=production if decision.promote else None,
                )
            current = self.get_version(name, version.version)
            if current.promotion_decision:  # a concurrent duplicate decided first
                return RegistrationResult(
                    version=current, created=created, promoted=False, decision=current.promotion_decision
                )
            _backoff(attempt)
        raise ConflictError(f"could not decide the promotion of {name} v{version.version} (contention)")

    def _move_production(self, name: str, current: int | None, new: int, now: datetime) -> dict[str, Any]:
        if current is None:
            condition = "attribute_not_exists(production_version)"
            values: dict[str, Any] = {}
        else:
            condition = "production_version = :current"
            values = {":current": current}
        return self._update(
            model_pk(name),
            MODEL_SK,
            "SET production_version = :new, updated_at = :now, "
            "production_history = list_append(if_not_exists(production_history, :empty_list), :new_list)",
            condition=condition,
            values={**values, ":new": new, ":now": _iso(now), ":empty_list": [], ":new_list": [new]},
        )

    def _archive(
        self, name: str, version: int, *, actor: str, request_id: str, at: datetime, by: int
    ) -> list[dict[str, Any]]:
        return [
            self._update(
                model_pk(name),
                version_sk(version),
                "SET #status = :archived, updated_at = :now",
                condition="#status = :production",
                values={
                    ":archived": VersionStatus.ARCHIVED.value,
                    ":production": VersionStatus.PRODUCTION.value,
                    ":now": _iso(at),
                },
                names={"#status": "status"},
            ),
            self._audit_put(
                name,
                AuditAction.ARCHIVED,
                actor=actor,
                version=version,
                before={"status": VersionStatus.PRODUCTION.value},
                after={"status": VersionStatus.ARCHIVED.value, "replaced_by": by},
                request_id=request_id,
                at=at,
            ),
        ]

    # ---- rollback ----

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
        """Make the previous production version (or `to_version`, an earlier one) production again.

        Atomic and audited. Raises ModelNotFoundError, VersionNotFoundError (unknown `to_version`)
        and ConflictError (nothing to roll back to, or production changed meanwhile).
        """
        require_model_name(name)
        fingerprint = _fingerprint("rollback", actor, to_version, reason)

        def plan() -> tuple[list[dict[str, Any]], Change]:
            item = self._model_item(name)
            record = _record(item)
            if to_version is not None:
                self.get_version(name, to_version)
            if record.production_version is None:
                raise ConflictError(f"{name} has no production version to roll back")
            history = list(record.production_history)
            if not history or history[-1] != record.production_version:
                raise ConflictError(f"{name}: production history does not end with v{record.production_version}")
            target, new_history = rollback_target(history, to_version)
            current_version = self.get_version(name, record.production_version)
            target_version = self.get_version(name, target)
            check_transition(current_version.status, VersionStatus.ARCHIVED)
            check_transition(target_version.status, VersionStatus.PRODUCTION, rollback=True)
            now = _now()
            current = record.production_version
            items = [
                self._update(
                    model_pk(name),
                    MODEL_SK,
                    "SET production_version = :target, production_history = :new_history, updated_at = :now",
                    condition="production_version = :current AND production_history = :history",
                    values={
                        ":target": target,
                        ":new_history": new_history,
                        ":now": _iso(now),
                        ":current": current,
                        ":history": history,
                    },
                ),
                self._status_change(name, current, VersionStatus.PRODUCTION, VersionStatus.ARCHIVED, now),
                self._status_change(name, target, VersionStatus.ARCHIVED, VersionStatus.PRODUCTION, now),
                self._audit_put(
                    name,
                    AuditAction.ARCHIVED,
                    actor=actor,
                    version=current,
                    before={"status": VersionStatus.PRODUCTION.value},
                    after={"status": VersionStatus.ARCHIVED.value, "replaced_by": target},
                    reason=reason,
                    request_id=request_id,
                    at=now,
                ),
                self._audit_put(
                    name,
                    AuditAction.ROLLED_BACK,
                    actor=actor,
                    version=target,
                    before={
                        "production_version": current,
                        "production_history": history,
                        "status": VersionStatus.ARCHIVED.value,
                    },
                    after={
                        "production_version": target,
                        "production_history": new_history,
                        "status": VersionStatus.PRODUCTION.value,
                    },
                    reason=reason,
                    request_id=request_id,
                    at=now + _TICK,
                ),
                self._alias_put(
                    name, PRODUCTION_ALIAS, current, target, actor=actor, reason=reason, request_id=request_id, at=now
                ),
            ]
            after = record.model_copy(
                update={"production_version": target, "production_history": new_history, "updated_at": now}
            )
            change = Change(
                action=AuditAction.ROLLED_BACK.value,
                model=after,
                version=target_version.model_copy(update={"status": VersionStatus.PRODUCTION}),
                previous_production=current,
            )
            return items, change

        return self._commit(
            name, idempotency_key, fingerprint, plan, f"production of {name} changed while rolling back; retry"
        )

    # ---- approvals, manual promotion, archive, aliases ----

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
        fingerprint = _fingerprint(action.value, actor, number, reason)

        def plan() -> tuple[list[dict[str, Any]], Change]:
            record = self.get_model(name)
            version = self.get_version(name, number)
            if version.status is VersionStatus.PRODUCTION and target is VersionStatus.ARCHIVED:
                raise ConflictError(
                    f"{name} v{number} is in production; promote another version or roll back instead of archiving it"
                )
            check_transition(version.status, target)
            now = _now()
            items = [
                self._status_change(name, number, version.status, target, now),
                self._audit_put(
                    name,
                    action,
                    actor=actor,
                    version=number,
                    before={"status": version.status.value},
                    after={"status": target.value},
                    reason=reason,
                    request_id=request_id,
                    at=now,
                ),
            ]
            change = Change(
                action=action.value,
                model=record,
                version=version.model_copy(update={"status": target}),
                from_status=version.status.value,
            )
            return items, change

        return self._commit(name, idempotency_key, fingerprint, plan, f"{name} v{number} changed meanwhile; retry")

    def promote(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change:
        """An approved version becomes production; the current one is archived. One transaction:
        of two concurrent promotions exactly one wins, the other gets ConflictError.

        Raises ModelNotFoundError, VersionNotFoundError, ConflictError (not approved, rejected,
        already production, or production moved meanwhile).
        """
        require_model_name(name)
        require_version(version)
        fingerprint = _fingerprint("promote", actor, version, reason)

        def plan() -> tuple[list[dict[str, Any]], Change]:
            record = self.get_model(name)
            candidate = self.get_version(name, version)
            production = record.production_version
            if candidate.status is VersionStatus.PRODUCTION:
                raise ConflictError(f"{name} v{version} is already the production version")
            check_transition(candidate.status, VersionStatus.PRODUCTION)
            if candidate.status is not VersionStatus.APPROVED:
                raise ConflictError(f"{name} v{version} is {candidate.status.value}; approve it before promoting it")
            now = _now()
            items = [
                self._move_production(name, production, version, now),
                self._status_change(name, version, VersionStatus.APPROVED, VersionStatus.PRODUCTION, now),
                self._audit_put(
                    name,
                    AuditAction.PROMOTED,
                    actor=actor,
                    version=version,
                    before={"production_version": production, "status": candidate.status.value},
                    after={"production_version": version, "status": VersionStatus.PRODUCTION.value},
                    reason=reason,
                    request_id=request_id,
                    at=now + _TICK,
                ),
                self._alias_put(
                    name,
                    PRODUCTION_ALIAS,
                    production,
                    version,
                    actor=actor,
                    reason=reason,
                    request_id=request_id,
                    at=now,
                ),
            ]
            if production is not None:
                champion = self.get_version(name, production)
                check_transition(champion.status, VersionStatus.ARCHIVED)
                items += self._archive(name, production, actor=actor, request_id=request_id, at=now, by=version)
            after = record.model_copy(
                update={
                    "production_version": version,
                    "production_history": [*record.production_history, version],
                    "updated_at": now,
                }
            )
            change = Change(
                action=AuditAction.PROMOTED.value,
                model=after,
                version=candidate.model_copy(update={"status": VersionStatus.PRODUCTION}),
                previous_production=production,
            )
            return items, change

        return self._commit(
            name, idempotency_key, fingerprint, plan, f"production of {name} changed while promoting v{version}; retry"
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
        if alias == PRODUCTION_ALIAS:
            raise BadRequestError("the production alias moves only by promote or rollback")
        fingerprint = _fingerprint("set_alias", actor, alias, version, reason)

        def plan() -> tuple[list[dict[str, Any]], Change]:
            item = self._model_item(name)
            record = _record(item)
            target = self.get_version(name, version)
            if target.status in (VersionStatus.REJECTED, VersionStatus.ARCHIVED):
                raise ConflictError(f"{name} v{version} is {target.status.value}; an alias cannot point at it")
            old = dict(record.aliases)
            current = old.get(alias)
            if current == version:
                raise ConflictError(f"alias {alias} of {name} already points at v{version}")
            new = {**old, alias: version}
            now = _now()
            condition = "attribute_not_exists(aliases) OR aliases = :old" if not old else "aliases = :old"
            items = [
                self._update(
                    model_pk(name),
                    MODEL_SK,
                    "SET aliases = :new, updated_at = :now",
                    condition=condition,
                    values={":new": new, ":old": old, ":now": _iso(now)},
                ),
                self._audit_put(
                    name,
                    AuditAction.ALIAS_MOVED,
                    actor=actor,
                    version=version,
                    before={"alias": alias, "version": current},
                    after={"alias": alias, "version": version},
                    reason=reason,
                    request_id=request_id,
                    at=now,
                ),
                self._alias_put(
                    name, alias, current, version, actor=actor, reason=reason, request_id=request_id, at=now
                ),
            ]
            change = Change(
                action=AuditAction.ALIAS_MOVED.value,
                model=record.model_copy(update={"aliases": new, "updated_at": now}),
                version=target,
                previous_version=current,
            )
            return items, change

        return self._commit(name, idempotency_key, fingerprint, plan, f"aliases of {name} changed meanwhile; retry")

    def alias_history(self, name: str, alias: str = PRODUCTION_ALIAS) -> list[AliasMove]:
        """Every move of `alias`, oldest first. Raises ModelNotFoundError, BadRequestError."""
        require_model_name(name)
        require_alias(alias)
        self._model_item(name)
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": _serialize(audit_pk(name)),
                ":prefix": _serialize(f"{ALIAS_PREFIX}{alias}#"),
            },
            ConsistentRead=True,
        )
        return [_alias_move(item) for item in items]

    def served_at(self, name: str, at: datetime, alias: str = PRODUCTION_ALIAS) -> AliasMove | None:
        """The last move of `alias` at or before `at` (its `to_version` served then), or None
        when the alias had not been set yet. One Query. Raises ModelNotFoundError, BadRequestError."""
        require_model_name(name)
        require_alias(alias)
        self._model_item(name)
        response = self.dynamodb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues=_to_item(
                {
                    ":pk": audit_pk(name),
                    ":low": f"{ALIAS_PREFIX}{alias}#",
                    ":high": f"{ALIAS_PREFIX}{alias}#{_iso(at)}#~",
                }
            ),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return _alias_move(_from_item(items[0])) if items else None

    # ---- idempotent commits ----

    def _commit(
        self,
        name: str,
        idempotency_key: str,
        fingerprint: str,
        plan: Any,
        conflict: str,
    ) -> Change:
        """Run `plan()` (-> transaction items, outcome) as one transaction, with the request record
        when an idempotency key is given. A key seen before returns the stored outcome."""
        if idempotency_key and (replay := self._replay(name, idempotency_key, fingerprint)) is not None:
            return replay
        try:
            items, change = plan()
        except ConflictError:
            # a concurrent duplicate may have committed between our replay check and our reads
            if idempotency_key and (replay := self._replay(name, idempotency_key, fingerprint)) is not None:
                return replay
            raise
        if idempotency_key:
            items.append(
                self._put(
                    {
                        "pk": model_pk(name),
                        "sk": request_sk(idempotency_key),
                        "fingerprint": fingerprint,
                        "action": change.action,
                        "result": change.model_dump_json(),
                        "created_at": _iso(_now()),
                    },
                    condition="attribute_not_exists(pk)",
                )
            )
        if self._transact(items):
            return change
        if idempotency_key and (replay := self._replay(name, idempotency_key, fingerprint)) is not None:
            return replay  # a concurrent duplicate of this request committed first
        raise ConflictError(conflict)

    def _replay(self, name: str, idempotency_key: str, fingerprint: str) -> Change | None:
        item = self._get(model_pk(name), request_sk(idempotency_key))
        if item is None:
            return None
        if item["fingerprint"] != fingerprint:
            raise IdempotencyKeyReusedError(
                "this idempotency key was used for a different request; use a new key for a new request"
            )
        return Change.model_validate_json(item["result"]).model_copy(update={"replayed": True})

    def _status_change(
        self, name: str, version: int, before: VersionStatus, after: VersionStatus, now: datetime
    ) -> dict[str, Any]:
        return self._update(
            model_pk(name),
            version_sk(version),
            "SET #status = :after, updated_at = :now",
            condition="#status = :before",
            values={":after": after.value, ":before": before.value, ":now": _iso(now)},
            names={"#status": "status"},
        )

    # ---- reads ----

    def get_model(self, name: str) -> ModelRecord:
        require_model_name(name)
        return _record(self._model_item(name))

    def list_models(self) -> list[ModelRecord]:
        items = self._query(
            IndexName=MODELS_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": _serialize(MODELS_INDEX_PK)},
        )
        return [_record(item) for item in items]

    def get_version(self, name: str, version: int) -> ModelVersion:
        require_model_name(name)
        item = self._get(model_pk(name), version_sk(version))
        if item is None:
            self._model_item(name)  # ModelNotFoundError first, when the whole model is unknown
            raise VersionNotFoundError(f"{name} has no version {version}")
        return _version_from_item(item)

    def list_versions(self, name: str) -> list[ModelVersion]:
        require_model_name(name)
        items = list(self._query_prefix(name, VERSION_PREFIX))
        if not items:
            self._model_item(name)
        return [_version_from_item(item) for item in items]

    def production(self, name: str) -> ModelVersion | None:
        """The production version, or None when the model has none. Two strongly consistent GetItems
        (a rollback is seen at once). Raises ModelNotFoundError."""
        require_model_name(name)
        production = _opt_int(self._model_item(name).get("production_version"))
        if production is None:
            return None
        return self.get_version(name, production)

    def audit_events(self, name: str) -> list[AuditEvent]:
        """The model's audit trail, oldest first. Raises ModelNotFoundError."""
        require_model_name(name)
        self._model_item(name)
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": _serialize(audit_pk(name)),
                ":prefix": _serialize(EVENT_PREFIX),
            },
            ConsistentRead=True,
        )
        return [AuditEvent.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")}) for item in items]

    # ---- DynamoDB plumbing ----

    def _model_item(self, name: str) -> dict[str, Any]:
        item = self._get(model_pk(name), MODEL_SK)
        if item is None:
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        return item

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(TableName=self.table_name, Key=_key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.dynamodb.get_paginator("query")
        for page in paginator.paginate(TableName=self.table_name, **kwargs):
            for item in page.get("Items", []):
                yield _from_item(item)

    def _query_prefix(self, name: str, prefix: str) -> Iterator[dict[str, Any]]:
        return self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": _serialize(model_pk(name)),
                ":prefix": _serialize(prefix),
            },
            ConsistentRead=True,
        )

    def _put(self, item: dict[str, Any], *, condition: str) -> dict[str, Any]:
        return {"Put": {"TableName": self.table_name, "Item": _to_item(item), "ConditionExpression": condition}}

    def _update(
        self,
        pk: str,
        sk: str,
        expression: str,
        *,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(pk, sk),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": _to_item(values),
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}

    def _audit_put(
        self,
        name: str,
        action: AuditAction,
        *,
        actor: str,
        at: datetime,
        version: int | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        reason: str = "",
        request_id: str = "",
    ) -> dict[str, Any]:
        event_id = str(uuid.uuid4())
        return self._put(
            {
                "pk": audit_pk(name),
                "sk": audit_sk(at, event_id),
                "model_name": name,
                "at": _iso(at),
                "event_id": event_id,
                "action": action.value,
                "actor": actor,
                "version": version,
                "before": before or {},
                "after": after or {},
                "reason": reason,
                "request_id": request_id,
            },
            condition="attribute_not_exists(pk)",
        )

    def _alias_put(
        self,
        name: str,
        alias: str,
        from_version: int | None,
        to_version: int | None,
        *,
        actor: str,
        reason: str,
        request_id: str,
        at: datetime,
    ) -> dict[str, Any]:
        event_id = str(uuid.uuid4())
        return self._put(
            {
                "pk": audit_pk(name),
                "sk": alias_sk(alias, at, event_id),
                "model_name": name,
                "alias": alias,
                "at": _iso(at),
                "from_version": from_version,
                "to_version": to_version,
                "actor": actor,
                "reason": reason,
                "request_id": request_id,
                "event_id": event_id,
            },
            condition="attribute_not_exists(pk)",
        )

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """Run one transaction. False when it was cancelled by a failed condition or a conflict."""
        try:
            self.dynamodb.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
            if reasons and not reasons <= _RETRYABLE_REASONS | {"None"}:
                raise
            return False
        return True


# ---- conversions between records and items ----


def _version_item(version: ModelVersion, now: datetime) -> dict[str, Any]:
    return {
        "pk": model_pk(version.model_name),
        "sk": version_sk(version.version),
        **version.model_dump(mode="python"),
        "created_at": _iso(version.created_at),
        "updated_at": _iso(now),
    }


def _version_from_item(item: dict[str, Any]) -> ModelVersion:
    return ModelVersion.model_validate({k: v for k, v in item.items() if k in ModelVersion.model_fields})


def _record(item: dict[str, Any]) -> ModelRecord:
    return ModelRecord(
        name=item["name"],
        latest_version=int(item["latest_version"]),
        production_version=_opt_int(item.get("production_version")),
        production_history=[int(v) for v in item.get("production_history") or []],
        aliases={str(k): int(v) for k, v in (item.get("aliases") or {}).items()},
        updated_at=item["updated_at"],
    )


def _alias_move(item: dict[str, Any]) -> AliasMove:
    return AliasMove.model_validate({k: v for k, v in item.items() if k in AliasMove.model_fields})


def _fingerprint(action: str, actor: str, *params: Any) -> str:
    """What makes two requests with one idempotency key the same request."""
    return hashlib.sha256(json.dumps([action, actor, *params], default=str).encode()).hexdigest()


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serialize(to_dynamo(value)) for key, value in values.items()}


def to_dynamo(value: Any) -> Any:
    """Python values -> what boto3's TypeSerializer accepts: floats become exact Decimals (via
    their shortest repr); NaN and infinities, which DynamoDB numbers cannot hold, become strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str | Decimal):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return _NON_FINITE[repr(value)]
        return Decimal(repr(value))
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(at: datetime) -> str:
    """Fixed-width UTC timestamps, so audit sort keys order by time."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
