"""PSI properties and the drift check of one model over captured windows (fakes, no AWS)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.contract import parse_contract
from mlops.drift.monitor import DriftStatus, check_model, detect_drift, drift_report_key, state_key
from mlops.drift.psi import column_psi, psi
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import load_model
from mlops.profile import profile_categorical, profile_numeric
from mlops.registry.records import Artifact, ModelRecord, ModelVersion, VersionStatus
from mlops.training import TrainedModel, train_model
from mlops_local.sample_data import churn_dataset, churn_features, records
from tests.support.fakes import InMemoryObjectStore

BUCKET = "artifacts"
CONTRACT = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


# ---- PSI ----


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=30).filter(lambda c: sum(c) > 0))
def test_psi_of_identical_distributions_is_zero(counts: list[int]) -> None:
    total = sum(counts)
    assert psi([c / total for c in counts], counts) == pytest.approx(0.0, abs=1e-12)


@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=20, max_size=200),
    st.integers(min_value=1, max_value=5),
)
def test_column_psi_of_the_training_values_themselves_is_zero(values: list[float], repeat: int) -> None:
    profile = profile_numeric(values)
    assert column_psi(profile, values * repeat) == pytest.approx(0.0, abs=1e-9)


def test_psi_of_a_shifted_distribution_exceeds_threshold() -> None:
    rng = np.random.default_rng(1)
    profile = profile_numeric(rng.normal(0, 1, 5_000))
    assert column_psi(profile, rng.normal(0, 1, 5_000).tolist()) < 0.05
    assert column_psi(profile, rng.normal(1, 1, 5_000).tolist()) > 0.2


@pytest.mark.parametrize(
    ("training", "window", "at_most", "at_least"),
    [
        ([5.0] * 100, [5.0] * 50, 1e-9, 0.0),  # constant feature, unchanged: no alarm
        ([5.0] * 100, [9.0] * 50, None, 0.2),  # constant feature that moved: alarm
        ([None] * 100, [None] * 50, 1e-9, 0.0),  # an all-null column (no edges)
        ([1.0, 2.0, None, 4.0] * 25, [1.0, 2.0, None, 4.0] * 10, 1e-9, 0.0),  # nulls are their own bin
    ],
)
def test_column_psi_numeric_edge_cases(
    training: list[float | None], window: list[float | None], at_most: float | None, at_least: float
) -> None:
    score = column_psi(profile_numeric(np.array(training, dtype=float)), window)
    assert np.isfinite(score)
    assert score >= at_least
    if at_most is not None:
        assert score <= at_most


def test_column_psi_unseen_category_counts_as_other() -> None:
    profile = profile_categorical(["a", "b"] * 50)
    assert column_psi(profile, ["a", "b"] * 10) == pytest.approx(0.0, abs=1e-12)
    assert column_psi(profile, ["a", "b"] * 10 + ["zzz"] * 2) > 0.2  # 9% unseen


def test_column_psi_booleans_profiled_as_categories() -> None:
    profile = profile_categorical([True, False] * 50)
    assert column_psi(profile, [True, False] * 20) == pytest.approx(0.0, abs=1e-12)
    assert column_psi(profile, [True] * 40) > 0.2


def test_psi_rejects_empty_window_and_mismatched_bins() -> None:
    with pytest.raises(ValueError, match="empty"):
        psi([0.5, 0.5], [0, 0])
    with pytest.raises(ValueError, match="bins"):
        psi([0.5, 0.5], [1])


# ---- one model's drift check ----


class RecordingMetrics:
    def __init__(self) -> None:
        self.added: list[tuple[str, float, str, dict[str, str]]] = []

    def add(self, name: str, value: float, unit: str, dimensions: dict[str, str] | None = None) -> None:
        self.added.append((name, value, unit, dict(dimensions or {})))


class FakeRegistry:
    def __init__(self, versions: list[ModelVersion], production: dict[str, int | None]) -> None:
        self.versions = {(v.model_name, v.version): v for v in versions}
        self.production = production

    def list_models(self) -> list[ModelRecord]:
        return [
            ModelRecord(name=name, latest_version=version or 1, production_version=version, updated_at=NOW)
            for name, version in self.production.items()
        ]

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self.versions[(name, version)]


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(churn_dataset(2_000), CONTRACT)


@pytest.fixture
def deployed(trained: TrainedModel) -> tuple[InMemoryObjectStore, ModelVersion]:
    store = InMemoryObjectStore()
    digest = hashlib.sha256(trained.onnx_bytes).hexdigest()
    version = ModelVersion(
        model_name="churn",
        version=3,
        status=VersionStatus.PRODUCTION,
        metric_name="roc_auc",
        metrics={"roc_auc": 0.8},
        artifact=Artifact(
            bucket=BUCKET,
            key=f"models/churn/{digest}.onnx",
            sha256=digest,
            size_bytes=len(trained.onnx_bytes),
            baseline_key=f"baselines/churn/{digest}.json",
        ),
        contract=CONTRACT.model_dump(mode="json"),
        lineage={},
        created_at=NOW,
    )
    store.put_bytes(BUCKET, version.artifact.key, trained.onnx_bytes)
    store.put_bytes(BUCKET, version.artifact.baseline_key, trained.profile.model_dump_json().encode())
    return store, version


def capture(
    store: InMemoryObjectStore, version: ModelVersion, rows: int, *, drift: float = 0.0, at: datetime, seed: int = 3
) -> None:
    """Captures as the predict function writes them: real predictions, flushed at `at`."""
    model = load_model(version, store)
    batch = records(churn_features(rows, seed=seed, drift=drift))
    buffer = CaptureBuffer(store, BUCKET, clock=lambda: at.timestamp())
    buffer.add("churn", version.version, CONTRACT.feature_names, batch, model.predict(batch), sample_rate=1.0)
    buffer.flush()


def test_drift_normal_traffic_scores_low_and_advances_state(deployed: tuple[InMemoryObjectStore, ModelVersion]) -> None:
    store, version = deployed
    capture(store, version, 600, at=NOW - timedelta(hours=1))
    metrics = RecordingMetrics()
    report = check_model(version, store, BUCKET, metrics, now=NOW)
    assert report.status is DriftStatus.SCORED
    assert report.window_rows == 600
    assert report.drift_score is not None
    assert report.drift_score < 0.1
    assert not report.drifted
    assert set(report.features) == set(CONTRACT.feature_names)
    assert report.prediction_psi is not None
    assert metrics.added == [
        ("DriftScore", report.drift_score, "None", {"model": "churn"}),
        ("DriftWindowRows", 600.0, "Count", {"model": "churn"}),
    ]
    written = json.loads(store.get_bytes(BUCKET, drift_report_key("churn", NOW)))
    assert written["features"] == report.features
    assert json.loads(store.get_bytes(BUCKET, state_key("churn")))["last_key"] == report.last_key

    # a second run with no new captures: insufficient data, no metric, no false alarm
    again = RecordingMetrics()
    second = check_model(version, store, BUCKET, again, now=NOW + timedelta(hours=1))
    assert second.status is DriftStatus.INSUFFICIENT_DATA
    assert second.window_rows == 0
    assert second.drift_score is None
    assert again.added == []


def test_drift_shifted_traffic_scores_above_threshold(deployed: tuple[InMemoryObjectStore, ModelVersion]) -> None:
    store, version = deployed
    capture(store, version, 600, drift=1.0, at=NOW - timedelta(hours=1))
    report = check_model(version, store, BUCKET, RecordingMetrics(), now=NOW)
    assert report.drift_score is not None
    assert report.drift_score > 0.2
    assert report.drifted
    assert report.prediction_psi is not None
    assert report.prediction_psi > 0.1


def test_drift_empty_window_on_first_run_is_insufficient(deployed: tuple[InMemoryObjectStore, ModelVersion]) -> None:
    store, version = deployed
    metrics = RecordingMetrics()
    report = check_model(version, store, BUCKET, metrics, now=NOW)
    assert report.status is DriftStatus.INSUFFICIENT_DATA
    assert metrics.added == []
    assert (BUCKET, state_key("churn")) not in store.objects


def test_drift_small_windows_accumulate_until_min_rows(deployed: tuple[InMemoryObjectStore, ModelVersion]) -> None:
    store, version = deployed  # min_window_rows is 200 in the churn contract
    capture(store, version, 150, at=NOW - timedelta(hours=2))
    metrics = RecordingMetrics()
    assert check_model(version, store, BUCKET, metrics, now=NOW).status is DriftStatus.INSUFFICIENT_DATA
    assert metrics.added == []
    capture(store, version, 100, at=NOW + timedelta(minutes=30), seed=4)
    report = check_model(version, store, BUCKET, metrics, now=NOW + timedelta(hours=1))
    assert report.status is DriftStatus.SCORED
    assert report.window_rows == 250


def test_drift_leaves_recent_captures_for_the_next_run(deployed: tuple[InMemoryObjectStore, ModelVersion]) -> None:
    store, version = deployed
    capture(store, version, 300, at=NOW - timedelta(seconds=30))  # may still be settling
    report = check_model(version, store, BUCKET, RecordingMetrics(), now=NOW, settle_seconds=120)
    assert report.window_rows == 0
    assert check_model(version, store, BUCKET, RecordingMetrics(), now=NOW + timedelta(minutes=5)).window_rows == 300


def test_drift_ignores_rows_of_other_versions(deployed: tuple[InMemoryObjectStore, ModelVersion]) -> None:
    store, version = deployed
    capture(store, version.model_copy(update={"version": 2}), 300, at=NOW - timedelta(hours=1))
    report = check_model(version, store, BUCKET, RecordingMetrics(), now=NOW)
    assert report.window_rows == 0
    assert report.other_version_rows == 300


def test_detect_drift_skips_models_without_production_and_reports_failures(
    deployed: tuple[InMemoryObjectStore, ModelVersion],
) -> None:
    store, version = deployed
    capture(store, version, 300, at=NOW - timedelta(hours=1))
    broken = version.model_copy(
        update={"model_name": "broken", "artifact": version.artifact.model_copy(update={"baseline_key": "nope"})}
    )
    store.put_bytes(
        BUCKET,
        "captures/broken/2026/03/04/10/20260304T100000-x.jsonl",
        store.get_bytes(BUCKET, next(k for _, k in store.objects if k.startswith("captures/churn/"))),
    )
    registry = FakeRegistry([version, broken], {"churn": 3, "broken": 3, "fresh": None})
    reports, failures = detect_drift(registry, store, BUCKET, RecordingMetrics(), now=NOW)
    assert [r.model_name for r in reports] == ["churn"]
    assert list(failures) == ["broken"]
