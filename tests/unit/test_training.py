"""Training domain: pipeline per contract, holdout metrics, ONNX export and its agreement with scikit-learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest

from mlops.contract import SUPPORTED_ESTIMATORS, Contract, ProblemType, parse_contract
from mlops.errors import RecordError, TrainingRejectedError
from mlops.training import MISSING_CATEGORY, TrainedModel, onnx_input_feed, train_model
from mlops.training.dataset import model_inputs
from mlops.training.export import check_agreement
from mlops_local.sample_data import churn_dataset, records

REPO_ROOT = Path(__file__).resolve().parents[2]
CHURN = json.loads((REPO_ROOT / "contracts" / "churn.json").read_text())

# Typical params per estimator, trees capped so the test stays fast and the artifacts small.
TYPICAL_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 0.5, "max_iter": 300, "class_weight": "balanced"},
    "random_forest_classifier": {"n_estimators": 20, "max_depth": 6, "min_samples_leaf": 2, "max_features": "sqrt"},
    "gradient_boosting_classifier": {"n_estimators": 20, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8},
    "linear_regression": {"fit_intercept": True},
    "ridge": {"alpha": 1.0},
    "random_forest_regressor": {"n_estimators": 20, "max_depth": 6, "min_samples_leaf": 2},
    "gradient_boosting_regressor": {"n_estimators": 20, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8},
}


def churn_contract(**changes: Any) -> Contract:
    return parse_contract({**CHURN, **changes})


def regression_contract(estimator: str = "ridge", params: dict[str, Any] | None = None) -> Contract:
    """Predict monthly charges from the other churn columns (plan drives most of it)."""
    features = [f for f in CHURN["features"] if f["name"] != "monthly_charges"]
    return parse_contract(
        {
            **CHURN,
            "name": "charges",
            "problem_type": "regression",
            "target": {"name": "monthly_charges", "min": 0, "max": 1000},
            "features": features,
            "estimator": {"name": estimator, "params": params or {}},
            "metric": {"name": "r2", "at_least": 0.5},
        }
    )


def contract_for(estimator: str) -> Contract:
    params = TYPICAL_PARAMS[estimator]
    if SUPPORTED_ESTIMATORS[estimator][0] is ProblemType.REGRESSION:
        return regression_contract(estimator, params)
    return churn_contract(estimator={"name": estimator, "params": params})


def regression_frame(rows: int) -> pd.DataFrame:
    return churn_dataset(rows).drop(columns=["churned"])


def session_of(model: TrainedModel) -> ort.InferenceSession:
    return ort.InferenceSession(model.onnx_bytes, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def churn_model() -> TrainedModel:
    return train_model(churn_dataset(3000), churn_contract())


def test_train_model_churn_beats_the_contract_minimum_and_reports_holdout_metrics(churn_model: TrainedModel) -> None:
    contract = churn_contract()
    # THEN the contract's metric comes first and clears the bar, with the standard metrics beside it
    assert next(iter(churn_model.metrics)) == "roc_auc"
    assert contract.metric.meets_threshold(churn_model.metrics["roc_auc"])
    assert set(churn_model.metrics) == {"roc_auc", "accuracy", "f1_macro", "log_loss"}
    assert churn_model.training_rows == 2400
    assert churn_model.holdout_rows == 600
    assert len(churn_model.holdout) == 600
    assert list(churn_model.holdout.columns) == contract.columns
    assert churn_model.seed == 42
    assert churn_model.params["random_state"] == 42
    assert {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "pyarrow", "python"} <= set(
        churn_model.library_versions
    )


def test_train_model_onnx_agrees_with_scikit_learn(churn_model: TrainedModel) -> None:
    assert churn_model.onnx_max_abs_diff < 1e-4
    session = session_of(churn_model)
    holdout = churn_model.holdout
    label, probabilities = session.run(None, onnx_input_feed(records(holdout), churn_contract()))
    inputs = model_inputs(holdout, churn_contract())
    assert list(label.ravel()) == list(churn_model.pipeline.predict(inputs))
    np.testing.assert_allclose(probabilities, churn_model.pipeline.predict_proba(inputs), atol=1e-4)


def test_train_model_onnx_inputs_outputs_and_metadata(churn_model: TrainedModel) -> None:
    contract = churn_contract()
    model = onnx.load_from_string(churn_model.onnx_bytes)
    inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert list(inputs) == contract.feature_names
    assert inputs["plan"] == onnx.TensorProto.STRING
    assert inputs["autopay"] == onnx.TensorProto.FLOAT
    assert inputs["tenure_months"] == onnx.TensorProto.FLOAT
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["mlops.model_name"] == "churn"
    assert meta["mlops.problem_type"] == "classification"
    assert json.loads(meta["mlops.classes"]) == ["no", "yes"]
    assert json.loads(meta["mlops.inputs"])[:1] == [{"name": "tenure_months", "type": "float"}]
    assert {"name": "plan", "type": "string"} in json.loads(meta["mlops.inputs"])
    assert meta["mlops.contract_digest"] == contract.digest


def test_train_model_profiles_training_features_and_predictions(churn_model: TrainedModel) -> None:
    profile = churn_model.profile
    assert profile.model_name == "churn"
    assert profile.rows == churn_model.training_rows
    assert set(profile.features) == set(churn_contract().feature_names)
    assert profile.features["tenure_months"].kind == "numeric"
    assert profile.features["plan"].kind == "categorical"
    assert set(profile.features["autopay"].proportions) >= {"true", "false"}  # type: ignore[union-attr]
    assert profile.features["data_usage_gb"].proportions[-1] > 0  # type: ignore[union-attr]  # null share
    # binary classification: the positive class's probability
    assert profile.prediction.kind == "numeric"
    assert 0.0 <= profile.prediction.min <= profile.prediction.max <= 1.0  # type: ignore[union-attr,operator]


def test_train_model_is_deterministic(churn_model: TrainedModel) -> None:
    again = train_model(churn_dataset(3000), churn_contract())
    assert again.sha256 == churn_model.sha256
    assert again.metrics == churn_model.metrics


def test_train_model_sha256_is_stable_across_processes() -> None:
    # skl2onnx gathers opsets in a set, so string hash randomisation could reorder the graph's bytes.
    script = (
        "import json,sys;from mlops.contract import parse_contract;from mlops.training import train_model;"
        "from mlops_local.sample_data import churn_dataset;"
        "print(train_model(churn_dataset(300), parse_contract(json.loads(sys.argv[1]))).sha256)"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(CHURN)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(digests) == 1


@pytest.mark.parametrize("estimator", sorted(SUPPORTED_ESTIMATORS))
def test_train_model_every_supported_estimator_round_trips(estimator: str) -> None:
    contract = contract_for(estimator)
    frame = churn_dataset(800) if contract.problem_type is ProblemType.CLASSIFICATION else regression_frame(800)
    model = train_model(frame, contract)
    assert model.onnx_max_abs_diff < 1e-3
    assert set(TYPICAL_PARAMS[estimator].items()) <= set(model.params.items())
    session = session_of(model)
    outputs = session.run(None, onnx_input_feed(records(model.holdout.head(50)), contract))
    expected = model.pipeline.predict(model_inputs(model.holdout.head(50), contract))
    if contract.problem_type is ProblemType.CLASSIFICATION:
        assert list(outputs[0].ravel()) == list(expected)
    else:
        assert [o.name for o in session.get_outputs()] == ["variable"]
        np.testing.assert_allclose(outputs[0].ravel(), expected, rtol=1e-4, atol=1e-4)


def test_train_model_regression_metrics_and_prediction_profile() -> None:
    contract = regression_contract("ridge", {"alpha": 1.0})
    model = train_model(regression_frame(1000), contract)
    assert list(model.metrics) == ["r2", "rmse", "mae"]
    assert model.metrics["r2"] > 0.5
    assert model.profile.prediction.kind == "numeric"
    meta = {p.key: p.value for p in onnx.load_from_string(model.onnx_bytes).metadata_props}
    assert meta["mlops.problem_type"] == "regression"
    assert json.loads(meta["mlops.classes"]) == []


def test_train_model_multiclass_profiles_predicted_labels() -> None:
    frame = churn_dataset(900)
    contract = churn_contract(
        target={"name": "plan", "classes": ["basic", "standard", "premium"]},
        features=[f for f in CHURN["features"] if f["name"] != "plan"] + [{"name": "churned", "type": "categorical"}],
        metric={"name": "f1_macro", "at_least": 0.5},
    )
    model = train_model(frame, contract)
    assert model.metrics["f1_macro"] > 0.5
    assert "roc_auc" not in model.metrics
    assert model.profile.prediction.kind == "categorical"
    meta = {p.key: p.value for p in onnx.load_from_string(model.onnx_bytes).metadata_props}
    assert json.loads(meta["mlops.classes"]) == sorted(["basic", "standard", "premium"])


def test_onnx_handles_nulls_and_unseen_categories_like_scikit_learn(churn_model: TrainedModel) -> None:
    contract = churn_contract()
    rows = records(churn_dataset(6, seed=99).drop(columns=["churned"]))
    rows[0]["data_usage_gb"] = None  # nullable numeric
    rows[1]["region"] = "atlantis"  # never seen in training
    rows[2]["plan"] = None  # null category
    rows[3]["autopay"] = None
    del rows[4]["data_usage_gb"]  # an absent key is a null too
    feed = onnx_input_feed(rows, contract)
    assert np.isnan(feed["data_usage_gb"][0, 0])
    assert feed["plan"][2, 0] == MISSING_CATEGORY
    label, probabilities = session_of(churn_model).run(None, feed)
    frame = pd.DataFrame([{name: r.get(name) for name in contract.feature_names} for r in rows])
    inputs = model_inputs(frame, contract)
    assert list(label.ravel()) == list(churn_model.pipeline.predict(inputs))
    np.testing.assert_allclose(probabilities, churn_model.pipeline.predict_proba(inputs), atol=1e-4)


def test_onnx_input_feed_shapes_and_types() -> None:
    feed = onnx_input_feed(
        [{"tenure_months": 3, "autopay": True, "plan": "basic"}, {"tenure_months": "4.5", "autopay": "false"}],
        churn_contract(),
    )
    assert feed["tenure_months"].dtype == np.float32
    assert feed["tenure_months"].shape == (2, 1)
    assert feed["tenure_months"].ravel().tolist() == [3.0, 4.5]
    assert feed["autopay"].ravel().tolist() == [1.0, 0.0]
    assert feed["plan"].ravel().tolist() == ["basic", MISSING_CATEGORY]


@pytest.mark.parametrize(("field", "value"), [("autopay", "maybe"), ("tenure_months", "many"), ("autopay", 2)])
def test_onnx_input_feed_rejects_values_it_cannot_represent(field: str, value: object) -> None:
    with pytest.raises(RecordError, match=f"record 1: field '{field}'"):
        onnx_input_feed([{field: None}, {field: value}], churn_contract())


def test_train_model_rejects_labels_outside_the_contract() -> None:
    frame = churn_dataset(300)
    frame.loc[5, "churned"] = "maybe"
    with pytest.raises(TrainingRejectedError, match=r"outside the contract's classes: \['maybe'\]"):
        train_model(frame, churn_contract())


def test_train_model_rejects_a_dataset_without_one_class() -> None:
    frame = churn_dataset(300)
    frame["churned"] = "no"
    with pytest.raises(TrainingRejectedError, match=r"classes \['yes'\] have fewer than 2 rows"):
        train_model(frame, churn_contract())


def test_train_model_rejects_too_few_rows() -> None:
    with pytest.raises(TrainingRejectedError, match="too few"):
        train_model(churn_dataset(10), churn_contract())


def test_check_agreement_rejects_an_export_that_disagrees(churn_model: TrainedModel) -> None:
    contract = churn_contract()
    inputs = model_inputs(churn_model.holdout, contract)
    feed = {name: inputs[name].to_numpy().reshape(-1, 1) for name in contract.feature_names}
    probabilities = churn_model.pipeline.predict_proba(inputs)
    labels = churn_model.pipeline.predict(inputs)
    shifted = probabilities.copy()
    shifted[:3] += 0.01
    with pytest.raises(
        TrainingRejectedError, match=r"probabilities differ .* by up to 0.01 .* on 3 of 600 holdout rows"
    ):
        check_agreement(churn_model.onnx_bytes, feed, contract, labels, shifted)
    flipped = labels.copy()
    flipped[:2] = np.where(flipped[:2] == "yes", "no", "yes")
    with pytest.raises(TrainingRejectedError, match="labels differ from scikit-learn on 2 of 600 holdout rows"):
        check_agreement(churn_model.onnx_bytes, feed, contract, flipped, probabilities)


def test_onnx_input_feed_imports_without_scikit_learn_or_pandas() -> None:
    # the predict function's layer has numpy and onnxruntime only
    script = (
        "import sys; from mlops.training.onnx_io import onnx_input_feed;"
        "print(sorted(m for m in ('sklearn', 'pandas', 'skl2onnx', 'onnx') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "[]"


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest_classifier"])
def test_train_model_trains_on_nulls_and_undeclared_categories(estimator: str) -> None:
    frame = churn_dataset(800).astype({"autopay": object})
    frame.loc[::7, "plan"] = None
    frame.loc[::5, "autopay"] = None
    frame.loc[::11, "region"] = "mars"  # outside the contract's categories: encoded as no known category
    contract = churn_contract(estimator={"name": estimator, "params": TYPICAL_PARAMS[estimator]})
    model = train_model(frame, contract)
    assert model.onnx_max_abs_diff < 1e-4
    assert model.profile.features["plan"].proportions[MISSING_CATEGORY] > 0.1  # type: ignore[union-attr]
