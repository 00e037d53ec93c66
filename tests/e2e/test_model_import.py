"""A model built elsewhere, end to end in local mode (the synthesized stack): LightGBM trained here,
converted with onnxmltools, uploaded through the URL `POST /models/{name}/imports` signs, then
checked, scored on the suite's holdout, registered, promoted through the API, served by predict.
And a graph that does not fit the contract, dropped straight into S3, is reported and never registered."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import boto3
import onnxruntime as ort
import pytest
import requests

from mlops.training.dataset import frame_feed, read_dataset
from mlops_local.client import ApiClient
from mlops_local.demo import InvocationWatch
from mlops_local.runtime import LocalRuntime
from mlops_local.sample_data import churn_dataset, records
from tests.support.datasets import churn_contract
from tests.support.external_models import lightgbm_pipeline, to_onnx_bytes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]

LOCAL_ADMIN = "arn:aws:iam::123456789012:user/local-admin"


def test_imported_lightgbm_model_passes_the_gates_and_is_served_by_predict(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "local", schedules=False)
    endpoints = runtime.start()
    try:
        watch = InvocationWatch(runtime)
        s3: Any = boto3.client(
            "s3",
            endpoint_url=endpoints.aws_endpoint_url,
            region_name=endpoints.region,
            aws_access_key_id=endpoints.access_key_id,
            aws_secret_access_key=endpoints.secret_access_key,
        )
        api = ApiClient(
            endpoints.api_url,
            ca_bundle=endpoints.ca_bundle,
            api_key=endpoints.api_key,
            access_key=endpoints.access_key_id,
            secret_key=endpoints.secret_access_key,
            region=endpoints.region,
        )
        data_bucket = endpoints.outputs["DataBucketName"]
        contract = churn_contract()

        # GIVEN v1, trained by the suite on an accepted dataset (the holdout the import is scored on)
        mark = watch.mark()
        dataset = churn_dataset(1_000, seed=7, label_noise=0.05)
        csv = io.StringIO()
        dataset.to_csv(csv, index=False)
        s3.put_object(Bucket=data_bucket, Key="datasets/churn/import-base.csv", Body=csv.getvalue().encode())
        watch.wait_for("register_model", mark, timeout=300)

        # WHEN an approver asks for an upload URL and PUTs a LightGBM graph (trained elsewhere) to it
        frame = read_dataset(csv.getvalue().encode(), "x.csv", contract)
        graph = to_onnx_bytes(lightgbm_pipeline(frame, contract), contract)
        asked = api.admin("POST", "/models/churn/imports", {"file_name": "lgbm.onnx", "reason": "vendor model"})
        assert asked.status == 200, asked.body
        mark = watch.mark()
        put = requests.put(asked.body["upload_url"], data=graph, timeout=60)
        assert put.status_code == 200, put.text
        import_run = watch.wait_for("train_model", mark, timeout=300)
        watch.wait_for("register_model", mark, timeout=300)

        # THEN v2 is registered with lineage "imported", the importer, the source file's SHA-256
        versions = {v["version"]: v for v in api.admin("GET", "/models/churn/versions").body}
        assert set(versions) == {1, 2}, import_run
        lineage = versions[2]["lineage"]
        assert lineage["origin"] == "imported"
        assert lineage["imported"]["importer"] == LOCAL_ADMIN
        assert lineage["imported"]["key"] == asked.body["key"]
        assert lineage["imported"]["sha256"] == hashlib.sha256(graph).hexdigest()
        assert lineage["holdout_rows"] == 200
        assert versions[2]["metrics"]["roc_auc"] > 0.7
        # AND the audit trail names who imported what
        [registered] = [
            e for e in api.admin("GET", "/models/churn/audit").body if e["action"] == "registered" and e["version"] == 2
        ]
        assert registered["after"]["importer"] == LOCAL_ADMIN
        assert registered["after"]["source_sha256"] == lineage["imported"]["sha256"]

        # WHEN it becomes production through the same lifecycle (the policy, or approve + promote)
        if versions[2]["status"] == "candidate":
            assert api.admin("POST", "/models/churn/versions/2/approve", {"reason": "imported, checked"}).status == 200
            promoted = api.admin("POST", "/models/churn/versions/2/promote", {"reason": "beats v1 here"})
            assert promoted.status == 200, promoted.body
        assert api.admin("GET", "/models/churn").body["production_version"] == 2

        # THEN predict answers from the imported version, as LightGBM computes it
        sample = churn_dataset(5, seed=99)
        answer = api.predict("churn", records(sample.drop(columns=["churned"])))
        assert answer.status == 200, answer.body
        assert answer.body["version"] == 2
        session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        labels, probabilities = session.run(
            ["label", "probabilities"],
            frame_feed(read_dataset(sample.to_csv(index=False).encode(), "x.csv", contract), contract),
        )
        assert [p["label"] for p in answer.body["predictions"]] == labels.tolist()
        for prediction, row in zip(answer.body["predictions"], probabilities.tolist(), strict=True):
            assert prediction["probabilities"] == pytest.approx(dict(zip(["no", "yes"], row, strict=True)), abs=1e-6)

        # AND a graph with the wrong inputs, dropped straight into S3, is reported, not registered
        mark = watch.mark()
        wrong = to_onnx_bytes(lightgbm_pipeline(frame, contract), contract, rename={"plan": "plan_name"})
        s3.put_object(Bucket=data_bucket, Key="models/churn/incoming/renamed.onnx", Body=wrong)
        rejected = watch.wait_for("train_model", mark, timeout=300)
        assert rejected.ok
        [report_key] = [
            item["Key"]
            for item in s3.list_objects_v2(Bucket=data_bucket, Prefix="models/churn/imports/renamed-").get(
                "Contents", []
            )
        ]
        report = json.loads(s3.get_object(Bucket=data_bucket, Key=report_key)["Body"].read())
        assert report["outcome"] == "rejected"
        assert "input 'plan' (categorical feature): expected a string tensor [N, 1], found none" in report["problems"]
        assert {v["version"] for v in api.admin("GET", "/models/churn/versions").body} == {1, 2}
    finally:
        runtime.stop()
