"""Export a fitted pipeline to ONNX and prove the export computes what scikit-learn computes."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from mlops.contract import Contract, FeatureType, ProblemType
from mlops.errors import TrainingRejectedError
from mlops.training.onnx_io import (
    META_CLASSES,
    META_CONTRACT_DIGEST,
    META_INPUTS,
    META_MODEL_NAME,
    META_PROBLEM_TYPE,
    OUTPUT_LABEL,
    OUTPUT_PROBABILITIES,
    OUTPUT_VALUE,
    input_metadata,
)
from mlops.training.pipeline import ESTIMATOR_STEP

# Pinned so the same libraries always write the same graph; supported by onnxruntime >= 1.16.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
PROBABILITY_TOLERANCE = 1e-4
# Regression values: absolute 1e-4, or relative 1e-4 for large targets (float32 has ~7 digits).
REGRESSION_TOLERANCE = 1e-4


def to_onnx(pipeline: Pipeline, contract: Contract, classes: list[str]) -> bytes:
    """Serialized ONNX model with one input per feature and the mlops.* metadata props.

    Raises TrainingRejectedError when skl2onnx cannot convert the pipeline.
    """
    initial_types = [
        (f.input_name, StringTensorType([None, 1]) if f.type is FeatureType.CATEGORICAL else FloatTensorType([None, 1]))
        for f in contract.features
    ]
    estimator = pipeline.named_steps[ESTIMATOR_STEP]
    options = {id(estimator): {"zipmap": False}} if contract.problem_type is ProblemType.CLASSIFICATION else None
    try:
        model = convert_sklearn(
            pipeline, name=contract.name, initial_types=initial_types, options=options, target_opset=TARGET_OPSET
        )
    except Exception as error:  # skl2onnx raises many unrelated types for "cannot convert"
        raise TrainingRejectedError(
            f"{contract.estimator.name} pipeline does not convert to ONNX: {type(error).__name__}: {error}"
        ) from error
    metadata = {
        META_MODEL_NAME: contract.name,
        META_PROBLEM_TYPE: contract.problem_type.value,
        META_CLASSES: json.dumps(classes),
        META_INPUTS: json.dumps([input_metadata(f.rule) for f in contract.features]),
        META_CONTRACT_DIGEST: contract.digest,
    }
    onnx.helper.set_model_props(model, metadata)
    # skl2onnx collects opsets in a set: its order follows string hashing, which changes per process.
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(domain, version) for domain, version in opsets)
    onnx.checker.check_model(model)
    return model.SerializeToString()


@dataclass(frozen=True)
class Agreement:
    rows: int
    max_abs_diff: float


def check_agreement(
    onnx_bytes: bytes,
    feed: dict[str, np.ndarray],
    contract: Contract,
    expected_labels: np.ndarray | None,
    expected_values: np.ndarray,
) -> Agreement:
    """Run the ONNX model on `feed` and compare with scikit-learn's outputs on the same rows.

    Classification: labels identical and probabilities within PROBABILITY_TOLERANCE; regression:
    values within REGRESSION_TOLERANCE. Raises TrainingRejectedError saying what differed, by how
    much and on how many rows.
    """
    name = contract.estimator.name
    try:
        session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))
    except Exception as error:  # onnxruntime raises its own exception types per failure
        raise TrainingRejectedError(f"{name}: onnxruntime cannot run the exported model: {error}") from error
    rows = len(expected_values)
    if contract.problem_type is ProblemType.CLASSIFICATION:
        labels = np.asarray(outputs[OUTPUT_LABEL]).ravel().astype(str)
        assert expected_labels is not None
        mismatched = int(np.sum(labels != expected_labels.astype(str)))
        if mismatched:
            raise TrainingRejectedError(
                f"{name}: ONNX labels differ from scikit-learn on {mismatched} of {rows} holdout rows"
            )
        got = np.asarray(outputs[OUTPUT_PROBABILITIES], dtype=np.float64)
        tolerance = np.full(expected_values.shape, PROBABILITY_TOLERANCE)
        what = "probabilities"
    else:
        got = np.asarray(outputs[OUTPUT_VALUE], dtype=np.float64).reshape(expected_values.shape)
        tolerance = REGRESSION_TOLERANCE * np.maximum(1.0, np.abs(expected_values))
        what = "predicted values"
    diff = np.abs(got - expected_values)
    max_diff = float(diff.max()) if diff.size else 0.0
    bad_rows = int(np.sum(np.any((diff > tolerance).reshape(rows, -1), axis=1))) if diff.size else 0
    if bad_rows or not np.all(np.isfinite(got)):
        raise TrainingRejectedError(
            f"{name}: ONNX {what} differ from scikit-learn by up to {max_diff:.3g} "
            f"(tolerance {PROBABILITY_TOLERANCE if what == 'probabilities' else REGRESSION_TOLERANCE:g}) "
            f"on {bad_rows} of {rows} holdout rows"
        )
    return Agreement(rows=rows, max_abs_diff=max_diff)
