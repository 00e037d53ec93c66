"""Integer and boolean class labels (`classes: [0, 1]`, `[false, true]`), end to end: the contract,
the dataset's target, training and its ONNX labels, predict's answer in the declared type, and
feedback labels joined to captured predictions by the same label text."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops.captures import decode_batch
from mlops.contract import Contract, parse_contract
from mlops.errors import ContractError
from mlops.feedback import LabelRules, judge_request
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import ModelCache
from mlops.inference.service import PredictionService
from mlops.registry.records import Artifact, ModelVersion, VersionStatus
from mlops.training import TrainedModel, train_model
from mlops.training.dataset import read_dataset
from tests.support.fakes import InMemoryObjectStore
from tests.support.public_datasets import breast_cancer_frame, contract_check_failures

BUCKET = "artifacts"
FEATURES = ["mean radius", "mean texture", "mean concavity", "worst area"]


def _contract(target: str, classes: list[Any]) -> Contract:
    return parse_contract(
        {
            "name": "cancer",
            "problem_type": "classification",
            "target": {"name": target, "classes": classes},
            "features": [{"name": name, "type": "numeric"} for name in FEATURES],
            "estimator": {"name": "logistic_regression", "params": {"max_iter": 2000}},
            "metric": {"name": "roc_auc", "at_least": 0.8},
        }
    )


class _Registry:
    def __init__(self, version: ModelVersion) -> None:
        self.version = version

    def production(self, name: str) -> ModelVersion:
        return self.version


def _serve(contract: Contract, trained: TrainedModel) -> tuple[PredictionService, InMemoryObjectStore, ModelVersion]:
    store = InMemoryObjectStore()
    version = ModelVersion(
        model_name=contract.name,
        version=1,
        status=VersionStatus.PRODUCTION,
        metric_name="roc_auc",
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
    store.put_bytes(BUCKET, version.artifact.key, trained.onnx_bytes)
    capture = CaptureBuffer(store, BUCKET, max_records=1_000)
    return PredictionService(ModelCache(_Registry(version), store), capture), store, version


@pytest.mark.parametrize(
    ("classes", "to_file", "label_type", "feedback_ok", "feedback_refused"),
    [
        # breast cancer's own target: 0 malignant, 1 benign, written as 0/1
        ([0, 1], lambda t: t, int, [1, "0", "1.0"], [True, 2, "yes"]),
        # the same as booleans "benign?", written by pandas as True/False
        ([False, True], lambda t: t == 1, bool, [True, "false", "TRUE", "1"], [1, "maybe"]),
    ],
)
def test_integer_and_boolean_classes_validate_train_and_answer_in_their_declared_type(
    classes: list[Any], to_file: Any, label_type: type, feedback_ok: list[Any], feedback_refused: list[Any]
) -> None:
    frame = breast_cancer_frame()[[*FEATURES, "target"]]
    frame = frame.assign(benign=to_file(frame.pop("target")))
    contract = _contract("benign", classes)
    data = frame.to_csv(index=False).encode()

    # the file as it is meets the contract, and trains
    assert contract_check_failures(data, contract) == []
    trained = train_model(read_dataset(data, "cancer.csv", contract), contract)
    assert trained.metrics["roc_auc"] > 0.9
    assert list(trained.pipeline.classes_) == list(contract.target.labels or ())

    # predict answers the label in the declared type; probabilities are keyed by its text
    service, store, version = _serve(contract, trained)
    rows = frame.drop(columns=["benign"]).head(20).to_dict(orient="records")
    answer = service.predict(contract.name, json.dumps({"records": rows}))
    labels = [p["label"] for p in answer["predictions"]]
    assert {type(label) for label in labels} == {label_type}
    assert set(labels) <= set(classes)
    assert set(answer["predictions"][0]["probabilities"]) == set(contract.target.labels or ())

    # captures keep the label text the feedback labels are stored as, so the quality join matches them
    [flushed] = service.shutdown()
    captured = decode_batch(store.get_bytes(BUCKET, str(flushed.key)))
    rules = LabelRules.from_contract(version.contract)
    prediction_id = answer["predictions"][0]["prediction_id"]
    for truth in feedback_ok:
        accepted = judge_request(rules, [{"prediction_id": prediction_id, "label": truth}], time.time())
        [stored] = accepted.batch.labels
        assert stored in (contract.target.labels or ())
    assert captured.outputs["label"][0] in (contract.target.labels or ())
    for truth in feedback_refused:
        assert rules.problem(prediction_id, "label", truth, time.time()) is not None, truth


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([0, "1"], "all text, all integers or all booleans"),
        ([0.0, 1.0], "all text, all integers or all booleans"),
        ([True], "boolean classes are [false, true]"),
        ([1, 1], "must not repeat a label"),
    ],
)
def test_contract_refuses_classes_of_mixed_or_unclear_kinds(classes: list[Any], message: str) -> None:
    with pytest.raises(ContractError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _contract("benign", classes)


def test_text_classes_are_their_own_labels() -> None:
    contract = _contract("benign", ["no", "yes"])
    assert contract.target.labels == ("no", "yes")
