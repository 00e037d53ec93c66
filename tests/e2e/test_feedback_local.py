"""Ground truth in, through local mode (the synthesized stack on the stand-in): labels over HTTPS
with the API key, and a label file dropped under feedback/ picked up by its S3 notification."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.contract import parse_contract
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.labels import decode_labels, merge_labels
from mlops.layout import labels_prefix
from mlops_local.client import ApiClient
from mlops_local.demo import InvocationWatch
from mlops_local.runtime import LocalRuntime
from tests.integration.test_record_feedback_handler import register
from tests.support.resources import TestResources

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]

CHURN = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())


def test_labels_arrive_by_api_and_by_file_in_local_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = LocalRuntime(tmp_path / "local", schedules=False)
    endpoints = runtime.start()
    watch = InvocationWatch(runtime)
    try:
        for name, value in endpoints.client_env().items():
            monkeypatch.setenv(name, value)
        outputs = endpoints.outputs
        names = TestResources(
            data_bucket=outputs["DataBucketName"],
            artifact_bucket=outputs["ArtifactBucketName"],
            registry_table=outputs["RegistryTableName"],
        )
        register(names, CHURN.model_dump(mode="json"))  # a production version's items, as the registry writes them
        at = datetime.now(UTC) - timedelta(minutes=3)
        by_api, by_file = (
            new_prediction_ids(2, clock=lambda: at.timestamp()),
            new_prediction_ids(2, clock=lambda: at.timestamp()),
        )
        api = ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle, api_key=endpoints.api_key)
        body = {"labels": [{"prediction_id": i, "label": "yes"} for i in by_api]}

        # labels over HTTPS need the API key; with it they are recorded
        assert api.request("POST", "/models/churn/feedback", body).status == 403
        answer = api.request("POST", "/models/churn/feedback", body, headers={"x-api-key": endpoints.api_key})
        assert (answer.status, answer.body["accepted"]) == (200, 2), answer.body
        refused = api.request(
            "POST",
            "/models/churn/feedback",
            {"labels": [{"prediction_id": by_api[0], "label": "maybe"}]},
            headers={"x-api-key": endpoints.api_key},
        )
        assert (refused.status, refused.body["details"][0]["reason"]) == (400, "unknown_class"), refused.body

        # a label file dropped under feedback/ is ingested by the function its notification names
        s3 = boto3.client("s3")
        mark = watch.mark()
        csv = "prediction_id,label\n" + "".join(f"{i},no\n" for i in by_file)
        s3.put_object(Bucket=names.data_bucket, Key="feedback/churn/today.csv", Body=csv.encode())
        watch.wait_for("ingest_feedback", mark, timeout=120)

        listing = s3.list_objects_v2(Bucket=names.artifact_bucket, Prefix=labels_prefix("churn"))
        batches: list[Any] = [
            decode_labels(s3.get_object(Bucket=names.artifact_bucket, Key=item["Key"])["Body"].read())
            for item in listing.get("Contents", [])
        ]
        labels = merge_labels(batches).labels
        assert labels == {by_api[0]: "yes", by_api[1]: "yes", by_file[0]: "no", by_file[1]: "no"}
        reports = s3.list_objects_v2(Bucket=names.data_bucket, Prefix="reports/churn/feedback/")["Contents"]
        report = json.loads(s3.get_object(Bucket=names.data_bucket, Key=reports[0]["Key"])["Body"].read())
        assert (report["outcome"], report["accepted"]) == ("accepted", 2)
    finally:
        runtime.stop()
