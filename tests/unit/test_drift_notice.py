"""The drift notification: names the model, version, drifted features with their numbers, the
prediction, data-quality problems and the report link; a subject SNS accepts."""

from __future__ import annotations

from mlops.drift.notice import SUBJECT_LIMIT, drift_notice, needs_notice
from mlops.drift.result import DataQuality, MissingValues, Rejection
from tests.support.drift import drift_result, insufficient_result

LINK = "https://console.aws.amazon.com/s3/object/artifacts?prefix=monitoring/churn/reports/20261202T100500000000Z.html"


def test_drift_notice_names_model_version_features_and_numbers() -> None:
    result = drift_result(features=6, drifted=(0, 3), regime="large")

    subject, body = drift_notice(result, report_link=LINK)

    assert subject == "Drift: churn v3 - 2 of 6 features drifted, prediction drifted, data-quality alarm"
    assert body.startswith("Model churn, version 3: drift detected and a data-quality alarm.\n")
    assert "Drifted features: 2 of 6 (33.3%; threshold 50.0%: below the dataset drift threshold)" in body
    assert (
        "- feature_00 (numeric): Wasserstein distance (normalised) 0.183 > 0.1; PSI 0.31; 5,000 values compared" in body
    )
    assert "- feature_03 (numeric): Wasserstein distance (normalised) 0.183 > 0.1" in body
    assert "feature_01 (" not in body  # not drifted: not listed as drifted
    assert "Prediction: drifted, Jensen-Shannon distance 0.183 > 0.1; PSI 0.31" in body
    assert "- feature_01: missing values 31.0% in this window, 2.0% in training (spike)" in body
    assert "- feature_00: 7.0% of values outside the training range (threshold 5.0%)" in body
    assert "- requests rejected: 92, 1.8% of requests (threshold 5.0%)" in body
    assert "  - feature_02: unseen category x 80" in body
    assert f"\nReport: {LINK}\n(served by the models API to IAM-signed requests: reader role or above)\n" in body
    assert "Window: 5,000 rows captured 2026-12-02 09:00 to 2026-12-02 10:05 UTC" in body


def test_drift_notice_words_p_values_in_small_windows() -> None:
    _, body = drift_notice(drift_result(features=3, drifted=(2,), regime="small"), report_link=None)

    assert "- feature_02 (categorical): chi-square test p 0.0004 < 0.05; PSI 0.31" in body
    assert "Report: no link for this run (see the model's drift history in the models API)" in body


def test_drift_notice_for_a_missing_value_spike_alone_is_a_data_quality_notice() -> None:
    quality = DataQuality(
        missing=[MissingValues(name="data_usage_gb", baseline_share=0.02, current_share=0.3, spike=True)],
        issues=["data_usage_gb: 30.0% missing values, 2.0% in training"],
        alarm=True,
    )
    result = drift_result(features=4, drifted=(), prediction_drifted=False, data_quality=quality)
    assert needs_notice(result)

    subject, body = drift_notice(result, report_link=LINK)

    assert subject == "Data quality: churn v3 - data-quality alarm"
    assert body.startswith("Model churn, version 3: no drift, but a data-quality alarm.\n")
    assert "- data_usage_gb: missing values 30.0% in this window, 2.0% in training (spike)" in body
    assert "Prediction: no drift" in body


def test_drift_notice_subject_fits_sns_with_any_names() -> None:
    # GIVEN the longest model name, and features named with non-ASCII characters and newlines
    names = [f"caf\u00e9\n{i}" for i in range(40)]
    result = drift_result(model="m" * 63, version=1_234_567, features=40, drifted=tuple(range(40)), names=names)

    subject, body = drift_notice(result, report_link=LINK)

    assert len(subject) <= SUBJECT_LIMIT < 100
    assert subject.isascii()
    assert all(" " <= c <= "~" for c in subject)
    # the body lists 25 features and counts the rest; no feature name breaks a line
    listed = [line for line in body.splitlines() if line.endswith("values compared")]
    assert len(listed) == 25
    assert all(line.startswith("- caf\u00e9\ufffd") for line in listed)
    assert "- and 15 more drifted features (see the report)" in body


def test_drift_notice_carries_no_captured_values_or_categories() -> None:
    result = drift_result(features=6, drifted=(0, 2), levels=8)

    _, body = drift_notice(result, report_link=None)

    categories = {b for f in result.features if f.distribution for b in f.distribution.buckets}
    assert not [c for c in categories if c in body]


def test_needs_notice_only_for_drift_or_a_data_quality_alarm() -> None:
    quiet = drift_result(features=3, drifted=(), prediction_drifted=False, data_quality=DataQuality())
    assert not needs_notice(quiet)
    assert not needs_notice(insufficient_result())
    rejected = DataQuality(rejections=[Rejection(field="plan", reason="unseen_category", count=3)], alarm=False)
    assert not needs_notice(quiet.model_copy(update={"data_quality": rejected}))
    assert needs_notice(drift_result(features=3, drifted=(1,)))


def test_drift_notice_body_stays_bounded_with_many_problems() -> None:
    names = [f"f{i}" for i in range(400)]
    quality = DataQuality(
        missing=[MissingValues(name=n, baseline_share=0.0, current_share=0.5, spike=True) for n in names],
        rejections=[Rejection(field=n, reason="wrong_type", count=1) for n in names],
        requests_rejected=400,
        rejected_share=0.5,
        alarm=True,
    )
    result = drift_result(features=400, drifted=tuple(range(400)), names=names, data_quality=quality)

    _, body = drift_notice(result, report_link=LINK)

    assert len(body.encode()) < 20_000
    assert "- and 375 more drifted features (see the report)" in body
    assert "- and 375 more missing-value spikes (see the report)" in body
    assert "  - and 375 more field/reason pairs (see the report)" in body
