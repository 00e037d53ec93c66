"""`mlops predict`: CSV rows become typed records, sent in batches within the request limits."""

from __future__ import annotations

import json

import pytest

from mlops_local.cli.common import CommandFailed
from mlops_local.cli.predict import MAX_BATCH_BYTES, batches, record

FEATURES = {"tenure": "numeric", "plan": "categorical", "autopay": "boolean"}


def test_cli_predict_record_types_cells_as_the_contract_declares() -> None:
    row = {"tenure": "3", "plan": "basic", "autopay": "TRUE", "churned": "yes"}

    assert record(row, FEATURES) == {"tenure": 3.0, "plan": "basic", "autopay": True}  # the target is not sent
    assert record({"tenure": "", "plan": " ", "autopay": "no"}, FEATURES) == {
        "tenure": None,
        "plan": None,
        "autopay": False,
    }
    # a cell that does not parse goes as text: the API's 400 names the field and the row
    assert record({"tenure": "three", "autopay": "maybe"}, FEATURES) == {"tenure": "three", "autopay": "maybe"}


def test_cli_predict_batches_stay_within_the_record_count() -> None:
    records = [{"i": i} for i in range(25)]

    chunks = list(batches(records, 10))

    assert [(start, len(chunk)) for start, chunk in chunks] == [(0, 10), (10, 10), (20, 5)]
    assert [item for _, chunk in chunks for item in chunk] == records


def test_cli_predict_batches_stay_within_the_payload_limit() -> None:
    wide = {"text": "x" * 100_000}
    records = [wide] * 200  # 20 MB in all: one request by count, several by size

    chunks = list(batches(records, 1_000))

    assert len(chunks) > 1
    for _, chunk in chunks:
        assert len(json.dumps({"records": chunk}).encode()) <= MAX_BATCH_BYTES
    assert sum(len(chunk) for _, chunk in chunks) == 200


def test_cli_predict_refuses_a_row_too_big_for_one_request() -> None:
    with pytest.raises(CommandFailed, match="row 2 alone is over"):
        list(batches([{"a": 1}, {"text": "x" * (MAX_BATCH_BYTES + 1)}], 10))
