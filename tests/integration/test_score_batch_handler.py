"""score_batch on the moto server: a realistic S3 notification for a file under batch/churn/, the
production model from the registry and artifact bucket, predictions, rejects, a summary and the
bus events out; a large file fanned out to itself in parts; a retried part does no work twice."""

from __future__ import annotations

import csv
import io
import json
from types import ModuleType
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlops.events import DetailType
from mlops.inference.prediction_ids import is_prediction_id
from mlops.layout import batch_summary_key
from mlops.training import TrainedModel
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_features
from tests.integration.test_predict_handler import publish_production, trained  # noqa: F401  (fixture)
from tests.integration.test_validate_dataset_handler import put, s3_event
from tests.support.bus import drain, tap_bus
from tests.support.lambda_context import FakeLambdaContext
from tests.support.resources import TestResources

BATCH_LEDGER = "mlops-batch-ledger"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "plan", "region", "autopay"]


def create_batch_ledger() -> None:
    """The ledger table as infra/constructs/batch.py declares it (`pk` only)."""
    boto3.client("dynamodb").create_table(
        TableName=BATCH_LEDGER,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )


def load(stack: TestResources, monkeypatch: pytest.MonkeyPatch, part_bytes: int) -> ModuleType:
    create_batch_ledger()
    monkeypatch.setenv("BATCH_LEDGER_TABLE", BATCH_LEDGER)
    monkeypatch.setenv("BATCH_PART_BYTES", str(part_bytes))
    monkeypatch.setenv("BATCH_ROWS", "100")  # several record batches per part
    return load_handler_module("score_batch")


@pytest.fixture
def production(stack: TestResources, trained: TrainedModel) -> str:  # noqa: F811
    return publish_production(stack, trained)


def invoke(handler: ModuleType, event: dict[str, Any]) -> list[dict[str, Any]]:
    return handler.lambda_handler(event, FakeLambdaContext(function_name="score_batch"))["results"]


def churn_csv(rows: int, bad: dict[int, dict[str, str]]) -> bytes:
    """A CSV of `rows` churn rows with an extra `customer` column; `bad` overrides cells by 1-based row."""
    frame = churn_features(rows, seed=11)
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(["customer", *FEATURES])
    for index, row in enumerate(frame.astype(object).where(frame.notna(), None).to_dict(orient="records"), start=1):
        cells = {name: "" if row[name] is None else str(row[name]).lower() for name in FEATURES}
        cells.update(bad.get(index, {}))
        writer.writerow([f"c{index}", *(cells[name] for name in FEATURES)])
    return sink.getvalue().encode()


def read_object(bucket: str, key: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def read_csv_table(bucket: str, key: str) -> pa.Table:
    return pacsv.read_csv(pa.BufferReader(read_object(bucket, key)))


BAD_ROWS = {
    7: {"tenure_months": "500"},  # out of range
    40: {"plan": "gold"},  # unseen category
    41: {"autopay": "maybe"},  # not a boolean
    299: {"monthly_charges": ""},  # required feature empty
}


def test_score_batch_scores_a_csv_with_bad_rows_end_to_end(
    stack: TestResources, monkeypatch: pytest.MonkeyPatch, production: str
) -> None:
    # GIVEN a 300-row CSV under batch/churn/ with four bad rows, small enough for one part
    handler = load(stack, monkeypatch, part_bytes=1024 * 1024)
    tap = tap_bus(stack.event_bus_name, [DetailType.BATCH_SCORED])
    item = put(stack, "batch/churn/december/customers.csv", churn_csv(300, BAD_ROWS))
    # WHEN S3 notifies the function
    (outcome,) = invoke(handler, s3_event(stack.data_bucket, item))
    # THEN it scored the file in one part and wrote the summary
    assert outcome["action"] == "scored"
    summary = json.loads(read_object(stack.data_bucket, batch_summary_key("churn", outcome["job_id"])))
    assert (summary["rows"], summary["scored"], summary["rejected"], summary["parts"]) == (300, 296, 4, 1)
    assert summary["version"] == 1
    assert summary["artifact_sha256"] == production
    assert summary["rejection_reasons"] == {"missing": 1, "out_of_range": 1, "unseen_category": 1, "wrong_type": 1}
    # the predictions mirror the input format, one row per good input row, with ids and the version
    (output_key,) = summary["outputs"]
    assert output_key.endswith(".csv")
    assert output_key.startswith("predictions/churn/")
    predictions = read_csv_table(stack.data_bucket, output_key)
    assert predictions.num_rows == 296
    assert sorted(set(range(1, 301)) - set(predictions["row"].to_pylist())) == sorted(BAD_ROWS)
    assert set(predictions["model_version"].to_pylist()) == {1}
    ids = predictions["prediction_id"].to_pylist()
    assert len(set(ids)) == 296
    assert all(is_prediction_id(str(i)) for i in ids)
    assert set(predictions["label"].to_pylist()) <= {"yes", "no"}
    total = [
        a + b
        for a, b in zip(
            predictions["probability_no"].to_pylist(), predictions["probability_yes"].to_pylist(), strict=True
        )
    ]
    assert all(abs(t - 1) < 1e-5 for t in total)
    # the rejects name each bad row by its row number, the field and the reason
    (rejects_key,) = summary["rejects"]
    rejects = read_csv_table(stack.data_bucket, rejects_key).to_pylist()
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [
        (7, "tenure_months", "out_of_range"),
        (40, "plan", "unseen_category"),
        (41, "autopay", "wrong_type"),
        (299, "monthly_charges", "missing"),
    ]
    assert "expected a number in [0, 240]" in rejects[0]["detail"]
    # and announced it on the bus, once
    (event,) = drain(tap)
    assert event["detail"]["job_id"] == outcome["job_id"]
    assert (event["detail"]["rows"], event["detail"]["scored"], event["detail"]["rejected"]) == (300, 296, 4)
    # a repeated notification does nothing again
    (again,) = invoke(handler, s3_event(stack.data_bucket, item))
    assert again["action"] == "skipped"
    assert drain(tap) == []


def test_score_batch_fans_a_large_csv_out_and_a_retried_part_does_no_work_twice(
    stack: TestResources, monkeypatch: pytest.MonkeyPatch, production: str
) -> None:
    # GIVEN a 2,000-row CSV and parts of 16 KB (about 6 parts)
    handler = load(stack, monkeypatch, part_bytes=16 * 1024)
    requests = tap_bus(stack.event_bus_name, [DetailType.BATCH_PART_REQUESTED], name="part-tap")
    scored_tap = tap_bus(stack.event_bus_name, [DetailType.BATCH_SCORED], name="scored-tap")
    data = churn_csv(2_000, {1_500: {"region": "mars"}})
    item = put(stack, "batch/churn/big.csv", data)
    # WHEN S3 notifies the function
    (planned,) = invoke(handler, s3_event(stack.data_bucket, item))
    # THEN it plans parts and asks itself for each, scoring nothing yet
    assert planned["action"] == "fanned_out"
    part_events = drain(requests)
    assert len(part_events) == len(planned["parts"]) >= 5
    # WHEN the bus delivers each part, and the first one twice (an async retry)
    outcomes = [invoke(handler, event)[0] for event in part_events]
    retried = invoke(handler, part_events[0])[0]
    # THEN each part was scored once; the retry was skipped and nothing was announced twice
    assert [o["action"] for o in outcomes] == ["scored"] * len(part_events)
    assert retried["action"] == "skipped"
    summaries = [o["summary"] for o in outcomes if o["summary"]]
    assert len(summaries) == 1, "only the invocation that completes the job writes the summary"
    summary = summaries[0]
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (2_000, 1_999, 1)
    rows: list[int] = []
    for key in summary["outputs"]:
        rows.extend(read_csv_table(stack.data_bucket, key)["row"].to_pylist())
    assert sorted(rows) == [r for r in range(1, 2_001) if r != 1_500], "no row lost, none scored twice"
    (rejects_key,) = summary["rejects"]
    assert read_csv_table(stack.data_bucket, rejects_key)["row"].to_pylist() == [1_500]
    assert len(drain(scored_tap)) == 1
    # the versioned bucket shows each output written once: the retry wrote nothing again
    versions = boto3.client("s3").list_object_versions(Bucket=stack.data_bucket, Prefix="predictions/")["Versions"]
    keys = [v["Key"] for v in versions]
    assert len(keys) == len(set(keys))


def test_score_batch_scores_a_parquet_file_by_row_groups_with_a_pinned_version(
    stack: TestResources,
    monkeypatch: pytest.MonkeyPatch,
    trained: TrainedModel,  # noqa: F811
) -> None:
    # GIVEN versions 1 and 2 (production), and a Parquet file pinned to v1 under batch/churn/v1/
    publish_production(stack, trained, version=1)
    publish_production(stack, trained, version=2)
    handler = load(stack, monkeypatch, part_bytes=2 * 1024)
    frame = churn_features(1_000, seed=5)
    frame.loc[10, "support_calls"] = -3.0
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, row_group_size=250)
    item = put(stack, "batch/churn/v1/scores.parquet", sink.getvalue())
    # WHEN S3 notifies the function and the bus delivers the parts
    requests = tap_bus(stack.event_bus_name, [DetailType.BATCH_PART_REQUESTED], name="parquet-tap")
    (planned,) = invoke(handler, s3_event(stack.data_bucket, item))
    outcomes = [invoke(handler, event)[0] for event in drain(requests)]
    # THEN each row group was a part, scored with v1, output as Parquet
    assert len(planned["parts"]) == 4
    (summary,) = [o["summary"] for o in outcomes if o["summary"]]
    assert (summary["rows"], summary["scored"], summary["rejected"], summary["version"]) == (1_000, 999, 1, 1)
    assert all(key.endswith(".parquet") for key in summary["outputs"])
    table = pa.concat_tables(
        [pq.read_table(pa.BufferReader(read_object(stack.data_bucket, k))) for k in summary["outputs"]]
    )
    assert table.num_rows == 999
    assert set(table["model_version"].to_pylist()) == {1}
    assert 11 not in table["row"].to_pylist()


def test_score_batch_refuses_a_file_for_a_model_without_production_with_a_summary(
    stack: TestResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load(stack, monkeypatch, part_bytes=1024 * 1024)
    tap = tap_bus(stack.event_bus_name, [DetailType.BATCH_REFUSED])
    item = put(stack, "batch/unknown-model/file.csv", b"a,b\n1,2\n")
    (outcome,) = invoke(handler, s3_event(stack.data_bucket, item))
    assert outcome["action"] == "refused"
    assert "unknown-model" in outcome["reason"]
    summary = json.loads(read_object(stack.data_bucket, batch_summary_key("unknown-model", outcome["job_id"])))
    assert summary["status"] == "refused"
    (event,) = drain(tap)
    assert event["detail"]["reason"] == outcome["reason"]


def test_score_batch_refuses_an_artifact_that_does_not_match_its_digest(
    stack: TestResources,
    monkeypatch: pytest.MonkeyPatch,
    trained: TrainedModel,  # noqa: F811
) -> None:
    # GIVEN a production version whose artifact bytes were replaced after registration
    sha256 = publish_production(stack, trained)
    boto3.client("s3").put_object(
        Bucket=stack.artifact_bucket, Key=f"models/churn/{sha256}.onnx", Body=trained.onnx_bytes + b"tampered"
    )
    handler = load(stack, monkeypatch, part_bytes=1024 * 1024)
    item = put(stack, "batch/churn/file.csv", churn_csv(20, {}))
    # WHEN the file is scored THEN nothing is loaded or written: the invocation fails (Lambda retries, then the DLQ)
    with pytest.raises(Exception, match="does not match its registered digest"):
        invoke(handler, s3_event(stack.data_bucket, item))
    listing = boto3.client("s3").list_objects_v2(Bucket=stack.data_bucket, Prefix="predictions/")
    assert listing.get("KeyCount", 0) == 0
