"""In-memory stand-ins for API Gateway's keys and the client-key audit (mlops.client_keys ports)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from mlops.client_keys import (
    ClientKeyNotFoundError,
    CreatedKey,
    GatewayKey,
    IssueAttempt,
    KeyEvent,
    UsagePlanLimits,
    fingerprint,
)


class InMemoryKeyGateway:
    """Keys with values, one usage plan; `refuse_plan` makes adding a key to the plan fail."""

    def __init__(self, *, refuse_plan: bool = False) -> None:
        self.keys: dict[str, tuple[str, str, datetime]] = {}  # id -> (name, value, created)
        self.in_plan: set[str] = set()
        self.refuse_plan = refuse_plan

    def create_key(self, name: str, description: str) -> CreatedKey:
        key_id, value = secrets.token_hex(5), secrets.token_urlsafe(30)
        self.keys[key_id] = (name, value, datetime.now(UTC))
        return CreatedKey(key_id, value, self.keys[key_id][2])

    def add_to_usage_plan(self, key_id: str) -> None:
        if self.refuse_plan:
            raise RuntimeError("usage plan unavailable")
        self.in_plan.add(key_id)

    def delete_key(self, key_id: str) -> None:
        if self.keys.pop(key_id, None) is None:
            raise ClientKeyNotFoundError(f"no client API key {key_id}")
        self.in_plan.discard(key_id)

    def list_keys(self, name_prefix: str) -> list[GatewayKey]:
        return [
            GatewayKey(key_id, name, True, created, fingerprint(value))
            for key_id, (name, value, created) in self.keys.items()
            if name.startswith(name_prefix)
        ]

    def usage_plan(self) -> UsagePlanLimits:
        return UsagePlanLimits(
            usage_plan_id="plan1", rate_per_second=20, burst=40, quota_limit=1000, quota_period="DAY"
        )

    def value_of(self, key_id: str) -> str:
        return self.keys[key_id][1]


class InMemoryKeyAudit:
    def __init__(self) -> None:
        self.recorded: list[KeyEvent] = []

    def record(self, event: KeyEvent) -> None:
        self.recorded.append(event)

    def events(self) -> list[KeyEvent]:
        return list(self.recorded)


class InMemoryIssueAttempts:
    """Issue attempts by key hash, with the adapter's two conditions (absent; unchanged)."""

    def __init__(self) -> None:
        self.stored: dict[str, IssueAttempt] = {}

    def add(self, attempt: IssueAttempt) -> bool:
        if attempt.key_hash in self.stored:
            return False
        self.stored[attempt.key_hash] = attempt
        return True

    def get(self, key_hash: str) -> IssueAttempt | None:
        return self.stored.get(key_hash)

    def replace(self, attempt: IssueAttempt, *, previous: IssueAttempt) -> bool:
        current = self.stored.get(attempt.key_hash)
        if current is None or (current.state, current.claimed_at) != (previous.state, previous.claimed_at):
            return False
        self.stored[attempt.key_hash] = attempt
        return True
