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
from mlops.events import DatasetRef
from mlops.training.outcome import dataset_id_of
from mlops.validation.ledger import DatasetState, LedgerChange, LedgerEntry
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


def gzip_bomb(decompressed_bytes: int, header: str = "a,b,c") -> bytes:
    """A valid gzip member of CSV lines that inflates to `decompressed_bytes` (ratio ~1000)."""
    import zlib

    line = b"0,0,0\n"
    chunk = line * (1024 * 1024 // len(line))
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [squeeze.compress((header + "\n").encode())]
    for _ in range(max(decompressed_bytes // len(chunk), 1)):
        parts.append(squeeze.compress(chunk))
    parts.append(squeeze.flush())
    return b"".join(parts)


def flip_labels(frame: pd.DataFrame, share: float, *, column: str = "churned", seed: int = 1) -> pd.DataFrame:
    """A copy whose labels are flipped (no <-> yes) on `share` of the rows, chosen at random."""
    import numpy as np

    flipped = frame.copy()
    rows = np.random.default_rng(seed).random(len(frame)) < share
    flipped.loc[rows, column] = flipped.loc[rows, column].map({"no": "yes", "yes": "no"})
    return flipped


def flood_duplicates(frame: pd.DataFrame, copies: int, *, row: int = 0) -> pd.DataFrame:
    """`frame` plus `copies` exact copies of one of its rows."""
    return pd.concat([frame, frame.iloc[[row] * copies]], ignore_index=True)


def accepted_entry(ref: DatasetRef, *, model_name: str = "churn", at: str = "2026-12-01T00:00:00+00:00") -> LedgerEntry:
    """The ledger entry validation leaves for an accepted dataset `ref`."""
    return LedgerEntry(
        model_name=model_name,
        dataset_id=dataset_id_of(ref),
        state=DatasetState.ACCEPTED,
        bucket=ref.bucket,
        key=ref.key,
        version_id=ref.version_id,
        sha256=ref.sha256,
        size_bytes=ref.size_bytes,
        rows=ref.rows,
        report_key=f"reports/{model_name}/x.json",
        decided_at=at,
        history=[LedgerChange(at=at, state=DatasetState.ACCEPTED, actor="validate_dataset")],
    )


class InMemoryDatasetLedger:
    """DatasetLedger in memory, with the DynamoDB adapter's conditional semantics."""

    def __init__(self) -> None:

        self.entries: dict[tuple[str, str], LedgerEntry] = {}

    def get(self, model_name: str, dataset_id: str):  # type: ignore[no-untyped-def]
        return self.entries.get((model_name, dataset_id))

    def record(self, entry):  # type: ignore[no-untyped-def]
        return self.entries.setdefault((entry.model_name, entry.dataset_id), entry)

    def transition(self, entry, change, *, quarantine_key=None, model_version=None, artifact_sha256=None):  # type: ignore[no-untyped-def]
        from mlops.errors import ConflictError
        from mlops.validation.ledger import moved

        stored = self.entries[(entry.model_name, entry.dataset_id)]
        if stored.state is not entry.state:  # the conditional write the DynamoDB ledger makes
            raise ConflictError(f"{entry.dataset_id} is no longer {entry.state.value}")
        updated = moved(
            stored, change, quarantine_key=quarantine_key, model_version=model_version, artifact_sha256=artifact_sha256
        )
        self.entries[(entry.model_name, entry.dataset_id)] = updated
        return updated

    def by_state(self, model_name, state):  # type: ignore[no-untyped-def]
        found = [e for (m, _), e in self.entries.items() if m == model_name and e.state is state]
        return sorted(found, key=lambda e: (e.decided_at, e.dataset_id), reverse=True)

    def last_accepted(self, model_name):  # type: ignore[no-untyped-def]
        from mlops.validation.ledger import VALIDATED_STATES

        found = [e for state in VALIDATED_STATES for e in self.by_state(model_name, state)]
        return max(found, key=lambda e: (e.decided_at, e.dataset_id), default=None)


class RecordingNotifier:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def notify(self, subject: str, message: str) -> None:
        self.messages.append((subject, message))
