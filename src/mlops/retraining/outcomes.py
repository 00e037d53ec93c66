"""A retraining's training set refused on its way: the dataset gate quarantined it or held it for
review, or training rejected it or failed on it. The new version's own audit events tell a
retraining that succeeded; this puts the refusals into the model's audit trail too
(`retrain_refused`), with the stage and the reasons, so every outcome of a retraining is there.

The bus delivers only refusals of `datasets/<model>/retrain-*` keys (infra's rules); the key is
checked here again, so any other dataset's refusal is ignored rather than misfiled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.events import DatasetHeld, DatasetQuarantined, DetailType, TrainingFailed, TrainingRejected
from mlops.layout import retrain_files_prefix
from mlops.registry.records import AuditAction, AuditEvent
from mlops.retraining.ports import RetrainingRegistry

ACTOR = "retrain_model"
REFUSALS = (
    DetailType.DATASET_QUARANTINED,
    DetailType.DATASET_HELD,
    DetailType.TRAINING_REJECTED,
    DetailType.TRAINING_FAILED,
)


@dataclass(frozen=True)
class RetrainRefusal:
    model: str
    dataset_key: str
    stage: str  # which gate refused it, in words
    reasons: list[str]
    event_id: str


def refusal_of(event: dict[str, Any]) -> RetrainRefusal | None:
    """The refusal a bus event reports of a retraining's training set, or None for any other event."""
    detail_type, detail = event.get("detail-type"), event.get("detail")
    if detail_type not in REFUSALS or not isinstance(detail, dict):
        return None
    if detail_type == DetailType.DATASET_QUARANTINED:
        quarantined = DatasetQuarantined.model_validate(detail)
        model, key = quarantined.model_name, quarantined.source_key
        stage, reasons = "quarantined by the dataset gate", quarantined.reasons
    elif detail_type == DetailType.DATASET_HELD:
        held = DatasetHeld.model_validate(detail)
        model, key = held.model_name, held.dataset.key
        stage, reasons = "held for review by the dataset gate", held.reasons
    elif detail_type == DetailType.TRAINING_REJECTED:
        rejected = TrainingRejected.model_validate(detail)
        model, key = rejected.model_name, rejected.dataset.key
        stage, reasons = "rejected by training", [rejected.reason]
    else:
        failed = TrainingFailed.model_validate(detail)
        model, key = failed.model_name, failed.dataset.key
        stage, reasons = "training failed", [failed.reason]
    if not key.startswith(retrain_files_prefix(model)):
        return None
    return RetrainRefusal(model, key, stage, list(reasons), str(event.get("id", "")))


def record_refusal(registry: RetrainingRegistry, refusal: RetrainRefusal) -> AuditEvent:
    """Chain the refusal into the model's audit trail (once per bus event: a redelivery returns the first)."""
    reasons = "; ".join(refusal.reasons[:5]) or "no reason given"
    return registry.record_retraining(
        refusal.model,
        AuditAction.RETRAIN_REFUSED,
        {"dataset_key": refusal.dataset_key, "stage": refusal.stage, "reasons": refusal.reasons[:20]},
        actor=ACTOR,
        reason=f"the retraining's training set was {refusal.stage}: {reasons}"[:1000],
        idempotency_key=f"retrain-refused#{refusal.event_id or refusal.dataset_key}",
    )
