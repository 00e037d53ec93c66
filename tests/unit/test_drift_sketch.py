"""WindowSketch: counts of captured traffic over the baseline's bins, mergeable, stored as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlops.captures import CaptureBatch, Rejected
from mlops.drift.sketch import WindowSketch, numeric_reference
from mlops.profile import MISSING, OTHER, NumericProfile, numeric_counts
from tests.support.drift_data import CONTRACT, NUMERIC, baseline, batch, traffic


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return traffic(np.random.default_rng(7), 20_000)


def _state(sketch: WindowSketch) -> str:
    return json.dumps(sketch.to_json(), sort_keys=True)


def test_sketch_merge_equals_the_sketch_of_the_concatenated_batches(reference: dict[str, np.ndarray]) -> None:
    # GIVEN a window of 3,000 rows cut into three capture batches
    profile = baseline(reference)
    window = traffic(np.random.default_rng(8), 3_000, shift=0.3)
    whole = WindowSketch.empty(CONTRACT, profile, 1)
    whole.add(batch(window, rejected=(Rejected("plan", "unseen_category", 3),)))
    # WHEN each batch is sketched on its own and the sketches are merged
    parts = []
    for start, stop, rejected in ((0, 1_000, 1), (1_000, 2_500, 2), (2_500, 3_000, 0)):
        part = WindowSketch.empty(CONTRACT, profile, 1)
        part.add(batch(window, start=start, stop=stop, rejected=(Rejected("plan", "unseen_category", rejected),)))
        parts.append(part)
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    # THEN the counts are those of one sketch over every row (only the number of captures differs)
    assert merged.rows == whole.rows == 3_000
    assert merged.captures == 3
    assert whole.captures == 1
    merged.captures = whole.captures
    assert _state(merged) == _state(whole)


def test_sketch_counts_numeric_values_as_the_baseline_bins_them(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    window = traffic(np.random.default_rng(9), 2_000, missing_usage=0.3)
    sketch = WindowSketch.empty(CONTRACT, profile, 1)
    sketch.add(batch(window))
    for name in NUMERIC:
        numeric = profile.features[name]
        assert isinstance(numeric, NumericProfile)
        counts = sketch.features[name]
        expected = numeric_counts(window[name], numeric.fine_edges or [])
        assert counts.counts.tolist() == expected[:-1]  # type: ignore[union-attr]
        assert counts.nulls == expected[-1]
    assert sketch.features["data_usage_gb"].nulls == int(np.isnan(window["data_usage_gb"]).sum()) > 450


def test_sketch_counts_unseen_and_missing_categories_and_booleans(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    sketch = WindowSketch.empty(CONTRACT, profile, 1)
    values = {
        "plan": ["basic", "gold", None, "basic", "premium", "gold"],
        "autopay": [True, False, True, None, True, True],
    }
    window = batch(traffic(np.random.default_rng(1), 6))
    window.inputs.update(values)
    sketch.add(window)
    plan = dict(zip(sketch.features["plan"].categories, sketch.features["plan"].counts.tolist(), strict=True))  # type: ignore[union-attr]
    assert plan == {"basic": 2, "premium": 1, "standard": 0, OTHER: 2, MISSING: 1}
    autopay = dict(
        zip(sketch.features["autopay"].categories, sketch.features["autopay"].counts.tolist(), strict=True)  # type: ignore[union-attr]
    )
    assert autopay == {"false": 1, "true": 4, OTHER: 0, MISSING: 1}


def test_sketch_counts_only_rows_of_its_version(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    window = traffic(np.random.default_rng(2), 100)
    mixed = batch(window)
    mixed.versions = [1 if i % 4 else 2 for i in range(100)]  # every fourth row from version 2
    sketch = WindowSketch.empty(CONTRACT, profile, 1)
    sketch.add(mixed)
    assert (sketch.rows, sketch.other_version_rows) == (75, 25)
    kept = np.array([i % 4 != 0 for i in range(100)])
    assert sketch.features["tenure_months"].values == 75
    assert sketch.features["plan"].counts.sum() == 75
    expected = numeric_counts(window["monthly_charges"][kept], profile.features["monthly_charges"].fine_edges)  # type: ignore[union-attr, arg-type]
    assert sketch.features["monthly_charges"].counts.tolist() == expected[:-1]  # type: ignore[union-attr]


def test_sketch_counts_values_outside_the_training_range_and_how_far(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    charges = profile.features["monthly_charges"]
    assert isinstance(charges, NumericProfile)
    assert charges.min is not None
    assert charges.max is not None
    window = batch(traffic(np.random.default_rng(3), 5))
    window.inputs["monthly_charges"] = [charges.min - 2.0, charges.max + 5.0, charges.max + 1.0, 70.0, "oops"]
    sketch = WindowSketch.empty(CONTRACT, profile, 1)
    sketch.add(window)
    counts = sketch.features["monthly_charges"]
    assert (counts.below, counts.above, counts.nulls) == (1, 2, 1)  # type: ignore[union-attr]
    assert counts.below_excess == pytest.approx(2.0)
    assert counts.above_excess == pytest.approx(6.0)


def test_sketch_json_round_trip_keeps_every_count(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    sketch = WindowSketch.empty(CONTRACT, profile, 1)
    sketch.add(batch(traffic(np.random.default_rng(4), 500), rejected=(Rejected("region", "missing", 2),)))
    sketch.unreadable_rows = 3
    document = json.loads(json.dumps(sketch.to_json()))
    restored = WindowSketch.from_json(document, CONTRACT, profile)
    assert _state(restored) == _state(sketch)
    assert restored.rejections == {("region", "missing"): 2}
    assert restored.first_at is not None
    assert restored.last_at == restored.first_at + 499
    # small: counts only, whatever the window size
    assert len(json.dumps(document)) < 12_000


def test_sketch_size_does_not_grow_with_the_window(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    small = WindowSketch.empty(CONTRACT, profile, 1)
    small.add(batch(traffic(np.random.default_rng(5), 100)))
    large = WindowSketch.empty(CONTRACT, profile, 1)
    rng = np.random.default_rng(6)
    for _ in range(5):
        large.add(batch(traffic(rng, 20_000)))
    assert large.rows == 100_000
    assert abs(len(json.dumps(large.to_json())) - len(json.dumps(small.to_json()))) < 2_000


def test_sketch_from_json_refuses_counts_of_another_baseline(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    sketch = WindowSketch.empty(CONTRACT, profile, 1)
    document = sketch.to_json()
    document["features"]["tenure_months"]["counts"] = [0, 1, 2]
    with pytest.raises(ValueError, match="bins"):
        WindowSketch.from_json(document, CONTRACT, profile)
    with pytest.raises(ValueError, match="format"):
        WindowSketch.from_json({**sketch.to_json(), "format": 99}, CONTRACT, profile)


def test_sketch_merge_refuses_another_version(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    with pytest.raises(ValueError, match="same version"):
        WindowSketch.empty(CONTRACT, profile, 1).merge(WindowSketch.empty(CONTRACT, profile, 2))


def test_sketch_of_an_old_baseline_counts_in_the_decile_bins(reference: dict[str, np.ndarray]) -> None:
    # GIVEN a baseline stored before the fine histogram existed (its JSON has no fine fields)
    stored = json.loads(baseline(reference).model_dump_json())
    for feature in [*stored["features"].values(), stored["prediction"]]:
        feature.pop("fine_edges", None)
        feature.pop("fine_counts", None)
    old = type(baseline(reference)).model_validate(stored)
    tenure = old.features["tenure_months"]
    assert isinstance(tenure, NumericProfile)
    assert tenure.fine_edges is None
    # WHEN a window is sketched against it
    sketch = WindowSketch.empty(CONTRACT, old, 1)
    window = traffic(np.random.default_rng(10), 1_000)
    sketch.add(batch(window))
    # THEN each numeric feature is counted in the decile bins, the reference counts from the shares
    edges, counts = numeric_reference(tenure)
    assert edges.tolist() == tenure.edges
    assert (
        sketch.features["tenure_months"].counts.tolist() == numeric_counts(window["tenure_months"], tenure.edges)[:-1]
    )  # type: ignore[union-attr]
    assert counts.sum() == pytest.approx(tenure.count * (1 - tenure.proportions[-1]))


def test_profile_fine_bins_contain_the_decile_cuts(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    for name in NUMERIC:
        numeric = profile.features[name]
        assert isinstance(numeric, NumericProfile)
        assert numeric.fine_edges
        assert numeric.fine_counts
        assert set(numeric.edges) <= set(numeric.fine_edges)
        assert len(numeric.fine_counts) == len(numeric.fine_edges) + 1
        assert sum(numeric.fine_counts) == int(np.isfinite(reference[name]).sum())
    # 99 quantile cuts and 5 more in each tail
    assert len(profile.features["monthly_charges"].fine_edges) == 99 + 10  # type: ignore[union-attr, arg-type]
    # integer counts: one cut per distinct value, not 99 repeated quantiles
    assert len(profile.features["support_calls"].fine_edges) < 15  # type: ignore[union-attr, arg-type]


def test_sketch_of_a_batch_without_a_column_counts_it_missing(reference: dict[str, np.ndarray]) -> None:
    profile = baseline(reference)
    sketch = WindowSketch.empty(CONTRACT, profile, 1)
    window: CaptureBatch = batch(traffic(np.random.default_rng(11), 10))
    del window.inputs["region"], window.inputs["tenure_months"]
    window.outputs = {}
    sketch.add(window)
    assert sketch.features["region"].nulls == 10
    assert sketch.features["tenure_months"].nulls == 10
    assert sketch.prediction.nulls == 10
