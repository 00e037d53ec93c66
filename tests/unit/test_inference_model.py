"""ModelCache and LoadedModel: integrity before loading, refresh of the production pointer,
predictions in the documented shape."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from mlops.captures import Rejected, decode_batch
from mlops.contract import Contract, parse_contract
from mlops.errors import (
    RECORD_FIELD,
    IntegrityError,
    ModelNotFoundError,
    ModelUnavailableError,
    PredictionError,
    RecordError,
)
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import LoadedModel, ModelCache, load_model
from mlops.inference.prediction_ids import is_prediction_id, new_prediction_ids
from mlops.inference.service import PredictionService
from mlops.registry.records import Artifact, ModelVersion, VersionStatus
from mlops.training import TrainedModel, onnx_input_feed, train_model
from mlops.training.onnx_io import OUTPUT_VALUE
from mlops_local.sample_data import churn_dataset, records
from tests.support.fakes import InMemoryObjectStore

BUCKET = "artifacts"
CONTRACT = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(churn_dataset(1_000), CONTRACT)


def version_of(data: bytes, version: int, contract: Contract = CONTRACT, sha256: str | None = None) -> ModelVersion:
    digest = sha256 or hashlib.sha256(data).hexdigest()
    return ModelVersion(
        model_name=contract.name,
        version=version,
        status=VersionStatus.PRODUCTION,
        metric_name="roc_auc",
        metrics={"roc_auc": 0.8},
        artifact=Artifact(
            bucket=BUCKET,
            key=f"models/{contract.name}/{digest}.onnx",
            sha256=digest,
            size_bytes=len(data),
            baseline_key=f"baselines/{contract.name}/{digest}.json",
        ),
        contract=contract.model_dump(mode="json"),
        lineage={},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


class FakeRegistry:
    def __init__(self) -> None:
        self.versions: dict[str, ModelVersion | None] = {}
        self.lookups = 0
        self.failing = False

    def production(self, name: str) -> ModelVersion | None:
        self.lookups += 1
        if self.failing:
            raise ConnectionError("registry unreachable")
        if name not in self.versions:
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        return self.versions[name]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def publish(store: InMemoryObjectStore, registry: FakeRegistry, data: bytes, version: int) -> ModelVersion:
    model_version = version_of(data, version)
    store.put_bytes(BUCKET, model_version.artifact.key, data)
    registry.versions[CONTRACT.name] = model_version
    return model_version


def test_load_model_predicts_like_the_training_pipeline(trained: TrainedModel) -> None:
    store = InMemoryObjectStore()
    model = load_model(publish(store, FakeRegistry(), trained.onnx_bytes, 1), store)
    rows = records(trained.holdout[CONTRACT.feature_names].head(50))
    predictions = model.predict(rows)
    expected = trained.pipeline.predict_proba(trained.holdout[CONTRACT.feature_names].head(50))
    classes = list(trained.pipeline.classes_)
    got = np.array([[p["probabilities"][c] for c in classes] for p in predictions])
    assert np.abs(got - expected).max() < 1e-5
    assert set(predictions[0]) == {"label", "probabilities"}
    assert [p["label"] for p in predictions] == list(
        trained.pipeline.predict(trained.holdout[CONTRACT.feature_names].head(50))
    )


def test_loaded_model_feed_matches_training_convention(trained: TrainedModel) -> None:
    store = InMemoryObjectStore()
    model = load_model(publish(store, FakeRegistry(), trained.onnx_bytes, 1), store)
    rows = records(trained.holdout[CONTRACT.feature_names].head(20))
    ours = model.feed(model.validator.validate(rows))
    theirs = onnx_input_feed(rows, CONTRACT)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype
        assert ours[name].shape == theirs[name].shape
        if ours[name].dtype == object:
            assert ours[name].tolist() == theirs[name].tolist()
        else:
            np.testing.assert_array_equal(ours[name], theirs[name])


def test_loaded_model_answers_each_batch_alone_whatever_ran_before_or_beside_it(trained: TrainedModel) -> None:
    # GIVEN one loaded model and batches of different sizes, each with its answer from a fresh model
    store = InMemoryObjectStore()
    version = publish(store, FakeRegistry(), trained.onnx_bytes, 1)
    model = load_model(version, store)
    holdout = records(trained.holdout[CONTRACT.feature_names].head(40))
    batches = [holdout[i : i + size] for i, size in ((0, 1), (1, 1), (2, 5), (7, 5), (12, 1), (13, 27))]
    alone = [load_model(version, store).predict(batch) for batch in batches]
    # WHEN the same model answers them one after another, and then from 4 threads at once
    in_turn = [model.predict(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda i: model.predict(batches[i % len(batches)]), range(400)))
    # THEN every answer is the batch's own
    assert in_turn == alone
    assert concurrent == [alone[i % len(batches)] for i in range(400)]


def test_model_cache_refuses_tampered_artifact(trained: TrainedModel) -> None:
    # GIVEN an artifact whose bytes were changed after registration
    store, registry = InMemoryObjectStore(), FakeRegistry()
    registered = publish(store, registry, trained.onnx_bytes, 1)
    store.put_bytes(BUCKET, registered.artifact.key, trained.onnx_bytes.replace(b"mlops", b"mlopz"))
    loads: list[int] = []

    def loader(version: ModelVersion) -> LoadedModel:
        loads.append(version.version)
        return load_model(version, store)

    cache = ModelCache(registry, store, loader=loader)
    # WHEN it is requested THEN IntegrityError (503) and nothing is cached
    with pytest.raises(IntegrityError) as raised:
        cache.get("churn")
    assert raised.value.http_status == 503
    assert cache.loaded_versions() == []
    with pytest.raises(IntegrityError):
        cache.get("churn")  # still refused on the next request, never served


def test_verify_happens_before_onnxruntime_sees_the_bytes(
    trained: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlops.inference.model as model_module

    def explode(*_: object, **__: object) -> None:
        raise AssertionError("InferenceSession created for unverified bytes")

    store, registry = InMemoryObjectStore(), FakeRegistry()
    registered = publish(store, registry, trained.onnx_bytes, 1)
    store.put_bytes(BUCKET, registered.artifact.key, b"garbage")
    monkeypatch.setattr(model_module.ort, "InferenceSession", explode)
    with pytest.raises(IntegrityError):
        load_model(registered, store)


def test_model_cache_missing_artifact_is_integrity_error(trained: TrainedModel) -> None:
    store, registry = InMemoryObjectStore(), FakeRegistry()
    registry.versions["churn"] = version_of(trained.onnx_bytes, 1)
    with pytest.raises(IntegrityError, match="missing"):
        ModelCache(registry, store).get("churn")


def test_model_cache_loads_once_and_picks_up_new_production_after_refresh(trained: TrainedModel) -> None:
    store, registry, clock = InMemoryObjectStore(), FakeRegistry(), FakeClock()
    publish(store, registry, trained.onnx_bytes, 1)
    cache = ModelCache(registry, store, refresh_seconds=30, clock=clock)
    first = cache.get("churn")
    assert first.version == 1
    assert cache.get("churn") is first
    assert registry.lookups == 1  # warm requests never touch the registry

    # GIVEN a new production version (a promotion, or a rollback)
    publish(store, registry, trained.onnx_bytes + b"", 2)
    clock.now += 29
    assert cache.get("churn").version == 1  # still trusted within the interval
    clock.now += 1
    assert cache.get("churn").version == 2
    assert cache.loaded_versions() == [("churn", 1), ("churn", 2)]

    # a rollback to v1 is served from memory, without loading again
    registry.versions["churn"] = version_of(trained.onnx_bytes, 1)
    clock.now += 30
    assert cache.get("churn") is first


def test_model_cache_serves_cached_version_only_within_the_stale_limit(trained: TrainedModel) -> None:
    # GIVEN a container serving v1, confirmed by the registry at t0, and the default stale limit
    store, registry, clock = InMemoryObjectStore(), FakeRegistry(), FakeClock()
    publish(store, registry, trained.onnx_bytes, 1)
    cache = ModelCache(registry, store, refresh_seconds=30, clock=clock)
    first = cache.get("churn")
    confirmed_at = clock.now
    assert cache.stale_seconds == 300
    # WHEN the registry becomes unreachable
    registry.failing = True
    clock.now = confirmed_at + 60
    assert cache.get("churn") is first  # a short outage: keep serving what this container verified
    clock.now = confirmed_at + 299
    assert cache.get("churn") is first
    # THEN past the limit the container refuses to serve a version it cannot confirm (it may have
    # been rolled back for a reason), with a 503 that says why
    clock.now = confirmed_at + 330
    with pytest.raises(ModelUnavailableError) as raised:
        cache.get("churn")
    assert raised.value.http_status == 503
    assert str(raised.value) == (
        "cannot confirm the production version of model 'churn': the registry has been unreachable "
        "for 330 s (limit 300 s)"
    )
    lookups = registry.lookups
    with pytest.raises(ModelUnavailableError):
        cache.get("churn")  # refused from memory: the registry is asked at most every refresh_seconds
    assert registry.lookups == lookups
    events = cache.drain_events()
    assert [(e.model, e.serving_version, e.refused) for e in events] == [
        ("churn", 1, False),
        ("churn", 1, False),
        ("churn", None, True),
    ]
    assert [round(e.unconfirmed_seconds) for e in events] == [60, 299, 330]
    # WHEN the registry answers again THEN v1 is served from memory, without loading it again
    registry.failing = False
    clock.now += 30
    assert cache.get("churn") is first
    assert cache.drain_events() == []


def test_model_cache_registry_unreachable_without_a_cached_version_is_503() -> None:
    registry = FakeRegistry()
    registry.failing = True
    with pytest.raises(ModelUnavailableError, match=r"^the registry is unreachable; cannot find the production"):
        ModelCache(registry, InMemoryObjectStore()).get("churn")


def publish_broken(store: InMemoryObjectStore, registry: FakeRegistry, data: bytes, version: int) -> ModelVersion:
    """Register `version` with a digest its stored bytes do not have (a corrupt or swapped artifact)."""
    model_version = version_of(data, version, sha256=hashlib.sha256(b"another artifact %d" % version).hexdigest())
    store.put_bytes(BUCKET, model_version.artifact.key, data)
    registry.versions[CONTRACT.name] = model_version
    return model_version


class CountingLoader:
    """Loads through `load_model` and records (clock time, version) of every attempt."""

    def __init__(self, store: InMemoryObjectStore, clock: FakeClock) -> None:
        self.store, self.clock = store, clock
        self.attempts: list[tuple[float, int]] = []

    def __call__(self, version: ModelVersion) -> LoadedModel:
        self.attempts.append((self.clock.now, version.version))
        return load_model(version, self.store)

    def versions(self) -> list[int]:
        return [version for _, version in self.attempts]


def test_model_cache_keeps_serving_last_good_version_when_the_new_one_fails_to_load(trained: TrainedModel) -> None:
    # GIVEN a container serving v1
    store, registry, clock = InMemoryObjectStore(), FakeRegistry(), FakeClock()
    loader = CountingLoader(store, clock)
    publish(store, registry, trained.onnx_bytes, 1)
    cache = ModelCache(registry, store, refresh_seconds=0, clock=clock, loader=loader)
    first = cache.get("churn")
    # WHEN v2 is promoted but its artifact does not match its digest
    publish_broken(store, registry, trained.onnx_bytes, 2)
    # THEN every request keeps getting v1, and v2 is not downloaded again on each of them
    for _ in range(4):
        clock.now += 1
        assert cache.get("churn") is first
    assert loader.versions() == [1, 2]
    [failure] = cache.drain_events()
    assert (failure.model, failure.version, failure.serving_version, failure.failures) == ("churn", 2, 1, 1)
    assert failure.error.startswith("IntegrityError: artifact of churn v2 ")
    assert failure.retry_in_seconds == 5
    assert cache.loaded_versions() == [("churn", 1)]


def test_model_cache_retries_a_failed_load_with_bounded_exponential_backoff(trained: TrainedModel) -> None:
    store, registry, clock = InMemoryObjectStore(), FakeRegistry(), FakeClock()
    loader = CountingLoader(store, clock)
    publish(store, registry, trained.onnx_bytes, 1)
    cache = ModelCache(
        registry, store, refresh_seconds=0, clock=clock, loader=loader, load_retry_seconds=5, load_retry_max_seconds=40
    )
    cache.get("churn")
    start = clock.now
    publish_broken(store, registry, trained.onnx_bytes, 2)
    for _ in range(200):  # a request every second
        assert cache.get("churn").version == 1
        clock.now += 1
    assert [at - start for at, version in loader.attempts if version == 2] == [0, 5, 15, 35, 75, 115, 155, 195]
    failures = cache.drain_events()
    assert [f.failures for f in failures] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [f.retry_in_seconds for f in failures] == [5, 10, 20, 40, 40, 40, 40, 40]


def test_model_cache_loads_a_repaired_artifact_after_the_backoff(trained: TrainedModel) -> None:
    store, registry, clock = InMemoryObjectStore(), FakeRegistry(), FakeClock()
    publish(store, registry, trained.onnx_bytes, 1)
    cache = ModelCache(registry, store, refresh_seconds=0, clock=clock)
    cache.get("churn")
    broken = publish_broken(store, registry, trained.onnx_bytes, 2)
    assert cache.get("churn").version == 1
    # GIVEN the artifact is repaired (the bytes the digest names are uploaded)
    repaired = version_of(trained.onnx_bytes, 2)
    store.put_bytes(BUCKET, broken.artifact.key, b"")
    store.put_bytes(BUCKET, repaired.artifact.key, trained.onnx_bytes)
    registry.versions["churn"] = repaired
    clock.now += 5
    assert cache.get("churn").version == 2


def test_model_cache_loads_another_production_version_at_once_after_a_failure(trained: TrainedModel) -> None:
    store, registry, clock = InMemoryObjectStore(), FakeRegistry(), FakeClock()
    loader = CountingLoader(store, clock)
    publish(store, registry, trained.onnx_bytes, 1)
    cache = ModelCache(registry, store, refresh_seconds=0, clock=clock, loader=loader)
    first = cache.get("churn")
    publish_broken(store, registry, trained.onnx_bytes, 2)
    assert cache.get("churn") is first
    # WHEN production moves on to v3 (a good artifact) within v2's backoff THEN v3 is loaded at once
    clock.now += 1
    publish(store, registry, trained.onnx_bytes, 3)
    assert cache.get("churn").version == 3
    # and a rollback to v1 serves v1 from memory
    registry.versions["churn"] = version_of(trained.onnx_bytes, 1)
    assert cache.get("churn") is first
    assert loader.versions() == [1, 2, 3]


def test_model_cache_without_a_good_version_answers_503_and_backs_off(trained: TrainedModel) -> None:
    # GIVEN a fresh container and a production artifact that does not match its digest
    store, registry, clock = InMemoryObjectStore(), FakeRegistry(), FakeClock()
    loader = CountingLoader(store, clock)
    publish_broken(store, registry, trained.onnx_bytes, 1)
    cache = ModelCache(registry, store, refresh_seconds=0, clock=clock, loader=loader)
    messages = set()
    for _ in range(10):  # a request every second
        with pytest.raises(IntegrityError) as raised:
            cache.get("churn")
        assert raised.value.http_status == 503
        messages.add(str(raised.value))
        clock.now += 1
    # THEN the artifact is downloaded once per backoff step, not on every request
    assert loader.versions() == [1, 1]
    assert len(messages) == 1
    assert cache.loaded_versions() == []


class UnreachableObjectStore(InMemoryObjectStore):
    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        if key.endswith(".onnx") and self.failing:
            raise ConnectionError("S3 unreachable")
        return super().get_bytes(bucket, key, version_id)

    failing = False


def test_model_cache_artifact_store_error_serves_last_good_or_answers_503(trained: TrainedModel) -> None:
    store, registry, clock = UnreachableObjectStore(), FakeRegistry(), FakeClock()
    publish(store, registry, trained.onnx_bytes, 1)
    cache = ModelCache(registry, store, refresh_seconds=0, clock=clock)
    first = cache.get("churn")
    store.failing = True
    publish(store, registry, trained.onnx_bytes, 2)
    assert cache.get("churn") is first
    [failure] = cache.drain_events()
    assert (failure.version, failure.serving_version, failure.error) == (2, 1, "ConnectionError: S3 unreachable")

    # a fresh container has nothing to fall back on: 503 naming the model and version, not a 500
    cold = ModelCache(registry, store, refresh_seconds=0, clock=clock)
    with pytest.raises(ModelUnavailableError) as raised:
        cold.get("churn")
    assert raised.value.http_status == 503
    assert str(raised.value) == "model 'churn' v2 cannot be loaded (ConnectionError); the function retries with backoff"


@pytest.mark.parametrize(
    ("registered", "message"),
    [
        ({}, "no model named 'churn'"),
        ({"churn": None}, "model 'churn' has no production version"),
    ],
)
def test_model_cache_not_found_says_the_same_on_every_request(
    registered: dict[str, ModelVersion | None], message: str
) -> None:
    registry, clock = FakeRegistry(), FakeClock()
    registry.versions.update(registered)
    cache = ModelCache(registry, InMemoryObjectStore(), refresh_seconds=30, clock=clock)
    seen = []
    for step in (0, 1, 29, 2):  # from the registry, from memory, and again from the registry
        clock.now += step
        with pytest.raises(ModelNotFoundError) as raised:
            cache.get("churn")
        seen.append(str(raised.value))
    assert seen == [message] * 4
    assert registry.lookups == 2


@pytest.mark.parametrize("name", ["unknown", "Not-A-Valid-Name", "../etc"])
def test_model_cache_unknown_model_is_not_found_and_cached(trained: TrainedModel, name: str) -> None:
    store, registry = InMemoryObjectStore(), FakeRegistry()
    cache = ModelCache(registry, store, refresh_seconds=30, clock=FakeClock())
    for _ in range(3):
        with pytest.raises(ModelNotFoundError) as raised:
            cache.get(name)
        assert raised.value.http_status == 404
    assert registry.lookups <= 1


def test_model_cache_no_production_version_is_not_found() -> None:
    registry = FakeRegistry()
    registry.versions["churn"] = None
    with pytest.raises(ModelNotFoundError, match="no production version"):
        ModelCache(registry, InMemoryObjectStore()).get("churn")


def test_model_cache_evicts_old_versions(trained: TrainedModel) -> None:
    store, registry, clock = InMemoryObjectStore(), FakeRegistry(), FakeClock()
    cache = ModelCache(registry, store, refresh_seconds=0, clock=clock, versions_per_model=2)
    for version in (1, 2, 3):
        publish(store, registry, trained.onnx_bytes, version)
        cache.get("churn")
    assert cache.loaded_versions() == [("churn", 2), ("churn", 3)]


def test_prediction_service_answers_and_captures(trained: TrainedModel) -> None:
    store, registry = InMemoryObjectStore(), FakeRegistry()
    publish(store, registry, trained.onnx_bytes, 7)
    capture = CaptureBuffer(store, BUCKET, max_records=2)
    service = PredictionService(ModelCache(registry, store), capture)
    rows = records(trained.holdout[CONTRACT.feature_names].head(3))
    answer = service.predict("churn", json.dumps({"records": rows}))
    assert answer["model"] == "churn"
    assert answer["version"] == 7
    assert len(answer["predictions"]) == 3
    probabilities = answer["predictions"][0]["probabilities"]
    assert set(probabilities) == {"no", "yes"}
    assert abs(sum(probabilities.values()) - 1) < 1e-5
    flushed = service.after_request()
    assert [(r.model, r.records) for r in flushed] == [("churn", 3)]
    # every answer carries its own prediction id, and the capture keeps it with the version
    ids = [prediction["prediction_id"] for prediction in answer["predictions"]]
    assert len(set(ids)) == 3
    assert all(is_prediction_id(i) for i in ids)
    [key] = [key for _, key in store.objects if key.startswith("captures/churn/")]
    captured = decode_batch(store.get_bytes(BUCKET, key))
    assert (captured.prediction_ids, captured.versions) == (ids, [7, 7, 7])
    with pytest.raises(RecordError, match=r"records\[0\]\.plan"):
        service.predict("churn", json.dumps([rows[0] | {"plan": "gold"}]))


def test_prediction_ids_are_unique_across_requests_and_time_ordered(trained: TrainedModel) -> None:
    store, registry = InMemoryObjectStore(), FakeRegistry()
    publish(store, registry, trained.onnx_bytes, 1)
    service = PredictionService(ModelCache(registry, store))
    body = json.dumps(records(trained.holdout[CONTRACT.feature_names].head(50)))
    ids = [p["prediction_id"] for _ in range(40) for p in service.predict("churn", body)["predictions"]]
    assert len(set(ids)) == len(ids) == 2_000
    assert ids[:50] == sorted(ids[:50])  # within a request: record order
    assert new_prediction_ids(2, clock=lambda: 1.5) < new_prediction_ids(2, clock=lambda: 2.0)
    assert new_prediction_ids(2, clock=lambda: 1_700_000_000.5, random_bytes=lambda n: b"\xab" * n) == [
        "6553f100" + "ab" * 10 + "0000",
        "6553f100" + "ab" * 10 + "0001",
    ]
    # past the precomputed suffixes the ids stay distinct
    assert len(set(new_prediction_ids(70_000))) == 70_000


def test_prediction_service_counts_refused_records_per_field_and_reason(trained: TrainedModel) -> None:
    # GIVEN a request whose records break the contract in different ways
    store, registry = InMemoryObjectStore(), FakeRegistry()
    publish(store, registry, trained.onnx_bytes, 4)
    capture = CaptureBuffer(store, BUCKET, max_records=100, max_age_seconds=0)
    service = PredictionService(ModelCache(registry, store), capture)
    good = records(trained.holdout[CONTRACT.feature_names].head(1))[0]
    missing = {k: v for k, v in good.items() if k != "tenure_months"}
    batch = [
        good,
        good | {"plan": "gold"},
        good | {"plan": "platinum"},
        good | {"tenure_months": 10_000},
        good | {"monthly_charges": "cheap"},
        missing,
        good | {"autopay": None},
        "not a record",
        good | {"tenure_months": float("inf")},
    ]
    with pytest.raises(RecordError):
        service.predict("churn", json.dumps(batch))
    # WHEN the buffer is flushed
    [flushed] = service.after_request()
    # THEN each refused record is counted under its field and reason, the good one is not, and no
    # value of any record is written
    assert (flushed.records, flushed.rejected) == (0, 8)
    data = store.get_bytes(BUCKET, str(flushed.key))
    assert decode_batch(data).rejected == [
        Rejected(RECORD_FIELD, "wrong_type", 1),
        Rejected("autopay", "missing", 1),
        Rejected("monthly_charges", "wrong_type", 1),
        Rejected("plan", "unseen_category", 2),
        Rejected("tenure_months", "missing", 1),
        Rejected("tenure_months", "out_of_range", 2),
    ]
    assert b"gold" not in data
    assert b"cheap" not in data


SQUARE_CONTRACT = parse_contract(
    {
        **json.loads(CONTRACT.canonical_json()),
        "name": "square",
        "problem_type": "regression",
        "target": {"name": "y"},
        "features": [{"name": "x", "type": "numeric"}],
        "estimator": {"name": "ridge", "params": {}},
        "metric": {"name": "r2", "at_least": 0.5},
    }
)


def square_graph(elem_type: int = TensorProto.FLOAT) -> bytes:
    """A regression graph answering x * x: finite input, overflowing answer for |x| > 1.9e19."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "x"], [OUTPUT_VALUE])],
        "square",
        [helper.make_tensor_value_info("x", elem_type, [None, 1])],
        [helper.make_tensor_value_info(OUTPUT_VALUE, elem_type, [None, 1])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def square_service(elem_type: int = TensorProto.FLOAT) -> tuple[PredictionService, CaptureBuffer]:
    store, registry = InMemoryObjectStore(), FakeRegistry()
    data = square_graph(elem_type)
    version = version_of(data, 1, SQUARE_CONTRACT)
    store.put_bytes(BUCKET, version.artifact.key, data)
    registry.versions["square"] = version
    capture = CaptureBuffer(store, BUCKET, max_records=100)
    return PredictionService(ModelCache(registry, store), capture), capture


def test_prediction_service_rejects_input_the_float32_graph_would_feed_as_inf() -> None:
    service, capture = square_service()
    with pytest.raises(RecordError, match=r"^records\[1\]\.x: 1e\+39 is outside the float32 range the model takes$"):
        service.predict("square", json.dumps([{"x": 2.0}, {"x": 1e39}]))
    assert len(capture) == 0


def test_prediction_service_non_finite_answer_is_prediction_error_not_an_answer() -> None:
    service, capture = square_service()
    [answer] = service.predict("square", '[{"x": 3.0}]')["predictions"]
    assert answer["value"] == 9.0
    assert set(answer) == {"value", "prediction_id"}
    # GIVEN a valid float32 input whose square overflows float32
    with pytest.raises(PredictionError) as raised:
        service.predict("square", json.dumps([{"x": 2.0}, {"x": 2e19}]))
    assert str(raised.value) == "the model produced a non-finite value for records[1]"
    assert 400 <= raised.value.http_status < 500
    # THEN nothing of the failed request is captured: the buffer still serialises
    assert len(capture) == 1
    assert [(r.records, r.error) for r in service.shutdown()] == [(1, None)]


def test_prediction_service_accepts_float64_range_for_a_double_graph() -> None:
    service, _ = square_service(TensorProto.DOUBLE)
    [answer] = service.predict("square", '[{"x": 1e39}]')["predictions"]
    assert answer["value"] == pytest.approx(1e78)
    with pytest.raises(PredictionError, match=r"records\[0\]"):
        service.predict("square", '[{"x": 1e300}]')


class NonFiniteProbabilities:
    """Stands in for an onnxruntime session whose classifier answers NaN for the second record."""

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(next(iter(feed.values())))
        probabilities = np.full((rows, 2), 0.5, dtype=np.float32)
        probabilities[1, :] = np.nan
        return [np.array(["no"] * rows, dtype=object), probabilities]


def test_loaded_model_non_finite_probability_is_prediction_error(trained: TrainedModel) -> None:
    store = InMemoryObjectStore()
    model = load_model(publish(store, FakeRegistry(), trained.onnx_bytes, 1), store)
    broken = dataclasses.replace(model, session=NonFiniteProbabilities())  # type: ignore[arg-type]
    rows = records(trained.holdout[CONTRACT.feature_names].head(3))
    with pytest.raises(PredictionError, match=r"records\[1\]$"):
        broken.predict(rows)
