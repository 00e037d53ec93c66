"""Batch jobs with in-memory ports: a part is scored once however often it is asked for, the job is
summarised once by the part that completes it, and a crash at any step is finished by the retry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mlops.batch.plan import Part
from mlops.batch.service import BatchService, BatchUpload
from mlops.contract import parse_contract
from mlops.events import BatchPartRequested, DetailType
from mlops.layout import batch_summary_key
from mlops.training import train_model
from mlops_local.sample_data import churn_dataset, churn_features
from tests.support.batch_fakes import (
    BatchStore,
    InMemoryBatchLedger,
    LedgerFault,
    RecordingMetrics,
    Versions,
    served_version,
)
from tests.support.fakes import FlakyPublisher, RecordingPublisher

CONTRACT = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())
DATA = "data"


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    return train_model(churn_dataset(1_000), CONTRACT).onnx_bytes


class Harness:
    def __init__(self, onnx: bytes, publisher: RecordingPublisher | None = None) -> None:
        self.store = BatchStore()
        self.ledger = InMemoryBatchLedger()
        self.publisher = publisher or RecordingPublisher()
        self.metrics = RecordingMetrics()
        version = served_version(onnx, CONTRACT.model_dump(mode="json"), self.store)
        self.service = BatchService(
            store=self.store,
            versions=Versions(version, production=1),
            ledger=self.ledger,
            publisher=self.publisher,
            metrics=self.metrics,
            open_seekable=self.store.seekable,
            part_bytes=4 * 1024,
            batch_rows=200,
        )

    def drop_csv(self, rows: int, key: str = "batch/churn/file.csv") -> BatchUpload:
        frame = churn_features(rows, seed=3)
        sink = pa.BufferOutputStream()
        pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), sink)
        data = sink.getvalue().to_pybytes()
        version = self.store.put_bytes(DATA, key, data)
        return BatchUpload(DATA, key, version, len(data))

    def part_requests(self) -> list[Part]:
        return [Part.from_dict(d.part) for d in self.publisher.of_type(DetailType.BATCH_PART_REQUESTED)]  # type: ignore[attr-defined]

    def summary(self, job_id: str) -> dict[str, Any]:
        return json.loads(self.store.get_bytes(DATA, batch_summary_key("churn", job_id)))


def test_score_part_scores_each_part_once_and_the_last_one_summarises(onnx_bytes: bytes) -> None:
    # GIVEN a 1,000-row file planned into several parts
    harness = Harness(onnx_bytes)
    planned = harness.service.submit(harness.drop_csv(1_000))
    parts = harness.part_requests()
    assert planned.action == "fanned_out"
    assert len(parts) >= 4
    # WHEN the parts arrive out of order, and every one of them twice
    outcomes = [harness.service.score_part(planned.job_id, part) for part in reversed(parts)]  # type: ignore[arg-type]
    uploads = list(harness.store.uploads)
    repeats = [harness.service.score_part(planned.job_id, part) for part in parts]  # type: ignore[arg-type]
    # THEN each was scored once; only the part that completed the job wrote the summary
    assert [o.action for o in outcomes] == ["scored"] * len(parts)
    assert [o.action for o in repeats] == ["skipped"] * len(parts)
    assert harness.store.uploads == uploads, "a repeated part wrote nothing again"
    assert len(uploads) == len(parts)
    assert [o.summary is not None for o in outcomes] == [False] * (len(parts) - 1) + [True]
    summary = harness.summary(planned.job_id)  # type: ignore[arg-type]
    assert (summary["rows"], summary["scored"], summary["parts"]) == (1_000, 1_000, len(parts))
    # and the job was announced and counted once
    assert len(harness.publisher.of_type(DetailType.BATCH_SCORED)) == 1
    assert harness.metrics.total("BatchRowsScored") == 1_000


def test_a_part_whose_ledger_write_was_lost_is_scored_again_without_duplicate_rows(onnx_bytes: bytes) -> None:
    # GIVEN a one-part file whose ledger write fails after the outputs were written
    harness = Harness(onnx_bytes)
    upload = harness.drop_csv(30)
    harness.ledger.fail_next_completion = True
    with pytest.raises(LedgerFault):
        harness.service.submit(upload)
    # WHEN S3 redelivers the event (Lambda's retry)
    outcome = harness.service.submit(upload)
    # THEN the part is scored again, its outputs overwritten in place: 30 rows, not 60
    assert outcome.action == "scored"
    summary = harness.summary(outcome.job_id)  # type: ignore[arg-type]
    (output,) = summary["outputs"]
    assert pacsv.read_csv(pa.BufferReader(harness.store.get_bytes(DATA, output))).num_rows == 30
    assert summary["rows"] == 30


def test_a_summary_lost_to_a_failed_announcement_is_finished_by_the_retry(onnx_bytes: bytes) -> None:
    # GIVEN a bus that refuses the first BatchScored (the invocation fails after the part is recorded)
    publisher = FlakyPublisher(failures=0)
    harness = Harness(onnx_bytes, publisher)
    planned = harness.service.submit(harness.drop_csv(1_000))
    parts = harness.part_requests()
    for part in parts[:-1]:
        harness.service.score_part(planned.job_id, part)  # type: ignore[arg-type]
    publisher.failures = 1
    with pytest.raises(Exception, match="refused BatchScored"):
        harness.service.score_part(planned.job_id, parts[-1])  # type: ignore[arg-type]
    # WHEN the bus retries the last part
    retry = harness.service.score_part(planned.job_id, parts[-1])  # type: ignore[arg-type]
    # THEN it is not scored again, but the summary, the event and the metrics are written once
    assert retry.action == "skipped"
    assert retry.summary is not None
    assert len(publisher.of_type(DetailType.BATCH_SCORED)) == 1
    assert harness.metrics.total("BatchRowsScored") == 1_000


def test_a_repeated_s3_event_asks_again_only_for_the_parts_not_done(onnx_bytes: bytes) -> None:
    harness = Harness(onnx_bytes)
    upload = harness.drop_csv(1_000)
    planned = harness.service.submit(upload)
    first = harness.part_requests()
    harness.service.score_part(planned.job_id, first[0])  # type: ignore[arg-type]
    again = harness.service.submit(upload)
    assert again.action == "resumed"
    assert again.parts == [part.index for part in first[1:]]
    resent = [
        BatchPartRequested.model_validate(d.model_dump())
        for d in harness.publisher.of_type(DetailType.BATCH_PART_REQUESTED)
    ]
    assert [r.part["index"] for r in resent] == [p.index for p in first] + again.parts


def test_a_part_with_a_malformed_line_is_reported_without_its_data(onnx_bytes: bytes) -> None:
    # GIVEN a CSV whose second part has a line with one cell too many (holding a secret-looking value)
    harness = Harness(onnx_bytes)
    upload = harness.drop_csv(1_000)
    data = harness.store.get_bytes(DATA, upload.key)
    lines = data.decode().splitlines(keepends=True)
    lines[600] = lines[600].rstrip("\n") + ",SECRET-4111111111111111\n"
    version = harness.store.put_bytes(DATA, upload.key, "".join(lines).encode())
    upload = BatchUpload(DATA, upload.key, version, len("".join(lines).encode()))
    planned = harness.service.submit(upload)
    # WHEN every part is scored
    for part in harness.part_requests():
        harness.service.score_part(planned.job_id, part)  # type: ignore[arg-type]
    # THEN the job completes; the summary names the unreadable part and where, never the line itself
    summary = harness.summary(planned.job_id)  # type: ignore[arg-type]
    assert summary["status"] == "scored_with_unreadable_parts"
    (unreadable,) = summary["unreadable_parts"]
    assert "Expected 7 columns, got 8" in unreadable["error"]
    assert "SECRET" not in json.dumps(summary)
    assert 0 < summary["rows"] < 1_000


def test_a_csv_whose_header_repeats_a_column_is_refused_naming_the_column(onnx_bytes: bytes) -> None:
    # GIVEN a CSV whose header names one feature twice
    harness = Harness(onnx_bytes)
    upload = harness.drop_csv(5)
    header, rest = harness.store.get_bytes(DATA, upload.key).decode().split("\n", 1)
    quoted = header.split(",")[1]
    repeated = quoted.strip('"')
    lines = [f"{header},{quoted}"] + [f"{line},x" for line in rest.strip().split("\n")]
    data = ("\n".join(lines) + "\n").encode()
    upload = BatchUpload(DATA, upload.key, harness.store.put_bytes(DATA, upload.key, data), len(data))
    # WHEN it is dropped
    outcome = harness.service.submit(upload)
    # THEN it is refused before any job starts: a summary and a BatchRefused event name the column
    assert outcome.action == "refused"
    assert f"column {repeated!r} more than once" in (outcome.reason or "")
    assert harness.summary(outcome.job_id)["status"] == "refused"
    (refused,) = harness.publisher.of_type(DetailType.BATCH_REFUSED)
    assert refused.reason == outcome.reason  # type: ignore[attr-defined]
    assert harness.ledger.progress(outcome.job_id) is None


@pytest.mark.parametrize("folder", ["v0", "v01", "v99999999999999999999"])
def test_a_file_under_an_invalid_version_folder_is_refused_not_scored_by_production(
    onnx_bytes: bytes, folder: str
) -> None:
    # GIVEN a file dropped under a version folder that cannot name a version
    harness = Harness(onnx_bytes)
    upload = harness.drop_csv(5, key=f"batch/churn/{folder}/file.csv")
    # WHEN it is submitted
    outcome = harness.service.submit(upload)
    # THEN it is refused naming the folder (production never scores it)
    assert outcome.action == "refused"
    assert f"{folder!r} is not a valid version" in (outcome.reason or "")
    (refused,) = harness.publisher.of_type(DetailType.BATCH_REFUSED)
    assert json.loads(harness.store.get_bytes(DATA, refused.summary_key))["status"] == "refused"  # type: ignore[attr-defined]
    assert harness.ledger.progress(outcome.job_id) is None
