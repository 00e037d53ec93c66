"""The population stability index in plain Python, and the drift between the training data of two
model versions, computed from their stored baseline profiles alone.

No numpy here: models_api (whose layers ship none) compares versions with it, and
`mlops.drift.psi` scores live windows with the same formula and `EPSILON`.

PSI = sum over buckets of (a - e) * ln(a / e), with e the reference share and a the other share
of each bucket, both floored at `EPSILON` so an empty bucket scores instead of dividing by zero.
Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant shift.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from mlops.profile_schema import BaselineProfile, CategoricalProfile, ColumnProfile, NumericProfile

EPSILON = 1e-4
DIGITS = 6  # PSI values are reported rounded, as the drift report does


def stability_index(expected: Sequence[float], actual: Sequence[float], epsilon: float = EPSILON) -> float:
    """PSI of the `actual` shares against the `expected` shares of the same buckets.

    Raises ValueError when the two have a different number of buckets.
    """
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} reference buckets but {len(actual)} compared buckets")
    score = 0.0
    for share, other in zip(expected, actual, strict=True):
        e = max(float(share), epsilon)
        a = max(float(other), epsilon)
        score += (a - e) * math.log(a / e)
    # identical shares give exactly 0; rounding must not report a negative index
    return max(score, 0.0)


def numeric_shares_in_bins(reference: NumericProfile, other: NumericProfile) -> list[float]:
    """`other`'s shares re-binned into `reference`'s bins, then `other`'s null share.

    Two profiles of different data have different quantile edges, and a profile keeps only its
    bin shares, so the mass of `other` inside a reference bin is estimated from `other`'s
    piecewise-linear CDF: knots at other.min, other.edges..., other.max carrying the cumulative
    shares 0, p0, p0+p1, ..., (1 - null share); linear in between (mass spread evenly within each
    of `other`'s bins), 0 below the min and flat above the max. Where the knots tie (a point mass,
    e.g. a constant or low-cardinality feature) the CDF jumps, and a value equal to an edge falls
    in the bin the edge closes, as when profiles are built ((e_i-1, e_i]).
    The estimate is exact at `other`'s knots, so identical profiles re-bin to their own shares;
    otherwise the error in one reference bin is at most the mass of the (at most two) bins of
    `other` that its two end points cut. In practice (decile profiles of a few thousand rows) the
    tails are the worst: the first and last bins stretch to the extreme min and max, where the
    density is far from even; shares come within a few points and the PSI within about a quarter
    of binning the raw data (tests/unit/test_training_data_drift.py). Nulls are their own bucket
    on both sides.

    Raises ValueError when a profile's proportions do not match its edges.
    """
    for profile in (reference, other):
        if len(profile.proportions) != len(profile.edges) + 2:
            raise ValueError(f"{len(profile.edges)} edges need {len(profile.edges) + 2} proportions")
    *bins, null_share = other.proportions
    if other.min is None or other.max is None:  # no finite value at all: only nulls
        return [0.0] * (len(reference.edges) + 1) + [null_share]
    xs = [other.min, *other.edges, other.max]
    for i in range(1, len(xs)):  # quantiles lie within [min, max]; guard against float overshoot
        xs[i] = max(xs[i], xs[i - 1])
    cumulative = [0.0]
    for share in bins:
        cumulative.append(cumulative[-1] + share)
    finite = cumulative[-1]

    def cdf(x: float) -> float:
        i = bisect_right(xs, x) - 1  # the last knot at or below x (the top of a jump)
        if i < 0:
            return 0.0
        if i >= len(xs) - 1:
            return finite
        x0, x1 = xs[i], xs[i + 1]  # x0 <= x < x1
        return cumulative[i] + (cumulative[i + 1] - cumulative[i]) * (x - x0) / (x1 - x0)

    below = [cdf(edge) for edge in reference.edges] + [finite]
    shares = [max(hi - lo, 0.0) for lo, hi in zip([0.0, *below[:-1]], below, strict=True)]
    return [*shares, null_share]


def profile_psi(reference: ColumnProfile, other: ColumnProfile) -> float:
    """PSI of the data `other` profiles against the data `reference` profiles (one column).

    Categorical: over the union of both profiles' categories. Numeric: over `reference`'s bins
    (see `numeric_shares_in_bins`) and the null bucket. Raises ValueError when the two profile the
    column as different kinds.
    """
    if isinstance(reference, CategoricalProfile) and isinstance(other, CategoricalProfile):
        categories = sorted(set(reference.proportions) | set(other.proportions))
        return stability_index(
            [reference.proportions.get(c, 0.0) for c in categories],
            [other.proportions.get(c, 0.0) for c in categories],
        )
    if isinstance(reference, NumericProfile) and isinstance(other, NumericProfile):
        return stability_index(reference.proportions, numeric_shares_in_bins(reference, other))
    raise ValueError(f"a {reference.kind} profile cannot be compared with a {other.kind} one")


class TrainingDataDrift(BaseModel):
    """PSI of version b's training data against version a's, from their baseline profiles."""

    model_config = ConfigDict(frozen=True)

    features: dict[str, float] = Field(default_factory=dict, description="feature -> PSI of b's data against a's")
    prediction: float | None = Field(
        default=None, description="PSI of b's training predictions against a's; null when not comparable"
    )
    max: float | None = Field(default=None, description="the largest PSI above; null when nothing was compared")
    not_compared: dict[str, str] = Field(
        default_factory=dict, description="feature -> why it has no PSI (profiled in one version only, other kind)"
    )
    unavailable: str | None = Field(default=None, description="why nothing was compared (a baseline is missing)")


def training_data_drift(a: BaselineProfile, b: BaselineProfile) -> TrainingDataDrift:
    """Per-feature and prediction PSI of `b`'s training data against `a`'s, and the largest."""
    features: dict[str, float] = {}
    not_compared: dict[str, str] = {}
    for name in sorted(set(a.features) | set(b.features)):
        if name not in b.features:
            not_compared[name] = "profiled in a only"
        elif name not in a.features:
            not_compared[name] = "profiled in b only"
        elif a.features[name].kind != b.features[name].kind:
            not_compared[name] = f"{a.features[name].kind} in a, {b.features[name].kind} in b"
        else:
            features[name] = round(profile_psi(a.features[name], b.features[name]), DIGITS)
    prediction = None
    if a.prediction.kind == b.prediction.kind:
        prediction = round(profile_psi(a.prediction, b.prediction), DIGITS)
    scores = [*features.values(), *([prediction] if prediction is not None else [])]
    return TrainingDataDrift(
        features=features, prediction=prediction, max=max(scores, default=None), not_compared=not_compared
    )
