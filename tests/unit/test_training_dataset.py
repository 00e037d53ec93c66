"""Reading datasets with the contract's types (CSV, gzipped CSV, Parquet)."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.contract import parse_contract
from mlops.errors import DatasetError
from mlops.training import read_dataset
from mlops.training.dataset import model_inputs
from mlops.training.onnx_io import column_feed
from mlops_local.sample_data import churn_dataset

CONTRACT = parse_contract((Path(__file__).resolve().parents[2] / "contracts" / "churn.json").read_text())


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def as_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("key", "encode"),
    [
        ("datasets/churn/a.csv", as_csv),
        ("datasets/churn/a.csv.gz", lambda f: gzip.compress(as_csv(f), mtime=0)),
        ("datasets/churn/a.parquet", as_parquet),
    ],
)
def test_read_dataset_formats_give_the_same_typed_frame(key: str, encode) -> None:
    source = churn_dataset(50)
    source["extra_column"] = 1  # columns outside the contract are dropped
    frame = read_dataset(encode(source), key, CONTRACT)
    assert list(frame.columns) == CONTRACT.columns
    assert frame["tenure_months"].dtype == np.float64
    assert frame["data_usage_gb"].isna().sum() == source["data_usage_gb"].isna().sum()
    assert frame["autopay"].dtype == bool
    assert frame["autopay"].tolist() == source["autopay"].tolist()
    assert frame["plan"].tolist() == source["plan"].tolist()
    assert frame["churned"].tolist() == source["churned"].tolist()


def test_read_dataset_accepts_a_stream() -> None:
    frame = read_dataset(io.BytesIO(as_parquet(churn_dataset(20))), "datasets/churn/a.parquet", CONTRACT)
    assert len(frame) == 20


def test_read_dataset_nulls_in_csv() -> None:
    text = (
        "tenure_months,monthly_charges,support_calls,data_usage_gb,plan,region,autopay,churned\n"
        "1,30,0,,basic,,true,no\n"
        "2,40,1,5.5,,north,,yes\n"
    )
    frame = read_dataset(text.encode(), "datasets/churn/n.csv", CONTRACT)
    assert np.isnan(frame.loc[0, "data_usage_gb"])
    assert frame["region"].tolist() == [None, "north"]
    assert frame["plan"].tolist() == ["basic", None]
    assert frame["autopay"].tolist() == [True, None]
    inputs = model_inputs(frame, CONTRACT)
    assert inputs["region"].tolist() == ["__missing__", "north"]
    assert np.isnan(inputs.loc[1, "autopay"])
    assert inputs["autopay"].dtype == np.float32


def test_read_dataset_classification_labels_are_text() -> None:
    contract = parse_contract(
        {**json.loads(CONTRACT.model_dump_json()), "target": {"name": "churned", "classes": ["0", "1"]}}
    )
    source = churn_dataset(10)
    source["churned"] = (source["churned"] == "yes").astype(float)  # 0.0/1.0 in Parquet
    frame = read_dataset(as_parquet(source), "datasets/churn/a.parquet", contract)
    assert set(frame["churned"]) <= {"0", "1"}


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        (b"tenure_months\n1\n", "datasets/churn/a.csv", "missing columns"),
        (b"x", "datasets/churn/a.json", "unsupported format"),
        (b"not parquet", "datasets/churn/a.parquet", "cannot read"),
    ],
)
def test_read_dataset_rejects_unreadable_data(data: bytes, key: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        read_dataset(data, key, CONTRACT)


def test_read_dataset_rejects_a_non_numeric_value() -> None:
    source = churn_dataset(5).astype({"tenure_months": object})
    source.loc[2, "tenure_months"] = "ten"
    with pytest.raises(DatasetError, match="'tenure_months' is not numeric"):
        read_dataset(as_csv(source), "datasets/churn/a.csv", CONTRACT)


def test_read_dataset_rejects_a_non_boolean_value() -> None:
    source = churn_dataset(5).astype({"autopay": object})
    source.loc[1, "autopay"] = "sometimes"
    with pytest.raises(DatasetError, match="'autopay': 'sometimes' is not a boolean"):
        read_dataset(as_csv(source), "datasets/churn/a.csv", CONTRACT)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_read_dataset_holds_a_dataset_in_few_bytes_per_cell(suffix: str) -> None:
    # GIVEN 20k rows x 8 columns (4 numeric, 3 text with few distinct values, 1 boolean)
    rows = 20_000
    sample = churn_dataset(rows)
    data = sample.to_csv(index=False).encode() if suffix == "csv" else sample.to_parquet(index=False)
    tracemalloc.start()
    try:
        frame = read_dataset(data, f"datasets/churn/big.{suffix}", CONTRACT)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(frame) == rows
    # THEN no Python string per cell (about 60 bytes each): numbers as float64, text shared per
    # distinct value; this is what lets train_model's memory hold millions of rows (training/capacity.py)
    cells = rows * len(CONTRACT.columns)
    assert held / cells < 12
    assert peak / cells < 20


def _contract_with(**data: object):
    return parse_contract({**json.loads(CONTRACT.model_dump_json()), "data": {"min_rows": 1, **data}})


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [({}, ";"), ({"csv_delimiter": "|"}, "|"), ({}, "\t")],
)
def test_read_dataset_reads_a_csv_with_the_delimiter_validation_read_it_with(data: dict, delimiter: str) -> None:
    # GIVEN a CSV validation accepts: the contract's delimiter, or the one its header shows
    source = churn_dataset(30)
    contract = _contract_with(**data)
    frame = read_dataset(source.to_csv(index=False, sep=delimiter).encode(), "datasets/churn/a.csv", contract)
    # THEN training reads the same values as from a comma-separated file
    expected = read_dataset(as_csv(source), "datasets/churn/a.csv", CONTRACT)
    pd.testing.assert_frame_equal(frame, expected)


def test_read_dataset_reads_nulls_spelled_as_validation_reads_them() -> None:
    # GIVEN nulls spelled NA, NULL, N/A, null (validation counts them as nulls, not values)
    text = (
        "tenure_months,monthly_charges,support_calls,data_usage_gb,plan,region,autopay,churned\n"
        "1,30,0,NA,basic,NULL,true,no\n"
        "2,40,1,N/A,standard,null,NA,yes\n"
        "3,50,2, 7.5 ,premium,north,false,no\n"
    )
    frame = read_dataset(text.encode(), "datasets/churn/n.csv", CONTRACT)
    # THEN they are nulls for training too: no "NULL" category learned, no numeric column refused
    assert frame["data_usage_gb"].isna().tolist() == [True, True, False]
    assert frame.loc[2, "data_usage_gb"] == 7.5
    assert frame["region"].tolist() == [None, None, "north"]
    assert frame["autopay"].tolist() == [True, None, False]


def test_read_dataset_reads_the_contracts_encoding() -> None:
    contract = _contract_with(csv_encoding="latin-1")
    source = churn_dataset(10)
    source["region"] = "são paulo"  # not UTF-8 once encoded as latin-1
    data = source.to_csv(index=False).encode("latin-1")
    frame = read_dataset(data, "datasets/churn/a.csv", contract)
    assert set(frame["region"]) == {"são paulo"}


@pytest.mark.parametrize(
    ("column", "bad", "message"),
    [
        ("tenure_months", "ten", r"column 'tenure_months' is not numeric: 'ten' is not a number \(data row 3\)"),
        ("autopay", "sometimes", r"column 'autopay': 'sometimes' is not a boolean \(data row 3\)"),
    ],
)
@pytest.mark.parametrize("suffix", ["csv", "csv.gz"])  # Parquet columns are typed: no such cell
def test_read_dataset_names_the_column_and_data_row_of_a_bad_value(
    column: str, bad: str, message: str, suffix: str
) -> None:
    source = churn_dataset(6).astype({column: object})
    source.loc[2, column] = bad  # the third data row
    encoded = as_csv(source) if suffix == "csv" else gzip.compress(as_csv(source))
    with pytest.raises(DatasetError, match=message):
        read_dataset(encoded, f"datasets/churn/a.{suffix}", CONTRACT)


def test_read_dataset_csv_and_parquet_give_identical_frames() -> None:
    source = churn_dataset(500)
    pd.testing.assert_frame_equal(
        read_dataset(as_csv(source), "datasets/churn/a.csv", CONTRACT),
        read_dataset(as_parquet(source), "datasets/churn/a.parquet", CONTRACT),
    )


@given(
    numbers=st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64)), min_size=1),
    flags=st.data(),
)
def test_model_inputs_are_what_column_feed_gives_the_graph_value_by_value(numbers: list, flags) -> None:
    # training fits on model_inputs, the graph receives column_feed: bit-identical, whatever the values
    rows = len(numbers)
    booleans = flags.draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    texts = flags.draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "é"])), min_size=rows, max_size=rows))
    frame = churn_dataset(rows).reset_index(drop=True)
    frame["tenure_months"] = pd.Series(numbers, dtype=np.float64)
    frame["autopay"] = pd.Series(booleans, dtype=bool)
    frame["region"] = pd.Series(texts, dtype=object)
    inputs = model_inputs(frame, CONTRACT)
    for feature in CONTRACT.features:
        expected = column_feed(frame[feature.name].tolist(), feature.type).ravel()
        actual = inputs[feature.name].to_numpy()
        assert actual.dtype == expected.dtype, feature.name
        if expected.dtype == np.float32:
            assert actual.tobytes() == expected.tobytes(), feature.name
        else:
            assert actual.tolist() == expected.tolist(), feature.name


def test_read_dataset_names_missing_columns_without_parsing_the_others() -> None:
    # a header with none of the contract's columns: pyarrow's include_columns=[] would read every column
    with pytest.raises(DatasetError, match=r"missing columns \['tenure_months'"):
        read_dataset(b"a,b\n1,x\n2,y\n", "datasets/churn/a.csv", CONTRACT)
