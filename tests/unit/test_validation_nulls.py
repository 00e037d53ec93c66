"""Nulls against the reference: compared as a null rate (the MISSING share in the shift checks),
never as "values the reference never had". A dataset identical to the accepted one is never held."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops.validation import DatasetValidator, Disposition, UploadedObject, ValidationReport
from mlops.validation.report import CheckName
from tests.support import datasets as ds
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher

BUCKET = "data"


class Gate:
    def __init__(self, nullable: tuple[str, ...]) -> None:
        self.store = InMemoryObjectStore()
        self.ledger = ds.InMemoryDatasetLedger()
        contract = json.loads(ds.churn_contract_bytes())
        for feature in contract["features"]:
            if feature["name"] in nullable:
                feature["nullable"] = True
        self.store.put_bytes(BUCKET, "contracts/churn.json", json.dumps(contract).encode())
        from mlops.validation.reference import ReferenceLoader

        self.validator = DatasetValidator(
            store=self.store,
            publisher=RecordingPublisher(),
            data_bucket=BUCKET,
            batch_rows=1_000,
            ledger=self.ledger,
            references=ReferenceLoader(
                registry=None, artifacts=None, ledger=self.ledger, reports=self.store, data_bucket=BUCKET
            ),
        )

    def validate(self, name: str, data: bytes):  # type: ignore[no-untyped-def]
        key = f"datasets/churn/{name}"
        version = self.store.put_bytes(BUCKET, key, data)
        return self.validator.validate(UploadedObject(BUCKET, key, version, len(data), "etag", "AWS:AIDAUPLOADER"))

    def report(self, outcome) -> ValidationReport:  # type: ignore[no-untyped-def]
        return ValidationReport.model_validate_json(self.store.get_bytes(BUCKET, outcome.report_key))


def _with_nulls(frame: pd.DataFrame, columns: tuple[str, ...], share: float, seed: int = 5) -> pd.DataFrame:
    changed = frame.copy()
    rng = np.random.default_rng(seed)
    for column in columns:
        changed[column] = changed[column].astype(object)
        changed.loc[rng.random(len(changed)) < share, column] = None
    return changed


@pytest.mark.parametrize(
    ("columns", "write"),
    [
        (("plan",), ds.to_csv),
        (("plan",), ds.to_parquet),
        (("plan", "region", "data_usage_gb"), ds.to_csv),
        (("data_usage_gb",), ds.to_csv),
    ],
    ids=["categorical-csv", "categorical-parquet", "both-kinds-csv", "numeric-csv"],
)
def test_reupload_of_the_accepted_dataset_with_nulls_is_accepted(columns: tuple[str, ...], write) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an accepted dataset with 10% nulls in nullable columns
    gate = Gate(columns)
    data = write(_with_nulls(ds.churn_frame(2_000, seed=7), columns, 0.10))
    first = gate.validate("jan.csv" if write is ds.to_csv else "jan.parquet", data)
    assert first.disposition is Disposition.VALIDATED, first.reasons

    # WHEN the byte-identical file is uploaded again
    again = gate.validate("jan-again.csv" if write is ds.to_csv else "jan-again.parquet", data)

    # THEN it is accepted: no row has a value the reference never had
    assert again.disposition is Disposition.VALIDATED, again.reasons
    [out_of_range] = [c for c in gate.report(again).checks if c.name is CheckName.OUT_OF_RANGE]
    assert out_of_range.failing_rows == 0
    shifts = [c for c in gate.report(again).checks if c.name is CheckName.FEATURE_SHIFT]
    assert shifts
    assert all(c.value == pytest.approx(0.0, abs=1e-9) for c in shifts)


def test_null_rate_rise_in_a_categorical_is_held_as_a_shift_not_as_unseen_values() -> None:
    # GIVEN an accepted dataset with 5% nulls in `plan`
    gate = Gate(("plan",))
    assert gate.validate(
        "jan.csv", ds.to_csv(_with_nulls(ds.churn_frame(2_000, seed=7), ("plan",), 0.05))
    ).disposition is (Disposition.VALIDATED)

    # WHEN the next one has 40% nulls there
    outcome = gate.validate("feb.csv", ds.to_csv(_with_nulls(ds.churn_frame(1_500, seed=8), ("plan",), 0.40, seed=6)))

    # THEN it is held by the null rate (the MISSING share of plan's shift), not by "unseen" values
    assert outcome.disposition is Disposition.HELD, outcome.reasons
    checks = gate.report(outcome).checks
    [shift] = [c for c in checks if c.name is CheckName.FEATURE_SHIFT and c.column == "plan"]
    assert not shift.passed
    [out_of_range] = [c for c in checks if c.name is CheckName.OUT_OF_RANGE]
    assert out_of_range.passed
    assert "plan" not in out_of_range.details  # a few numeric values outside the reference, no null
