"""Drift and data-quality decisions on seeded windows with known ground truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from mlops.captures import CaptureBatch, Rejected
from mlops.contract import Contract, parse_contract
from mlops.drift.decisions import MAX_BUCKETS, evaluate
from mlops.drift.result import DriftMethod, DriftResult, DriftStatus
from mlops.drift.sketch import WindowSketch
from mlops.profile import BaselineProfile, profile_numeric
from tests.support.drift_data import (
    CONTRACT,
    WIDE,
    baseline,
    batch,
    predicted,
    traffic,
    wide_baseline,
    wide_batch,
    wide_traffic,
)

NOW = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return traffic(np.random.default_rng(100), 50_000)


@pytest.fixture(scope="module")
def profile(reference: dict[str, np.ndarray]) -> BaselineProfile:
    return baseline(reference)


def _with_monitoring(contract: Contract, **monitoring: Any) -> Contract:
    document = contract.model_dump(mode="json")
    document["monitoring"] = {**document["monitoring"], **monitoring}
    return parse_contract(document)


def _evaluate(
    profile: BaselineProfile, window: dict[str, np.ndarray], contract: Contract = CONTRACT, **kwargs: Any
) -> DriftResult:
    sketch = WindowSketch.empty(contract, profile, 1)
    sketch.add(batch(window, **kwargs))
    return evaluate(contract, profile, sketch, generated_at=NOW)


@pytest.mark.parametrize(
    ("rows", "regime", "method"), [(400, "small", DriftMethod.KS), (20_000, "large", DriftMethod.WASSERSTEIN)]
)
def test_evaluate_flags_a_shifted_feature_and_no_other(
    profile: BaselineProfile, rows: int, regime: str, method: DriftMethod
) -> None:
    # GIVEN monthly_charges moved by half (small window: one) standard deviation, nothing else did
    shift = 1.0 if regime == "small" else 0.5
    result = _evaluate(profile, traffic(np.random.default_rng(21), rows, shift=shift))
    # THEN it alone drifted, by the test the window's size calls for
    assert result.status is DriftStatus.SCORED
    assert result.regime == regime
    assert result.dataset is not None
    assert result.dataset.drifted_features == ["monthly_charges"]
    charges = next(f for f in result.features if f.name == "monthly_charges")
    assert charges.method is method
    assert result.drift_detected
    assert not result.dataset.drifted  # 1 of 7 features is below the 0.5 share
    assert result.prediction is not None
    assert not result.prediction.drifted  # the prediction does not depend on monthly_charges
    assert result.drift_score == max(f.psi for f in result.features if f.psi is not None)


def test_evaluate_flags_dataset_drift_when_half_the_features_moved(
    profile: BaselineProfile, reference: dict[str, np.ndarray]
) -> None:
    window = traffic(np.random.default_rng(2), 5_000, shift=0.5)
    window["tenure_months"] = window["tenure_months"] * 0.5
    window["support_calls"] = window["support_calls"] + 2
    window["plan"] = np.random.default_rng(3).choice(np.array(["basic", "standard", "premium"], dtype=object), 5_000)
    result = _evaluate(profile, predicted(window))
    assert result.dataset is not None
    assert set(result.dataset.drifted_features) == {"tenure_months", "monthly_charges", "support_calls", "plan"}
    assert result.dataset.share == pytest.approx(4 / 7)
    assert result.dataset.drifted
    # the prediction depends on tenure and support calls: it moved too
    assert result.prediction is not None
    assert result.prediction.drifted


@pytest.mark.parametrize("rows", [400, 20_000])
def test_a_missing_value_spike_is_data_quality_not_drift(profile: BaselineProfile, rows: int) -> None:
    # GIVEN 40 % of data_usage_gb missing (5 % in training), its non-null values unchanged
    result = _evaluate(profile, traffic(np.random.default_rng(4), rows, missing_usage=0.4))
    # THEN no feature drifted, and data quality raises its own alarm naming the feature
    assert not result.drift_detected
    usage = next(f for f in result.features if f.name == "data_usage_gb")
    assert not usage.drifted
    assert usage.rows == pytest.approx(rows * 0.6, rel=0.1)  # compared on non-null values only
    missing = next(m for m in result.data_quality.missing if m.name == "data_usage_gb")
    assert missing.spike
    assert missing.baseline_share == pytest.approx(0.05, abs=0.01)
    assert result.data_quality.alarm
    assert result.data_quality.issues == [
        f"data_usage_gb: {missing.current_share:.1%} of values missing against {missing.baseline_share:.1%} in training"
    ]


def test_a_small_rise_of_missing_values_is_no_spike(profile: BaselineProfile) -> None:
    # 8 % instead of 5 % over 20k rows: significant, but below the declared 0.1 increase
    result = _evaluate(profile, traffic(np.random.default_rng(5), 20_000, missing_usage=0.08))
    assert not any(m.spike for m in result.data_quality.missing)
    assert not result.data_quality.alarm


def _false_alarms(contract: Contract, base: BaselineProfile, windows: int, rows: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(windows):
        sketch = WindowSketch.empty(contract, base, 1)
        sketch.add(wide_batch(wide_traffic(rng, rows)))
        alarms += evaluate(contract, base, sketch, generated_at=NOW).drift_detected
    return alarms / windows


def test_clean_windows_at_the_minimum_size_rarely_raise_the_drift_alarm() -> None:
    # GIVEN a contract at the default minimum window (100 rows) with a 30-level categorical (the
    # feature whose empty rare levels made PSI alarm on every small clean window)
    base = wide_baseline(wide_traffic(np.random.default_rng(6), 100_000))
    assert WIDE.monitoring.min_window_rows == 100
    # WHEN 600 clean windows of 100 rows are judged
    rate = _false_alarms(WIDE, base, 600, 100, seed=7)
    # THEN at most 1 % alarm as the contract's alpha promises (2 % allows for the sampling error of
    # 600 windows: the count is binomial, sd 0.4 points at 1 %)
    assert rate <= 0.02


def test_clean_windows_just_above_the_small_window_size_rarely_raise_the_drift_alarm() -> None:
    # the distances take over at 1001 rows, where a heavy-tailed feature's Wasserstein distance
    # alone crosses 0.1 in about 3 % of clean windows (4 % of windows alarmed without the
    # significance its test must also show)
    base = wide_baseline(wide_traffic(np.random.default_rng(8), 100_000))
    assert _false_alarms(WIDE, base, 400, 1_001, seed=9) <= 0.02


def test_a_window_too_small_to_judge_is_reported_not_scored(profile: BaselineProfile) -> None:
    # GIVEN fewer rows than the contract's minimum (200), and records predict refused
    result = _evaluate(
        profile, traffic(np.random.default_rng(10), 199, shift=3.0), rejected=(Rejected("plan", "unseen_category", 5),)
    )
    assert result.status is DriftStatus.INSUFFICIENT_DATA
    assert result.window.rows == 199
    assert result.min_window_rows == 200
    assert result.features == []
    assert result.prediction is None
    assert result.dataset is None
    assert result.drift_score is None
    assert not result.drift_detected
    # the refusals are still reported
    assert result.data_quality.requests_rejected == 5
    assert result.data_quality.rejections[0].field == "plan"


def test_a_category_training_never_saw_is_drift_and_data_quality(profile: BaselineProfile) -> None:
    # GIVEN the contract accepts any plan (no declared categories) and 8 % of the window is "gold"
    document = CONTRACT.model_dump(mode="json")
    for feature in document["features"]:
        if feature["name"] == "plan":
            feature["categories"] = None
    contract = parse_contract(document)
    for rows in (400, 20_000):
        window = traffic(np.random.default_rng(11), rows)
        window["plan"][: rows * 8 // 100] = "gold"
        result = _evaluate(profile, window, contract)
        plan = next(f for f in result.features if f.name == "plan")
        assert plan.drifted, rows
        unseen = next(o for o in result.data_quality.out_of_range if o.name == "plan")
        assert unseen.breached
        assert unseen.share == pytest.approx(0.08)
        assert "plan: 8.0% of values categories never seen in training" in result.data_quality.issues
        assert plan.distribution is not None
        assert plan.distribution.buckets[-1] == "(unseen)"
        assert plan.distribution.current[-1] == pytest.approx(0.08)


def test_values_outside_the_training_range_are_a_data_quality_issue(profile: BaselineProfile) -> None:
    window = traffic(np.random.default_rng(12), 2_000)
    window["monthly_charges"][:100] = 900.0  # 5 %, far above anything seen in training
    result = _evaluate(profile, window)
    outside = next(o for o in result.data_quality.out_of_range if o.name == "monthly_charges")
    assert outside.breached
    assert outside.share == pytest.approx(0.05)
    assert result.data_quality.alarm
    clean = _evaluate(profile, traffic(np.random.default_rng(13), 2_000))
    assert not any(o.breached for o in clean.data_quality.out_of_range)
    assert not clean.data_quality.alarm


def test_the_rejected_share_is_a_data_quality_alarm(profile: BaselineProfile) -> None:
    rejected = (Rejected("region", "unseen_category", 90), Rejected("plan", "missing", 30))
    result = _evaluate(profile, traffic(np.random.default_rng(14), 1_000), rejected=rejected)
    quality = result.data_quality
    assert quality.requests_rejected == 120
    assert quality.rejected_share == pytest.approx(120 / 1_120)
    assert [(r.field, r.reason, r.count) for r in quality.rejections] == [
        ("region", "unseen_category", 90),
        ("plan", "missing", 30),
    ]
    assert quality.alarm
    assert quality.issues == ["10.7% of records refused (120 of 1120); most often region: unseen_category (90)"]
    few = _evaluate(profile, traffic(np.random.default_rng(14), 1_000), rejected=(Rejected("region", "missing", 10),))
    assert not few.data_quality.alarm


def test_psi_stays_selectable_in_the_contract(profile: BaselineProfile) -> None:
    contract = _with_monitoring(CONTRACT, drift={"method": "psi"})
    result = _evaluate(profile, traffic(np.random.default_rng(15), 5_000, shift=1.0), contract)
    assert {f.method for f in result.features} == {DriftMethod.PSI}
    charges = next(f for f in result.features if f.name == "monthly_charges")
    assert charges.threshold == contract.monitoring.psi_alarm_threshold
    assert charges.statistic == charges.psi
    assert charges.statistic > 0.2
    assert result.dataset is not None
    assert result.dataset.drifted_features == ["monthly_charges"]


def test_a_baseline_without_fine_bins_is_judged_on_its_deciles(profile: BaselineProfile) -> None:
    stored = json.loads(profile.model_dump_json())
    for column in [*stored["features"].values(), stored["prediction"]]:
        column.pop("fine_edges", None)
        column.pop("fine_counts", None)
    old = BaselineProfile.model_validate(stored)
    for rows in (400, 20_000):
        shifted = _evaluate(old, traffic(np.random.default_rng(16), rows, shift=1.0))
        assert shifted.dataset is not None
        assert shifted.dataset.drifted_features == ["monthly_charges"]
        charges = next(f for f in shifted.features if f.name == "monthly_charges")
        assert charges.distribution is not None
        assert len(charges.distribution.buckets) == 10  # the decile bins
        clean = _evaluate(old, traffic(np.random.default_rng(17), rows))
        assert not clean.drift_detected


def test_distributions_have_few_buckets_and_shares_that_add_up() -> None:
    base = wide_baseline(wide_traffic(np.random.default_rng(18), 50_000))
    sketch = WindowSketch.empty(WIDE, base, 1)
    sketch.add(wide_batch(wide_traffic(np.random.default_rng(19), 5_000)))
    result = evaluate(WIDE, base, sketch, generated_at=NOW)
    for feature in [*result.features, result.prediction]:
        assert feature is not None
        assert feature.distribution is not None
        distribution = feature.distribution
        assert 2 <= len(distribution.buckets) <= MAX_BUCKETS
        assert len(distribution.baseline) == len(distribution.current) == len(distribution.buckets)
        assert sum(distribution.baseline) == pytest.approx(1.0, abs=1e-4)
        assert sum(distribution.current) == pytest.approx(1.0, abs=1e-4)
    levels = next(f for f in result.features if f.name == "many_levels").distribution
    assert levels is not None
    assert levels.buckets[-1] == "(12 other levels)"  # 30 levels + unseen, the 19 largest kept
    normal = next(f for f in result.features if f.name == "normal").distribution
    assert normal is not None
    assert normal.buckets[0].startswith("(-inf, ")
    assert normal.baseline[0] == pytest.approx(0.05, abs=0.01)


def test_the_result_round_trips_through_json(profile: BaselineProfile) -> None:
    result = _evaluate(profile, traffic(np.random.default_rng(20), 3_000, shift=0.5, missing_usage=0.5))
    assert DriftResult.model_validate_json(result.model_dump_json()) == result


def test_monitoring_defaults_keep_the_contract_digest() -> None:
    # contracts written before monitoring.drift/quality existed keep their digest (the digest of
    # contracts/churn.json before this change); a value other than the default changes it
    assert CONTRACT.digest == "34085e43b745642cc37098e91ca85aa15cce50396da43aa1c75e653f4356eef0"
    explicit = _with_monitoring(CONTRACT, drift={"alpha": 0.01}, quality={"missing_increase": 0.1})
    assert explicit.digest == CONTRACT.digest
    assert _with_monitoring(CONTRACT, drift={"alpha": 0.05}).digest != CONTRACT.digest


def test_a_feature_called_prediction_is_judged_apart_from_the_models_prediction() -> None:
    # GIVEN a model whose feature is named "prediction" (a valid column name)
    contract = parse_contract(
        {
            "name": "named",
            "problem_type": "regression",
            "target": {"name": "y"},
            "features": [{"name": "prediction", "type": "numeric"}, {"name": "x", "type": "numeric"}],
            "estimator": {"name": "ridge"},
            "metric": {"name": "r2"},
        }
    )
    rng = np.random.default_rng(30)
    base = BaselineProfile(
        model_name="named",
        created_at=NOW,
        rows=20_000,
        features={
            "prediction": profile_numeric(rng.normal(0, 1, 20_000)),
            "x": profile_numeric(rng.normal(0, 1, 20_000)),
        },
        prediction=profile_numeric(rng.normal(5, 1, 20_000)),
    )
    # WHEN only the feature moves
    rows = 5_000
    window = CaptureBatch(
        at=[0.0] * rows,
        versions=[1] * rows,
        prediction_ids=[""] * rows,
        inputs={"prediction": rng.normal(1, 1, rows).tolist(), "x": rng.normal(0, 1, rows).tolist()},
        outputs={"value": rng.normal(5, 1, rows).tolist()},
    )
    sketch = WindowSketch.empty(contract, base, 1)
    sketch.add(window)
    result = evaluate(contract, base, sketch, generated_at=NOW)
    # THEN the feature drifted and the model's prediction did not
    assert [f.name for f in result.features if f.drifted] == ["prediction"]
    assert result.prediction is not None
    assert not result.prediction.drifted
    assert result.prediction.statistic < 0.1
