"""An approver's `POST /models/{name}/retrain`: audited, then handed to retrain_model as a
`RetrainingRequested` event (the models API stays light: no dataset is read here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mlops.errors import BadRequestError, ForbiddenError
from mlops.ports import EventPublisher
from mlops.registry.records import AuditAction, AuditEvent
from mlops.retraining.ports import RetrainingRegistry
from mlops.retraining.triggers import RETRAINING_REQUESTED, RetrainingRequested

MAX_REASON_CHARS = 1_000


class RetrainRequest(BaseModel):
    """Body of `POST /models/{name}/retrain`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(default="", description="why (required; kept in the audit trail)", max_length=MAX_REASON_CHARS)
    override_cooldown: bool = Field(default=False, description="start even within the cooldown (admins only)")


class RetrainAccepted(BaseModel):
    """The answer: the request is audited and queued; retrain_model decides on the gates."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    status: str = "accepted"
    audit_seq: int
    request_id: str
    detail: str = (
        "retrain_model applies the cooldown, writes the training set under datasets/ and audits retrain_started "
        "or retrain_skipped with the reason (GET /models/{name}/audit)"
    )


def request_retraining(
    registry: RetrainingRegistry,
    publisher: EventPublisher,
    name: str,
    request: RetrainRequest,
    *,
    actor: str,
    may_override_cooldown: bool,
    request_id: str,
    idempotency_key: str = "",
) -> RetrainAccepted:
    """Audit an approver's request (retrain_requested) and put `RetrainingRequested` on the bus.
    Raises BadRequestError (no reason), ForbiddenError (a cooldown override by a non-admin),
    ModelNotFoundError (no such model)."""
    if not request.reason.strip():
        raise BadRequestError("a retraining request needs a reason")
    if request.override_cooldown and not may_override_cooldown:
        raise ForbiddenError("only an admin may override the retraining cooldown")
    registry.get_model(name)  # 404 for a model never registered
    event: AuditEvent = registry.record_retraining(
        name,
        AuditAction.RETRAIN_REQUESTED,
        {"trigger": "approver", "trigger_id": request_id, "override_cooldown": request.override_cooldown},
        actor=actor,
        reason=request.reason,
        request_id=request_id,
        idempotency_key=idempotency_key,
    )
    publisher.publish(
        RETRAINING_REQUESTED,
        RetrainingRequested(
            model_name=name,
            actor=actor,
            reason=request.reason,
            request_id=request_id,
            override_cooldown=request.override_cooldown,
        ),
    )
    return RetrainAccepted(model_name=name, audit_seq=event.seq, request_id=request_id)
