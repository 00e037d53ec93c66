"""The registry interface the domain and handlers depend on (DynamoRegistry implements it on
DynamoDB; tests/support/registry_fake.py in memory)."""

from __future__ import annotations

from typing import Protocol

from mlops.events import ModelTrained
from mlops.registry.records import AuditEvent, ModelRecord, ModelVersion, RegistrationResult


class ModelRegistry(Protocol):
    def register(self, trained: ModelTrained, *, actor: str, request_id: str = "") -> RegistrationResult: ...

    def get_model(self, name: str) -> ModelRecord: ...

    def list_models(self) -> list[ModelRecord]: ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def production(self, name: str) -> ModelVersion | None: ...

    def rollback(
        self, name: str, *, actor: str, reason: str, request_id: str = "", to_version: int | None = None
    ) -> ModelRecord: ...

    def audit_events(self, name: str) -> list[AuditEvent]: ...
