"""The promotion policy: may a newly trained version replace the production champion?

A pure function of the contract's metric, the two versions' metric values and the same-data
comparisons training recorded, so it is tested table-driven and shared by every registry
implementation (mlops.registry.lifecycle calls it; the engine runs it for DynamoDB and the fake).
Schema compatibility (mlops.contract_compat) is applied after it: `apply_compatibility`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops.contract import Metric, PromotionMode
from mlops.contract_compat import InputCompatibility


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


# which rows a same-data comparison scored (mlops.training.champion records them), in words
CANDIDATE_HOLDOUT = "candidate_holdout"
RECENT_TRAFFIC = "recent_traffic"
DATA_DESCRIPTIONS = {CANDIDATE_HOLDOUT: "the candidate's holdout", RECENT_TRAFFIC: "recent labelled traffic"}


@dataclass(frozen=True)
class SameDataComparison:
    """Candidate and champion scored on the same rows, as training recorded it in the version's
    lineage (`same_data`). `champion_value` None: the champion could not be scored (`unavailable`)."""

    data: str
    metric_name: str
    rows: int
    candidate_value: float | None
    champion_version: int | None
    champion_value: float | None
    unavailable: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SameDataComparison:
        def number(key: str) -> float | None:
            value = record.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        version = record.get("champion_version")
        return cls(
            data=str(record.get("data", "")),
            metric_name=str(record.get("metric_name", "")),
            rows=int(record.get("rows") or 0),
            candidate_value=number("candidate_value"),
            champion_version=version if isinstance(version, int) else None,
            champion_value=number("champion_value"),
            unavailable=record.get("unavailable") or None,
        )

    @property
    def description(self) -> str:
        return f"{DATA_DESCRIPTIONS.get(self.data, self.data)} ({self.rows} rows)"

    def usable_for(self, metric: Metric, champion_version: int | None) -> bool:
        return (
            self.metric_name == metric.name
            and self.champion_version == champion_version
            and _finite(self.candidate_value)
            and _finite(self.champion_value)
        )


def same_data_of(lineage: Mapping[str, Any]) -> list[SameDataComparison]:
    """The same-data comparisons a version's lineage records (none for versions trained before them)."""
    records = lineage.get("same_data") or []
    return [SameDataComparison.from_record(r) for r in records if isinstance(r, Mapping)]


def decide_promotion(
    metric: Metric,
    candidate: dict[str, float],
    champion: dict[str, float] | None = None,
    *,
    champion_version: int | None = None,
    same_data: Sequence[SameDataComparison] = (),
) -> PromotionDecision:
    """Promote when the candidate meets the contract's minimum and, if a champion exists, beats it.

    The champion is beaten on the same data when training scored it there (`same_data`, for this
    champion version and metric): the candidate must beat it on every such set of rows. Only when
    none is usable are the two versions' own holdout scores (`candidate`/`champion`, the metric
    dictionaries) compared, and the reason says why. `champion` is None when the model has no
    production version. Never raises: a missing metric is a declined promotion with a reason.
    """
    name = metric.name
    direction = "higher" if metric.higher_is_better else "lower"
    value = candidate.get(name)
    if not _finite(value):  # missing or NaN: nothing to judge
        return PromotionDecision(False, f"candidate has no usable {name} metric")
    assert value is not None
    if not metric.meets_threshold(value):
        bound = "minimum" if metric.higher_is_better else "maximum"
        return PromotionDecision(
            False,
            f"{name} {value:.6g} does not meet the contract {bound} {metric.threshold:.6g} ({direction} is better)",
        )
    if champion is None:
        return PromotionDecision(True, f"{name} {value:.6g} meets the contract and there is no production version")
    label = f"production v{champion_version}" if champion_version is not None else "production"
    margin = f" by at least {metric.min_improvement:.6g}" if metric.min_improvement else ""
    usable = [c for c in same_data if c.usable_for(metric, champion_version)]
    if usable:
        verdicts = []
        for comparison in usable:
            ours, theirs = comparison.candidate_value, comparison.champion_value
            assert ours is not None
            assert theirs is not None
            verb = "beats" if metric.beats(ours, theirs) else "does not beat"
            verdicts.append(
                (verb == "beats", f"on {comparison.description}: {name} {ours:.6g} {verb} {label} {theirs:.6g}")
            )
        promote = all(won for won, _ in verdicts)
        shown = [text for won, text in verdicts if won is promote]  # what decided it
        return PromotionDecision(promote, f"{'; '.join(shown)}{margin} ({direction} is better, same data)")
    fallback = (
        f"compared on each version's own holdout ({_why_not_same_data(same_data, metric, champion_version, label)})"
    )
    best = champion.get(name)
    if not _finite(best):
        return PromotionDecision(
            False, f"{label} has no {name} metric to compare with; not promoted automatically; {fallback}"
        )
    assert best is not None
    if metric.beats(value, best):
        return PromotionDecision(
            True, f"{name} {value:.6g} beats {label} {best:.6g}{margin} ({direction} is better); {fallback}"
        )
    return PromotionDecision(
        False, f"{name} {value:.6g} does not beat {label} {best:.6g}{margin} ({direction} is better); {fallback}"
    )


def _why_not_same_data(
    same_data: Sequence[SameDataComparison], metric: Metric, champion_version: int | None, label: str
) -> str:
    for comparison in same_data:
        if comparison.champion_version == champion_version and comparison.unavailable:
            return comparison.unavailable
    if others := sorted({c.champion_version for c in same_data if c.champion_version != champion_version} - {None}):
        scored = ", ".join(f"v{v}" for v in others)
        return f"training scored {scored}, but {label} has served since"
    if same_data:
        return f"no same-data {metric.name} of {label} was recorded"
    return f"{label} was not scored on the candidate's data at training"


def _finite(value: float | None) -> bool:
    return value is not None and value == value and value not in (float("inf"), float("-inf"))


def apply_compatibility(
    decision: PromotionDecision, verdict: InputCompatibility, champion_version: int | None
) -> PromotionDecision:
    """A candidate that would reject requests production accepts is never promoted automatically;
    the breaks are named in the reason either way (it is audited)."""
    if verdict.compatible:
        return decision
    label = f"production v{champion_version}" if champion_version is not None else "production"
    return PromotionDecision(
        False, f"{decision.reason}; schema: the candidate {verdict.summary(label)}; not promoted automatically"
    )


def apply_promotion_mode(decision: PromotionDecision, mode: PromotionMode) -> PromotionDecision:
    """In `manual` mode nothing is promoted automatically; an eligible version waits for approval."""
    if mode is PromotionMode.MANUAL and decision.promote:
        return PromotionDecision(False, f"{decision.reason}; the contract requires manual approval")
    return decision
