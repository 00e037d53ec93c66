"""The gates a retraining trigger passes (plain Python; one place for each rule).

Order: a production version to improve on, then the cooldown (cheap: the audit trail), then the
new labelled rows (a read of captures and labels). An approver's request is evidence itself and
skips the label minimum; only an admin's explicit override skips the cooldown (an approver could
otherwise retrain in a loop and flood the dataset gate and training).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mlops.contract import Retraining
from mlops.retraining.triggers import RetrainTrigger


@dataclass(frozen=True)
class Gate:
    passed: bool
    reason: str
    gate: str = ""  # which gate refused: no_production, cooldown, too_few_labels, no_dataset


def before_reading(
    trigger: RetrainTrigger,
    rules: Retraining,
    *,
    production_version: int | None,
    last_started: datetime | None,
    now: datetime,
) -> Gate:
    """The gates that need no data: a production version, and the cooldown since the last retraining."""
    if production_version is None:
        return Gate(False, "no production version to retrain", "no_production")
    if last_started is not None and rules.cooldown_hours > 0:
        ready = last_started + timedelta(hours=rules.cooldown_hours)
        if now < ready:
            if trigger.overrides_cooldown:
                return Gate(True, f"cooldown until {ready:%Y-%m-%d %H:%M} UTC overridden by an admin")
            return Gate(
                False,
                f"cooldown: the last retraining started {last_started:%Y-%m-%d %H:%M:%S} UTC, "
                f"the next may start after {ready:%Y-%m-%d %H:%M:%S} UTC ({rules.cooldown_hours:g} h)",
                "cooldown",
            )
    return Gate(True, "production version present, outside the cooldown")


def enough_labels(trigger: RetrainTrigger, rules: Retraining, *, new_labelled_rows: int) -> Gate:
    """The new-evidence gate: labelled predictions answered since the last accepted dataset."""
    counted = f"{new_labelled_rows} new labelled rows (minimum {rules.min_new_labels})"
    if new_labelled_rows >= rules.min_new_labels:
        return Gate(True, counted)
    if trigger.skips_label_minimum:
        return Gate(True, f"{counted}; an approver's request needs no minimum")
    return Gate(False, f"too few labels: {counted}", "too_few_labels")
