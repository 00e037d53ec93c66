"""PSI between two baseline profiles (mlops.drift.stability): the numpy-free statistics behind
compare's `training_data_drift`, checked against profiles mlops.profile builds from numpy data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.drift.psi import column_psi, psi
from mlops.drift.stability import numeric_shares_in_bins, profile_psi, stability_index, training_data_drift
from mlops.profile import NumericProfile, numeric_counts, profile_categorical, profile_numeric
from tests.support.baselines import training_baseline

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
column = st.lists(st.one_of(finite, st.just(math.nan)), min_size=1, max_size=200)


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30).filter(lambda c: sum(c) > 0))
def test_stability_index_is_the_formula_psi_scores_windows_with(counts: list[int]) -> None:
    expected = [1 / len(counts)] * len(counts)
    total = sum(counts)
    assert stability_index(expected, [c / total for c in counts]) == psi(expected, counts)


def test_stability_index_refuses_buckets_that_do_not_line_up() -> None:
    with pytest.raises(ValueError, match="2 reference buckets but 3"):
        stability_index([0.5, 0.5], [0.2, 0.3, 0.5])


@given(column)
def test_profile_psi_of_identical_numeric_profiles_is_zero(values: list[float]) -> None:
    profile = profile_numeric(values)
    assert numeric_shares_in_bins(profile, profile) == pytest.approx(profile.proportions, abs=1e-12)
    assert profile_psi(profile, profile) == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=200)
@given(column, column)
def test_profile_psi_is_never_negative_and_re_binned_shares_sum_to_one(a: list[float], b: list[float]) -> None:
    reference, other = profile_numeric(a), profile_numeric(b)
    shares = numeric_shares_in_bins(reference, other)
    assert len(shares) == len(reference.proportions)
    assert min(shares) >= 0.0
    assert sum(shares) == pytest.approx(1.0)
    assert profile_psi(reference, other) >= 0.0


@pytest.mark.parametrize(
    ("a", "b", "at_least", "at_most"),
    [
        ((0.0, 1.0), (0.0, 1.0), 0.0, 0.05),  # another sample of the same distribution: stable
        ((0.0, 1.0), (1.0, 1.0), 0.2, None),  # shifted by one standard deviation
        ((0.0, 1.0), (-1.0, 1.0), 0.2, None),
        ((0.0, 1.0), (0.0, 3.0), 0.2, None),  # same centre, three times the spread
        ((0.0, 1.0), (10.0, 1.0), 5.0, None),  # no overlap at all
    ],
)
def test_profile_psi_of_normal_samples(
    a: tuple[float, float], b: tuple[float, float], at_least: float, at_most: float | None
) -> None:
    rng = np.random.default_rng(7)
    reference, other = profile_numeric(rng.normal(*a, 5_000)), profile_numeric(rng.normal(*b, 5_000))
    score = profile_psi(reference, other)
    assert score >= at_least
    assert at_most is None or score <= at_most


@pytest.mark.parametrize(
    ("shift", "scale"),
    [(0.0, 1.0), (0.1, 1.0), (0.25, 1.0), (0.5, 1.0), (1.0, 1.0), (2.0, 1.0), (0.0, 2.0), (1.0, 2.0)],
)
def test_profile_psi_approximates_the_psi_of_the_raw_data(shift: float, scale: float) -> None:
    # GIVEN the data behind `other`, binned exactly with the reference's edges (what drift
    # monitoring does with raw values)
    rng = np.random.default_rng(11)
    reference = profile_numeric(rng.normal(0.0, 1.0, 20_000))
    values = rng.normal(shift, scale, 20_000)
    exact_shares = [c / values.size for c in numeric_counts(values, reference.edges)]
    exact = column_psi(reference, values.tolist())

    # WHEN only `other`'s profile is known
    estimated = numeric_shares_in_bins(reference, profile_numeric(values))
    score = profile_psi(reference, profile_numeric(values))

    # THEN each share is within half a decile (the tail bins, spread evenly out to the extreme
    # min/max, are the worst) and the PSI within a quarter, on the same side of 0.1 and 0.2
    assert estimated == pytest.approx(exact_shares, abs=0.05)
    assert score == pytest.approx(exact, rel=0.25, abs=0.01)
    assert (score > 0.1, score > 0.2) == (exact > 0.1, exact > 0.2)


@pytest.mark.parametrize(
    ("a", "b", "at_least", "at_most"),
    [
        ([5.0] * 100, [5.0] * 40, 0.0, 1e-9),  # constant feature, unchanged
        ([5.0] * 100, [9.0] * 40, 0.2, None),  # constant feature that moved
        ([1.0, 2.0, 3.0] * 50, [1.0, 2.0, 3.0] * 20, 0.0, 1e-9),  # low cardinality: point masses on the edges
        ([1.0, 2.0, 3.0] * 50, [3.0] * 60, 0.2, None),
        ([1.0, 2.0, 3.0] * 50, [1.0, 2.0, 3.0] * 20 + [math.nan] * 30, 0.2, None),  # nulls are their own bucket
        ([1.0, 2.0, 3.0] * 50, [math.nan] * 10, 0.2, None),  # only nulls
    ],
)
def test_profile_psi_of_point_masses_and_nulls(
    a: list[float], b: list[float], at_least: float, at_most: float | None
) -> None:
    score = profile_psi(profile_numeric(a), profile_numeric(b))
    assert score >= at_least
    assert at_most is None or score <= at_most


def test_profile_psi_of_categories_spans_both_versions_categories() -> None:
    a = profile_categorical(["basic"] * 70 + ["pro"] * 30)
    assert profile_psi(a, profile_categorical(["pro"] * 30 + ["basic"] * 70)) == pytest.approx(0.0, abs=1e-12)
    # a category only b has scores against a's epsilon floor, as an unseen category does live
    b = profile_categorical(["basic"] * 60 + ["pro"] * 30 + ["enterprise"] * 10)
    assert profile_psi(a, b) > 0.2
    assert profile_psi(b, a) > 0.2


def test_profile_psi_refuses_profiles_of_different_kinds() -> None:
    with pytest.raises(ValueError, match="numeric profile cannot be compared with a categorical"):
        profile_psi(profile_numeric([1.0, 2.0]), profile_categorical(["a"]))


def test_numeric_shares_in_bins_refuses_a_malformed_profile() -> None:
    malformed = NumericProfile(
        edges=[1.0], proportions=[1.0], count=1, min=1.0, max=1.0, mean=1.0, std=0.0
    )  # 1 edge needs 2 bins and the null share
    with pytest.raises(ValueError, match="1 edges need 3 proportions"):
        numeric_shares_in_bins(profile_numeric([1.0, 2.0]), malformed)


def test_training_data_drift_per_feature_prediction_and_max() -> None:
    # GIVEN v2 trained on data whose x moved by one standard deviation, with the same plans
    a, b = training_baseline(seed=1), training_baseline(seed=2, shift=1.0)

    drift = training_data_drift(a, b)

    assert set(drift.features) == {"x", "plan"}
    assert drift.features["x"] > 0.2
    assert drift.features["plan"] < 0.01
    assert drift.prediction is not None
    assert drift.prediction > 0.2
    assert drift.max == max(drift.features["x"], drift.prediction)
    assert (drift.not_compared, drift.unavailable) == ({}, None)
    # identical training data: nothing moved
    same = training_data_drift(a, a)
    assert same.max == 0.0
    assert same.prediction == 0.0


def test_training_data_drift_names_features_it_cannot_compare() -> None:
    a, b = training_baseline(seed=1), training_baseline(seed=1)
    a = a.model_copy(update={"features": {**a.features, "tenure": profile_numeric([1.0, 2.0])}})
    b = b.model_copy(
        update={
            "features": {**b.features, "x": profile_categorical(["1", "2"]), "region": profile_categorical(["eu"])},
            "prediction": profile_categorical(["no", "yes"]),
        }
    )

    drift = training_data_drift(a, b)

    assert drift.features == {"plan": 0.0}
    assert drift.not_compared == {
        "region": "profiled in b only",
        "tenure": "profiled in a only",
        "x": "numeric in a, categorical in b",
    }
    assert drift.prediction is None
    assert drift.max == 0.0
