"""The registry interface the domain and handlers depend on (DynamoRegistry implements it on
DynamoDB; tests/support/registry_fake.py in memory), and the notification port."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from mlops.events import ModelTrained
from mlops.registry.records import (
    AliasMove,
    AuditAction,
    AuditEvent,
    Change,
    ModelRecord,
    ModelVersion,
    RegistrationResult,
)


class ModelRegistry(Protocol):
    def register(self, trained: ModelTrained, *, actor: str, request_id: str = "") -> RegistrationResult: ...

    def get_model(self, name: str) -> ModelRecord: ...

    def list_models(self) -> list[ModelRecord]: ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def production(self, name: str) -> ModelVersion | None: ...

    # every mutation below: one atomic, audited change; `idempotency_key` makes a retry a replay
    def rollback(
        self,
        name: str,
        *,
        actor: str,
        reason: str,
        request_id: str = "",
        to_version: int | None = None,
        idempotency_key: str = "",
    ) -> Change: ...

    def approve(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change: ...

    def reject(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change: ...

    def archive(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change: ...

    def promote(
        self, name: str, version: int, *, actor: str, reason: str, request_id: str = "", idempotency_key: str = ""
    ) -> Change: ...

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
    ) -> Change: ...

    def alias_history(self, name: str, alias: str = "production") -> list[AliasMove]: ...

    def served_at(self, name: str, at: datetime, alias: str = "production") -> AliasMove | None: ...

    def audit_events(self, name: str) -> list[AuditEvent]: ...

    def record_dataset_review(
        self, name: str, dataset_id: str, decision: str, state: str, *, actor: str, reason: str, request_id: str = ""
    ) -> AuditEvent: ...

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


class Notifier(Protocol):
    """Tells people (the SNS topic's subscribers) about production changes."""

    def notify(self, subject: str, message: dict[str, Any]) -> None: ...


class NoNotifier:
    """When no topic is configured."""

    def notify(self, subject: str, message: dict[str, Any]) -> None:
        return None
