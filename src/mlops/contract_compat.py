"""Schema compatibility of two versions' contracts: would the candidate reject a request the
production version accepts?

The one statement of that rule. The registry's automatic promotion (mlops.registry.lifecycle)
refuses a breaking candidate and the models API's compare answer shows the same verdict. It reads
the contract documents the registry stores with each version, through `FeatureRule` (the rules
predict enforces), so it needs the standard library only (models_api ships no numpy).

A request breaks when the candidate
- requires a feature production does not know (a new non-nullable feature);
- refuses a null production accepts (nullable -> not nullable);
- reads a feature as another type (numeric, categorical, boolean);
- refuses categories production accepts (declared ones removed, or an open vocabulary closed);
- narrows a numeric range (a higher min or a lower max, an open end closed).
What only widens (a new nullable feature, a feature the candidate no longer reads, a wider range,
more categories) is noted, not breaking: extra fields of a request are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlops.contract_rules import FeatureRule, FeatureType


class Break(StrEnum):
    NEW_REQUIRED_FEATURE = "new_required_feature"
    NULL_REFUSED = "null_refused"
    TYPE_CHANGED = "type_changed"
    CATEGORIES_REMOVED = "categories_removed"
    RANGE_NARROWED = "range_narrowed"


@dataclass(frozen=True)
class Incompatibility:
    feature: str
    kind: Break
    detail: str

    def __str__(self) -> str:
        return f"{self.feature}: {self.detail}"


@dataclass(frozen=True)
class InputCompatibility:
    """The verdict: `breaks` lists each way the candidate rejects what production accepts."""

    breaks: tuple[Incompatibility, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def compatible(self) -> bool:
        return not self.breaks

    def summary(self, reference: str = "production") -> str:
        """In words, against `reference` (the version whose accepted requests were compared)."""
        if self.compatible:
            return f"accepts every request {reference} accepts"
        return f"would reject requests {reference} accepts: " + "; ".join(str(b) for b in self.breaks)


def input_compatibility(production: Mapping[str, Any], candidate: Mapping[str, Any]) -> InputCompatibility:
    """Compare two contract documents' inputs (as the registry stores them with each version).

    Raises KeyError/ValueError only for a document that is no contract (registered contracts were
    validated at registration).
    """
    accepted = {rule.name: rule for rule in _rules(production.get("features") or ())}
    wanted = {rule.name: rule for rule in _rules(candidate.get("features") or ())}
    breaks: list[Incompatibility] = []
    notes: list[str] = []
    for name, rule in wanted.items():
        before = accepted.get(name)
        if before is None:
            if rule.nullable:
                notes.append(f"{name}: new optional feature (requests without it are accepted)")
            else:
                breaks.append(Incompatibility(name, Break.NEW_REQUIRED_FEATURE, "new required feature"))
            continue
        breaks.extend(_feature_breaks(before, rule))
    notes.extend(
        f"{name}: no longer read (requests carrying it are still accepted)" for name in accepted.keys() - wanted
    )
    return InputCompatibility(tuple(breaks), tuple(sorted(notes)))


def _rules(features: Sequence[Mapping[str, Any]]) -> list[FeatureRule]:
    return [FeatureRule.from_document(feature) for feature in features]


def _feature_breaks(before: FeatureRule, after: FeatureRule) -> list[Incompatibility]:
    name = after.name
    if before.type is not after.type:
        return [
            Incompatibility(name, Break.TYPE_CHANGED, f"type changed from {before.type.value} to {after.type.value}")
        ]
    found = []
    if before.nullable and not after.nullable:
        found.append(Incompatibility(name, Break.NULL_REFUSED, "no longer accepts null or a missing value"))
    if after.type is FeatureType.CATEGORICAL and after.categories is not None:
        if before.categories is None:
            found.append(
                Incompatibility(
                    name,
                    Break.CATEGORIES_REMOVED,
                    f"any text was accepted; now only {_listed(after.categories)}",
                )
            )
        elif removed := [c for c in before.categories if c not in after.allowed]:  # type: ignore[operator]
            found.append(Incompatibility(name, Break.CATEGORIES_REMOVED, f"categories {_listed(removed)} removed"))
    if after.type is FeatureType.NUMERIC:
        (low_before, high_before), (low_after, high_after) = before.bounds, after.bounds
        if low_after > low_before or high_after < high_before:
            found.append(
                Incompatibility(
                    name,
                    Break.RANGE_NARROWED,
                    f"range narrowed from {_range(low_before, high_before)} to {_range(low_after, high_after)}",
                )
            )
    return found


def _listed(values: Sequence[str]) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


def _range(low: float, high: float) -> str:
    def bound(value: float) -> str:
        return ("-inf" if value < 0 else "inf") if math.isinf(value) else f"{value:g}"

    return f"[{bound(low)}, {bound(high)}]"
