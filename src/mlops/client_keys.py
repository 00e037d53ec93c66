"""Per-client API keys for the prediction routes: issued and revoked through the models API, audited.

A key identifies a client to API Gateway (keys identify callers, they do not authorise them); every
issued key is put in the clients' usage plan, whose throttle and quota bound what one client may
send. The key's value is returned once, when it is issued: listings, logs and audit items carry its
id and a fingerprint (the first hex digits of its SHA-256), never the value.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mlops.errors import BadRequestError, NotFoundError

CLIENT_NAME_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
KEY_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
KEY_NAME_PREFIX = "client-"  # API Gateway key names, `client-<client>`: only these can be revoked here
FINGERPRINT_HEX_DIGITS = 12
MAX_REASON = 500


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
    value: str = Field(description="the key itself: shown this once, send it as the x-api-key header")
    usage_plan: UsagePlanLimits


def issue_client_key(
    gateway: ClientKeyGateway, audit: KeyAudit, request: IssueKeyRequest, *, actor: str, request_id: str, now: datetime
) -> IssuedClientKey:
    """Create a key for `request.client` in the clients' usage plan and audit it. A key that could not
    be put in the plan is deleted again (a key outside every plan would be refused anyway)."""
    created = gateway.create_key(KEY_NAME_PREFIX + request.client, f"prediction client {request.client}")
    try:
        gateway.add_to_usage_plan(created.key_id)
    except BaseException:
        gateway.delete_key(created.key_id)
        raise
    shown = fingerprint(created.value)
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
    """Delete an issued client key (API Gateway refuses it from then on) and audit it.
    Raises BadRequestError (malformed id), ClientKeyNotFoundError (no such client key)."""
    key = _find(gateway, key_id)
    gateway.delete_key(key.key_id)
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
