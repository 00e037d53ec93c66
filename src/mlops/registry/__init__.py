"""The model registry: versions, statuses, the production alias, audit trail."""

from mlops.registry.policy import PromotionDecision, decide_promotion
from mlops.registry.records import (
    Artifact,
    AuditAction,
    AuditEvent,
    ModelRecord,
    ModelVersion,
    RegistrationResult,
    VersionStatus,
)
from mlops.registry.transitions import ALLOWED_TRANSITIONS, check_transition, rollback_target

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Artifact",
    "AuditAction",
    "AuditEvent",
    "ModelRecord",
    "ModelVersion",
    "PromotionDecision",
    "RegistrationResult",
    "VersionStatus",
    "check_transition",
    "decide_promotion",
    "rollback_target",
]
