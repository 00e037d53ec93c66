"""Two-sample drift statistics computed from binned counts (numpy and math only, no scipy).

The baseline keeps a fine histogram of the training data and the window sketch counts live traffic
in the same bins, so every statistic here works on two count vectors over the same buckets:

- `ks_test`: Kolmogorov-Smirnov distance between the two binned CDFs (evaluated at the bin edges:
  exact for values that repeat, within one fine bin's mass otherwise) and its p-value from the
  Kolmogorov distribution with effective size n*m/(n+m) and Stephens' small-sample correction;
- `chi_square_test`: Pearson's chi-square of the window counts against the baseline shares, rare
  levels (expected count < 5) pooled, p-value from the regularised upper incomplete gamma;
- `wasserstein_distance`: Wasserstein-1 between the binned CDFs (linear within a bin, the window's
  values beyond the training [min, max] placed where they were seen), to be divided by the
  baseline's standard deviation;
- `jensen_shannon_distance`: the square root of the Jensen-Shannon divergence (natural log);
- `population_stability`: PSI over the same shares (`mlops.drift.stability`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlops.drift.stability import stability_index

__all__ = [
    "MIN_EXPECTED",
    "chi_square_sf",
    "chi_square_test",
    "jensen_shannon_distance",
    "kolmogorov_sf",
    "ks_p_value",
    "ks_test",
    "population_stability",
    "regularized_upper_gamma",
    "wasserstein_distance",
]

MIN_EXPECTED = 5.0  # chi-square: levels expected fewer times than this are pooled

Counts = Sequence[float] | np.ndarray


def ks_test(reference: Counts, current: Counts) -> tuple[float, float]:
    """(D, p-value) of two samples given as counts over the same ordered bins.

    Raises ValueError when either sample is empty or the bins differ in number.
    """
    ref, cur = _pair(reference, current)
    n, m = float(ref.sum()), float(cur.sum())
    distance = float(np.max(np.abs(np.cumsum(ref) / n - np.cumsum(cur) / m)))
    return distance, ks_p_value(distance, n, m)


def ks_p_value(distance: float, n: float, m: float) -> float:
    """Two-sided p-value of a two-sample KS distance (Kolmogorov limit, effective n*m/(n+m),
    Stephens' correction (sqrt(en) + 0.12 + 0.11/sqrt(en)) that makes it usable for small samples)."""
    root = math.sqrt(n * m / (n + m))
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * distance)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution: 2 sum_k (-1)^(k-1) exp(-2 k^2 x^2)."""
    if x <= 0.0:
        return 1.0
    if x < 1.18:  # the alternating series converges slowly here; use the theta-function form
        y = math.exp(-(math.pi**2) / (8 * x * x))
        cdf = math.sqrt(2 * math.pi) / x * (y + y**9 + y**25 + y**49)
        return min(max(1.0 - cdf, 0.0), 1.0)
    total = 0.0
    for k in range(1, 101):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-300:
            break
    return min(max(2.0 * total, 0.0), 1.0)


def chi_square_test(
    reference: Counts, current: Counts, *, min_expected: float = MIN_EXPECTED
) -> tuple[float, int, float]:
    """(statistic, degrees of freedom, p-value) of `current` counts against `reference`'s shares.

    A level the reference never had (expected 0) that the window has is infinitely unlikely: p = 0
    (as scipy's chisquare gives, and Evidently reports a new category). Then levels with an expected
    count below `min_expected` are pooled into one bucket (and that bucket into the smallest other
    level while it is still too small). One bucket left: p = 1.
    Raises ValueError when either sample is empty or the bins differ in number.
    """
    ref, cur = _pair(reference, current)
    expected = ref / ref.sum() * cur.sum()
    never = expected == 0
    if np.any(cur[never] > 0):  # before pooling, which would hide a level training never had
        return math.inf, max(int((~never).sum()), 1), 0.0
    expected, cur = expected[~never], cur[~never]
    rare = expected < min_expected
    observed_buckets = list(cur[~rare])
    expected_buckets = list(expected[~rare])
    if rare.any():
        pooled_expected, pooled_observed = float(expected[rare].sum()), float(cur[rare].sum())
        while pooled_expected < min_expected and expected_buckets:
            smallest = int(np.argmin(expected_buckets))
            pooled_expected += expected_buckets.pop(smallest)
            pooled_observed += observed_buckets.pop(smallest)
        expected_buckets.append(pooled_expected)
        observed_buckets.append(pooled_observed)
    dof = len(expected_buckets) - 1
    if dof < 1:
        return 0.0, 0, 1.0
    exp = np.asarray(expected_buckets)
    obs = np.asarray(observed_buckets)
    statistic = float(np.sum((obs - exp) ** 2 / exp))
    return statistic, dof, chi_square_sf(statistic, dof)


def chi_square_sf(statistic: float, dof: int) -> float:
    """P(X > statistic) for a chi-square variable with `dof` degrees of freedom."""
    return regularized_upper_gamma(dof / 2.0, statistic / 2.0)


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): a series below a + 1, a continued fraction above
    (Lentz's method), both to double precision."""
    if a <= 0:
        raise ValueError("a must be positive")
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(10_000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return min(max(1.0 - total * math.exp(log_prefix), 0.0), 1.0)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        fraction *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(max(math.exp(log_prefix) * fraction, 0.0), 1.0)


def wasserstein_distance(
    edges: Sequence[float] | np.ndarray,
    reference: Counts,
    current: Counts,
    *,
    low: float,
    high: float,
    below: int = 0,
    above: int = 0,
    below_excess: float = 0.0,
    above_excess: float = 0.0,
) -> float:
    """Wasserstein-1 distance (the area between the two CDFs) from counts over the bins of `edges`.

    The reference lies within its [low, high] (training min and max); both CDFs are taken linear
    between consecutive knots low, edges..., high. The window's `below` values under `low` and
    `above` values over `high` add exactly what they contribute: their summed distance beyond
    the range (`below_excess`, `above_excess`) divided by the window size.
    Raises ValueError when either sample is empty or the bins differ in number.
    """
    ref, cur = _pair(reference, current)
    n, m = ref.sum(), cur.sum()
    cuts = np.asarray(edges, dtype=np.float64)
    if cuts.size + 1 != ref.size:
        raise ValueError(f"{cuts.size} edges need {cuts.size + 1} bins, got {ref.size}")
    knots = np.maximum.accumulate(np.clip(np.concatenate(([low], cuts, [high])), low, high))
    reference_cdf = np.concatenate(([0.0], np.cumsum(ref)[:-1] / n, [1.0]))
    current_cdf = np.concatenate(([below / m], np.cumsum(cur)[:-1] / m, [1.0 - above / m]))
    difference = reference_cdf - current_cdf
    widths = np.diff(knots)
    a, b = difference[:-1], difference[1:]
    same_sign = a * b >= 0
    magnitude = np.abs(a) + np.abs(b)
    # the integral of |linear| over a segment: a trapezoid, or two triangles when it crosses zero
    crossing = np.divide(a * a + b * b, 2.0 * magnitude, out=np.zeros_like(a), where=magnitude > 0)
    area = np.where(same_sign, magnitude / 2.0, crossing)
    inside = float(np.sum(widths * area))
    return inside + (below_excess + above_excess) / m


def jensen_shannon_distance(reference: Counts, current: Counts) -> float:
    """sqrt of the Jensen-Shannon divergence (natural log) between the two count vectors' shares:
    0 for identical shares, at most sqrt(ln 2) ~ 0.83 for disjoint ones.
    Raises ValueError when either sample is empty or the bins differ in number."""
    ref, cur = _pair(reference, current)
    p, q = ref / ref.sum(), cur / cur.sum()
    mixture = (p + q) / 2.0
    divergence = (_relative_entropy(p, mixture) + _relative_entropy(q, mixture)) / 2.0
    return math.sqrt(max(divergence, 0.0))


def population_stability(reference: Counts, current: Counts) -> float:
    """PSI of `current`'s shares against `reference`'s over the same buckets.
    Raises ValueError when either sample is empty or the bins differ in number."""
    ref, cur = _pair(reference, current)
    return stability_index((ref / ref.sum()).tolist(), (cur / cur.sum()).tolist())


def _relative_entropy(p: np.ndarray, q: np.ndarray) -> float:
    used = p > 0
    return float(np.sum(p[used] * np.log(p[used] / q[used])))


def _pair(reference: Counts, current: Counts) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError(f"{ref.size} reference bins but {cur.size} window bins")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("both samples need at least one value")
    return ref, cur
