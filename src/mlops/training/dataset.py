"""Reading a dataset object into a frame with the contract's types, and shaping it for the model."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import pandas as pd

from mlops.contract import Contract, FeatureType, ProblemType, TargetMissing
from mlops.contract_rules import BOOLEAN_TEXT, label_reader
from mlops.errors import DatasetError
from mlops.training.onnx_io import MISSING_CATEGORY, column_feed


def read_dataset(stream_or_bytes: bytes | IO[bytes], key: str, contract: Contract) -> pd.DataFrame:
    """Read CSV, gzipped CSV or Parquet (by the key's suffix) into the contract's columns and types.

    Numeric features are float64 (NaN for nulls), booleans are bool or, when nullable, object
    True/False/None, categoricals and classification targets are object str/None.
    Rows without a target are left out when the contract says `target.missing: drop`.
    Raises DatasetError when the format is unknown, a column is missing or a value does not parse.

    Memory: only the contract's columns are read; CSV numbers are parsed straight to float64 and
    text to pandas categoricals (one string object per distinct value, not per cell), and each
    distinct value is converted once (scripts/bench_training_memory.py, mlops.training.budget).
    """
    raw = _read_raw(stream_or_bytes, key, contract)
    missing = [c for c in contract.columns if c not in raw.columns]
    if missing:
        raise DatasetError(f"{key}: missing columns {missing}")
    frame = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    for feature in contract.features:
        frame[feature.name] = _typed(raw[feature.name], feature.type, key)
    target = raw[contract.target.name]
    if contract.problem_type is ProblemType.CLASSIFICATION:
        frame[contract.target.name] = _labels(target, label_reader(contract.target.classes or ()))
    else:
        frame[contract.target.name] = _numbers(target, contract.target.name, key)
    if contract.target.missing is TargetMissing.DROP:  # validation counted them in its report
        frame = frame[frame[contract.target.name].notna()].reset_index(drop=True)
    return frame


def model_inputs(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The feature columns exactly as the ONNX graph receives them, named by graph input name
    (`Feature.input_name`): float32 numbers (booleans as 0/1, NaN for nulls) and strings
    (MISSING_CATEGORY for nulls). Training fits on this frame, so
    scikit-learn and ONNX see bit-identical inputs."""
    return pd.DataFrame(
        {f.input_name: column_feed(frame[f.name].tolist(), f.type).ravel() for f in contract.features},
        index=frame.index,
    ).astype({f.input_name: np.float32 for f in contract.features if f.type is not FeatureType.CATEGORICAL})


def frame_feed(frame: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """The onnxruntime feed for a frame of features as read_dataset returns it (named as in the file)."""
    return inputs_feed(model_inputs(frame, contract), contract)


def inputs_feed(inputs: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """The onnxruntime feed for a frame model_inputs returned (named by graph input)."""
    return {f.input_name: inputs[f.input_name].to_numpy().reshape(-1, 1) for f in contract.features}


def _read_raw(stream_or_bytes: bytes | IO[bytes], key: str, contract: Contract) -> pd.DataFrame:
    source: Any = io.BytesIO(stream_or_bytes) if isinstance(stream_or_bytes, bytes | bytearray) else stream_or_bytes
    lowered = key.lower()
    try:
        if lowered.endswith(".parquet"):
            if not isinstance(source, io.BytesIO):  # pyarrow needs a seekable file
                source = io.BytesIO(source.read())
            return _read_parquet(source, contract)
        if lowered.endswith((".csv", ".csv.gz")):
            return _read_csv(source, key, contract)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise DatasetError(f"{key}: cannot read: {error}") from None
    raise DatasetError(f"{key}: unsupported format; expected one of .csv, .csv.gz, .parquet")


def _read_parquet(source: io.BytesIO, contract: Contract) -> pd.DataFrame:
    """Only the contract's columns; text columns as dictionaries, so pandas gets categoricals."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(source)
    source.seek(0)
    present = [c for c in contract.columns if c in schema.names]
    text = [
        c for c in present if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)
    ]
    return pq.read_table(source, columns=present, read_dictionary=text).to_pandas()


def _read_csv(source: Any, key: str, contract: Contract) -> pd.DataFrame:
    """Only the contract's columns; numbers as float64 ("" is null), the rest as categoricals of text.
    A cell that is no number makes it re-read as text, so the conversion names column and value."""
    compression = "gzip" if key.lower().endswith(".gz") else None
    numeric = {f.name for f in contract.features if f.type is FeatureType.NUMERIC}
    if contract.problem_type is ProblemType.REGRESSION:
        numeric.add(contract.target.name)
    wanted = set(contract.columns)
    start = source.tell() if source.seekable() else None

    def read(as_numbers: set[str]) -> pd.DataFrame:
        return pd.read_csv(
            source,
            usecols=lambda name: name in wanted,
            dtype={c: (np.float64 if c in as_numbers else "category") for c in wanted},
            na_values={c: [""] for c in as_numbers},
            keep_default_na=False,
            compression=compression,
        )

    try:
        return read(numeric)
    except ValueError:
        if start is None or not numeric:
            raise
        source.seek(start)
        return read(set())


def _is_null(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == ""


def _typed(column: pd.Series, feature_type: FeatureType, key: str) -> pd.Series:
    if feature_type is FeatureType.NUMERIC:
        return _numbers(column, str(column.name), key)
    if feature_type is FeatureType.BOOLEAN:
        values = _per_value(column, lambda v: None if _is_null(v) else _boolean(v, str(column.name), key))
        if values.isna().any():
            return values
        return values.astype(bool)
    return _per_value(column, lambda v: None if _is_null(v) else _text(v))


def _per_value(column: pd.Series, convert: Any) -> pd.Series:
    """`convert` applied to each cell, as an object Series; once per distinct value of a categorical."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        table = np.array([*(convert(v) for v in column.cat.categories.tolist()), None], dtype=object)
        return pd.Series(table[column.cat.codes.to_numpy()], dtype=object)  # code -1 (no value) -> None
    return pd.Series([convert(v) for v in column.tolist()], dtype=object)


def _numbers(column: pd.Series, name: str, key: str) -> pd.Series:
    if column.dtype == np.float64:
        return pd.Series(column.to_numpy(), dtype=np.float64)
    if pd.api.types.is_numeric_dtype(column.dtype):  # Parquet ints (nullable too) and booleans
        return pd.Series(column.astype(np.float64).to_numpy(), dtype=np.float64)
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


def _labels(column: pd.Series, read_label: Callable[[str], str] | None = None) -> pd.Series:
    """Class labels as text; `read_label` reads integer and boolean classes ("True" -> "true")."""
    read = read_label or str
    return _per_value(column, lambda v: None if _is_null(v) else read(_text(v)))


__all__ = ["MISSING_CATEGORY", "frame_feed", "inputs_feed", "model_inputs", "read_dataset"]
