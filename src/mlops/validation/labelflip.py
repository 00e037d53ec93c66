"""Label-flip poisoning: how often the new labels disagree with the production model, compared
with how often the model was wrong on its own holdout.

A clean dataset from the same source disagrees with the model about as often as its holdout
error; flipped labels raise the disagreement one for one. The check runs the model (ONNX, no
Python code from the artifact) on a bounded random sample of the new rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops.contract import Contract, FeatureType, ProblemType
from mlops.ports import ObjectStore
from mlops.profile import MISSING
from mlops.registry.records import ModelVersion
from mlops.validation.report import CheckName, CheckResult

MIN_SAMPLE_ROWS = 50
_FEED_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(string)": object}


@dataclass(frozen=True)
class ProductionModel:
    """What the label-flip check needs of the production version."""

    description: str  # e.g. "churn v3"
    holdout_error: float  # 1 - holdout accuracy
    predict: Callable[[pa.Table], list[str]]  # labels for the contract's feature columns (parsed)


def label_flip_check(model: ProductionModel, sample: pa.Table, contract: Contract) -> CheckResult:
    """Disagreement of `sample`'s labels with `model` vs its holdout error (+ contract margin)."""
    limit_rise = contract.data.max_disagreement_rise
    target = contract.target.name
    labelled = sample.filter(pc.is_valid(sample.column(target)))
    if labelled.num_rows < MIN_SAMPLE_ROWS:
        return CheckResult(
            name=CheckName.LABEL_FLIP,
            passed=True,
            details=f"skipped: {labelled.num_rows} labelled rows in the sample (need {MIN_SAMPLE_ROWS})",
        )
    predicted = np.asarray(model.predict(labelled), dtype=object)
    labels = np.asarray(labelled.column(target).to_pylist(), dtype=object)
    disagreement = float(np.mean(predicted != labels))
    n = labelled.num_rows
    noise = 3 * math.sqrt(max(model.holdout_error * (1 - model.holdout_error), 0.01) / n)
    limit = model.holdout_error + limit_rise + noise
    return CheckResult(
        name=CheckName.LABEL_FLIP,
        passed=disagreement <= limit,
        details=(
            f"{model.description} disagrees with {disagreement:.2%} of {n} sampled labels; its holdout error is "
            f"{model.holdout_error:.2%} (limit {limit:.2%}: + {limit_rise:.0%} rise + {noise:.2%} sampling noise)"
        ),
        value=disagreement,
        threshold=limit,
    )


def onnx_production_model(version: ModelVersion, store: ObjectStore) -> ProductionModel | None:
    """The production version as a label predictor (artifact digest verified before loading).

    None when the check does not apply (regression, no holdout accuracy) or onnxruntime is absent.
    Raises IntegrityError for a tampered or missing artifact.
    """
    accuracy = version.metrics.get("accuracy")
    if accuracy is None or version.contract.get("problem_type") != ProblemType.CLASSIFICATION.value:
        return None
    try:
        from mlops.inference.model import load_model  # onnxruntime: imported only when a model exists
    except ImportError:  # pragma: no cover - the validate layer ships onnxruntime
        return None
    loaded = load_model(version, store, max_records=1)
    inputs = {item.name: _FEED_DTYPES.get(item.type, np.float32) for item in loaded.session.get_inputs()}
    rules = {rule.input_name: rule for rule in loaded.contract.features}  # the table's columns are named as in the file

    def predict(table: pa.Table) -> list[str]:
        feed = {
            name: _column(table.column(rules[name].name), rules[name].type, dtype) for name, dtype in inputs.items()
        }
        labels = loaded.session.run(["label"], feed)[0]
        return [str(label) for label in np.asarray(labels).reshape(-1).tolist()]

    return ProductionModel(f"{version.model_name} v{version.version}", 1.0 - float(accuracy), predict)


def _column(values: pa.ChunkedArray, kind: FeatureType, dtype: object) -> np.ndarray:
    if kind is FeatureType.CATEGORICAL:
        return np.array([MISSING if v is None else v for v in values.to_pylist()], dtype=object).reshape(-1, 1)
    if kind is FeatureType.BOOLEAN:
        numbers = [math.nan if v is None else (1.0 if v == "true" else 0.0) for v in values.to_pylist()]
        return np.array(numbers, dtype=dtype).reshape(-1, 1)
    return np.asarray(values.to_numpy(), dtype=dtype).reshape(-1, 1)
