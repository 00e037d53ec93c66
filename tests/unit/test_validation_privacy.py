"""Raw cell values of bad rows stay out of every output (logs, notices, events, ledger, report,
summary) unless the contract marks the feature `show_values: true`: the outputs name the check,
the row numbers, the kind of value and the counts."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pytest

from mlops.contract import parse_contract
from mlops.validation import DatasetValidator, Disposition, UploadedObject, ValidationReport
from mlops.validation.report import CheckName, summary_text
from tests.support import datasets as ds
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher

BUCKET = "data"


@dataclass
class Leak:
    id: str
    build: Callable[[], bytes]
    secret: str  # a raw value that must not show
    check: CheckName
    column: str | None
    row: int | None  # the row the outputs must still name
    kind: str = ""  # the kind of value the outputs name instead


def _csv(column: str, row: int, value: object) -> Callable[[], bytes]:
    return lambda: ds.to_csv(ds.set_cell(column, row, value)(ds.churn_frame(300)))


def _ragged() -> bytes:
    lines = ds.to_csv(ds.churn_frame(300)).decode().splitlines()
    lines[5] = "12,SECRET-RAGGED-ROW,3"
    return ("\n".join(lines) + "\n").encode()


LEAKS = [
    Leak(
        "text in numeric",
        _csv("tenure_months", 3, "SECRET-abc"),
        "SECRET-abc",
        CheckName.TYPE,
        "tenure_months",
        3,
        "text",
    ),
    Leak("unknown category", _csv("plan", 2, "SECRET-gold"), "SECRET-gold", CheckName.CATEGORIES, "plan", 2, "text"),
    Leak("not a boolean", _csv("autopay", 7, "SECRET-maybe"), "SECRET-maybe", CheckName.TYPE, "autopay", 7, "text"),
    Leak(
        "unknown class", _csv("churned", 9, "SECRET-perhaps"), "SECRET-perhaps", CheckName.TARGET, "churned", 9, "text"
    ),
    Leak(
        "out of range",
        _csv("monthly_charges", 4, 987654.321),
        "987654.321",
        CheckName.RANGE,
        "monthly_charges",
        4,
        "number",
    ),
    Leak("ragged row", _ragged, "SECRET-RAGGED-ROW", CheckName.READABLE, None, None),
]


class Capture:
    def __init__(self, contract: bytes) -> None:
        self.store = InMemoryObjectStore()
        self.store.put_bytes(BUCKET, "contracts/churn.json", contract)
        self.publisher = RecordingPublisher()
        self.ledger = ds.InMemoryDatasetLedger()
        self.notifier = ds.RecordingNotifier()
        self.validator = DatasetValidator(
            store=self.store,
            publisher=self.publisher,
            data_bucket=BUCKET,
            batch_rows=1_000,
            ledger=self.ledger,
            notifier=self.notifier,
        )

    def validate(self, data: bytes):  # type: ignore[no-untyped-def]
        key = "datasets/churn/upload.csv"
        version = self.store.put_bytes(BUCKET, key, data)
        return self.validator.validate(UploadedObject(BUCKET, key, version, len(data), "etag", "AWS:AIDAUPLOADER"))

    def outputs(self, logs: str) -> dict[str, str]:
        """Everything the validation wrote or sent, as text."""
        written = {
            key: data.decode() for (_, key), (data, _, _) in self.store.objects.items() if key.startswith("reports/")
        }
        return {
            "logs": logs,
            "events": json.dumps([detail.model_dump(mode="json") for _, detail in self.publisher.events]),
            "notices": json.dumps(self.notifier.messages),
            "ledger": json.dumps([e.model_dump(mode="json") for e in self.ledger.entries.values()]),
            **written,
        }


def _contract(show_values: tuple[str, ...] = ()) -> bytes:
    document = json.loads(ds.churn_contract_bytes())
    for feature in document["features"]:
        if feature["name"] in show_values:
            feature["show_values"] = True
    return json.dumps(document).encode()


@pytest.mark.parametrize("case", LEAKS, ids=[c.id for c in LEAKS])
def test_bad_row_values_reach_no_output(case: Leak, caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a dataset with one bad cell in a column the contract does not mark safe to show
    world = Capture(_contract())
    caplog.set_level(logging.DEBUG)

    # WHEN it is validated
    outcome = world.validate(case.build())

    # THEN no output quotes the value ...
    assert outcome.disposition is Disposition.QUARANTINED
    outputs = world.outputs(caplog.text)
    for where, text in outputs.items():
        assert case.secret not in text, f"{case.secret!r} leaked into {where}"
    # ... yet the report still says which check, which row and what kind of value
    report = ValidationReport.model_validate_json(world.store.get_bytes(BUCKET, outcome.report_key))
    [check] = [c for c in report.checks if not c.passed and c.name is case.check and c.column == case.column]
    if case.row is not None:
        assert check.failing_rows == 1
        assert [(o.row, o.kind, o.value) for o in check.first_offending] == [(case.row, case.kind, None)]
        assert f"row {case.row} ({case.kind})" in check.details
        assert f"row {case.row} ({case.kind})" in summary_text(report)
        assert any(f"row {case.row}" in reason for reason in outcome.reasons)


def test_values_of_a_feature_marked_show_values_are_shown_and_only_those() -> None:
    # GIVEN `plan` marked safe to show, and bad cells in plan and in tenure_months
    world = Capture(_contract(show_values=("plan",)))
    frame = ds.set_cell("plan", 2, "gold")(ds.set_cell("tenure_months", 3, "SECRET-abc")(ds.churn_frame(300)))

    outcome = world.validate(ds.to_csv(frame))

    # THEN plan's value is quoted, tenure_months' is not
    outputs = "".join(world.outputs("").values())
    assert "row 2: 'gold'" in outputs
    assert "SECRET-abc" not in outputs
    report = ValidationReport.model_validate_json(world.store.get_bytes(BUCKET, outcome.report_key))
    [plan] = [c for c in report.checks if c.name is CheckName.CATEGORIES and c.column == "plan"]
    assert [(o.row, o.kind, o.value) for o in plan.first_offending] == [(2, "text", "gold")]


def test_contract_show_values_defaults_to_false_and_parses() -> None:
    plain = parse_contract(_contract())
    marked = parse_contract(_contract(show_values=("plan",)))

    assert not any(f.show_values for f in plain.features)
    assert [f.name for f in marked.features if f.show_values] == ["plan"]
    assert plain.digest != marked.digest  # showing values is part of the contract
    # contracts that do not use the flag keep the digest they had before it existed
    assert plain.digest == "34085e43b745642cc37098e91ca85aa15cce50396da43aa1c75e653f4356eef0"


def test_offending_kinds_are_named_without_values() -> None:
    frame = ds.churn_frame(300)
    frame["tenure_months"] = frame["tenure_months"].astype(object)
    for row, value in [(2, ""), (3, "nan"), (4, "inf"), (5, "SECRET")]:
        frame.loc[row - 1, "tenure_months"] = value
    frame.loc[5, "plan"] = None
    world = Capture(_contract())

    outcome = world.validate(ds.to_csv(pd.DataFrame(frame)))

    report = ValidationReport.model_validate_json(world.store.get_bytes(BUCKET, outcome.report_key))
    kinds = {(c.name, c.column): [(o.row, o.kind) for o in c.first_offending] for c in report.checks if not c.passed}
    assert kinds[(CheckName.NULLS, "tenure_months")] == [(2, "null")]  # CSV reads an empty cell as null
    assert kinds[(CheckName.FINITE, "tenure_months")] == [(3, "NaN"), (4, "infinity")]
    assert kinds[(CheckName.TYPE, "tenure_months")] == [(5, "text")]
    assert kinds[(CheckName.NULLS, "plan")] == [(6, "null")]
