"""Columns named as in the file: the contract accepts them, `input_name` maps each to one graph
input identifier, and the story validate -> train -> serve -> capture -> drift keeps the file's names."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.captures import decode_batch
from mlops.contract import Contract, parse_contract
from mlops.contract_rules import INPUT_NAME_PATTERN, input_name
from mlops.drift.decisions import evaluate
from mlops.drift.sketch import WindowSketch
from mlops.errors import ContractError
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import ModelCache, load_model
from mlops.inference.service import PredictionService
from mlops.registry.records import Artifact, ModelVersion, VersionStatus
from mlops.training import TrainedModel, train_model
from mlops.training.dataset import read_dataset
from tests.support.fakes import InMemoryObjectStore
from tests.support.public_datasets import breast_cancer_frame, contract_check_failures, wine_frame

BUCKET = "artifacts"
IDENTIFIER = re.compile(INPUT_NAME_PATTERN)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("tenure_months", "tenure_months"),  # an identifier is its own input name (models trained before)
        ("_x", "_x"),
        ("mean radius", re.compile(r"^mean_radius_[0-9a-f]{10}$")),
        ("od280/od315_of_diluted_wines", re.compile(r"^od280_od315_of_diluted_wines_[0-9a-f]{10}$")),
        ("Größe (cm)", re.compile(r"^Groe_cm_[0-9a-f]{10}$")),  # accents dropped, ß has no ASCII form
        ("1st place", re.compile(r"^c_1st_place_[0-9a-f]{10}$")),
        ("体重", re.compile(r"^c_[0-9a-f]{10}$")),
    ],
)
def test_input_name_keeps_identifiers_and_maps_other_names(column: str, expected: str | re.Pattern[str]) -> None:
    name = input_name(column)
    if isinstance(expected, str):
        assert name == expected
    else:
        assert expected.fullmatch(name), name
    assert input_name(column) == name  # deterministic


@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=300))
def test_input_name_is_an_identifier_and_differs_for_different_columns(first: str, second: str) -> None:
    assert IDENTIFIER.fullmatch(input_name(first))
    if first != second and not (IDENTIFIER.fullmatch(first) and IDENTIFIER.fullmatch(second)):
        assert input_name(first) != input_name(second)


def _numeric_contract(name: str, frame: pd.DataFrame, target: str, classes: list[Any], **changes: Any) -> Contract:
    features = [{"name": column, "type": "numeric"} for column in frame.columns if column != target]
    return parse_contract(
        {
            "name": name,
            "problem_type": "classification",
            "target": {"name": target, "classes": classes},
            "features": features,
            "estimator": {"name": "logistic_regression", "params": {"max_iter": 2000}},
            "metric": {"name": "accuracy"},
            "data": {"min_rows": 50},
            "monitoring": {"min_window_rows": 20},
            **changes,
        }
    )


def test_contract_accepts_column_names_as_in_the_file() -> None:
    frame = wine_frame().rename(columns={"alcohol": "Alkohol (% vol)", "hue": "teinte à 20°C"})
    frame["target"] = frame["target"].map({0: "a", 1: "b", 2: "c"})
    contract = _numeric_contract("wine", frame, "target", ["a", "b", "c"])
    assert "od280/od315_of_diluted_wines" in contract.feature_names
    assert "teinte à 20°C" in contract.feature_names
    assert all(IDENTIFIER.fullmatch(f.input_name) for f in contract.features)


@pytest.mark.parametrize(
    ("column", "problem"),
    [("", "empty, blank"), ("   ", "empty, blank"), ("tab\there", "control character"), ("x" * 257, "257 characters")],
)
def test_contract_refuses_a_column_name_no_file_can_mean(column: str, problem: str) -> None:
    frame = pd.DataFrame({"ok": [1.0], column: [2.0], "y": ["a"]})
    with pytest.raises(ContractError, match=re.escape(problem)):
        _numeric_contract("broken", frame, "y", ["a", "b"])


def test_contract_refuses_two_columns_that_would_feed_one_input() -> None:
    clash = input_name("a b")  # an identifier, so a column of that name keeps it
    frame = pd.DataFrame({"a b": [1.0], clash: [2.0], "y": ["a"]})
    with pytest.raises(ContractError, match="same model input name"):
        _numeric_contract("clash", frame, "y", ["a", "b"])


def _version(contract: Contract, trained: TrainedModel, number: int = 1) -> ModelVersion:
    return ModelVersion(
        model_name=contract.name,
        version=number,
        status=VersionStatus.PRODUCTION,
        metric_name="accuracy",
        metrics=trained.metrics,
        artifact=Artifact(
            bucket=BUCKET,
            key=f"models/{contract.name}/{trained.sha256}.onnx",
            sha256=trained.sha256,
            size_bytes=len(trained.onnx_bytes),
            baseline_key=f"baselines/{contract.name}/{trained.sha256}.json",
        ),
        contract=contract.model_dump(mode="json"),
        lineage={},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


class _OneVersionRegistry:
    def __init__(self, version: ModelVersion) -> None:
        self.version = version

    def production(self, name: str) -> ModelVersion:
        return self.version


def test_breast_cancer_names_with_spaces_validate_train_serve_capture_and_drift_as_in_the_file() -> None:
    # GIVEN scikit-learn's breast cancer data as a CSV: 30 feature names with spaces
    frame = breast_cancer_frame()
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    contract = _numeric_contract("breast-cancer", frame, "diagnosis", ["malignant", "benign"])
    data = frame.to_csv(index=False).encode()

    # WHEN it is validated and trained
    assert contract_check_failures(data, contract) == []
    trained = train_model(read_dataset(data, "wdbc.csv", contract), contract)

    # THEN the graph's inputs are identifiers and the model serves records keyed as in the file
    store = InMemoryObjectStore()
    version = _version(contract, trained)
    store.put_bytes(BUCKET, version.artifact.key, trained.onnx_bytes)
    model = load_model(version, store)
    assert {i.name for i in model.session.get_inputs()} == {f.input_name for f in contract.features}
    assert trained.metrics["accuracy"] > 0.9
    rows = frame.drop(columns=["diagnosis"]).head(40).to_dict(orient="records")
    capture = CaptureBuffer(store, BUCKET, max_records=1_000)
    service = PredictionService(ModelCache(_OneVersionRegistry(version), store), capture)
    answer = service.predict(contract.name, json.dumps({"records": rows}))
    labels = [p["label"] for p in answer["predictions"]]
    assert labels == list(trained.pipeline.predict(_inputs(trained, contract, frame.head(40))))

    # AND the captures and the drift result name the columns as in the file
    [flushed] = service.shutdown()
    batch = decode_batch(store.get_bytes(BUCKET, str(flushed.key)))
    assert "mean radius" in batch.inputs
    sketch = WindowSketch.empty(contract, trained.profile, version.version)
    sketch.add(batch)
    result = evaluate(contract, trained.profile, sketch, generated_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert [f.name for f in result.features] == contract.feature_names


def _inputs(trained: TrainedModel, contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    from mlops.training.dataset import model_inputs

    data = frame.to_csv(index=False).encode()
    return model_inputs(read_dataset(data, "rows.csv", contract), contract).astype(
        {f.input_name: np.float32 for f in contract.features}
    )


def test_contract_errors_name_each_bad_column_once_without_unrelated_noise() -> None:
    # GIVEN a contract whose 30 features are each declared wrongly (the breast cancer case)
    frame = breast_cancer_frame()
    features: list[dict[str, Any]] = [
        {"name": column, "type": "number"} for column in frame.columns if column != "target"
    ]
    document = {
        "name": "breast-cancer",
        "problem_type": "classification",
        "target": {"name": "target", "classes": ["0", "1"]},
        "features": features,
        "estimator": {"name": "logistic_regression"},
        "metric": {"name": "accuracy"},
    }
    # WHEN it is parsed
    with pytest.raises(ContractError) as refused:
        parse_contract(document)
    message = str(refused.value)
    # THEN each column is named once, and nothing else is said
    for feature in features:
        assert message.count(repr(feature["name"])) == 1, feature["name"]
    assert message.count("Input should be") == 30
    assert "at least 1 item" not in message


def test_contract_error_for_a_bad_column_name_quotes_it_once() -> None:
    frame = pd.DataFrame({"ok": [1.0], "tab\there": [2.0], "y": ["a"]})
    with pytest.raises(ContractError) as refused:
        _numeric_contract("broken", frame, "y", ["a", "b"])
    assert str(refused.value).count(repr("tab\there")) == 1
    assert "features[1].name" in str(refused.value)
