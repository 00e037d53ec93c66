"""A data file uploaded outside datasets/ gets a notice saying where it should go (mlops.misplaced)."""

from __future__ import annotations

import json

import pytest

from mlops.errors import BadRequestError
from mlops.layout import misplaced_report_key
from mlops.misplaced import misplaced_upload, object_created


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("penguins/x.csv", "datasets/penguins/x.csv"),
        ("dataset/churn.parquet", "datasets/dataset/churn.parquet"),
        ("x.csv.gz", "datasets/<model>/x.csv.gz"),
        ("Uploads/2026/x.CSV", "datasets/<model>/x.CSV"),  # not a model name: the uploader names the model
    ],
)
def test_misplaced_upload_of_a_data_file_names_the_key_it_should_have(key: str, expected: str) -> None:
    notice = misplaced_upload(key)

    assert notice is not None
    assert notice.key == key
    assert notice.expected_key == expected
    assert "not under datasets/" in notice.problem
    assert "mlops datasets upload" in notice.fix
    assert json.loads(notice.to_json())["expected_key"] == expected


@pytest.mark.parametrize(
    "key",
    [
        "datasets/churn/x.csv",  # validated
        "feedback/churn/labels.csv",  # ingested
        "reports/churn/x.csv",  # the suite's own
        "quarantine/churn/x.csv",
        "batch/churn/x.csv",  # scored by score_batch
        "batch/churn/v3/x.parquet",
        "predictions/churn/job/part-00000.csv",  # the suite's own (batch scoring's output)
        "models/churn/incoming/m.onnx",
        "contracts/churn.json",
        "misplaced/penguins/x.csv.json",
        "penguins/readme.txt",  # not a data file
        "penguins/",  # a "folder"
    ],
)
def test_misplaced_upload_leaves_owned_prefixes_and_other_files_alone(key: str) -> None:
    assert misplaced_upload(key) is None


def test_misplaced_report_key_is_under_misplaced_and_bounded() -> None:
    assert misplaced_report_key("penguins/x.csv") == "misplaced/penguins/x.csv.json"
    long_key = "p/" + "x" * 1_100 + ".csv"
    assert len(misplaced_report_key(long_key).encode()) <= 1_024
    assert misplaced_report_key(long_key) != misplaced_report_key(long_key + "2")


def test_misplaced_object_created_reads_the_eventbridge_event_or_says_why_not() -> None:
    event = {"detail": {"bucket": {"name": "data"}, "object": {"key": "penguins/x.csv", "size": 12}}}

    assert object_created(event) == ("data", "penguins/x.csv", 12)
    with pytest.raises(BadRequestError, match="Object Created"):
        object_created({"detail": {"bucket": {}}})
    with pytest.raises(BadRequestError, match="non-empty string"):
        object_created({"detail": {"bucket": {"name": "data"}, "object": {"key": ""}}})
