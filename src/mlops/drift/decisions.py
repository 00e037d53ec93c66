"""Drift and data-quality decisions for one window sketch against its version's baseline.

`evaluate` is the one entry point: the drift function calls it on the sketch of a closed window.

- Too few rows (`monitoring.min_window_rows`): status insufficient_data, nothing scored (rejections
  are still reported: a window where predict refused everything has no rows, and that matters).
- Each feature and the prediction are compared on their non-null values only, so a spike of
  missing values shows up as data quality, not as drift. The test suits the number of values
  compared (`monitoring.drift.small_window_max_rows`, Evidently's 1000 by default): up to it, the
  KS (numeric) or chi-square (categorical) p-value; above it, the Wasserstein distance divided by
  the baseline's standard deviation (numeric) or the Jensen-Shannon distance (categorical),
  drifted above `wasserstein_threshold` / `jensen_shannon_threshold` (0.1). `method: psi` judges
  every column by PSI > `psi_alarm_threshold` instead.
- The p-value tests are many (one per feature and the prediction): judged one by one at 0.05,
  a clean window of 20 features would alarm about 64 % of the time. Holm's correction holds the
  chance that any of them fires on a clean window to `monitoring.drift.alpha` (1 %); the reported
  statistic is the Holm-adjusted p-value, drifted below `alpha`.
- A distance alone is noisy just above the small-window size: at 1000 values a heavy-tailed
  feature's normalised Wasserstein distance crosses 0.1 in about 3 % of clean windows. So a
  distance counts only when the same column's test (KS / chi-square, Holm-adjusted, reported as
  `p_value`) also says it is no chance (`drift.distance_needs_significance`, on by default). In
  large windows any real drift past the threshold is that significant anyway.
- Dataset drift: the share of drifted features against `drift_share` (0.5). The drift alarm's
  signal (`drift_detected`) is any feature or the prediction drifted.
- Data quality, its own alarm: a missing-value spike (the share rose by at least
  `quality.missing_increase` and significantly), values outside the training range or unseen
  categories above `quality.out_of_range_share` (and more than chance allows), and the share of
  records predict refused above `quality.rejected_share`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from mlops.contract import Contract
from mlops.drift import statistics
from mlops.drift.result import (
    DataQuality,
    DatasetDrift,
    Distribution,
    DriftMethod,
    DriftResult,
    DriftStatus,
    FeatureDrift,
    MissingValues,
    OutOfRange,
    Rejection,
    WindowInfo,
)
from mlops.drift.sketch import CategoricalCounts, NumericCounts, WindowSketch, categories_of, numeric_reference
from mlops.profile import MISSING, OTHER, BaselineProfile, CategoricalProfile, ColumnProfile, NumericProfile

__all__ = ["MAX_BUCKETS", "evaluate"]

MAX_BUCKETS = 20  # buckets of a plotted distribution
UNSEEN_LABEL = "(unseen)"
P_VALUE_METHODS = (DriftMethod.KS, DriftMethod.CHI_SQUARE)


@dataclass(frozen=True)
class _Column:
    """One feature (or the prediction) of the window beside its baseline, non-null values only."""

    name: str
    kind: str  # numeric | categorical
    reference: np.ndarray  # baseline counts per bucket
    current: np.ndarray  # window counts per bucket
    edges: np.ndarray  # numeric: the bins' interior cuts (empty for categorical)
    labels: list[str]  # categorical: the categories (numeric: empty)
    psi_groups: np.ndarray  # starts of the buckets PSI sums over (deciles / categories)
    profile: ColumnProfile
    counts: NumericCounts | CategoricalCounts


@dataclass(frozen=True)
class _Score:
    method: DriftMethod
    value: float  # a raw p-value or a distance
    threshold: float
    p_value: float | None  # the KS / chi-square p-value (None for PSI)


def evaluate(
    contract: Contract, baseline: BaselineProfile, sketch: WindowSketch, *, generated_at: datetime
) -> DriftResult:
    """What the window `sketch` shows against `baseline` under `contract`'s monitoring thresholds."""
    monitoring = contract.monitoring
    window = WindowInfo(
        rows=sketch.rows,
        other_version_rows=sketch.other_version_rows,
        unreadable_rows=sketch.unreadable_rows,
        captures=sketch.captures,
        first_at=_time(sketch.first_at),
        last_at=_time(sketch.last_at),
    )
    common = {
        "model_name": contract.name,
        "version": sketch.version,
        "generated_at": generated_at,
        "min_window_rows": monitoring.min_window_rows,
        "window": window,
    }
    if sketch.rows < monitoring.min_window_rows:
        quality = _data_quality(contract, baseline, sketch, scored=False)
        return DriftResult(status=DriftStatus.INSUFFICIENT_DATA, data_quality=quality, **common)  # type: ignore[arg-type]

    columns = [
        column
        for name, counts in sketch.features.items()
        if (column := _column(name, baseline.features[name], counts)) is not None
    ]
    prediction_column = _column("prediction", baseline.prediction, sketch.prediction)
    every = [*columns, *([prediction_column] if prediction_column else [])]
    scores = [_score(contract, column) for column in every]
    # one family: every feature's test and the prediction's (keyed by position: a feature may be
    # called "prediction")
    adjusted = _holm([score.p_value for score in scores])
    significance = monitoring.drift.alpha if monitoring.drift.distance_needs_significance else None
    judged = [_judge(c, s, p, significance) for c, s, p in zip(every, scores, adjusted, strict=True)]
    features = judged[: len(columns)]
    prediction = judged[-1] if prediction_column else None
    drifted = [f.name for f in features if f.drifted]
    share = len(drifted) / len(features) if features else 0.0
    dataset = DatasetDrift(
        drifted_features=drifted,
        share=share,
        threshold=monitoring.drift.drift_share,
        drifted=bool(features) and share >= monitoring.drift.drift_share,
    )
    psis = [f.psi for f in features if f.psi is not None]
    return DriftResult(
        status=DriftStatus.SCORED,
        regime="small" if sketch.rows <= monitoring.drift.small_window_max_rows else "large",
        features=features,
        prediction=prediction,
        dataset=dataset,
        drift_detected=bool(drifted) or bool(prediction and prediction.drifted),
        drift_score=max(psis) if psis else None,
        data_quality=_data_quality(contract, baseline, sketch, scored=True),
        **common,  # type: ignore[arg-type]
    )


# ---- drift ----


def _column(name: str, profile: ColumnProfile, counts: NumericCounts | CategoricalCounts) -> _Column | None:
    """The baseline and window counts to compare, or None when either side has no value."""
    if isinstance(profile, NumericProfile) and isinstance(counts, NumericCounts):
        edges, reference = numeric_reference(profile)
        if profile.min is None or profile.max is None:
            return None
        current = counts.counts.astype(np.float64)
        labels: list[str] = []
        # PSI over the decile bins, each a union of fine bins (fine cuts include the decile cuts)
        decile = np.searchsorted(edges, np.asarray(profile.edges, dtype=np.float64))
        exact = decile.size == 0 or np.array_equal(edges[np.minimum(decile, edges.size - 1)], profile.edges)
        psi_groups = np.concatenate(([0], decile + 1)) if exact else np.arange(current.size)
        kind = "numeric"
    elif isinstance(profile, CategoricalProfile) and isinstance(counts, CategoricalCounts):
        categories = categories_of(profile)[:-1]  # MISSING left out: non-null values only
        reference = np.asarray([profile.proportions.get(c, 0.0) for c in categories]) * profile.count
        current = counts.counts[:-1].astype(np.float64)
        labels = [UNSEEN_LABEL if c == OTHER else c for c in categories]
        edges = np.zeros(0)
        psi_groups = np.arange(current.size)
        kind = "categorical"
    else:
        raise ValueError(f"{name}: the sketch does not count it as its baseline profiles it")
    if reference.sum() <= 0 or current.sum() <= 0:
        return None
    return _Column(name, kind, reference, current, edges, labels, psi_groups, profile, counts)


def _score(contract: Contract, column: _Column) -> _Score:
    drift = contract.monitoring.drift
    if drift.method == "psi":
        return _Score(DriftMethod.PSI, _psi(column), contract.monitoring.psi_alarm_threshold, None)
    small = column.current.sum() <= drift.small_window_max_rows
    if column.kind == "categorical":
        _, _, p_value = statistics.chi_square_test(column.reference, column.current)
        if small:
            return _Score(DriftMethod.CHI_SQUARE, p_value, drift.alpha, p_value)
        distance = statistics.jensen_shannon_distance(column.reference, column.current)
        return _Score(DriftMethod.JENSEN_SHANNON, distance, drift.jensen_shannon_threshold, p_value)
    _, p_value = statistics.ks_test(column.reference, column.current)
    if small:
        return _Score(DriftMethod.KS, p_value, drift.alpha, p_value)
    distance = _normalised_wasserstein(column)
    return _Score(DriftMethod.WASSERSTEIN, distance, drift.wasserstein_threshold, p_value)


def _normalised_wasserstein(column: _Column) -> float:
    profile, counts = column.profile, column.counts
    if not isinstance(profile, NumericProfile) or not isinstance(counts, NumericCounts):
        raise TypeError(f"{column.name} is not numeric")
    if profile.min is None or profile.max is None:  # `_column` leaves such columns out
        raise ValueError(f"{column.name}: the baseline has no finite value")
    distance = statistics.wasserstein_distance(
        column.edges,
        column.reference,
        column.current,
        low=profile.min,
        high=profile.max,
        below=counts.below,
        above=counts.above,
        below_excess=counts.below_excess,
        above_excess=counts.above_excess,
    )
    # a constant training feature has no spread: measure the move against its magnitude instead
    scale = profile.std if profile.std else max(abs(profile.mean or 0.0), 1.0)
    return distance / scale


def _psi(column: _Column) -> float:
    reference = np.add.reduceat(column.reference, column.psi_groups)
    current = np.add.reduceat(column.current, column.psi_groups)
    return round(statistics.population_stability(reference, current), 6)


def _holm(p_values: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (None stays None): rejecting where adjusted < alpha holds the chance
    of any false rejection among them to alpha."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * p))
        adjusted[i] = running
    return adjusted


def _judge(column: _Column, score: _Score, p_value: float | None, significance: float | None) -> FeatureDrift:
    """The column's decision; `p_value` is Holm-adjusted; `significance`: the alpha a distance's
    test must also pass (None: the distance alone decides)."""
    if score.method in P_VALUE_METHODS and p_value is not None:
        statistic = p_value
        drifted = statistic < score.threshold
    else:
        statistic = score.value
        drifted = statistic > score.threshold
        if significance is not None and p_value is not None:
            drifted = drifted and p_value < significance
    return FeatureDrift(
        name=column.name,
        kind=column.kind,  # type: ignore[arg-type]
        method=score.method,
        statistic=_finite(statistic),
        threshold=score.threshold,
        drifted=drifted,
        psi=_psi(column),
        p_value=p_value,
        rows=int(column.current.sum()),
        distribution=_distribution(column),
    )


def _distribution(column: _Column) -> Distribution:
    """Baseline and window shares over at most MAX_BUCKETS buckets, for a plot."""
    reference = column.reference / column.reference.sum()
    current = column.current / column.current.sum()
    if column.kind == "numeric":
        # group the fine bins at about every 1/MAX_BUCKETS of the baseline's mass
        cumulative = np.cumsum(reference)[:-1]
        targets = np.arange(1, MAX_BUCKETS) / MAX_BUCKETS
        cuts = np.unique(np.searchsorted(cumulative, targets - 1e-12)) if cumulative.size else np.array([], int)
        cuts = cuts[cuts < cumulative.size]
        starts = np.concatenate(([0], cuts + 1)).astype(int)
        return Distribution(
            buckets=_interval_labels(column.edges[cuts]),
            baseline=_shares(np.add.reduceat(reference, starts)),
            current=_shares(np.add.reduceat(current, starts)),
        )
    labels = list(column.labels)
    if len(labels) <= MAX_BUCKETS:
        return Distribution(buckets=labels, baseline=_shares(reference), current=_shares(current))
    # the MAX_BUCKETS - 1 levels largest on either side, the others together
    keep = np.sort(np.argsort(-np.maximum(reference, current), kind="stable")[: MAX_BUCKETS - 1])
    rest = np.setdiff1d(np.arange(len(labels)), keep)
    return Distribution(
        buckets=[*(labels[i] for i in keep), f"({rest.size} other levels)"],
        baseline=_shares(np.append(reference[keep], reference[rest].sum())),
        current=_shares(np.append(current[keep], current[rest].sum())),
    )


def _interval_labels(edges: np.ndarray) -> list[str]:
    if edges.size == 0:
        return ["(-inf, inf)"]
    cuts = [_number(e) for e in edges]
    return [f"(-inf, {cuts[0]}]", *(f"({a}, {b}]" for a, b in itertools.pairwise(cuts)), f"({cuts[-1]}, inf)"]


def _number(value: float) -> str:
    return f"{float(value):.4g}"


def _shares(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 1e308


# ---- data quality ----


def _data_quality(contract: Contract, baseline: BaselineProfile, sketch: WindowSketch, *, scored: bool) -> DataQuality:
    checks = contract.monitoring.quality
    alpha = contract.monitoring.drift.alpha
    issues: list[str] = []
    missing: list[MissingValues] = []
    out_of_range: list[OutOfRange] = []
    if scored:
        features = list(sketch.features.items())
        k = max(len(features), 1)  # Bonferroni over the features: one quality family per window
        for name, counts in features:
            profile = baseline.features[name]
            row = _missing(name, profile, counts, sketch.rows, checks.missing_increase, alpha / k)
            missing.append(row)
            if row.spike:
                issues.append(
                    f"{name}: {row.current_share:.1%} of values missing against {row.baseline_share:.1%} in training"
                )
            outside = _outside(name, profile, counts, checks.out_of_range_share, alpha / k)
            if outside is not None:
                out_of_range.append(outside)
                if outside.breached:
                    what = (
                        "outside the training range"
                        if isinstance(profile, NumericProfile)
                        else "categories never seen in training"
                    )
                    issues.append(f"{name}: {outside.share:.1%} of values {what}")
    rejections = sorted(
        (Rejection(field=f, reason=reason, count=count) for (f, reason), count in sketch.rejections.items() if count),
        key=lambda r: (-r.count, r.field, r.reason),
    )
    refused = sum(r.count for r in rejections)
    sent = refused + sketch.rows + sketch.other_version_rows
    rejected_share = refused / sent if sent else 0.0
    # judged once enough records were sent to tell (the same minimum as drift)
    rejected_breach = sent >= contract.monitoring.min_window_rows and rejected_share > checks.rejected_share
    if rejected_breach:
        top = rejections[0]
        issues.append(
            f"{rejected_share:.1%} of records refused ({refused} of {sent}); most often {top.field}: "
            f"{top.reason} ({top.count})"
        )
    return DataQuality(
        missing=missing,
        out_of_range=out_of_range,
        rejections=rejections,
        requests_rejected=refused,
        rejected_share=rejected_share,
        rejected_share_threshold=checks.rejected_share,
        issues=issues,
        alarm=bool(issues),
    )


def _missing(
    name: str,
    profile: ColumnProfile,
    counts: NumericCounts | CategoricalCounts,
    rows: int,
    increase: float,
    alpha: float,
) -> MissingValues:
    if isinstance(profile, NumericProfile):
        baseline_share = float(profile.proportions[-1]) if profile.proportions else 0.0
    else:
        baseline_share = float(profile.proportions.get(MISSING, 0.0))
    current_share = counts.nulls / rows if rows else 0.0
    spike = current_share - baseline_share >= increase and (
        _more_than_chance(baseline_share, profile.count, counts.nulls, rows) < alpha
    )
    return MissingValues(name=name, baseline_share=baseline_share, current_share=current_share, spike=spike)


def _more_than_chance(baseline_share: float, baseline_rows: int, hits: int, rows: int) -> float:
    """One-sided p-value that the window's share hits/rows exceeds the baseline's (pooled z-test)."""
    pooled = (baseline_share * baseline_rows + hits) / (baseline_rows + rows)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / max(baseline_rows, 1) + 1 / rows))
    if spread == 0:
        return 1.0
    z = (hits / rows - baseline_share) / spread
    return 0.5 * math.erfc(z / math.sqrt(2))


def _outside(
    name: str, profile: ColumnProfile, counts: NumericCounts | CategoricalCounts, threshold: float, alpha: float
) -> OutOfRange | None:
    if isinstance(profile, NumericProfile) and isinstance(counts, NumericCounts):
        if profile.min is None:
            return None
        hits, values = counts.below + counts.above, counts.values
        non_null = profile.count * (1 - (profile.proportions[-1] if profile.proportions else 0.0))
        # with n training values, a new value from the same distribution lands outside their
        # [min, max] with probability 2 / (n + 1)
        expected = 2.0 / (non_null + 1.0)
    elif isinstance(counts, CategoricalCounts):
        hits, values = int(counts.counts[-2]), counts.values  # OTHER: unseen categories
        expected = 0.0
    else:
        return None
    if values == 0:
        return None
    share = hits / values
    breached = share > threshold and _poisson_tail(hits, values * expected) < alpha
    return OutOfRange(name=name, share=share, threshold=threshold, breached=breached)


def _poisson_tail(hits: int, mean: float) -> float:
    """P(X >= hits) for a Poisson count with this mean (rare events among many values)."""
    if hits <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    return 1.0 - statistics.regularized_upper_gamma(float(hits), mean)


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
