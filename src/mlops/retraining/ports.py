"""What retraining needs of the registry (light: the models API imports it without pandas)."""

from __future__ import annotations

from typing import Any, Protocol

from mlops.registry.records import AuditAction, AuditEvent, ModelRecord


class RetrainingRegistry(Protocol):
    def get_model(self, name: str) -> ModelRecord: ...

    def audit_events(self, name: str) -> list[AuditEvent]: ...

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
    ) -> AuditEvent: ...
