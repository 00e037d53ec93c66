"""Labels joined to captures: late labels, duplicates, conflicts, unmatched ids, other versions,
the bounded state, and the run judged per model."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mlops.contract import Metric
from mlops.layout import quality_results_prefix, quality_state_key
from mlops.quality import metrics as names
from mlops.quality.join import JoinLimits
from mlops.quality.monitor import QualityState, evaluate_quality, judge
from mlops.quality.result import QualityResult, QualityStatus
from tests.support.fakes import InMemoryObjectStore
from tests.support.quality import (
    BUCKET,
    NOW,
    FakeRegistry,
    RecordingMetrics,
    answer,
    contract_document,
    deploy,
    write_captures,
    write_labels,
)

LIMITS = JoinLimits(settle_seconds=120, capture_lag_seconds=600, lookback_seconds=900, read_threads=2)
ANSWERED = NOW - timedelta(hours=3)  # 09:00: predictions of one minute


def run(store, registry, *, at, limits=LIMITS):
    metrics = RecordingMetrics()
    outcome = evaluate_quality(registry, store, BUCKET, metrics, now=at, limits=limits)
    return outcome, metrics


def latest_result(store, model="churn") -> QualityResult:
    keys = sorted(info.key for info in store.list(BUCKET, quality_results_prefix(model)))
    return QualityResult.model_validate_json(store.get_bytes(BUCKET, keys[-1]))


def served(store, count, *, at=ANSWERED, version=1, flush_after=timedelta(seconds=40), batch_id="b", model="churn"):
    """`count` predictions answered at `at` (half predicted "yes"), captured in one object."""
    ids = answer(count, at)
    predicted = ["yes" if i % 2 else "no" for i in range(count)]
    write_captures(
        store,
        ids,
        flushed=at + flush_after,
        predicted=predicted,
        yes_probability=[0.8 if p == "yes" else 0.2 for p in predicted],
        version=version,
        batch_id=batch_id,
        model=model,
    )
    return ids, predicted


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore()


def test_quality_join_scores_labelled_predictions_and_counts_unmatched(store) -> None:
    # GIVEN 300 captured predictions, labels for all of them (the truth is the prediction for 240)
    # and 20 labels of ids no capture holds
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    ids, predicted = served(store, 300)
    truth = [p if i < 240 else ("no" if p == "yes" else "yes") for i, p in enumerate(predicted)]
    stranger = answer(20, ANSWERED + timedelta(seconds=5))  # same minute, never captured
    write_labels(store, ids + stranger, truth + ["no"] * 20, arrived=ANSWERED + timedelta(minutes=30))
    # WHEN the hourly run comes
    outcome, metrics = run(store, registry, at=NOW)
    # THEN 300 joined, 20 unmatched, accuracy 0.8 judged (>= 200 labelled rows) above the minimum
    result = latest_result(store)
    assert outcome.failures == {}
    assert result.run.joined == 300
    assert result.run.unmatched == 20
    assert result.status is QualityStatus.SCORED
    assert result.production is not None
    assert result.production.labelled_rows == 300
    assert result.production.metrics["accuracy"] == pytest.approx(0.8)
    assert result.verdict is not None
    assert result.verdict.below_minimum is False
    assert result.verdict.below_holdout is True  # 0.8 < 0.9 - 0.05
    assert metrics.of(names.LIVE_ACCURACY) == [pytest.approx(0.8)]
    assert metrics.of(names.LABELS_UNMATCHED) == [20.0]
    assert metrics.of(names.QUALITY_BELOW_MINIMUM) == [1.0]
    assert result.f1_averaging == "binary, positive class 'yes'"


def test_quality_join_finds_a_late_label_of_an_old_minute_once(store) -> None:
    # GIVEN a run that joined 250 labels, then a label for a prediction of that minute arriving
    # 20 hours later (within the 48-hour horizon)
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    ids, predicted = served(store, 251)
    write_labels(store, ids[:250], predicted[:250], arrived=ANSWERED + timedelta(minutes=30))
    run(store, registry, at=NOW)
    later = NOW + timedelta(hours=20)
    write_labels(store, ids[250:], ["no"], arrived=later - timedelta(minutes=10))
    # WHEN the next runs come
    run(store, registry, at=later)
    first = latest_result(store)
    run(store, registry, at=later + timedelta(hours=1))
    second = latest_result(store)
    # THEN the late label is joined once, into its hour (the window now holds 251 rows), and not again
    assert first.run.labels == 1
    assert first.run.joined == 1
    assert first.run.label_objects_read == 1  # the new object (the old one is re-read for the rule only)
    assert first.production is not None
    assert first.production.labelled_rows == 251
    assert second.run.labels == 0
    assert second.run.label_objects_read == 0
    assert second.production is not None
    assert second.production.labelled_rows == 251


def test_quality_join_first_received_label_counts_duplicates_and_conflicts_are_counted(store) -> None:
    # GIVEN labels for 200 predictions (all right), then in a later run the same labels again and
    # opposite labels for 50 of them
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    ids, predicted = served(store, 200)
    write_labels(store, ids, predicted, arrived=ANSWERED + timedelta(minutes=30))
    run(store, registry, at=NOW)
    flipped = ["no" if p == "yes" else "yes" for p in predicted[:50]]
    write_labels(store, ids, predicted, arrived=NOW + timedelta(minutes=5))  # a retried request
    write_labels(store, ids[:50], flipped, arrived=NOW + timedelta(minutes=6), source="file.csv")
    # WHEN the next run comes
    _, metrics = run(store, registry, at=NOW + timedelta(hours=1))
    # THEN nothing new counts: 200 duplicates, 50 conflicts, accuracy still 1.0 over 200 rows
    result = latest_result(store)
    assert result.run.labels == 0
    assert result.run.duplicates == 200
    assert result.run.conflicts == 50
    assert result.production is not None
    assert result.production.labelled_rows == 200
    assert result.production.metrics["accuracy"] == 1.0
    assert metrics.of(names.LABELS_CONFLICTING) == [50.0]


def test_quality_join_counts_labels_of_other_versions_apart(store) -> None:
    # GIVEN production v2; 210 predictions by v2 and 40 by v1 (a canary, or before the promotion)
    registry = FakeRegistry([deploy(store, 1), deploy(store, 2)], {"churn": 2})
    ids2, predicted2 = served(store, 210, version=2, batch_id="b2")
    ids1, predicted1 = served(store, 40, version=1, at=ANSWERED + timedelta(seconds=3), batch_id="b1")
    write_labels(store, ids2 + ids1, predicted2 + predicted1, arrived=ANSWERED + timedelta(minutes=20))
    run(store, registry, at=NOW)
    result = latest_result(store)
    assert result.version == 2
    assert result.run.other_version == 40
    assert result.production is not None
    assert result.production.labelled_rows == 210
    assert [(v.version, v.labelled_rows) for v in result.other_versions] == [(1, 40)]


def test_quality_join_reads_captures_flushed_within_the_lag_only(store) -> None:
    # GIVEN 100 predictions captured 5 minutes after their minute, 100 captured 20 minutes after
    # (past the 10-minute lag: the join never waits that long)
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    ids_a, predicted_a = served(store, 100, flush_after=timedelta(minutes=5), batch_id="a")
    ids_b, predicted_b = served(
        store, 100, at=ANSWERED + timedelta(seconds=1), flush_after=timedelta(minutes=20), batch_id="z"
    )
    write_labels(store, ids_a + ids_b, predicted_a + predicted_b, arrived=ANSWERED + timedelta(minutes=30))
    run(store, registry, at=NOW)
    result = latest_result(store)
    assert result.run.joined == 100
    assert result.run.unmatched == 100
    assert result.status is QualityStatus.INSUFFICIENT_DATA  # 100 < 200 labelled rows


def test_quality_join_waits_for_a_minute_whose_captures_may_still_land(store) -> None:
    # GIVEN labels that arrive 2 minutes after their predictions, and a run 3 minutes after
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    answered = NOW - timedelta(minutes=3)
    ids, predicted = served(store, 210, at=answered)
    write_labels(store, ids, predicted, arrived=answered + timedelta(minutes=2))
    run(store, registry, at=NOW)
    assert latest_result(store).run.labels == 0  # not ready: the captures' lag has not passed
    run(store, registry, at=NOW + timedelta(minutes=15))
    later = latest_result(store)
    assert later.run.joined == 210
    assert later.run.unmatched == 0


def test_quality_join_reads_an_object_that_landed_late_inside_the_look_back(store) -> None:
    # GIVEN a label object stamped before the previous run's settle time but written after it ran
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    ids, predicted = served(store, 210)
    write_labels(store, ids[:200], predicted[:200], arrived=NOW - timedelta(minutes=20))
    run(store, registry, at=NOW)
    write_labels(store, ids[200:], predicted[200:], arrived=NOW - timedelta(minutes=5))  # stamped, landed late
    run(store, registry, at=NOW + timedelta(minutes=10))
    result = latest_result(store)
    assert result.run.late_label_objects == 1
    assert result.run.joined == 10
    assert result.production is not None
    assert result.production.labelled_rows == 210


def test_quality_state_stays_bounded_over_many_runs(store) -> None:
    # GIVEN a day of hourly traffic and labels, run every hour for three days
    registry = FakeRegistry([deploy(store, 1, contract=contract_document(window_hours=6))], {"churn": 1})
    sizes, remembered, hours = [], [], []
    for hour in range(75):
        at = NOW + timedelta(hours=hour)
        if hour < 24:
            answered = at - timedelta(minutes=50)
            ids, predicted = served(store, 20, at=answered, batch_id=f"h{hour}")
            write_labels(store, ids, predicted, arrived=answered + timedelta(minutes=5))
        run(store, registry, at=at)
        state = QualityState.model_validate_json(store.get_bytes(BUCKET, quality_state_key("churn")))
        sizes.append(len(store.get_bytes(BUCKET, quality_state_key("churn"))))
        remembered.append(len(state.labels.recent_keys))
        hours.append(sum(len(by_hour) for by_hour in state.hours.values()))
    # THEN the remembered keys stay within the look-back, the hours within horizon (48 h) + 1,
    # and the state shrinks back once the labelled hours pass the horizon
    assert max(remembered) <= 1
    assert max(hours) <= 50
    assert hours[-1] == 0
    assert sizes[-1] < max(sizes)
    assert latest_result(store).production is None  # nothing answered in the last 6 hours


def test_quality_run_isolates_a_failing_model(store) -> None:
    # GIVEN a model whose baseline state is broken and a healthy one
    good = deploy(store, 1)
    broken = deploy(store, 1, name="broken", contract=contract_document("broken"))
    store.put_bytes(BUCKET, quality_state_key("broken"), b"not json")
    registry = FakeRegistry([good, broken], {"broken": 1, "churn": 1})
    ids, predicted = served(store, 200)
    write_labels(store, ids, predicted, arrived=ANSWERED + timedelta(minutes=30))
    outcome, metrics = run(store, registry, at=NOW)
    assert list(outcome.failures) == ["broken"]
    assert latest_result(store).run.joined == 200
    assert metrics.of(names.QUALITY_CHECK_FAILURES, "broken") == [1.0]
    assert metrics.of(names.QUALITY_CHECK_FAILURES) == [0.0]


def test_quality_label_drift_against_the_training_target(store) -> None:
    # GIVEN training labels 70/30 and live labels all "yes"
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    ids, _ = served(store, 200)
    write_labels(store, ids, ["yes"] * 200, arrived=ANSWERED + timedelta(minutes=30))
    run(store, registry, at=NOW)
    production = latest_result(store).production
    assert production is not None
    assert production.label_counts == {"no": 0, "yes": 200}
    assert production.label_drifted is True
    # a baseline without a target profile: not judged
    other = InMemoryObjectStore()
    registry = FakeRegistry([deploy(other, 1, target_shares=None)], {"churn": 1})
    ids, _ = served(other, 200)
    write_labels(other, ids, ["yes"] * 200, arrived=ANSWERED + timedelta(minutes=30))
    run(other, registry, at=NOW)
    production = latest_result(other).production
    assert production is not None
    assert production.label_drift_psi is None


@pytest.mark.parametrize(
    ("metric", "minimum", "live", "holdout", "expected"),
    [
        ("accuracy", 0.7, 0.69, 0.72, (True, False)),
        ("accuracy", 0.7, 0.80, 0.90, (False, True)),
        ("accuracy", 0.7, 0.86, 0.90, (False, False)),
        ("accuracy", None, 0.5, None, (False, False)),
        ("rmse", 10.0, 10.5, 9.0, (True, True)),  # errors: lower is better, margin 5% of 9.0
        ("rmse", 10.0, 9.4, 9.0, (False, False)),
        ("log_loss", None, 0.5, 0.4, (False, True)),
    ],
)
def test_judge_minimum_and_holdout_margin(metric, minimum, live, holdout, expected) -> None:
    assert judge(Metric(name=metric, minimum=minimum), live, holdout, 0.05) == expected


def test_quality_result_is_stored_as_json(store) -> None:
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    run(store, registry, at=NOW)
    result = latest_result(store)
    assert result.status is QualityStatus.INSUFFICIENT_DATA
    assert result.production is None
    assert json.loads(result.model_dump_json())["auc_bins"] == 1000


def test_quality_join_reads_only_the_captures_near_labelled_minutes(store) -> None:
    # GIVEN a capture object every minute for three hours, and labels for the first and last minute
    registry = FakeRegistry([deploy(store, 1)], {"churn": 1})
    start = NOW - timedelta(hours=4)
    first_ids, first_predicted = served(store, 110, at=start, batch_id="m000")
    for minute in range(1, 180):
        served(store, 5, at=start + timedelta(minutes=minute), batch_id=f"m{minute:03d}")
    last_ids, last_predicted = served(store, 110, at=start + timedelta(minutes=180), batch_id="m180")
    write_labels(store, first_ids, first_predicted, arrived=start + timedelta(minutes=5))
    write_labels(store, last_ids, last_predicted, arrived=start + timedelta(minutes=185))
    run(store, registry, at=NOW)
    result = latest_result(store)
    # THEN both minutes join, reading the objects flushed within the lag of each (11 + 11), not all 181
    assert result.run.joined == 220
    assert result.run.unmatched == 0
    assert result.run.capture_objects_read <= 24


def test_quality_run_scores_a_regression_model_against_sklearn(store) -> None:
    import numpy as np
    from sklearn import metrics as skmetrics

    from mlops.captures import CaptureBatch, encode_batch
    from mlops.layout import capture_key
    from mlops.profile import profile_numeric

    # GIVEN a regression model (rmse, minimum 5.0) and 300 labelled predictions
    rng = np.random.default_rng(5)
    contract = contract_document() | {
        "problem_type": "regression",
        "target": {"name": "spend"},
        "estimator": {"name": "ridge"},
        "metric": {"name": "rmse", "at_most": 5.0},
    }
    version = deploy(store, 1, contract=contract, holdout=3.0, target=profile_numeric(rng.normal(50, 10, 2_000)))
    registry = FakeRegistry([version], {"churn": 1})
    ids = answer(300, ANSWERED)
    truth = rng.normal(50, 10, 300)
    predicted = truth + rng.normal(0, 4, 300)
    batch = CaptureBatch(
        at=[ANSWERED.timestamp()] * 300,
        versions=[1] * 300,
        prediction_ids=ids,
        inputs={"x": [1.0] * 300},
        outputs={"value": predicted.tolist()},
    )
    store.put_bytes(BUCKET, capture_key("churn", ANSWERED + timedelta(seconds=30), "r"), encode_batch(batch)[0])
    write_labels(store, ids, truth.tolist(), arrived=ANSWERED + timedelta(minutes=10))
    _, metrics = run(store, registry, at=NOW)
    result = latest_result(store)
    assert result.production is not None
    values = result.production.metrics
    assert values["rmse"] == pytest.approx(np.sqrt(skmetrics.mean_squared_error(truth, predicted)), rel=1e-9)
    assert values["mae"] == pytest.approx(skmetrics.mean_absolute_error(truth, predicted), rel=1e-9)
    assert values["r2"] == pytest.approx(skmetrics.r2_score(truth, predicted), rel=1e-9)
    # rmse ~4: within the minimum (5.0) but more than 5% above the holdout's 3.0
    assert result.verdict is not None
    assert (result.verdict.below_minimum, result.verdict.below_holdout) == (False, True)
    assert result.production.label_drifted is False
    assert metrics.of(names.LIVE_RMSE) == [pytest.approx(values["rmse"])]


def test_quality_run_a_backlog_out_of_time_fails_its_model_only(store) -> None:
    # GIVEN a model with 60 labelled minutes and one with a single minute; a clock that ticks one
    # second per look, a deadline at 100 and 50 seconds kept for each model after the current one
    big = deploy(store, 1, name="big", contract=contract_document("big"))
    registry = FakeRegistry([big, deploy(store, 1)], {"big": 1, "churn": 1})
    for minute in range(60):
        at = ANSWERED + timedelta(minutes=minute)
        ids, predicted = served(store, 5, at=at, batch_id=f"b{minute}", model="big")
        write_labels(store, ids, predicted, arrived=at + timedelta(minutes=1), model="big")
    ids, predicted = served(store, 200)
    write_labels(store, ids, predicted, arrived=ANSWERED + timedelta(minutes=30))
    ticks = iter(range(10_000))
    metrics = RecordingMetrics()
    outcome = evaluate_quality(
        registry,
        store,
        BUCKET,
        metrics,
        now=NOW,
        limits=LIMITS,
        deadline=100,
        clock=lambda: next(ticks),
        reserve_seconds=50,
    )
    # THEN the big model stops at its share (nothing saved: read again next run), the other is judged
    assert list(outcome.failures) == ["big"]
    assert "OutOfTimeError" in outcome.failures["big"]
    assert not list(store.list(BUCKET, quality_results_prefix("big")))
    assert latest_result(store).run.joined == 200
    assert metrics.of(names.QUALITY_CHECK_FAILURES, "big") == [1.0]
