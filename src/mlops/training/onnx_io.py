"""How data meets the exported ONNX graph: one graph input per feature, named by its `input_name`
(the column's own name when it is an identifier, else a slug and hash of it).

- numeric and boolean features: float32 tensors of shape [N, 1]; booleans as 0.0/1.0, nulls as NaN
  (the graph's median imputer fills them);
- categorical features: string tensors of shape [N, 1]; nulls as `MISSING_CATEGORY` (the constant
  the training imputer fills with, so training and serving see the same value).

Only numpy: the inference function imports this module and its layer has no pandas/scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.contract_rules import BOOLEAN_TEXT, MISSING_CATEGORY, FeatureRule, FeatureType
from mlops.errors import RecordError

if TYPE_CHECKING:  # the predict function imports this module; it never parses a pydantic contract
    from mlops.contract import Contract

__all__ = [
    "META_CLASSES",
    "META_CONTRACT_DIGEST",
    "META_INPUTS",
    "META_MODEL_NAME",
    "META_PROBLEM_TYPE",
    "MISSING_CATEGORY",
    "OUTPUT_LABEL",
    "OUTPUT_PROBABILITIES",
    "OUTPUT_VALUE",
    "column_feed",
    "input_kind",
    "input_metadata",
    "onnx_input_feed",
]

# ONNX metadata_props keys (the inference function reads these)
META_MODEL_NAME = "mlops.model_name"
META_PROBLEM_TYPE = "mlops.problem_type"
META_CLASSES = "mlops.classes"
META_INPUTS = "mlops.inputs"
META_CONTRACT_DIGEST = "mlops.contract_digest"

# output names of the graph
OUTPUT_LABEL = "label"
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_VALUE = "variable"


def input_kind(feature_type: FeatureType) -> str:
    """'float' or 'string': the element type of the graph input for a feature."""
    return "string" if feature_type is FeatureType.CATEGORICAL else "float"


def input_metadata(rule: FeatureRule) -> dict[str, str]:
    """A graph input as `META_INPUTS` lists it: its name, type, and the column it reads when they differ."""
    entry = {"name": rule.input_name, "type": input_kind(rule.type)}
    if rule.input_name != rule.name:
        entry["column"] = rule.name
    return entry


def onnx_input_feed(records: Sequence[Mapping[str, Any]], contract: Contract) -> dict[str, np.ndarray]:
    """Map JSON records (keyed by column name) onto the graph inputs: {input name: array of shape [N, 1]}.

    Missing keys and nulls are treated alike. Raises RecordError naming the record and field when a
    value cannot be represented (a non-numeric number, an unrecognised boolean).
    """
    feed: dict[str, np.ndarray] = {}
    for feature in contract.features:
        values = [record.get(feature.name) for record in records]
        try:
            feed[feature.input_name] = column_feed(values, feature.type)
        except _BadValue as bad:
            raise RecordError(
                f"record {bad.index}: field {feature.name!r}: {bad.value!r} is not a valid {feature.type.value} value"
            ) from None
    return feed


def column_feed(values: Iterable[Any], feature_type: FeatureType) -> np.ndarray:
    """One column of values (None/NaN for nulls) as the [N, 1] array its graph input expects."""
    if feature_type is FeatureType.CATEGORICAL:
        strings = [MISSING_CATEGORY if _is_null(v) else _category_text(v) for v in values]
        return np.array(strings, dtype=object).reshape(-1, 1)
    convert = _boolean if feature_type is FeatureType.BOOLEAN else _number
    numbers = []
    for index, value in enumerate(values):
        try:
            numbers.append(convert(value))
        except (TypeError, ValueError):
            raise _BadValue(index, value) from None
    return np.array(numbers, dtype=np.float32).reshape(-1, 1)


class _BadValue(Exception):
    def __init__(self, index: int, value: object) -> None:
        super().__init__(index, value)
        self.index = index
        self.value = value


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _category_text(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def _number(value: object) -> float:
    if _is_null(value):
        return math.nan
    if isinstance(value, bool | np.bool_):
        return 1.0 if value else 0.0
    return float(value)  # type: ignore[arg-type]


def _boolean(value: object) -> float:
    if _is_null(value):
        return math.nan
    if isinstance(value, bool | np.bool_):
        return 1.0 if value else 0.0
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return float(value)
    if isinstance(value, str):
        truth = BOOLEAN_TEXT.get(value.strip().lower())
        if truth is not None:
            return 1.0 if truth else 0.0
    raise ValueError(value)
