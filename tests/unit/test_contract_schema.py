"""The contract's JSON schema and reference: estimators and metrics as enums, each metric's
direction stated, a threshold named by its direction, every field described, docs/contracts.md current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.contract import SUPPORTED_ESTIMATORS, SUPPORTED_METRICS, Metric, contract_json_schema, parse_contract
from mlops.contract_reference import render_reference
from mlops.errors import ContractError

REPO_ROOT = Path(__file__).resolve().parents[2]
CHURN = json.loads((REPO_ROOT / "contracts" / "churn.json").read_text())


def _properties(schema: dict[str, Any], model: str) -> dict[str, Any]:
    return schema["$defs"][model]["properties"]


def test_schema_lists_estimators_and_metrics_as_enums_with_each_metrics_direction() -> None:
    schema = contract_json_schema()
    estimator = _properties(schema, "Estimator")["name"]
    metric = _properties(schema, "Metric")["name"]
    assert estimator["enum"] == list(SUPPORTED_ESTIMATORS)
    assert metric["enum"] == list(SUPPORTED_METRICS)
    assert metric["x-higher-is-better"] == {"accuracy": True, "f1_macro": True, "roc_auc": True, "log_loss": False} | {
        "r2": True,
        "rmse": False,
        "mae": False,
    }
    assert "rmse (regression, lower is better: threshold at_most)" in metric["description"]
    assert "roc_auc (classification, higher is better: threshold at_least)" in metric["description"]


def test_every_field_of_the_schema_has_a_description() -> None:
    schema = contract_json_schema()
    undescribed = [
        f"{model}.{field}"
        for model, definition in [("Contract", schema), *schema["$defs"].items()]
        for field, prop in definition.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []


@pytest.mark.parametrize(
    ("metric", "value", "passes"),
    [
        ({"name": "roc_auc", "at_least": 0.7}, 0.71, True),
        ({"name": "roc_auc", "at_least": 0.7}, 0.69, False),
        ({"name": "rmse", "at_most": 10.0}, 9.0, True),
        ({"name": "rmse", "at_most": 10.0}, 11.0, False),
        ({"name": "rmse", "minimum": 10.0}, 11.0, False),  # the old name: a maximum for an error
        ({"name": "accuracy", "minimum": 0.8}, 0.79, False),
        ({"name": "mae"}, 1e9, True),
    ],
)
def test_metric_threshold_is_named_by_its_direction(metric: dict[str, Any], value: float, passes: bool) -> None:
    assert Metric.model_validate(metric).meets_threshold(value) is passes


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ({"name": "rmse", "at_least": 10.0}, "rmse is an error (lower is better): its threshold is at_most"),
        ({"name": "accuracy", "at_most": 0.9}, "accuracy is a score (higher is better): its threshold is at_least"),
        ({"name": "accuracy", "minimum": 0.9, "at_least": 0.8}, "minimum is the old name of at_least / at_most"),
        ({"name": "precision"}, "Input should be 'accuracy', 'f1_macro', 'roc_auc', 'log_loss', 'r2', 'rmse' or 'mae'"),
    ],
)
def test_metric_refuses_a_threshold_against_its_direction(metric: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_contract({**CHURN, "metric": metric})


def test_old_and_new_threshold_names_are_one_contract_with_one_digest() -> None:
    old = parse_contract({**CHURN, "metric": {"name": "roc_auc", "minimum": 0.7, "min_improvement": 0.002}})
    new = parse_contract(CHURN)
    assert CHURN["metric"]["at_least"] == 0.7  # the repository's contract uses the new name
    assert old == new
    assert old.digest == new.digest


def test_committed_contract_reference_is_what_the_schema_renders() -> None:
    committed = (REPO_ROOT / "docs" / "contracts.md").read_text()
    assert committed == render_reference(contract_json_schema()), (
        "docs/contracts.md is stale: run `mlops contracts reference`"
    )


def test_contract_reference_documents_every_field_estimator_and_metric() -> None:
    schema = contract_json_schema()
    text = render_reference(schema)
    for model, definition in [("Contract", schema), *schema["$defs"].items()]:
        assert f"## {model}" in text
        for field in definition.get("properties", {}):
            assert f"| `{field}` |" in text
    for estimator in SUPPORTED_ESTIMATORS:
        assert estimator in text
    assert "| `rmse` | lower is better | `at_most` |" in text
    assert "| `roc_auc` | higher is better | `at_least` |" in text
