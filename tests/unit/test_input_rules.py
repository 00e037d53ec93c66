"""A feature's input rules are one statement (mlops.contract_rules) that every stage reads the same
way: dataset checks, training's model inputs and request validation accept and refuse alike."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mlops.contract import Contract, parse_contract
from mlops.contract_rules import MISSING_CATEGORY, FeatureRule, FeatureType
from mlops.errors import ContractError, RecordError
from mlops.inference.model import load_model
from mlops.inference.records import RecordValidator
from mlops.training import train_model
from mlops.training.dataset import model_inputs, read_dataset
from mlops.validation.checks import DatasetChecker
from mlops.validation.report import CheckName
from mlops_local.cli import main as cli_main
from mlops_local.sample_data import churn_dataset, records
from tests.support.fakes import InMemoryObjectStore
from tests.unit.test_inference_model import version_of

REPO_ROOT = Path(__file__).resolve().parents[2]
CHURN = json.loads((REPO_ROOT / "contracts" / "churn.json").read_text())


def open_vocabulary_churn() -> dict[str, Any]:
    """The churn contract with `plan` and `region` declared without a list of categories."""
    features = [{k: v for k, v in f.items() if k != "categories"} for f in CHURN["features"]]
    return {**CHURN, "features": features}


def test_open_vocabulary_contract_passes_the_cli_check(tmp_path: Path) -> None:
    path = tmp_path / "churn.json"
    path.write_text(json.dumps(open_vocabulary_churn()))
    assert cli_main(["contracts", "check", str(path)]) == 0


def test_open_vocabulary_contract_trains_and_serves_any_text() -> None:
    # GIVEN a model trained on a contract that does not enumerate plan/region
    contract = parse_contract(open_vocabulary_churn())
    trained = train_model(churn_dataset(1_500), contract)
    store = InMemoryObjectStore()
    version = version_of(trained.onnx_bytes, 1, contract)
    store.put_bytes(version.artifact.bucket, version.artifact.key, trained.onnx_bytes)
    model = load_model(version, store)
    rows = records(trained.holdout[contract.feature_names].head(20))
    rows[0]["plan"] = "platinum"  # never seen in training: the encoder ignores it
    rows[1]["region"] = "atlantis"
    # WHEN the served model answers THEN every record gets the training pipeline's answer
    answers = model.predict(rows)
    frame = trained.holdout[contract.feature_names].head(20).copy()
    frame.loc[frame.index[0], "plan"] = "platinum"
    frame.loc[frame.index[1], "region"] = "atlantis"
    expected = trained.pipeline.predict_proba(model_inputs(frame, contract))
    served = np.array([[a["probabilities"][c] for c in ("no", "yes")] for a in answers])
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_open_vocabulary_still_refuses_nulls_and_non_text() -> None:
    validator = RecordValidator(parse_contract(open_vocabulary_churn()))
    good = records(churn_dataset(1)[parse_contract(open_vocabulary_churn()).feature_names])[0]
    for value, message in [
        (None, "records[0].plan: must not be null"),
        ("", "records[0].plan: must not be null"),
        (MISSING_CATEGORY, "records[0].plan: must not be null"),
        (3, "records[0].plan: expected a string, got 3"),
    ]:
        with pytest.raises(RecordError) as raised:
            validator.validate([{**good, "plan": value}])
        assert str(raised.value).startswith(message)


# -- the three stages agree, value by value ------------------------------------------------------


def one_feature_contract(feature: dict[str, Any]) -> Contract:
    return parse_contract(
        {
            "name": "rules",
            "problem_type": "classification",
            "target": {"name": "y", "classes": ["no", "yes"]},
            "features": [{"name": "x", **feature}],
            "estimator": {"name": "logistic_regression"},
            "metric": {"name": "accuracy"},
        }
    )


def dataset_accepts(contract: Contract, cell: str) -> bool:
    """Every value check of column x passes on a one-row text dataset (as a CSV arrives); the null
    rate is a property of the whole dataset, not of a value."""
    checker = DatasetChecker(contract)
    checker.set_columns(["x", "y"])
    checker.check_batch(pa.record_batch([pa.array([cell]), pa.array(["no"])], names=["x", "y"]))
    return all(r.passed for r in checker.results() if r.column == "x" and r.name is not CheckName.NULL_RATE)


def request_accepts(contract: Contract, value: Any) -> bool:
    try:
        RecordValidator(contract).validate([{"x": value}])
    except RecordError:
        return False
    return True


def training_input(contract: Contract, cell: str) -> Any:
    frame = read_dataset(io.BytesIO(f"x,y\n{cell},no\n".encode()).read(), "d.csv", contract)
    return model_inputs(frame, contract)["x"].iloc[0]


@pytest.mark.parametrize(
    ("feature", "cell", "value", "accepted"),
    [
        ({"type": "categorical"}, "platinum", "platinum", True),
        ({"type": "categorical", "categories": ["a", "b"]}, "a", "a", True),
        ({"type": "categorical", "categories": ["a", "b"]}, "c", "c", False),
        ({"type": "categorical"}, "", "", False),
        ({"type": "categorical"}, MISSING_CATEGORY, MISSING_CATEGORY, False),
        ({"type": "categorical", "nullable": True}, "", None, True),
        ({"type": "numeric"}, "12.5", 12.5, True),
        ({"type": "numeric", "min": 0, "max": 10}, "11", 11, False),
        ({"type": "numeric"}, "1e39", 1e39, False),  # float32 would feed it as inf
        ({"type": "numeric"}, "3.4e38", 3.4e38, True),
        ({"type": "numeric", "nullable": True}, "", None, True),
        ({"type": "numeric"}, "", None, False),
        ({"type": "boolean"}, "true", True, True),
        ({"type": "boolean"}, "maybe", "maybe", False),
    ],
)
def test_every_stage_reads_a_feature_value_the_same_way(
    feature: dict[str, Any], cell: str, value: Any, accepted: bool
) -> None:
    contract = one_feature_contract(feature)
    assert dataset_accepts(contract, cell) is accepted
    assert request_accepts(contract, value) is accepted
    if accepted:  # what the dataset gate lets through, training can feed the graph
        fed = training_input(contract, cell)
        if contract.features[0].type is FeatureType.CATEGORICAL:
            assert fed == MISSING_CATEGORY or contract.features[0].rule.allows_category(fed)
        else:
            assert math.isnan(fed) or math.isfinite(fed)


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"type": "numeric", "categories": ["a"]}, "categories apply only to categorical features"),
        ({"type": "categorical", "min": 0}, "min/max apply only to numeric features"),
        ({"type": "numeric", "min": 2, "max": 1}, "min (2.0) is greater than max (1.0)"),
        ({"type": "categorical", "categories": []}, "categories must be a non-empty list"),
        ({"type": "categorical", "categories": ["a", "a"]}, "categories must be a non-empty list"),
        ({"type": "categorical", "categories": ["a", ""]}, "categories must not include ''"),
        ({"type": "categorical", "categories": [MISSING_CATEGORY]}, "categories must not include '__missing__'"),
    ],
)
def test_contract_refuses_a_feature_whose_rules_contradict_themselves(feature: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=re.escape(message)):
        one_feature_contract(feature)
    with pytest.raises(ValueError, match=re.escape(message)):
        FeatureRule.from_document({"name": "x", **feature})


def test_encoder_categories_are_declared_or_learned() -> None:
    declared = FeatureRule("x", FeatureType.CATEGORICAL, categories=("b", "a"))
    assert declared.encoder_categories(["z"]) == ["b", "a"]
    learned = FeatureRule("x", FeatureType.CATEGORICAL)
    assert learned.open_vocabulary
    assert learned.encoder_categories(["z", "a", "z"]) == ["a", "z"]
    assert learned.allows_category("anything")
