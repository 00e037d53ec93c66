"""The live-quality sketch against scikit-learn's metrics on the same rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skmetrics

from mlops.contract import parse_contract
from mlops.profile import profile_categorical, profile_numeric
from mlops.quality.sketch import AUC_BINS, LabelledRows, QualitySketch, label_drift

FEATURES = [{"name": "x", "type": "numeric"}]


def classification_contract(classes: list[str]):
    return parse_contract(
        {
            "name": "m",
            "problem_type": "classification",
            "target": {"name": "y", "classes": classes},
            "features": FEATURES,
            "estimator": {"name": "logistic_regression"},
            "metric": {"name": "accuracy"},
        }
    )


REGRESSION = parse_contract(
    {
        "name": "r",
        "problem_type": "regression",
        "target": {"name": "y"},
        "features": FEATURES,
        "estimator": {"name": "ridge"},
        "metric": {"name": "rmse"},
    }
)


def classified_rows(classes: list[str], rows: int, seed: int) -> tuple[LabelledRows, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(classes), rows)
    logits = rng.normal(size=(rows, len(classes)))
    logits[np.arange(rows), truth] += 1.0  # an informative, imperfect model
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    outputs: dict[str, list[object]] = {"label": [classes[p] for p in predicted]}
    for column, name in enumerate(classes):
        outputs[f"probability:{name}"] = probabilities[:, column].tolist()
    return LabelledRows([classes[t] for t in truth], outputs), truth, probabilities


@pytest.mark.parametrize("classes", [["no", "yes"], ["a", "b", "c"]])
def test_quality_sketch_matches_sklearn_classification_metrics(classes: list[str]) -> None:
    # GIVEN 20k labelled rows added in four chunks, two of them through a JSON round trip and merge
    contract = classification_contract(classes)
    rows, truth, probabilities = classified_rows(classes, 20_000, seed=7)
    sketch = QualitySketch(contract)
    for start in range(0, 20_000, 5_000):
        part = QualitySketch(contract)
        part.add(
            LabelledRows(
                rows.labels[start : start + 5_000], {k: v[start : start + 5_000] for k, v in rows.outputs.items()}
            )
        )
        sketch.merge(QualitySketch.from_json(json.loads(json.dumps(part.to_json())), contract))
    # WHEN scored
    values = sketch.metrics()
    # THEN the counts give scikit-learn's numbers, and AUC lies within the bound the sketch states
    predicted = probabilities.argmax(axis=1)
    assert values["accuracy"] == pytest.approx(skmetrics.accuracy_score(truth, predicted), abs=1e-12)
    assert values["f1_macro"] == pytest.approx(skmetrics.f1_score(truth, predicted, average="macro"), abs=1e-12)
    assert values["log_loss"] == pytest.approx(skmetrics.log_loss(truth, probabilities), rel=1e-9)
    if len(classes) == 2:
        exact_auc = skmetrics.roc_auc_score(truth == 1, probabilities[:, 1])
        assert values["f1"] == pytest.approx(skmetrics.f1_score(truth, predicted, pos_label=1), abs=1e-12)
    else:
        exact_auc = skmetrics.roc_auc_score(truth, probabilities, multi_class="ovr", average="macro")
        assert values["f1"] == values["f1_macro"]
    assert abs(values["roc_auc"] - exact_auc) <= values["roc_auc_error_bound"]
    assert values["roc_auc_error_bound"] < 2 / AUC_BINS
    assert sketch.rows == 20_000


def test_quality_sketch_auc_bound_holds_for_scores_crowded_in_one_bin() -> None:
    # GIVEN probabilities all inside one bin: the binned AUC is 0.5 whatever the order
    contract = classification_contract(["no", "yes"])
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 2_000)
    positive = 0.5 + truth * 1e-5 + rng.uniform(0, 1e-5, 2_000)
    outputs = {
        "label": ["yes"] * 2_000,
        "probability:no": (1 - positive).tolist(),
        "probability:yes": positive.tolist(),
    }
    sketch = QualitySketch(contract)
    sketch.add(LabelledRows([["no", "yes"][t] for t in truth], outputs))
    values = sketch.metrics()
    exact = skmetrics.roc_auc_score(truth, positive)
    # THEN the exact AUC (~1) is far from 0.5, and the stated bound says so honestly
    assert exact > 0.9
    assert values["roc_auc"] == pytest.approx(0.5)
    assert abs(values["roc_auc"] - exact) <= values["roc_auc_error_bound"]


def test_quality_sketch_matches_sklearn_regression_metrics() -> None:
    rng = np.random.default_rng(11)
    truth = rng.normal(50, 10, 30_000)
    predicted = truth + rng.normal(0, 4, 30_000)
    baseline = profile_numeric(rng.normal(50, 10, 5_000))
    sketch = QualitySketch(REGRESSION, baseline.edges)
    for start in range(0, 30_000, 7_000):  # uneven chunks merged through JSON
        part = QualitySketch(REGRESSION, baseline.edges)
        part.add(
            LabelledRows(truth[start : start + 7_000].tolist(), {"value": predicted[start : start + 7_000].tolist()})
        )
        sketch.merge(QualitySketch.from_json(json.loads(json.dumps(part.to_json())), REGRESSION, baseline.edges))
    values = sketch.metrics()
    assert values["rmse"] == pytest.approx(np.sqrt(skmetrics.mean_squared_error(truth, predicted)), rel=1e-9)
    assert values["mae"] == pytest.approx(skmetrics.mean_absolute_error(truth, predicted), rel=1e-9)
    assert values["r2"] == pytest.approx(skmetrics.r2_score(truth, predicted), rel=1e-9)
    # labels from the training distribution: no label drift
    assert label_drift(sketch, baseline) < 0.01


def test_quality_sketch_counts_unusable_rows_without_scoring_them() -> None:
    contract = classification_contract(["no", "yes"])
    sketch = QualitySketch(contract)
    sketch.add(LabelledRows(["no", "maybe", "yes"], {"label": ["no", "no", None]}))
    assert sketch.rows == 1
    assert sketch.unusable == 2
    assert sketch.metrics()["accuracy"] == 1.0
    assert "roc_auc" not in sketch.metrics()  # no probabilities captured


def test_label_drift_flags_shifted_class_shares() -> None:
    contract = classification_contract(["no", "yes"])
    target = profile_categorical(["no"] * 800 + ["yes"] * 200)
    same, shifted = QualitySketch(contract), QualitySketch(contract)
    same.add(LabelledRows(["no"] * 80 + ["yes"] * 20, {"label": ["no"] * 100}))
    shifted.add(LabelledRows(["no"] * 40 + ["yes"] * 60, {"label": ["no"] * 100}))
    assert label_drift(same, target) == pytest.approx(0.0, abs=1e-9)
    assert label_drift(shifted, target) > 0.2
    assert label_drift(same, None) is None  # a baseline stored before the target profile


def test_quality_sketch_refuses_to_merge_other_classes() -> None:
    with pytest.raises(ValueError, match="do not merge"):
        QualitySketch(classification_contract(["no", "yes"])).merge(QualitySketch(classification_contract(["a", "b"])))
