"""Registry records as typed values (what DynamoDB stores, independent of DynamoDB)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    APPROVED = "approved"
    REJECTED = "rejected"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class Artifact(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    sha256: str
    size_bytes: int
    baseline_key: str


class ModelVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    version: int
    status: VersionStatus
    metric_name: str
    metrics: dict[str, float]
    artifact: Artifact
    contract: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    promotion_decision: str = ""


class ModelRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    latest_version: int
    production_version: int | None = None
    production_history: list[int] = Field(default_factory=list)
    updated_at: datetime


class AuditEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    at: datetime
    event_id: str
    action: str
    actor: str
    version: int | None = None
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""
    request_id: str = ""


class RegistrationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: ModelVersion
    created: bool  # False when this artifact was already registered (duplicate event)
    promoted: bool
    decision: str  # why it was or was not promoted
    previous_production: int | None = None


class AuditAction(StrEnum):
    """What an audit event records (the `action` of an AuditEvent)."""

    REGISTERED = "registered"
    PROMOTED = "promoted"
    ARCHIVED = "archived"
    PROMOTION_DECLINED = "promotion_declined"
    ROLLED_BACK = "rolled_back"
