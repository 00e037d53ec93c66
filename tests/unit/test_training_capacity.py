"""Training's plan: memory and time from measurements, one refusal rule (mlops.training.capacity)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.contract import SUPPORTED_ESTIMATORS
from mlops.training import capacity
from mlops.training import capacity_measured as measured

ESTIMATORS = sorted(SUPPORTED_ESTIMATORS)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_plan_training_has_a_measurement_for_every_estimator_the_contract_allows(estimator: str) -> None:
    plan = capacity.plan_training(1_000, 8, 40_000, estimator, {})
    assert plan.peak_mib > measured.RUNTIME_MIB
    assert plan.seconds > 0
    assert plan.fits_lambda


@given(
    estimator=st.sampled_from(ESTIMATORS),
    rows=st.integers(1, 10**9),
    more=st.integers(1, 10**9),
    columns=st.integers(1, 1_000),
    object_bytes=st.integers(0, 50 * 1024**3),
)
def test_plan_training_never_shrinks_with_more_rows(
    estimator: str, rows: int, more: int, columns: int, object_bytes: int
) -> None:
    smaller = capacity.plan_training(rows, columns, object_bytes, estimator)
    bigger = capacity.plan_training(rows + more, columns, object_bytes, estimator)
    assert bigger.peak_mib >= smaller.peak_mib
    assert bigger.seconds >= smaller.seconds
    assert bigger.memory_mb >= smaller.memory_mb
    assert smaller.fits_lambda or not bigger.fits_lambda


@given(estimator=st.sampled_from(ESTIMATORS), columns=st.integers(1, 500), object_bytes=st.integers(0, 2 * 1024**3))
def test_capacity_rows_is_the_largest_dataset_that_fits(estimator: str, columns: int, object_bytes: int) -> None:
    rows = capacity.capacity_rows(columns, object_bytes, estimator)
    assert not capacity.plan_training(rows + 1, columns, object_bytes, estimator).fits_lambda
    if rows > 0:
        assert capacity.plan_training(rows, columns, object_bytes, estimator).fits_lambda


def test_a_plan_past_lambda_names_the_numbers_and_is_refused_while_no_engine_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(capacity, "MANAGED_ENGINE_AVAILABLE", False)
    # the old contract defaults: 50 million rows, a 5 GiB object
    plan = capacity.plan_training(50_000_000, 8, 5 * 1024**3, "logistic_regression")
    assert not plan.fits_lambda
    assert plan.where is capacity.TrainingPlace.MANAGED_ENGINE
    assert "50,000,000 rows x 8 columns" in plan.reason
    assert f"of {capacity.TRAINING_MEMORY_MB} MB" in plan.reason
    assert plan.memory_mb > capacity.TRAINING_MEMORY_MB
    assert capacity.refusal(plan) == plan.reason  # refused with its reason, never silently


def test_a_plan_past_lambda_goes_to_the_engine_once_one_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = capacity.plan_training(50_000_000, 8, 5 * 1024**3, "logistic_regression")
    monkeypatch.setattr(capacity, "MANAGED_ENGINE_AVAILABLE", True)
    assert capacity.refusal(plan) is None
    assert plan.where is capacity.TrainingPlace.MANAGED_ENGINE


def test_a_plan_past_the_engines_memory_too_is_refused_with_both_limits() -> None:
    plan = capacity.plan_training(2_000_000_000, 8, 200 * 1024**3, "logistic_regression")
    assert capacity.MANAGED_ENGINE_AVAILABLE
    reason = capacity.refusal(plan)
    assert reason is not None
    assert reason.startswith(plan.reason)
    assert f"the managed engine ({capacity.MANAGED_ENGINE_INSTANCE_TYPE}) holds at most" in reason


def test_a_plan_over_the_time_limit_does_not_fit_even_with_memory_to_spare() -> None:
    # GIVEN a forest of many trees on a dataset whose memory fits
    trees = capacity.plan_training(1_000_000, 8, 40 * capacity.MIB, "random_forest_classifier", {"n_estimators": 5_000})
    assert trees.peak_mib < capacity.TRAINING_MEMORY_MB * capacity.PLANNED_SHARE
    # THEN the time alone keeps it off Lambda, and the reason says so
    assert not trees.fits_lambda
    assert "s of Lambda's 900 s" in trees.reason


def test_more_trees_take_longer() -> None:
    few = capacity.plan_training(100_000, 8, 0, "gradient_boosting_classifier", {"n_estimators": 50})
    many = capacity.plan_training(100_000, 8, 0, "gradient_boosting_classifier", {"n_estimators": 200})
    assert many.seconds > few.seconds


@given(
    estimator=st.sampled_from(ESTIMATORS),
    rows=st.integers(1, 10**10),
    columns=st.integers(1, 1_000),
    object_bytes=st.integers(0, 50 * 1024**3),
    memory_mb=st.integers(128, capacity.LAMBDA_MAX_MEMORY_MB),
)
def test_a_plan_that_does_not_fit_says_what_is_over_and_never_refuses_silently(
    estimator: str, rows: int, columns: int, object_bytes: int, memory_mb: int
) -> None:
    plan = capacity.plan_training(rows, columns, object_bytes, estimator, lambda_memory_mb=memory_mb)
    over_memory = plan.peak_mib > memory_mb * capacity.PLANNED_SHARE
    over_time = plan.seconds > capacity.LAMBDA_TIMEOUT_SECONDS * capacity.PLANNED_TIME_SHARE
    assert plan.fits_lambda is not (over_memory or over_time)
    assert ("MiB, over its budget" in plan.reason) is over_memory
    assert ("s, over its budget" in plan.reason) is over_time
    # refused only past the managed engine's memory too, and then with the plan's reason first
    refused = capacity.refusal(plan)
    fits_somewhere = plan.fits_lambda or capacity.fits_memory(plan, capacity.MANAGED_ENGINE_MEMORY_MB)
    assert (refused is None) is fits_somewhere
    assert refused is None or refused.startswith(plan.reason)
    assert plan.memory_mb >= plan.peak_mib  # asks for at least the peak (MB >= MiB is conservative)


@pytest.mark.parametrize("estimator", sorted(measured.ESTIMATORS))
def test_plan_training_covers_the_runs_it_was_calibrated_on(estimator: str) -> None:
    # the formula and the measurements kept beside it agree (bench_training_scale.py --calibrate),
    # and a plan never promises less memory or time than a measured run took
    entry: dict[str, Any] = measured.ESTIMATORS[estimator]
    for run in entry["runs"]:
        plan = capacity.plan_training(run["rows"], 8, run["object_bytes"], estimator, entry["params"])
        # within 1 MiB: the runs are stored rounded, and the imports (RUNTIME_MIB) vary by a MiB between runs
        assert run["peak"] - 1 <= plan.peak_mib <= 1.1 * run["peak"]
        assert plan.seconds >= run["seconds"] - 0.1  # cells per second are stored as whole numbers
