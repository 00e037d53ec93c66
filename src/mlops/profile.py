"""Distribution profiles: what training data looked like, so live traffic can be compared to it.

Training builds a `BaselineProfile` (per feature and for the predictions) and stores it beside
the artifact; drift monitoring bins a window of captured traffic with the same edges and
categories (`numeric_counts`, `categorical_counts`) and compares the proportions.
Only numpy: the drift function's layer has no pandas.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

# the schema lives in a numpy-free module (models_api reads profiles without numpy); one definition
from mlops.profile_schema import (
    MISSING,
    OTHER,
    BaselineProfile,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
)

__all__ = [
    "DEFAULT_BINS",
    "FINE_BINS",
    "MISSING",
    "OTHER",
    "BaselineProfile",
    "CategoricalProfile",
    "ColumnProfile",
    "NumericProfile",
    "categorical_counts",
    "category_of",
    "numeric_counts",
    "profile_categorical",
    "profile_numeric",
]

DEFAULT_BINS = 10
FINE_BINS = 100  # quantile bins of the fine histogram drift tests use (fewer when values repeat)
# extra cuts in each tail (as shares of the data): a heavy tail's 1% bin would otherwise hold most
# of the Wasserstein distance's error (a 1.5x spread: 0.52 instead of 0.47 with them)
FINE_TAILS = (1e-4, 3e-4, 1e-3, 2e-3, 5e-3)


def profile_numeric(values: Sequence[float] | np.ndarray, bins: int = DEFAULT_BINS) -> NumericProfile:
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    edges = _quantile_edges(finite, bins)
    counts = numeric_counts(array, edges)
    total = max(int(array.size), 1)
    fine_edges = _fine_edges(finite, bins)
    fine_counts = numeric_counts(finite, fine_edges)[:-1]
    return NumericProfile(
        edges=edges,
        proportions=[c / total for c in counts],
        count=int(array.size),
        min=float(finite.min()) if finite.size else None,
        max=float(finite.max()) if finite.size else None,
        mean=float(finite.mean()) if finite.size else None,
        std=float(finite.std()) if finite.size else None,
        fine_edges=fine_edges,
        fine_counts=fine_counts,
    )


def profile_categorical(values: Iterable[object]) -> CategoricalProfile:
    counts = Counter(category_of(v) for v in values)
    total = max(sum(counts.values()), 1)
    proportions = {category: n / total for category, n in sorted(counts.items())}
    proportions.setdefault(OTHER, 0.0)
    proportions.setdefault(MISSING, 0.0)
    return CategoricalProfile(proportions=proportions, count=sum(counts.values()))


def numeric_counts(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> list[int]:
    """Counts per bin of `edges` (same rule as the baseline), then the count of nulls/NaN."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    bucket = np.searchsorted(np.asarray(edges, dtype=np.float64), finite, side="left")
    counts = np.bincount(bucket, minlength=len(edges) + 1)
    return [int(c) for c in counts] + [int(array.size - finite.size)]


def categorical_counts(values: Iterable[object], known: Iterable[str]) -> dict[str, int]:
    """Counts per baseline category; unseen categories go to OTHER, nulls to MISSING."""
    known_set = set(known)
    counts: Counter[str] = Counter()
    for value in values:
        category = category_of(value)
        counts[category if category in known_set or category == MISSING else OTHER] += 1
    return {category: counts.get(category, 0) for category in sorted(known_set | {OTHER, MISSING})}


def _quantile_edges(finite: np.ndarray, bins: int) -> list[float]:
    return _unique_quantiles(finite, np.linspace(0, 1, bins + 1)[1:-1])


def _fine_edges(finite: np.ndarray, bins: int) -> list[float]:
    """The fine histogram's cuts: FINE_BINS quantiles among which the `bins` quantiles are exactly
    the decile cuts (same probabilities, bit for bit), so each decile bin is a union of fine bins."""
    tails = np.asarray(FINE_TAILS)
    probabilities = np.sort(np.concatenate((np.linspace(0, 1, FINE_BINS + 1)[1:-1], tails, 1.0 - tails)))
    for p in np.linspace(0, 1, bins + 1)[1:-1]:
        nearest = int(np.argmin(np.abs(probabilities - p)))
        if abs(probabilities[nearest] - p) < 1e-9:
            probabilities[nearest] = p
        else:
            probabilities = np.sort(np.append(probabilities, p))
    return _unique_quantiles(finite, probabilities)


def _unique_quantiles(finite: np.ndarray, probabilities: np.ndarray) -> list[float]:
    if finite.size == 0:
        return []
    quantiles = np.quantile(finite, probabilities)
    # a constant or low-cardinality feature yields repeated quantiles: keep each cut once
    return [float(q) for q in np.unique(quantiles)]


def category_of(value: object) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)
