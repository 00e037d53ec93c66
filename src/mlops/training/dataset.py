"""Reading a dataset object into a frame with the contract's types, and shaping it for the model."""

from __future__ import annotations

import io
from typing import IO, Any

import numpy as np
import pandas as pd

from mlops.contract import Contract, FeatureType, ProblemType
from mlops.contract_rules import BOOLEAN_TEXT
from mlops.errors import DatasetError
from mlops.training.onnx_io import MISSING_CATEGORY, column_feed


def read_dataset(stream_or_bytes: bytes | IO[bytes], key: str, contract: Contract) -> pd.DataFrame:
    """Read CSV, gzipped CSV or Parquet (by the key's suffix) into the contract's columns and types.

    Numeric features are float64 (NaN for nulls), booleans are bool or, when nullable, object
    True/False/None, categoricals and classification targets are object str/None.
    Raises DatasetError when the format is unknown, a column is missing or a value does not parse.
    """
    raw = _read_raw(stream_or_bytes, key)
    missing = [c for c in contract.columns if c not in raw.columns]
    if missing:
        raise DatasetError(f"{key}: missing columns {missing}")
    frame = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    for feature in contract.features:
        frame[feature.name] = _typed(raw[feature.name], feature.type, key)
    target = raw[contract.target.name]
    if contract.problem_type is ProblemType.CLASSIFICATION:
        frame[contract.target.name] = _labels(target)
    else:
        frame[contract.target.name] = _numbers(target, contract.target.name, key)
    return frame


def model_inputs(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The feature columns exactly as the ONNX graph receives them: float32 numbers (booleans as
    0/1, NaN for nulls) and strings (MISSING_CATEGORY for nulls). Training fits on this frame, so
    scikit-learn and ONNX see bit-identical inputs."""
    return pd.DataFrame(
        {f.name: column_feed(frame[f.name].tolist(), f.type).ravel() for f in contract.features},
        index=frame.index,
    ).astype({f.name: np.float32 for f in contract.features if f.type is not FeatureType.CATEGORICAL})


def frame_feed(frame: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """The onnxruntime feed for a frame of features (as returned by read_dataset or model_inputs)."""
    inputs = model_inputs(frame, contract)
    return {f.name: inputs[f.name].to_numpy().reshape(-1, 1) for f in contract.features}


def _read_raw(stream_or_bytes: bytes | IO[bytes], key: str) -> pd.DataFrame:
    source: Any = io.BytesIO(stream_or_bytes) if isinstance(stream_or_bytes, bytes | bytearray) else stream_or_bytes
    lowered = key.lower()
    try:
        if lowered.endswith(".parquet"):
            if not isinstance(source, io.BytesIO):  # pyarrow needs a seekable file
                source = io.BytesIO(source.read())
            return pd.read_parquet(source)
        if lowered.endswith((".csv", ".csv.gz")):
            compression = "gzip" if lowered.endswith(".gz") else None
            return pd.read_csv(source, dtype=str, keep_default_na=False, compression=compression)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise DatasetError(f"{key}: cannot read: {error}") from None
    raise DatasetError(f"{key}: unsupported format; expected one of .csv, .csv.gz, .parquet")


def _is_null(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == ""


def _typed(column: pd.Series, feature_type: FeatureType, key: str) -> pd.Series:
    if feature_type is FeatureType.NUMERIC:
        return _numbers(column, str(column.name), key)
    if feature_type is FeatureType.BOOLEAN:
        values = [None if _is_null(v) else _boolean(v, str(column.name), key) for v in column.tolist()]
        if any(v is None for v in values):
            return pd.Series(values, dtype=object)
        return pd.Series(values, dtype=bool)
    return pd.Series([None if _is_null(v) else _text(v) for v in column.tolist()], dtype=object)


def _numbers(column: pd.Series, name: str, key: str) -> pd.Series:
    cleaned = [np.nan if _is_null(v) else v for v in column.tolist()]
    try:
        return pd.Series(pd.to_numeric(pd.Series(cleaned, dtype=object), errors="raise"), dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise DatasetError(f"{key}: column {name!r} is not numeric: {error}") from None


def _boolean(value: object, name: str, key: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    truth = BOOLEAN_TEXT.get(str(value).strip().lower())
    if truth is not None:
        return truth
    raise DatasetError(f"{key}: column {name!r}: {value!r} is not a boolean")


def _text(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # a Parquet float column of class ids 1.0 -> "1"
    return str(value)


def _labels(column: pd.Series) -> pd.Series:
    return pd.Series([None if _is_null(v) else _text(v) for v in column.tolist()], dtype=object)


__all__ = ["MISSING_CATEGORY", "frame_feed", "model_inputs", "read_dataset"]
