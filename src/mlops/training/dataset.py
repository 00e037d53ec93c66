"""Reading a dataset object into a frame with the contract's types, and shaping it for the model."""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import pandas as pd

from mlops.contract import Contract, FeatureType, ProblemType, TargetMissing
from mlops.contract_rules import BOOLEAN_TEXT, label_reader
from mlops.errors import DatasetError
from mlops.training.onnx_io import MISSING_CATEGORY, column_feed
from mlops.validation.checks import NUMBER_PATTERN

CSV_BLOCK_BYTES = 4 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
_NUMBER = re.compile(NUMBER_PATTERN, re.IGNORECASE)


def read_dataset(stream_or_bytes: bytes | IO[bytes], key: str, contract: Contract) -> pd.DataFrame:
    """Read CSV, gzipped CSV or Parquet (by the key's suffix) into the contract's columns and types.

    Numeric features are float64 (NaN for nulls), booleans are bool or, when nullable, object
    True/False/None, categoricals and classification targets are object str/None.
    Rows without a target are left out when the contract says `target.missing: drop`.
    Raises DatasetError when the format is unknown, a column is missing or a value does not parse
    (naming the column and the data row, counted from 1 as validation's report counts them).

    Columnar: pyarrow reads only the contract's columns, numbers straight to float64 and text
    dictionary-encoded, so each distinct value is converted once and no string is made per cell.
    CSV is read as validation read it: the contract's delimiter (or the header's), encoding and
    null spellings (scripts/bench_training_scale.py, mlops.training.capacity).
    """
    raw = _read_raw(stream_or_bytes, key, contract)
    missing = [c for c in contract.columns if c not in raw.columns]
    if missing:
        raise DatasetError(f"{key}: missing columns {missing}")
    frame = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    for feature in contract.features:
        frame[feature.name] = _typed(raw.pop(feature.name), feature.type, key)
    target = raw.pop(contract.target.name)
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
    (MISSING_CATEGORY for nulls). Training fits on this frame, so scikit-learn and ONNX see
    bit-identical inputs.

    Columns as read_dataset types them are converted whole (float64 -> float32 is the cast
    column_feed makes of each value); any other column goes value by value through column_feed."""
    # copy=False: one block per column, not a consolidated copy of them all (the peak doubled)
    return pd.DataFrame(
        {f.input_name: _feed(frame[f.name], f.type) for f in contract.features}, index=frame.index, copy=False
    )


def frame_feed(frame: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """The onnxruntime feed for a frame of features as read_dataset returns it (named as in the file)."""
    return inputs_feed(model_inputs(frame, contract), contract)


def inputs_feed(inputs: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """The onnxruntime feed for a frame model_inputs returned (named by graph input)."""
    return {f.input_name: inputs[f.input_name].to_numpy().reshape(-1, 1) for f in contract.features}


_WHOLE_COLUMN_NUMBERS = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(bool))


def _feed(column: pd.Series, feature_type: FeatureType) -> np.ndarray:
    if feature_type is FeatureType.CATEGORICAL:
        values = column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else column
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            # all text or null: column_feed's rule (null -> MISSING_CATEGORY, text as it is), whole-column
            feed = column.to_numpy(dtype=object, copy=True)
            feed[column.isna().to_numpy()] = MISSING_CATEGORY
            return feed
    elif column.dtype in _WHOLE_COLUMN_NUMBERS:
        return column.to_numpy().astype(np.float32)
    return column_feed(column.tolist(), feature_type).ravel()


def _read_raw(stream_or_bytes: bytes | IO[bytes], key: str, contract: Contract) -> pd.DataFrame:
    data = bytes(stream_or_bytes) if isinstance(stream_or_bytes, bytes | bytearray) else stream_or_bytes.read()
    lowered = key.lower()
    try:
        if lowered.endswith(".parquet"):
            return _read_parquet(io.BytesIO(data), contract)
        if lowered.endswith((".csv", ".csv.gz")):
            return _read_csv(data, lowered.endswith(".gz"), key, contract)
    except (ValueError, OSError, UnicodeDecodeError, EOFError) as error:  # pyarrow's errors are ValueError/OSError
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
    table = pq.read_table(source, columns=present, read_dictionary=text, use_threads=False)
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _read_csv(data: bytes, compressed: bool, key: str, contract: Contract) -> pd.DataFrame:
    """Only the contract's columns, with validation's reading rules: numbers as float64, the rest as
    dictionary-encoded text. A cell that is no number makes those columns re-read as text, so the
    conversion names the column and row (pyarrow's message names neither the row nor, by name, the column)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from mlops.validation.readers import NULL_TEXT, detect_delimiter

    rules = contract.data
    header = _first_line(data, compressed).decode(rules.csv_encoding).rstrip("\r\n")
    delimiter = rules.csv_delimiter or detect_delimiter(header)
    names = next(csv.reader([header], delimiter=delimiter), [])
    present = [c for c in contract.columns if c in names]
    if len(present) < len(contract.columns):
        return pd.DataFrame(columns=present)  # read_dataset names the missing ones; nothing to parse
    numeric = {f.name for f in contract.features if f.type is FeatureType.NUMERIC}
    if contract.problem_type is ProblemType.REGRESSION:
        numeric.add(contract.target.name)

    text = pa.dictionary(pa.int32(), pa.string())
    # Measured at 1M rows: one thread and the system allocator peak at 91 MiB above the bytes for a
    # 34 MiB table, four threads and pyarrow's default pool at 125 MiB, in the same time on 2 cores.
    pool = pa.system_memory_pool()

    def read(as_numbers: set[str]) -> pd.DataFrame:
        source = pa.BufferReader(data)
        stream = pa.CompressedInputStream(source, "gzip") if compressed else source
        table = pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(encoding=rules.csv_encoding, block_size=CSV_BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=present,
                column_types={c: pa.float64() if c in as_numbers else text for c in present},
                null_values=list(NULL_TEXT),
                strings_can_be_null=True,
            ),
            memory_pool=pool,
        )
        return table.to_pandas(memory_pool=pool, self_destruct=True, split_blocks=True)

    try:
        return read(numeric)
    except pa.ArrowInvalid:
        if not numeric:
            raise
        return read(set())  # as text: _numbers names the cell that is no number


def _first_line(data: bytes, compressed: bool) -> bytes:
    if not compressed:
        return data.split(b"\n", 1)[0]
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
        return unzipped.readline(MAX_HEADER_BYTES)


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
    """`convert` applied to each cell, as an object Series; once per distinct value of a categorical.
    A DatasetError of `convert` is raised again naming the first data row (from 1) holding the value."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        converted = []
        for index, value in enumerate(column.cat.categories.tolist()):
            try:
                converted.append(convert(value))
            except DatasetError as error:
                raise DatasetError(f"{error} (data row {int(np.argmax(codes == index)) + 1})") from None
        table = np.array([*converted, None], dtype=object)
        return pd.Series(table[codes], dtype=object)  # code -1 (no value) -> None
    values = []
    for row, value in enumerate(column.tolist(), start=1):
        try:
            values.append(convert(value))
        except DatasetError as error:
            raise DatasetError(f"{error} (data row {row})") from None
    return pd.Series(values, dtype=object)


def _numbers(column: pd.Series, name: str, key: str) -> pd.Series:
    if column.dtype == np.float64:
        return pd.Series(column.to_numpy(), dtype=np.float64)
    if pd.api.types.is_numeric_dtype(column.dtype):  # Parquet ints (nullable too) and booleans
        return pd.Series(column.astype(np.float64).to_numpy(), dtype=np.float64)
    numbers = _per_value(column, lambda v: _number(v, name, key))
    return pd.Series(numbers.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _number(value: object, name: str, key: str) -> float:
    """A text cell as validation's type check reads it: trimmed, empty is null, NUMBER_PATTERN."""
    if value is None or value is pd.NA or isinstance(value, float | int | np.number):
        return np.nan if value is None or value is pd.NA else float(value)  # type: ignore[arg-type]
    trimmed = str(value).strip()
    if not trimmed:
        return np.nan
    if _NUMBER.match(trimmed):
        return float(trimmed)
    raise DatasetError(f"{key}: column {name!r} is not numeric: {value!r} is not a number")


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
