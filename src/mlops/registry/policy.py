"""The promotion policy: may a newly trained version replace the production champion?

A pure function of the contract's metric and the two versions' metric values, so it is tested
table-driven and shared by every registry implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops.contract import Metric, PromotionMode


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def decide_promotion(
    metric: Metric,
    candidate: dict[str, float],
    champion: dict[str, float] | None = None,
    *,
    champion_version: int | None = None,
) -> PromotionDecision:
    """Promote when the candidate meets the contract's minimum and, if a champion exists, beats it.

    `candidate`/`champion` are the versions' metric dictionaries; `champion` is None when the model
    has no production version. Never raises: a missing metric is a declined promotion with a reason.
    """
    name = metric.name
    direction = "higher" if metric.higher_is_better else "lower"
    value = candidate.get(name)
    if value is None or value != value:  # missing or NaN: nothing to judge
        return PromotionDecision(False, f"candidate has no usable {name} metric")
    if not metric.meets_minimum(value):
        bound = "minimum" if metric.higher_is_better else "maximum"
        return PromotionDecision(
            False, f"{name} {value:.6g} does not meet the contract {bound} {metric.minimum:.6g} ({direction} is better)"
        )
    if champion is None:
        return PromotionDecision(True, f"{name} {value:.6g} meets the contract and there is no production version")
    label = f"production v{champion_version}" if champion_version is not None else "production"
    best = champion.get(name)
    if best is None or best != best:
        return PromotionDecision(False, f"{label} has no {name} metric to compare with; not promoted automatically")
    margin = f" by at least {metric.min_improvement:.6g}" if metric.min_improvement else ""
    if metric.beats(value, best):
        return PromotionDecision(True, f"{name} {value:.6g} beats {label} {best:.6g}{margin} ({direction} is better)")
    return PromotionDecision(
        False, f"{name} {value:.6g} does not beat {label} {best:.6g}{margin} ({direction} is better)"
    )


def apply_promotion_mode(decision: PromotionDecision, mode: PromotionMode) -> PromotionDecision:
    """In `manual` mode nothing is promoted automatically; an eligible version waits for approval."""
    if mode is PromotionMode.MANUAL and decision.promote:
        return PromotionDecision(False, f"{decision.reason}; the contract requires manual approval")
    return decision
