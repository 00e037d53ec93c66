"""Population stability index of a window of live values against a baseline profile.

PSI = sum over bins of (a - e) * ln(a / e), with e the baseline share and a the window share of
each bin. Empty bins would make the logarithm infinite, so both shares are floored at `EPSILON`
(a category never seen in training still scores: 5% of the window in it alone gives ~0.31).
Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant shift.
The formula itself is `mlops.drift.stability.stability_index` (no numpy: models_api uses it too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlops.drift.stability import EPSILON, stability_index
from mlops.profile import MISSING, OTHER, CategoricalProfile, ColumnProfile, categorical_counts, numeric_counts

__all__ = ["EPSILON", "column_psi", "psi"]


def psi(expected: Sequence[float], actual_counts: Sequence[int], epsilon: float = EPSILON) -> float:
    """PSI of `actual_counts` (per bin) against the `expected` proportions of the same bins.

    Raises ValueError when the bins differ in number or the window is empty.
    """
    if len(expected) != len(actual_counts):
        raise ValueError(f"{len(expected)} baseline bins but {len(actual_counts)} window bins")
    total = sum(actual_counts)
    if total <= 0:
        raise ValueError("PSI of an empty window is undefined")
    return stability_index(expected, [count / total for count in actual_counts], epsilon)


def column_psi(profile: ColumnProfile, values: Sequence[object]) -> float:
    """PSI of one column of window values (None for nulls) against its baseline profile."""
    if isinstance(profile, CategoricalProfile):
        known = [c for c in profile.proportions if c not in (OTHER, MISSING)]
        counts = categorical_counts(values, known)
        return psi([profile.proportions.get(c, 0.0) for c in counts], list(counts.values()))
    numbers = np.array([_number(v) for v in values], dtype=np.float64)
    return psi(profile.proportions, numeric_counts(numbers, profile.edges))


def _number(value: object) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
