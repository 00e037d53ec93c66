"""Per-client API keys for the prediction routes: issued and revoked through the models API, audited.

A key identifies a client to API Gateway (keys identify callers, they do not authorise them); every
issued key is put in the clients' usage plan, whose throttle and quota bound what one client may
send. The key's value is returned once, when it is issued: listings, logs and audit items carry its
id and a fingerprint (the first hex digits of its SHA-256), never the value.

An issue with an `Idempotency-Key` is claimed before the key is created (IssueAttempts: one record
per key, written only if absent), so a retry or a concurrent duplicate issues no second key. The
record keeps the issued key's id and fingerprint, never its value: a retry is answered with those,
`value: null` and a message that the value was shown once (store nothing secret; a client that
lost the first answer revokes that key and asks for a new one).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, NoReturn, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mlops.errors import BadRequestError, ConflictError, NotFoundError
from mlops.registry.engine import request_key_hash
from mlops.registry.names import IdempotencyKeyReusedError

CLIENT_NAME_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
KEY_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
KEY_NAME_PREFIX = "client-"  # API Gateway key names, `client-<client>`: only these can be revoked here
FINGERPRINT_HEX_DIGITS = 12
MAX_REASON = 500
# An unfinished claim older than this was abandoned (its invocation timed out or crashed: the
# models API's timeout is 30 s), and a retry may take it over.
ISSUE_CLAIM_LEASE = timedelta(seconds=120)
SHOWN_ONCE = (
    "this Idempotency-Key already issued key {key_id} ({fingerprint}); its value was shown once, in the first "
    "answer, and is never stored nor shown again. If that answer was lost, revoke this key and issue a new "
    "one with a new Idempotency-Key"
)


class ClientKeyNotFoundError(NotFoundError):
    """No issued client key with that id (the stack's own key is not one)."""


class KeyAction(StrEnum):
    ISSUED = "client_key_issued"
    REVOKED = "client_key_revoked"


def fingerprint(value: str) -> str:
    """What may be shown of a key: `sha256:` and the first hex digits of its digest."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:FINGERPRINT_HEX_DIGITS]


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    value: str
    created: datetime


@dataclass(frozen=True)
class GatewayKey:
    key_id: str
    name: str
    enabled: bool
    created: datetime
    fingerprint: str


class UsagePlanLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    usage_plan_id: str
    rate_per_second: float | None = None
    burst: int | None = None
    quota_limit: int | None = None
    quota_period: str | None = None  # DAY, WEEK or MONTH


class ClientKeyGateway(Protocol):
    """API Gateway's keys and the clients' usage plan (an adapter; a fake in unit tests)."""

    def create_key(self, name: str, description: str) -> CreatedKey: ...

    def add_to_usage_plan(self, key_id: str) -> None: ...

    def delete_key(self, key_id: str) -> None: ...

    def list_keys(self, name_prefix: str) -> list[GatewayKey]: ...

    def usage_plan(self) -> UsagePlanLimits: ...


class KeyEvent(BaseModel):
    """One audited change of a client key (append-only)."""

    model_config = ConfigDict(frozen=True)

    action: KeyAction
    client: str
    key_id: str
    fingerprint: str
    actor: str
    reason: str
    request_id: str = ""
    at: datetime


class KeyAudit(Protocol):
    def record(self, event: KeyEvent) -> None: ...

    def events(self) -> list[KeyEvent]: ...


Reason = Annotated[str, Field(min_length=1, max_length=MAX_REASON, description="why (audited)")]


class IssueKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: Annotated[str, Field(pattern=CLIENT_NAME_PATTERN, description="who the key is for")]
    reason: Reason


class RevokeKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ClientKeySummary(BaseModel):
    client: str
    key_id: str
    fingerprint: str
    enabled: bool
    created: datetime


class IssuedClientKey(ClientKeySummary):
    value: str | None = Field(
        description="the key itself: shown this once, send it as the x-api-key header; null when this answers "
        "a retried request (same Idempotency-Key), whose key was shown in the first answer only"
    )
    usage_plan: UsagePlanLimits
    replayed: bool = Field(default=False, description="true: a retried request; nothing was issued now")
    message: str | None = Field(default=None, description="what a replayed answer means for the value")


class AttemptState(StrEnum):
    PENDING = "pending"  # claimed: the key is being created
    ISSUED = "issued"
    FAILED = "failed"  # nothing issued: a retry may try again


class IssueAttempt(BaseModel):
    """The record of an issue sent with an Idempotency-Key: the key's hash, the request's digest, and
    the issued key's id and fingerprint once issued (never its value)."""

    model_config = ConfigDict(frozen=True)

    key_hash: str
    request_digest: str
    state: AttemptState
    claimed_at: datetime
    key: ClientKeySummary | None = None


class IssueAttempts(Protocol):
    """Records of issues sent with an Idempotency-Key (an adapter; a fake in unit tests)."""

    def add(self, attempt: IssueAttempt) -> bool:
        """Store `attempt` unless one with its key_hash exists; False when one does."""
        ...

    def get(self, key_hash: str) -> IssueAttempt | None: ...

    def replace(self, attempt: IssueAttempt, *, previous: IssueAttempt) -> bool:
        """Store `attempt` if the stored one still has `previous`'s state and claim time; else False."""
        ...


class IssueInProgressError(ConflictError):
    """A request with this Idempotency-Key is being served right now."""


def issue_client_key(
    gateway: ClientKeyGateway,
    audit: KeyAudit,
    request: IssueKeyRequest,
    *,
    actor: str,
    request_id: str,
    now: datetime,
    idempotency_key: str = "",
    attempts: IssueAttempts | None = None,
) -> IssuedClientKey:
    """Create a key for `request.client` in the clients' usage plan and audit it. A key that could not
    be put in the plan, or whose issue could not be audited, is deleted again. With an
    `idempotency_key` (and `attempts`), a retry answers the first key without its value (`replayed`).
    Raises IdempotencyKeyReusedError (the key came with another request), IssueInProgressError."""
    claim = None
    if idempotency_key and attempts is not None:
        digest = hashlib.sha256(json.dumps([KeyAction.ISSUED.value, actor, request.client, request.reason]).encode())
        claim = IssueAttempt(
            key_hash=request_key_hash(idempotency_key),
            request_digest=digest.hexdigest(),
            state=AttemptState.PENDING,
            claimed_at=now,
        )
        earlier = _claim(attempts, claim, now)
        if earlier is not None:
            return IssuedClientKey(
                **earlier.model_dump(),
                value=None,
                usage_plan=gateway.usage_plan(),
                replayed=True,
                message=SHOWN_ONCE.format(key_id=earlier.key_id, fingerprint=earlier.fingerprint),
            )
    try:
        issued = _issue(gateway, audit, request, actor=actor, request_id=request_id, now=now)
    except BaseException:
        if claim is not None and attempts is not None:
            attempts.replace(claim.model_copy(update={"state": AttemptState.FAILED}), previous=claim)
        raise
    if claim is not None and attempts is not None:
        summary = ClientKeySummary.model_validate(issued.model_dump(include=set(ClientKeySummary.model_fields)))
        attempts.replace(claim.model_copy(update={"state": AttemptState.ISSUED, "key": summary}), previous=claim)
    return issued


def _claim(attempts: IssueAttempts, claim: IssueAttempt, now: datetime) -> ClientKeySummary | None:
    """Claim the issue for this Idempotency-Key: None when this request may issue, the issued key when
    an earlier one did. A failed or abandoned (past the lease) claim is taken over."""
    if attempts.add(claim):
        return None
    stored = attempts.get(claim.key_hash)
    if stored is None:  # gone between the two calls: claim afresh
        return None if attempts.add(claim) else _in_progress()
    if stored.request_digest != claim.request_digest:
        raise IdempotencyKeyReusedError(
            "this idempotency key was used for a different request; use a new key for a new request"
        )
    if stored.state is AttemptState.ISSUED and stored.key is not None:
        return stored.key
    if stored.state is AttemptState.PENDING and now - stored.claimed_at < ISSUE_CLAIM_LEASE:
        _in_progress()
    if attempts.replace(claim, previous=stored):
        return None
    _in_progress()


def _in_progress() -> NoReturn:
    raise IssueInProgressError(
        "a request with this Idempotency-Key is still being served; retry in a moment with the same key"
    )


def _issue(
    gateway: ClientKeyGateway, audit: KeyAudit, request: IssueKeyRequest, *, actor: str, request_id: str, now: datetime
) -> IssuedClientKey:
    created = gateway.create_key(KEY_NAME_PREFIX + request.client, f"prediction client {request.client}")
    shown = fingerprint(created.value)
    try:
        gateway.add_to_usage_plan(created.key_id)
        audit.record(
            KeyEvent(
                action=KeyAction.ISSUED,
                client=request.client,
                key_id=created.key_id,
                fingerprint=shown,
                actor=actor,
                reason=request.reason,
                request_id=request_id,
                at=now,
            )
        )
    except BaseException:
        # nobody sees this key's value: a key left live would be unusable, or live and unaudited
        gateway.delete_key(created.key_id)
        raise
    return IssuedClientKey(
        client=request.client,
        key_id=created.key_id,
        fingerprint=shown,
        enabled=True,
        created=created.created,
        value=created.value,
        usage_plan=gateway.usage_plan(),
    )


def revoke_client_key(
    gateway: ClientKeyGateway,
    audit: KeyAudit,
    key_id: str,
    request: RevokeKeyRequest,
    *,
    actor: str,
    request_id: str,
    now: datetime,
) -> ClientKeySummary:
    """Audit the revocation, then delete the client key (API Gateway refuses it from then on): a failed
    audit leaves the key for the retry, so no revocation goes unrecorded.
    Raises BadRequestError (malformed id), ClientKeyNotFoundError (no such client key)."""
    key = _find(gateway, key_id)
    revoked = _summary(key).model_copy(update={"enabled": False})
    audit.record(
        KeyEvent(
            action=KeyAction.REVOKED,
            client=revoked.client,
            key_id=key.key_id,
            fingerprint=key.fingerprint,
            actor=actor,
            reason=request.reason,
            request_id=request_id,
            at=now,
        )
    )
    gateway.delete_key(key.key_id)
    return revoked


def client_keys(gateway: ClientKeyGateway) -> list[ClientKeySummary]:
    """Every issued client key, oldest first, without values."""
    keys = gateway.list_keys(KEY_NAME_PREFIX)
    return [_summary(key) for key in sorted(keys, key=lambda k: (k.created, k.key_id))]


def _find(gateway: ClientKeyGateway, key_id: str) -> GatewayKey:
    if not re.fullmatch(KEY_ID_PATTERN, key_id):
        raise BadRequestError(f"key id {key_id[:40]!r} is not an API key id (letters, digits, - and _)")
    for key in gateway.list_keys(KEY_NAME_PREFIX):
        if key.key_id == key_id:
            return key
    raise ClientKeyNotFoundError(f"no client API key {key_id}")


def _summary(key: GatewayKey) -> ClientKeySummary:
    return ClientKeySummary(
        client=key.name.removeprefix(KEY_NAME_PREFIX),
        key_id=key.key_id,
        fingerprint=key.fingerprint,
        enabled=key.enabled,
        created=key.created,
    )
