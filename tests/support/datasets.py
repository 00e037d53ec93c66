"""Dataset files for validation tests: the churn sample written as CSV / gzip CSV / Parquet bytes,
plus the mutations that break one rule each."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlops.contract import Contract, parse_contract
from mlops_local.handlers import REPO_ROOT
from mlops_local.sample_data import churn_dataset

CHURN_CONTRACT_PATH = Path(REPO_ROOT) / "contracts" / "churn.json"

Mutation = Callable[[pd.DataFrame], pd.DataFrame]


def churn_contract_bytes() -> bytes:
    return CHURN_CONTRACT_PATH.read_bytes()


def churn_contract() -> Contract:
    return parse_contract(churn_contract_bytes())


def churn_frame(rows: int = 300, *, seed: int = 7) -> pd.DataFrame:
    return churn_dataset(rows, seed=seed)


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def to_csv_gz(frame: pd.DataFrame) -> bytes:
    return gzip.compress(to_csv(frame), mtime=0)


def to_parquet(frame: pd.DataFrame, *, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, row_group_size=row_group_size)
    return sink.getvalue()


def set_cell(column: str, row: int, value: object) -> Mutation:
    """Set the cell of 1-based data row `row` (the row number the report names)."""

    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        changed = frame.copy()
        if changed[column].dtype != object:
            changed[column] = changed[column].astype(object)
        changed.loc[row - 1, column] = value
        return changed

    return mutate


def drop_column(column: str) -> Mutation:
    return lambda frame: frame.drop(columns=[column])


def add_column(column: str, value: object = 1) -> Mutation:
    return lambda frame: frame.assign(**{column: value})


def head(rows: int) -> Mutation:
    return lambda frame: frame.head(rows)


def duplicate_header_csv(frame: pd.DataFrame, column: str) -> bytes:
    """CSV whose header lists `column` twice (pandas would rename a duplicate)."""
    body = frame.assign(**{f"{column}__dup": frame[column]}).to_csv(index=False)
    return body.replace(f"{column}__dup", column, 1).encode()


def ragged_csv(frame: pd.DataFrame, row: int) -> bytes:
    """CSV whose data row `row` (1-based) has one field too few."""
    lines = to_csv(frame).decode().splitlines()
    lines[row] = lines[row].rsplit(",", 1)[0]
    return ("\n".join(lines) + "\n").encode()


def header_only_csv(frame: pd.DataFrame) -> bytes:
    return (",".join(frame.columns) + "\n").encode()


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]
