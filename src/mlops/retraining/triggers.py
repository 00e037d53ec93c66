"""What asked for a retraining, read from the event that reached the function (stdlib + pydantic).

Three sources, one shape (`RetrainTrigger`):
- a CloudWatch alarm state change (default bus, `aws.cloudwatch`) of a model's drift or
  live-quality alarm entering ALARM; the model is read from the alarm's name
  (`<stack>-model-<model>-drift|quality`);
- the contract's schedule: a rule whose target input is `{"retrain": {"model": ..., "schedule": ...}}`;
- an approver: `RetrainingRequested` on the project's bus, put there by the models API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlops.errors import BadRequestError

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
ALARM_SIGNALS = ("drift", "quality")  # the model alarms that may start a retraining
RETRAINING_REQUESTED = "RetrainingRequested"


class TriggerKind(StrEnum):
    ALARM = "alarm"
    SCHEDULE = "schedule"
    APPROVER = "approver"


@dataclass(frozen=True)
class RetrainTrigger:
    model: str
    kind: TriggerKind
    actor: str  # the alarm, the schedule rule, or the approver's principal
    reason: str  # why it fired: the alarm's state reason, the schedule, the approver's words
    trigger_id: str  # the delivering event's id: a redelivery is the same trigger
    # an approver's request is evidence enough: it skips the new-label minimum (never the cooldown)
    skips_label_minimum: bool = False
    # an admin's explicit override of the cooldown
    overrides_cooldown: bool = False


class RetrainingRequested(BaseModel):
    """The models API's event for an approver's `POST /models/{name}/retrain` (already audited there)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model_name: str
    actor: str
    reason: str
    request_id: str = ""
    override_cooldown: bool = False  # only an admin's request may carry it (the API checks)


def alarm_model(alarm_name: str, prefix: str) -> tuple[str, str] | None:
    """(model, signal) of a model's drift or quality alarm named `<prefix><model>-<signal>`, else None."""
    # `<model>-data-quality` is the data-quality alarm (no evidence the model is wrong), never the quality
    # alarm of a model `<model>-data`: both would share one name, which CloudWatch refuses at deployment
    if not alarm_name.startswith(prefix) or alarm_name.endswith("-data-quality"):
        return None
    model, _, signal = alarm_name[len(prefix) :].rpartition("-")
    return (model, signal) if model and signal in ALARM_SIGNALS else None


def parse_trigger(event: dict[str, Any], *, alarm_prefix: str, now: datetime) -> RetrainTrigger | None:
    """The trigger an event carries; None for an event that asks for nothing (an alarm leaving ALARM,
    another alarm). Raises BadRequestError for an event of no known shape."""
    event_id = str(event.get("id") or "")
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    if event.get("detail-type") == ALARM_STATE_CHANGE:
        found = alarm_model(str(detail.get("alarmName", "")), alarm_prefix)
        state = detail.get("state") or {}
        if found is None or state.get("value") != "ALARM":
            return None
        model, signal = found
        return RetrainTrigger(
            model=model,
            kind=TriggerKind.ALARM,
            actor=f"alarm:{detail['alarmName']}",
            reason=f"{signal} alarm entered ALARM: {str(state.get('reason', ''))[:300]}",
            trigger_id=event_id or f"{detail['alarmName']}@{state.get('timestamp', '')}",
        )
    if event.get("detail-type") == RETRAINING_REQUESTED:
        request = RetrainingRequested.model_validate(detail)
        return RetrainTrigger(
            model=request.model_name,
            kind=TriggerKind.APPROVER,
            actor=request.actor,
            reason=request.reason,
            trigger_id=request.request_id or event_id,
            skips_label_minimum=True,
            overrides_cooldown=request.override_cooldown,
        )
    scheduled = event.get("retrain")
    if isinstance(scheduled, dict) and scheduled.get("model"):
        schedule = str(scheduled.get("schedule", ""))
        return RetrainTrigger(
            model=str(scheduled["model"]),
            kind=TriggerKind.SCHEDULE,
            actor=f"schedule:{schedule}",
            reason=f"the contract's schedule {schedule}",
            # a schedule's target input is constant: the minute it arrived tells two firings apart
            trigger_id=f"schedule:{scheduled['model']}@{now:%Y%m%dT%H%M}",
        )
    raise BadRequestError(f"not a retraining trigger: detail-type {event.get('detail-type')!r}")
