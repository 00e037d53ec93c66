"""Rows without a target: the contract's `target.missing` says drop (counted in the validation
report, left out of training) or quarantine (the default: the dataset is refused)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.contract import Contract, parse_contract
from mlops.training import train_model
from mlops.training.dataset import read_dataset
from mlops.validation import CheckName, DatasetChecker
from tests.support.public_datasets import penguins_frame, read_checked

REPO_ROOT = Path(__file__).resolve().parents[2]
CHURN = json.loads((REPO_ROOT / "contracts" / "churn.json").read_text())


def _penguins_sex_contract(**target: Any) -> Contract:
    """Predict a penguin's sex (11 of 344 rows have none) from its measurements (2 rows have none)."""
    return parse_contract(
        {
            "name": "penguin-sex",
            "problem_type": "classification",
            "target": {"name": "sex", "classes": ["female", "male"], **target},
            "features": [
                {"name": "species", "type": "categorical", "categories": ["Adelie", "Chinstrap", "Gentoo"]},
                *(
                    {"name": name, "type": "numeric", "nullable": True, "min": 0}
                    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
                ),
            ],
            "estimator": {"name": "logistic_regression", "params": {"max_iter": 1000}},
            "metric": {"name": "accuracy", "at_least": 0.7},
        }
    )


def _penguins_csv() -> bytes:
    return penguins_frame().drop(columns=["island", "year"]).to_csv(index=False).encode()


def _target_checks(checker: DatasetChecker, contract: Contract) -> dict[CheckName, Any]:
    return {r.name: r for r in checker.results() if r.column == contract.target.name}


def test_rows_without_a_target_are_dropped_and_counted_when_the_contract_says_drop() -> None:
    contract = _penguins_sex_contract(missing="drop")
    data = _penguins_csv()
    # WHEN the file is validated: the target's empty cells pass, counted
    checker = read_checked(data, contract)
    assert [str(r) for r in checker.results() if not r.passed] == []
    nulls = _target_checks(checker, contract)[CheckName.NULLS]
    assert nulls.failing_rows == 11
    assert "11 rows without a target: dropped before training (target.missing: drop)" in nulls.details
    # AND trained: on the 333 labelled rows only
    frame = read_dataset(data, "penguins.csv", contract)
    assert len(frame) == 333
    trained = train_model(frame, contract)
    assert trained.training_rows + trained.holdout_rows == 333
    assert trained.metrics["accuracy"] >= 0.7


def test_rows_without_a_target_quarantine_the_dataset_by_default() -> None:
    contract = _penguins_sex_contract()
    assert contract.target.missing == "quarantine"
    checker = read_checked(_penguins_csv(), contract)
    nulls = _target_checks(checker, contract)[CheckName.NULLS]
    assert not nulls.passed
    assert nulls.failing_rows == 11


def test_the_default_policy_leaves_a_contract_and_its_digest_as_they_were() -> None:
    explicit = parse_contract({**CHURN, "target": {**CHURN["target"], "missing": "quarantine"}})
    assert explicit.digest == parse_contract(CHURN).digest
    assert "missing" not in json.loads(explicit.canonical_json())["target"]
    dropping = parse_contract({**CHURN, "target": {**CHURN["target"], "missing": "drop"}})
    assert dropping.digest != explicit.digest


def test_an_unknown_policy_is_refused_naming_the_choices() -> None:
    with pytest.raises(Exception, match="'drop' or 'quarantine'"):
        _penguins_sex_contract(missing="impute")
