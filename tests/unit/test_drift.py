"""PSI properties, and the drift run over captured windows: per model, in chunks, late captures
(fakes, no AWS; real trained model, real captures, real statistics)."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.captures import CaptureBatch, Rejected, encode_batch
from mlops.contract import parse_contract
from mlops.drift import monitor
from mlops.drift.decisions import evaluate
from mlops.drift.monitor import DriftLimits, DriftRun, detect_drift, drift_report_key, state_key
from mlops.drift.psi import column_psi, psi
from mlops.drift.result import DriftResult, DriftStatus
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import load_model
from mlops.layout import capture_key, drift_page_key, drift_report_id
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


# ---- the drift run ----

LIMITS = DriftLimits(settle_seconds=10)


class RecordingMetrics:
    def __init__(self) -> None:
        self.added: list[tuple[str, float, str, dict[str, str]]] = []

    def add(self, name: str, value: float, unit: str, dimensions: dict[str, str] | None = None) -> None:
        self.added.append((name, value, unit, dict(dimensions or {})))

    def of(self, name: str, model: str = "churn") -> list[float]:
        return [value for metric, value, _, dims in self.added if metric == name and dims == {"model": model}]


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


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


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ReadingStore(InMemoryObjectStore):
    """Counts the reads of each capture object; each read takes a second on `clock`; can be told to
    fail once after `fail_after` reads (a function that dies mid-run)."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self.clock = clock or Clock()
        self.reads: list[str] = []
        self.state_writes = 0
        self.fail_after: int | None = None

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        if key.startswith("captures/"):
            if self.fail_after is not None and len(self.reads) >= self.fail_after:
                self.fail_after = None
                raise ConnectionError("S3 went away")
            self.reads.append(key)
            self.clock.now += 1
        return super().get_bytes(bucket, key, version_id)

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        if key.endswith("state.json"):
            self.state_writes += 1
        return super().put_bytes(bucket, key, data, content_type)


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(churn_dataset(2_000), CONTRACT)


def deploy(store: InMemoryObjectStore, trained: TrainedModel, name: str = "churn", number: int = 3) -> ModelVersion:
    digest = hashlib.sha256(trained.onnx_bytes).hexdigest()
    version = ModelVersion(
        model_name=name,
        version=number,
        status=VersionStatus.PRODUCTION,
        metric_name="roc_auc",
        metrics={"roc_auc": 0.8},
        artifact=Artifact(
            bucket=BUCKET,
            key=f"models/{name}/{digest}.onnx",
            sha256=digest,
            size_bytes=len(trained.onnx_bytes),
            baseline_key=f"baselines/{name}/{digest}.json",
        ),
        contract=CONTRACT.model_dump(mode="json") | {"name": name},
        lineage={},
        created_at=NOW,
    )
    store.put_bytes(BUCKET, version.artifact.key, trained.onnx_bytes)
    store.put_bytes(BUCKET, version.artifact.baseline_key, trained.profile.model_dump_json().encode())
    return version


@pytest.fixture
def deployed(trained: TrainedModel) -> tuple[ReadingStore, ModelVersion]:
    store = ReadingStore()
    return store, deploy(store, trained)


def capture(
    store: InMemoryObjectStore,
    version: ModelVersion,
    rows: int,
    *,
    drift: float = 0.0,
    at: datetime,
    seed: int = 3,
    per_object: int = 500,
) -> list[str]:
    """Captures as the predict function writes them (real predictions, objects of `per_object`
    rows) flushed at `at`; returns their keys."""
    model = load_model(version, store)
    batch = records(churn_features(rows, seed=seed, drift=drift))
    ids = (f"id{i}" for i in itertools.count())
    batches = itertools.count()
    buffer = CaptureBuffer(
        store,
        BUCKET,
        max_records=per_object,
        clock=lambda: at.timestamp(),
        batch_id=lambda: f"{seed}-{next(batches):05d}",
    )
    keys = []
    for start in range(0, rows, per_object):
        part = slice(start, start + per_object)
        answers = [answer | {"prediction_id": next(ids)} for answer in model.predict(batch[part])]
        buffer.add(version.model_name, version.version, CONTRACT.feature_names, batch[part], answers, sample_rate=1.0)
        keys += [r.key for r in buffer.flush()]
    return keys


def run(
    store: InMemoryObjectStore,
    versions: list[ModelVersion],
    *,
    now: datetime = NOW,
    limits: DriftLimits = LIMITS,
    metrics: RecordingMetrics | None = None,
    **kwargs: object,
) -> DriftRun:
    registry = FakeRegistry(versions, {v.model_name: v.version for v in versions})
    return detect_drift(registry, store, BUCKET, metrics or RecordingMetrics(), now=now, limits=limits, **kwargs)  # type: ignore[arg-type]


def stored_result(store: InMemoryObjectStore, key: str) -> DriftResult:
    return DriftResult.model_validate_json(store.get_bytes(BUCKET, key))


def test_drift_normal_traffic_is_scored_stored_and_published(deployed: tuple[ReadingStore, ModelVersion]) -> None:
    store, version = deployed
    capture(store, version, 600, at=NOW - timedelta(hours=1))
    metrics = RecordingMetrics()
    [model] = run(store, [version], metrics=metrics).models
    assert (model.status, model.rows, model.captures_read) == ("scored", 600, 2)
    [result] = model.results
    assert result.status is DriftStatus.SCORED
    assert result.window.rows == 600
    assert result.window.captures == 2
    assert not result.drift_detected
    assert {f.name for f in result.features} == set(CONTRACT.feature_names)
    assert result.prediction is not None
    # the result JSON and its HTML page, side by side
    assert stored_result(store, drift_report_key("churn", NOW)) == result
    assert result.report_key == drift_page_key("churn", drift_report_id(NOW))
    assert store.get_bytes(BUCKET, result.report_key).startswith(b"<!")
    assert metrics.of("DriftDetected") == [0.0]
    assert metrics.of("PredictionDrift") == [0.0]
    assert metrics.of("DriftWindowRows") == [600.0]
    assert metrics.of("DriftedFeatureShare") == [result.dataset.share]  # type: ignore[union-attr]
    assert metrics.of("DataQualityIssues") == [float(len(result.data_quality.issues))]
    assert metrics.of("DriftCheckFailures") == [0.0]
    assert metrics.of("CapturesLate") == [0.0]

    # a second run with no new captures: nothing read, nothing judged, no drift metric
    again = RecordingMetrics()
    [second] = run(store, [version], now=NOW + timedelta(hours=1), metrics=again).models
    assert (second.status, second.captures_read, second.results) == ("insufficient_data", 0, [])
    assert again.of("DriftDetected") == []
    assert again.of("DriftCheckFailures") == [0.0]


def test_drift_shifted_traffic_is_detected_and_announced_with_the_report_link(
    deployed: tuple[ReadingStore, ModelVersion],
) -> None:
    store, version = deployed
    capture(store, version, 600, drift=1.0, at=NOW - timedelta(hours=1))
    metrics, notifier = RecordingMetrics(), RecordingNotifier()
    [model] = run(
        store, [version], metrics=metrics, notifier=notifier, report_base_url="https://api.example/prod/"
    ).models
    [result] = model.results
    assert result.drift_detected
    assert metrics.of("DriftDetected") == [1.0]
    [(subject, body)] = notifier.sent
    assert "churn v3" in subject
    report_id = f"{NOW:%Y%m%dT%H%M%S%fZ}"
    assert f"https://api.example/prod/models/churn/drift/{report_id}?format=html" in body
    assert any(f.name in body for f in result.features if f.drifted)


def test_drift_small_windows_accumulate_until_min_rows(deployed: tuple[ReadingStore, ModelVersion]) -> None:
    store, version = deployed  # min_window_rows is 200 in the churn contract
    capture(store, version, 150, at=NOW - timedelta(hours=2))
    metrics = RecordingMetrics()
    [first] = run(store, [version], metrics=metrics).models
    assert first.status == "insufficient_data"
    assert [r.status for r in first.results] == [DriftStatus.INSUFFICIENT_DATA]  # stored, says so
    assert metrics.of("DriftDetected") == []
    assert metrics.of("DriftWindowRows") == []
    capture(store, version, 100, at=NOW + timedelta(minutes=30), seed=4)
    [second] = run(store, [version], now=NOW + timedelta(hours=1)).models
    assert second.status == "scored"
    assert second.results[-1].window.rows == 250
    assert sorted(store.reads) == sorted(set(store.reads))  # the first 150 rows were not read twice


def test_drift_leaves_captures_inside_the_settle_time_for_the_next_run(
    deployed: tuple[ReadingStore, ModelVersion],
) -> None:
    store, version = deployed
    capture(store, version, 300, at=NOW - timedelta(seconds=5))  # may still be landing
    [model] = run(store, [version]).models
    assert model.captures_read == 0
    [later] = run(store, [version], now=NOW + timedelta(minutes=5)).models
    assert later.rows == 300


def test_drift_counts_rows_of_other_versions_without_comparing_them(
    deployed: tuple[ReadingStore, ModelVersion],
) -> None:
    store, version = deployed
    capture(store, version.model_copy(update={"version": 2}), 300, at=NOW - timedelta(hours=1))
    [model] = run(store, [version]).models
    [result] = model.results
    assert (result.window.rows, result.window.other_version_rows) == (0, 300)
    assert result.status is DriftStatus.INSUFFICIENT_DATA


def test_drift_one_model_failing_leaves_the_others_scored(
    deployed: tuple[ReadingStore, ModelVersion], trained: TrainedModel
) -> None:
    # GIVEN two models with traffic, one of them with its baseline gone
    store, version = deployed
    broken = deploy(store, trained, name="broken")
    broken = broken.model_copy(update={"artifact": broken.artifact.model_copy(update={"baseline_key": "nope"})})
    capture(store, version, 300, at=NOW - timedelta(hours=1))
    capture(store, broken, 300, at=NOW - timedelta(hours=1))
    metrics = RecordingMetrics()
    # WHEN the run checks both (the broken one first)
    registry = FakeRegistry([broken, version], {"broken": 3, "churn": 3, "fresh": None})
    result = detect_drift(registry, store, BUCKET, metrics, now=NOW, limits=LIMITS)
    # THEN the other is still scored, and the failure is counted for the broken one only
    assert {m.model: m.status for m in result.models} == {"broken": "failed", "churn": "scored"}
    assert list(result.failures) == ["broken"]
    assert metrics.of("DriftCheckFailures", "broken") == [1.0]
    assert metrics.of("DriftCheckFailures", "churn") == [0.0]


def test_drift_backlog_advances_one_bounded_chunk_per_run_and_is_judged_once_caught_up(
    deployed: tuple[ReadingStore, ModelVersion],
) -> None:
    # GIVEN a backlog of 12 capture objects, chunks of 4, and time for one chunk per run
    store, version = deployed
    keys = capture(store, version, 1_200, at=NOW - timedelta(hours=3), per_object=100)
    assert len(keys) == 12
    limits = DriftLimits(settle_seconds=10, chunk_objects=4, read_threads=2)
    statuses, read_per_run = [], []
    for hour in range(3):
        before = len(store.reads)
        [model] = run(
            store,
            [version],
            now=NOW + timedelta(hours=hour),
            limits=limits,
            deadline=store.clock.now + 3,
            clock=store.clock,
        ).models
        statuses.append(model.status)
        read_per_run.append(store.reads[before:])
        state = json.loads(store.get_bytes(BUCKET, state_key("churn")))
        assert state["marker"] == keys[4 * hour + 3]  # the progress is stored: the next run starts there
    # THEN each run read the next chunk, nothing twice, and the window was judged once caught up
    assert read_per_run == [keys[0:4], keys[4:8], keys[8:12]]
    assert statuses == ["behind", "behind", "scored"]
    result = stored_result(store, drift_report_key("churn", NOW + timedelta(hours=2)))
    assert (result.window.rows, result.window.captures) == (1_200, 12)


def test_drift_state_is_persisted_after_each_chunk_so_a_failed_run_loses_no_progress(
    deployed: tuple[ReadingStore, ModelVersion],
) -> None:
    store, version = deployed
    keys = capture(store, version, 1_000, at=NOW - timedelta(hours=3), per_object=100)
    limits = DriftLimits(settle_seconds=10, chunk_objects=4, read_threads=1)
    # GIVEN a run that dies while reading its third chunk
    store.fail_after = 9
    [failed] = run(store, [version], limits=limits).models
    assert failed.status == "failed"
    assert json.loads(store.get_bytes(BUCKET, state_key("churn")))["marker"] == keys[7]
    # WHEN the next run comes THEN it reads only what the failed run had not counted, and judges all
    [model] = run(store, [version], now=NOW + timedelta(hours=1), limits=limits).models
    assert store.reads[9:] == keys[8:]  # the 9th read was in the chunk the failed run never counted
    assert model.status == "scored"
    assert model.results[-1].window.rows == 1_000
    assert model.results[-1].window.captures == 10


def test_drift_window_reaching_the_maximum_is_judged_while_behind(
    deployed: tuple[ReadingStore, ModelVersion],
) -> None:
    store, version = deployed
    capture(store, version, 1_000, at=NOW - timedelta(hours=3), per_object=100)
    limits = DriftLimits(settle_seconds=10, chunk_objects=3, max_window_rows=500)
    [model] = run(store, [version], limits=limits).models
    # chunks of 300 rows: judged at 600 and (caught up) on the remaining 400
    assert [(r.status, r.window.rows) for r in model.results] == [
        (DriftStatus.SCORED, 600),
        (DriftStatus.SCORED, 400),
    ]
    assert len({r.generated_at for r in model.results}) == 2  # two results, two ids


def test_drift_gives_each_model_a_share_of_the_time(
    deployed: tuple[ReadingStore, ModelVersion], trained: TrainedModel
) -> None:
    # GIVEN a model with a long backlog checked before one with a little traffic
    store, version = deployed
    other = deploy(store, trained, name="other")
    capture(store, version, 2_000, at=NOW - timedelta(hours=3), per_object=100)
    capture(store, other, 200, at=NOW - timedelta(hours=1), per_object=100)
    limits = DriftLimits(settle_seconds=10, chunk_objects=4, read_threads=1)
    # WHEN the run has time for ten object reads
    result = run(store, [version, other], limits=limits, deadline=store.clock.now + 10, clock=store.clock)
    # THEN the backlog advanced by its share and the other model was still checked
    assert {m.model: (m.status, m.captures_read) for m in result.models} == {
        "churn": ("behind", 8),
        "other": ("scored", 2),
    }


def write_capture(
    store: InMemoryObjectStore, version: ModelVersion, at: datetime, batch_id: str, rows: int = 50
) -> str:
    model = load_model(version, store)
    batch = records(churn_features(rows, seed=len(batch_id) + rows))
    buffer = CaptureBuffer(store, BUCKET, clock=lambda: at.timestamp(), batch_id=lambda: batch_id)
    buffer.add("churn", version.version, CONTRACT.feature_names, batch, model.predict(batch), sample_rate=1.0)
    [flushed] = buffer.flush()
    assert flushed.key == capture_key("churn", at, batch_id)
    return flushed.key


def test_drift_reads_a_capture_landing_late_inside_the_look_back_and_counts_one_beyond_it(
    deployed: tuple[ReadingStore, ModelVersion],
) -> None:
    store, version = deployed
    limits = DriftLimits(settle_seconds=10, lookback_seconds=600)
    # GIVEN a run that read captures up to NOW - 1 min
    write_capture(store, version, NOW - timedelta(minutes=30), "a", rows=100)
    marker = write_capture(store, version, NOW - timedelta(minutes=1), "b", rows=100)
    [first] = run(store, [version], limits=limits).models
    assert first.status == "scored"
    # WHEN two objects land afterwards with earlier flush times: one 5 min below the marker (inside
    # the 10 min look-back), one 15 min below it (beyond the look-back)
    inside = write_capture(store, version, NOW - timedelta(minutes=6), "late-inside", rows=150)
    beyond = write_capture(store, version, NOW - timedelta(minutes=16), "late-beyond", rows=150)
    assert inside < marker
    assert beyond < marker
    metrics = RecordingMetrics()
    [second] = run(store, [version], now=NOW + timedelta(hours=1), limits=limits, metrics=metrics).models
    # THEN the one inside is read, the one beyond is counted (metric and result), not read
    assert inside in store.reads
    assert beyond not in store.reads
    assert second.late_captures == 1
    assert metrics.of("CapturesLate") == [1.0]
    [result] = second.results
    assert (result.window.rows, result.window.late_captures, result.window.late_captures_read) == (150, 1, 1)
    # and neither is counted or read again by the run after
    again = RecordingMetrics()
    [third] = run(store, [version], now=NOW + timedelta(hours=2), limits=limits, metrics=again).models
    assert (third.captures_read, third.late_captures) == (0, 0)
    assert again.of("CapturesLate") == [0.0]
    assert sorted(store.reads) == sorted(set(store.reads))


def test_drift_reads_the_earlier_state_and_row_per_line_captures(deployed: tuple[ReadingStore, ModelVersion]) -> None:
    # GIVEN the earlier state (a last key only) and earlier JSONL capture objects on both sides of it
    store, version = deployed
    model = load_model(version, store)
    batch = records(churn_features(300, seed=9))

    def jsonl(at: datetime, name: str) -> str:
        key = f"captures/churn/{at:%Y/%m/%d/%H}/{at:%Y%m%dT%H%M%S}-{name}.jsonl"
        lines = [
            json.dumps({"at": at.isoformat(), "version": 3, "input": record, "output": answer})
            for record, answer in zip(batch, model.predict(batch), strict=True)
        ]
        store.put_bytes(BUCKET, key, "\n".join(lines).encode())
        return key

    done = jsonl(NOW - timedelta(hours=2), "old")
    store.put_bytes(BUCKET, state_key("churn"), json.dumps({"last_key": done, "updated_at": NOW.isoformat()}).encode())
    new = jsonl(NOW - timedelta(hours=1), "new")
    # WHEN the run comes THEN it continues after the earlier marker and reads the earlier format
    [run_model] = run(store, [version]).models
    assert store.reads == [new]
    assert run_model.status == "scored"
    assert run_model.results[-1].window.rows == 300


def test_drift_window_of_only_rejections_reports_data_quality(deployed: tuple[ReadingStore, ModelVersion]) -> None:
    store, version = deployed
    data, _ = encode_batch(CaptureBatch([], [], [], {}, {}, rejected=[Rejected("plan", "unseen_category", 40)]))
    store.put_bytes(BUCKET, capture_key("churn", NOW - timedelta(hours=1), "r"), data)
    [model] = run(store, [version]).models
    [result] = model.results
    assert result.status is DriftStatus.INSUFFICIENT_DATA
    assert result.data_quality.requests_rejected == 40


class FailingOnce:
    def __init__(self) -> None:
        self.failed = False

    def __call__(self, *args: object, **kwargs: object) -> DriftResult:
        if not self.failed:
            self.failed = True
            raise RuntimeError("judging failed")
        return evaluate(*args, **kwargs)  # type: ignore[arg-type]


def test_drift_window_read_but_not_judged_is_judged_by_the_next_run(
    deployed: tuple[ReadingStore, ModelVersion], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run that read the whole window and failed while judging it
    store, version = deployed
    capture(store, version, 600, at=NOW - timedelta(hours=1))
    monkeypatch.setattr(monitor, "evaluate", FailingOnce())
    [failed] = run(store, [version]).models
    assert failed.status == "failed"
    # WHEN the next run finds no new capture THEN it still judges the window it holds, without re-reading
    [model] = run(store, [version], now=NOW + timedelta(hours=1)).models
    assert (model.status, model.captures_read) == ("scored", 0)
    assert model.results[-1].window.rows == 600
    assert len(store.reads) == 2
