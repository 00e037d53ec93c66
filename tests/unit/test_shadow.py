"""Shadow scoring (issue 13 item 3): production's real capture objects scored by a shadow version,
agreement statistics accumulated across runs, restarted for a new pair, and shown by compare."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from mlops.errors import IntegrityError
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import ModelCache, load_model
from mlops.inference.service import PredictionService
from mlops.registry.service import shadow_view
from mlops.shadow import read_agreement, score_shadow, score_shadows, shadow_state_key
from mlops.training import TrainedModel, train_model
from mlops_local.sample_data import churn_dataset, records
from tests.support.batch_fakes import RecordingMetrics
from tests.support.fakes import InMemoryObjectStore
from tests.unit.test_inference_model import BUCKET, CONTRACT, FakeRegistry, publish, version_of


@pytest.fixture(scope="module")
def models() -> tuple[TrainedModel, TrainedModel]:
    # the same data, one trained on labels half flipped: a challenger that disagrees often
    return train_model(churn_dataset(1_000), CONTRACT), train_model(churn_dataset(1_000, label_noise=0.45), CONTRACT)


def _serve(store: InMemoryObjectStore, champion: TrainedModel, rows: int, seed: int) -> list[dict]:
    """Predictions of production v1 through the service, flushed as capture objects."""
    registry = FakeRegistry()
    publish(store, registry, champion.onnx_bytes, 1)
    service = PredictionService(ModelCache(registry, store), CaptureBuffer(store, BUCKET, max_records=50))
    body = records(churn_dataset(rows, seed=seed).drop(columns=["churned"]))
    answers = []
    for start in range(0, rows, 25):
        answers += service.predict("churn", json.dumps(body[start : start + 25]))["predictions"]
        service.after_request()  # flushes every 50 records
    service.shutdown()
    return answers


def test_shadow_scores_captures_accumulates_and_restarts_for_a_new_pair(
    models: tuple[TrainedModel, TrainedModel],
) -> None:
    champion, challenger = models
    store = InMemoryObjectStore()
    shadow_version = version_of(challenger.onnx_bytes, 2).model_copy(
        update={
            "artifact": version_of(challenger.onnx_bytes, 2).artifact.model_copy(update={"key": "models/churn/v2.onnx"})
        }
    )
    store.put_bytes(BUCKET, shadow_version.artifact.key, challenger.onnx_bytes)
    loads = []

    def load():
        loads.append(1)
        return load_model(shadow_version, store)

    # GIVEN production answered 200 requests, captured in 4 objects
    answered = _serve(store, champion, 200, seed=3)
    first = score_shadow("churn", 1, 2, store=store, bucket=BUCKET, load=load)
    assert (first.rows, first.objects, first.unscored) == (200, 4, 0)

    # THEN agreement is what the two models say on the same rows
    shadow_model = load_model(shadow_version, store)
    again = shadow_model.predict(records(churn_dataset(200, seed=3).drop(columns=["churned"])))
    agree = sum(a["label"] == b["label"] for a, b in zip(answered, again, strict=True)) / 200
    biggest = max(
        max(abs(a["probabilities"][c] - b["probabilities"][c]) for c in ("no", "yes"))
        for a, b in zip(answered, again, strict=True)
    )
    assert first.summary["label_agreement"] == pytest.approx(agree)
    assert first.summary["max_probability_difference"] == pytest.approx(biggest, abs=1e-6)
    assert 0 < first.summary["mean_probability_difference"] <= biggest  # type: ignore[operator]

    # a run with nothing new loads nothing and keeps the statistics; new captures add to them
    assert score_shadow("churn", 1, 2, store=store, bucket=BUCKET, load=load).rows == 200
    assert len(loads) == 1
    _serve(store, champion, 100, seed=4)
    assert score_shadow("churn", 1, 2, store=store, bucket=BUCKET, load=load).rows == 300

    # compare shows the statistics for that pair (either order), and nothing for another pair
    view = shadow_view(store, BUCKET, "churn", 2, 1)
    assert view is not None
    assert (view.rows, view.statistics["label_agreement"]) == (
        300,
        read_agreement(store, BUCKET, "churn").summary["label_agreement"],
    )  # type: ignore[union-attr]
    assert shadow_view(store, BUCKET, "churn", 1, 3) is None

    # a new shadow version restarts the statistics (they describe one pair)
    restarted = score_shadow("churn", 1, 3, store=store, bucket=BUCKET, load=load)
    assert (restarted.shadow_version, restarted.rows) == (3, 300)
    assert json.loads(store.get_bytes(BUCKET, shadow_state_key("churn")))["shadow_version"] == 3


def test_a_failing_shadow_is_counted_and_the_next_model_is_still_scored(
    models: tuple[TrainedModel, TrainedModel],
) -> None:
    # GIVEN churn has captures but its shadow cannot be loaded, and "quiet" has a shadow too
    champion, _ = models
    store = InMemoryObjectStore()
    _serve(store, champion, 50, seed=3)
    metrics = RecordingMetrics()

    def load(name: str, version: int):
        raise IntegrityError(f"artifact of {name} v{version} is missing")

    shadowed = [
        SimpleNamespace(name="churn", production_version=1, shadow_version=2),
        SimpleNamespace(name="plain", production_version=1, shadow_version=None),
        SimpleNamespace(name="quiet", production_version=1, shadow_version=2),
    ]
    # WHEN one run scores them all
    run = score_shadows(shadowed, store=store, bucket=BUCKET, load=load, metrics=metrics)
    # THEN churn's failure is counted with its model and "quiet" is still scored
    assert run.failed == ["churn"]
    assert [name for name, _ in run.scored] == ["quiet"]
    assert metrics.points == [("ShadowFailures", 1, {"model": "churn"})]
