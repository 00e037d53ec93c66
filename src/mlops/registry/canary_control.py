"""What ends a canary by itself (issue 13): its alarm entering ALARM rolls it back, and a scheduled
check promotes a canary that baked its declared minutes without its alarms (through the registry's
promotion gates: `lifecycle.plan_promote`). Both are audited; the actor is the alarm or the check.

A model's canary alarms are named `<prefix><model>-canary-<signal>` (infra builds them from
`canary_alarm_names`, the control function reads the model back with `canary_alarm_model`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mlops.contract_rules import is_valid_model_name
from mlops.errors import ConflictError, IntegrityError, NotFoundError
from mlops.registry import lifecycle as rules
from mlops.registry.ports import ModelRegistry
from mlops.registry.service import Lifecycle

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
CANARY_SIGNALS = ("errors", "latency", "output")
BAKE_CHECK_ACTOR = "schedule:canary-bake-check"


def canary_alarm_names(prefix: str, model: str) -> list[str]:
    return [f"{prefix}{model}-canary-{signal}" for signal in CANARY_SIGNALS]


def canary_alarm_patterns(prefix: str) -> list[dict[str, str]]:
    """EventBridge patterns matching the canary alarms of every model, present and future: a contract
    published later needs no change of the rule (a running local mode adopts it without a restart)."""
    return [{"wildcard": f"{prefix}*-canary-{signal}"} for signal in CANARY_SIGNALS]


def canary_alarm_model(alarm_name: str, prefix: str) -> str | None:
    """The model of a canary alarm named `<prefix><model>-canary-<signal>`, else None."""
    if not alarm_name.startswith(prefix):
        return None
    model, separator, signal = alarm_name[len(prefix) :].rpartition("-canary-")
    # the wildcard rule also matches names no model could have: those concern no canary
    return model if separator and signal in CANARY_SIGNALS and is_valid_model_name(model) else None


class AlarmStates(Protocol):
    def in_alarm(self, names: list[str]) -> list[str]:
        """Those of `names` whose alarm is in ALARM now."""
        ...


@dataclass(frozen=True)
class CanaryOutcome:
    model: str
    result: str  # rolled_back | promoted | baking | nothing (no canary: a redelivery, or already ended)
    version: int | None = None
    reason: str = ""


def roll_back_on_alarm(lifecycle: Lifecycle, event: dict[str, Any], *, prefix: str) -> CanaryOutcome | None:
    """A canary alarm entering ALARM ends that model's canary, audited with the alarm as actor and
    its state reason. None for any other event (another alarm, a change out of ALARM)."""
    if event.get("detail-type") != ALARM_STATE_CHANGE:
        return None
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    alarm = str(detail.get("alarmName", ""))
    model = canary_alarm_model(alarm, prefix)
    state = detail.get("state") if isinstance(detail.get("state"), dict) else {}
    if model is None or state.get("value") != "ALARM":
        return None
    reason = f"{alarm} entered ALARM: {str(state.get('reason', ''))[:500]}"
    return _roll_back(lifecycle, model, None, f"alarm:{alarm}", reason)


def _roll_back(lifecycle: Lifecycle, model: str, version: int | None, actor: str, reason: str) -> CanaryOutcome:
    try:
        change = lifecycle.stop_canary(model, rolled_back=True, version=version, actor=actor, reason=reason)
    except (ConflictError, NotFoundError) as error:  # at-least-once delivery: already ended, or no such model
        return CanaryOutcome(model, "nothing", version, str(error))
    return CanaryOutcome(model, "rolled_back", change.version.version, reason)


def check_bakes(
    lifecycle: Lifecycle, registry: ModelRegistry, alarms: AlarmStates, *, prefix: str, now: datetime
) -> list[CanaryOutcome]:
    """Every running canary: rolled back when one of its alarms is in ALARM (a missed state change),
    promoted once baked, else left baking."""
    outcomes = []
    for model in registry.list_models():
        canary = model.canary
        if canary is None:
            continue
        firing = alarms.in_alarm(canary_alarm_names(prefix, model.name))
        if firing:
            reason = f"{', '.join(firing)} in ALARM at the bake check"
            outcomes.append(_roll_back(lifecycle, model.name, canary.version, f"alarm:{firing[0]}", reason))
            continue
        if not rules.canary_baked(canary, now):
            outcomes.append(CanaryOutcome(model.name, "baking", canary.version, f"bakes {canary.bake_minutes} min"))
            continue
        reason = (
            f"canary v{canary.version} answered {canary.share:.0%} of the requests for {canary.bake_minutes} "
            f"minutes without its alarms ({', '.join(canary_alarm_names(prefix, model.name))})"
        )
        try:
            change = lifecycle.promote_canary(model.name, actor=BAKE_CHECK_ACTOR, reason=reason)
        except IntegrityError as error:  # its artifact changed: rejected by the gate, so it ends here
            outcomes.append(_roll_back(lifecycle, model.name, canary.version, BAKE_CHECK_ACTOR, str(error)))
            continue
        except ConflictError as error:  # a gate (four eyes, status) or a concurrent change
            outcomes.append(CanaryOutcome(model.name, "baking", canary.version, str(error)))
            continue
        outcomes.append(CanaryOutcome(model.name, "promoted", change.version.version, reason))
    return outcomes
