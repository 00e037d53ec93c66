"""Binned drift statistics against scipy on the raw data (scipy is a dev dependency only: the drift
function's layers ship numpy alone). Tolerances are stated per test: binning to ~110 quantile
bins costs at most one bin's mass in the KS distance and a few percent in the Wasserstein
distance; the p-values use asymptotic distributions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from mlops.drift import statistics
from mlops.drift.psi import psi
from mlops.profile import numeric_counts, profile_numeric


def _binned(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Fine bins of the reference profile, reference and current counts, and the range arguments."""
    profile = profile_numeric(reference)
    edges = np.asarray(profile.fine_edges)
    ref = np.asarray(profile.fine_counts, dtype=float)
    cur = np.asarray(numeric_counts(current, edges)[:-1], dtype=float)
    low, high = profile.min, profile.max
    outside = {
        "low": low,
        "high": high,
        "below": int((current < low).sum()),
        "above": int((current > high).sum()),
        "below_excess": float((low - current[current < low]).sum()),
        "above_excess": float((current[current > high] - high).sum()),
    }
    return edges, ref, cur, outside


@pytest.mark.parametrize("x", [0.05, 0.3, 0.6, 0.9, 1.1, 1.18, 1.2, 1.5, 2.0, 2.5, 3.5])
def test_kolmogorov_sf_matches_scipy(x: float) -> None:
    assert statistics.kolmogorov_sf(x) == pytest.approx(scipy_stats.kstwobign.sf(x), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("distance", "n", "m"),
    [(0.1, 100_000, 100), (0.2, 100_000, 100), (0.15, 5_000, 200), (0.05, 1_000_000, 1_000), (0.3, 50, 30)],
)
def test_ks_p_value_matches_scipys_asymptotic_two_sample_p_value(distance: float, n: int, m: int) -> None:
    # scipy's "asymp" mode: the exact one-sample distribution at round(n*m/(n+m)); ours: Kolmogorov's
    # limit with Stephens' correction. Within 0.01 + 5 % of the value.
    expected = scipy_stats.kstwo.sf(distance, round(n * m / (n + m)))
    assert abs(statistics.ks_p_value(distance, n, m) - expected) <= 0.01 + 0.05 * expected


def test_ks_test_on_repeated_values_is_scipys_statistic_exactly() -> None:
    # integer counts: the fine bins hold one distinct value each, so the binned CDFs are exact
    rng = np.random.default_rng(1)
    reference, current = rng.poisson(3.0, 20_000).astype(float), rng.poisson(3.3, 400).astype(float)
    _, ref, cur, _ = _binned(reference, current)
    distance, p_value = statistics.ks_test(ref, cur)
    expected = scipy_stats.ks_2samp(reference, current, method="asymp")
    assert distance == pytest.approx(expected.statistic, abs=1e-12)
    assert abs(p_value - expected.pvalue) <= 0.01 + 0.05 * expected.pvalue


@pytest.mark.parametrize(
    ("shift", "scale", "size"), [(0.0, 1.0, 200), (0.3, 1.0, 300), (0.0, 1.5, 500), (0.1, 1.0, 1_000)]
)
def test_ks_test_on_continuous_values_is_within_one_fine_bin_of_scipy(shift: float, scale: float, size: int) -> None:
    rng = np.random.default_rng(2)
    reference, current = rng.normal(0, 1, 50_000), rng.normal(shift, scale, size)
    _, ref, cur, _ = _binned(reference, current)
    distance, p_value = statistics.ks_test(ref, cur)
    expected = scipy_stats.ks_2samp(reference, current, method="asymp")
    # the binned distance is evaluated at the bin edges only: never more, at most ~1 bin's mass less
    assert expected.statistic - 0.012 <= distance <= expected.statistic + 1e-12
    # the p-value moves with the distance: compare on the scale decisions use
    assert p_value >= expected.pvalue * 0.99
    assert abs(np.log10(p_value) - np.log10(expected.pvalue)) <= 0.5 + 0.1 * abs(np.log10(expected.pvalue))


@pytest.mark.parametrize(("x", "dof"), [(0.01, 2), (1.0, 1), (3.0, 1), (10.0, 5), (50.0, 29), (300.0, 29), (5.0, 120)])
def test_chi_square_sf_matches_scipy(x: float, dof: int) -> None:
    assert statistics.chi_square_sf(x, dof) == pytest.approx(scipy_stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_chi_square_test_without_rare_levels_is_scipys_chisquare() -> None:
    reference = np.array([5_000, 3_000, 1_500, 500], dtype=float)
    current = np.array([110, 50, 28, 12], dtype=float)
    statistic, dof, p_value = statistics.chi_square_test(reference, current)
    expected = scipy_stats.chisquare(current, reference / reference.sum() * current.sum())
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert dof == 3
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_test_pools_levels_expected_fewer_than_five_times() -> None:
    # 30 levels, most rare in a window of 100: pooled into one bucket before the test
    rng = np.random.default_rng(3)
    shares = 1.0 / np.arange(1, 31)
    shares /= shares.sum()
    reference = shares * 100_000
    current = np.bincount(rng.choice(30, 100, p=shares), minlength=30).astype(float)
    statistic, dof, p_value = statistics.chi_square_test(reference, current)
    expected_counts = shares * 100
    common = expected_counts >= 5
    pooled_obs = np.append(current[common], current[~common].sum())
    pooled_exp = np.append(expected_counts[common], expected_counts[~common].sum())
    expected = scipy_stats.chisquare(pooled_obs, pooled_exp)
    assert dof == common.sum()
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_test_of_a_level_training_never_had_is_certain_drift() -> None:
    # an unseen level has no expectation at all: p = 0, however the other levels are pooled
    assert statistics.chi_square_test([1_000, 1_000, 0], [500, 500, 30])[2] == 0.0
    assert statistics.chi_square_test([1_000, 1_000, 0], [50, 49, 1])[2] == 0.0
    assert statistics.chi_square_test([1_000, 0], [0, 10])[2] == 0.0
    # a level training never had and the window does not have either changes nothing
    assert statistics.chi_square_test([1_000, 1_000, 0], [50, 50, 0])[2] == pytest.approx(1.0)
    assert statistics.chi_square_test([1_000], [10])[2] == 1.0  # one bucket: nothing to test


@pytest.mark.parametrize(
    ("name", "draw"),
    [
        ("normal shift", lambda r, n, drift: r.normal(0.25 * drift, 1, n)),
        ("normal spread", lambda r, n, drift: r.normal(0, 1 + 0.5 * drift, n)),
        ("heavy tail", lambda r, n, drift: r.standard_t(3, n) + 0.3 * drift),
        ("skewed", lambda r, n, drift: r.lognormal(0, 1 + 0.3 * drift, n)),
        ("counts", lambda r, n, drift: r.poisson(3 + 0.5 * drift, n).astype(float)),
        (
            "bimodal",
            lambda r, n, drift: np.where(r.random(n) < 0.3 + 0.2 * drift, r.normal(-2, 0.5, n), r.normal(2, 1, n)),
        ),
    ],
)
@pytest.mark.parametrize("drift", [0, 1])
def test_wasserstein_distance_matches_scipy_normalised_by_the_baseline_std(name: str, draw, drift: int) -> None:
    rng = np.random.default_rng(4)
    reference, current = draw(rng, 200_000, 0), draw(rng, 100_000, drift)
    edges, ref, cur, outside = _binned(reference, current)
    ours = statistics.wasserstein_distance(edges, ref, cur, **outside) / reference.std()
    expected = scipy_stats.wasserstein_distance(reference, current) / reference.std()
    # within 0.005 + 10 % (the decision threshold is 0.1)
    assert abs(ours - expected) <= 0.005 + 0.1 * expected, name


def test_wasserstein_distance_counts_values_far_beyond_the_training_range() -> None:
    rng = np.random.default_rng(5)
    reference = rng.normal(0, 1, 50_000)
    current = np.concatenate([rng.normal(0, 1, 9_000), np.full(1_000, 50.0)])  # 10 % at 50 sigma
    edges, ref, cur, outside = _binned(reference, current)
    ours = statistics.wasserstein_distance(edges, ref, cur, **outside)
    expected = scipy_stats.wasserstein_distance(reference, current)
    assert ours == pytest.approx(expected, rel=0.05)


def test_jensen_shannon_distance_matches_scipy() -> None:
    reference = np.array([10.0, 20.0, 30.0, 0.0, 5.0])
    current = np.array([12.0, 25.0, 20.0, 3.0, 0.0])
    expected = jensenshannon(reference / reference.sum(), current / current.sum())
    assert statistics.jensen_shannon_distance(reference, current) == pytest.approx(expected, rel=1e-12)


def test_population_stability_is_the_psi_of_the_monitor() -> None:
    reference, current = [100.0, 300.0, 600.0], [30, 20, 50]
    assert statistics.population_stability(reference, current) == pytest.approx(psi([0.1, 0.3, 0.6], current))


@given(st.lists(st.integers(min_value=0, max_value=1_000), min_size=2, max_size=40).filter(lambda c: sum(c) > 0))
def test_identical_distributions_show_no_drift(counts: list[int]) -> None:
    doubled = [2 * c for c in counts]
    distance, p_value = statistics.ks_test(counts, doubled)
    assert distance == pytest.approx(0.0, abs=1e-12)
    assert p_value == 1.0
    assert statistics.jensen_shannon_distance(counts, doubled) == pytest.approx(0.0, abs=1e-7)
    edges = np.arange(len(counts) - 1, dtype=float)
    assert statistics.wasserstein_distance(edges, counts, doubled, low=-1.0, high=float(len(counts))) == pytest.approx(
        0.0, abs=1e-9
    )
    assert statistics.chi_square_test(counts, doubled)[2] == pytest.approx(1.0)


def test_statistics_refuse_empty_or_mismatched_samples() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        statistics.ks_test([1, 2], [0, 0])
    with pytest.raises(ValueError, match="bins"):
        statistics.jensen_shannon_distance([1, 2], [1, 2, 3])
