"""The demo's story end to end: the synthesized stack in local mode, driven over HTTPS and boto3.

Asserts what the story leaves behind (registry, S3, dataset ledger, alarm, logs), read back through
the same API and S3 a user has; not the demo's own verdict and not how long it took."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_local.client import ApiClient
from mlops_local.demo import Demo, managed_training_threshold
from mlops_local.runtime import Endpoints, LocalRuntime

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]

FUNCTIONS = (
    "validate_dataset",
    "train_model",
    "register_model",
    "predict",
    "models_api",
    "detect_drift",
    "record_feedback",
    "evaluate_quality",
    "retrain_model",
    "score_batch",
)


def _admin(endpoints: Endpoints) -> ApiClient:
    return ApiClient(
        endpoints.api_url,
        ca_bundle=endpoints.ca_bundle,
        api_key=endpoints.api_key,
        access_key=endpoints.access_key_id,
        secret_key=endpoints.secret_access_key,
        region=endpoints.region,
    )


def _keys(s3: Any, bucket: str, prefix: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}


def _assert_batch_scored(s3: Any, bucket: str, story: str) -> None:
    """The batch file dropped while v1 served: every good row predicted by v1 with an id, the three
    bad rows in the rejects with their row numbers and reasons, one summary."""
    (summary_key,) = [key for key in _keys(s3, bucket, "predictions/churn/") if key.endswith("/summary.json")]
    summary = json.loads(s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read())
    assert (summary["rows"], summary["scored"], summary["rejected"], summary["version"]) == (3_000, 2_997, 3, 1), story
    (output,) = summary["outputs"]
    lines = s3.get_object(Bucket=bucket, Key=output)["Body"].read().decode().splitlines()
    assert lines[0].startswith('"row","prediction_id","model_version","label"'), lines[0]
    assert len(lines) == 1 + 2_997
    (rejects,) = summary["rejects"]
    rows = [
        line.split(",")[:3]
        for line in s3.get_object(Bucket=bucket, Key=rejects)["Body"].read().decode().splitlines()[1:]
    ]
    assert rows == [
        ["17", '"tenure_months"', '"out_of_range"'],
        ["1200", '"plan"', '"unseen_category"'],
        ["2999", '"autopay"', '"wrong_type"'],
    ], rows
    assert "a batch file is scored" in story


def test_demo_story_leaves_the_registry_data_and_alarm_as_told(tmp_path: Path) -> None:
    runtime = LocalRuntime(
        tmp_path / "local", schedules=False, managed_training_min_rows=managed_training_threshold(20_000)
    )
    endpoints = runtime.start()
    try:
        out = io.StringIO()
        Demo(runtime, endpoints, rows=20_000, out=out).run()
        story = out.getvalue()
        api = _admin(endpoints)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoints.aws_endpoint_url,
            region_name=endpoints.region,
            aws_access_key_id=endpoints.access_key_id,
            aws_secret_access_key=endpoints.secret_access_key,
        )
        bucket = endpoints.outputs["DataBucketName"]

        # the registry: v1 and v2 promoted in turn, v3 retrained on labelled traffic after the quality
        # alarm and promoted, rolled back to v1, v4 approved and promoted by hand; v5 (an always-"yes"
        # import) approved, a canary that its alarm rolled back
        model = api.admin("GET", "/models/churn")
        assert model.status == 200, story
        assert (model.body["latest_version"], model.body["production_version"]) == (5, 4), story
        assert model.body["canary"] is None, story
        versions = {v["version"]: v for v in api.admin("GET", "/models/churn/versions").body}
        assert {n: v["status"] for n, v in versions.items()} == {
            1: "archived",
            2: "archived",
            3: "archived",
            4: "production",
            5: "approved",
        }, story
        # v1's small export trained in the train_model function, the full export on the managed engine's
        # path (its state machine and training job, run in-process by local mode), as the lineage records
        trained_on = {n: v["lineage"]["trained_on"] for n, v in versions.items() if n in (1, 2)}
        assert (trained_on[1]["engine"], trained_on[2]["engine"]) == ("lambda", "sagemaker"), trained_on
        assert trained_on[2]["job_id"].startswith("train-churn-"), trained_on
        assert "trains on the managed engine's path" in story

        events = api.admin("GET", "/models/churn/audit").body
        audit = [e["action"] for e in events]
        decisions = [
            a for a in audit if a in {"promoted", "rolled_back", "promotion_declined", "approved", "retrain_started"}
        ]
        assert decisions == [
            "promoted",
            "promoted",
            "retrain_started",
            "promoted",
            "rolled_back",
            "promotion_declined",
            "approved",
            "promoted",
            "promotion_declined",  # v5, the always-"yes" import: a coin on the holdout
            "approved",
        ], audit
        # the canary: started by the admin, rolled back by its output alarm through control_canary
        canary = [(e["action"], e["version"], e["actor"]) for e in events if e["action"].startswith("canary")]
        assert canary[0][:2] == ("canary_started", 5), canary
        assert canary[1] == ("canary_rolled_back", 5, "alarm:MlopsStack-model-churn-canary-output"), canary
        assert len(canary) == 2, canary
        assert re.search(r"canary_rolled_back after \d+\.\d s", story), story

        # the retraining: asked by the quality alarm, its training set written under datasets/ and trained
        # on (v3's lineage names it), each step in the audit trail with its reason
        retraining = [(e["action"], e["actor"]) for e in events if e["action"].startswith("retrain")]
        endpoints_admin = next(actor for action, actor in retraining[::-1] if action == "retrain_requested")
        assert not endpoints_admin.startswith("alarm:")
        drift_alarm, quality_alarm = "alarm:MlopsStack-model-churn-drift", "alarm:MlopsStack-model-churn-quality"
        assert retraining == [
            ("retrain_requested", drift_alarm),  # the drift alarm asked before any label had arrived...
            ("retrain_skipped", drift_alarm),
            ("retrain_requested", quality_alarm),  # ... the quality alarm, once labels showed the damage
            ("retrain_started", quality_alarm),
            ("retrain_requested", endpoints_admin),  # an admin asks through the API, without an override...
            ("retrain_skipped", endpoints_admin),  # ... and the cooldown holds
        ], retraining
        skipped, started, held = [e for e in events if e["action"] in {"retrain_skipped", "retrain_started"}]
        assert held["reason"].startswith("cooldown: the last retraining started "), held
        assert skipped["reason"] == "too few labels: 0 new labelled rows (minimum 200)", skipped
        assert "quality alarm entered ALARM" in started["reason"], started
        retrain_key = started["after"]["dataset_key"]
        assert re.fullmatch(r"datasets/churn/retrain-\d{8}T\d{6}Z-[0-9a-f]{8}\.parquet", retrain_key), started
        assert started["after"]["traffic_rows"] >= 1_500, started  # of the 2,000 labelled predictions
        assert versions[3]["lineage"]["dataset_key"] == retrain_key, versions[3]["lineage"]
        assert re.search(r"\d+\.\d s from the quality alarm to the retrained version serving", story), story
        assert re.search(r"live roc_auc 0\.\d+ on \d[\d,]* labelled predictions, minimum 0\.7", story), story

        # predictions come from production v4 over HTTPS with the API key; none without it
        record = {
            "tenure_months": 12,
            "monthly_charges": 70.5,
            "support_calls": 1,
            "data_usage_gb": None,
            "plan": "basic",
            "region": "north",
            "autopay": True,
        }
        answer = api.predict("churn", [record])
        assert (answer.status, answer.body["version"]) == (200, 4), answer.body
        assert api.predict("churn", [record], api_key="").status == 403

        # data: the malformed upload and the reviewer-rejected (label-flipped) one are in quarantine/,
        # the rejected one is gone from datasets/; the ledger lists nothing still held
        quarantined = _keys(s3, bucket, "quarantine/churn/")
        assert {"quarantine/churn/bad-export.csv", "quarantine/churn/partner-feed.csv"} <= quarantined, story
        assert "datasets/churn/partner-feed.csv" not in _keys(s3, bucket, "datasets/churn/")
        assert api.admin("GET", "/models/churn/datasets?state=held").body == []

        _assert_batch_scored(s3, bucket, story)

        # the drift alarm went to ALARM and CloudWatch's notification was published to its topic
        (alarm,) = [
            spec.name
            for spec in runtime.alarms.specs
            if spec.metric_name == "DriftDetected" and dict(spec.dimensions).get("model") == "churn"
        ]
        assert any(c.alarm == alarm and c.new == "ALARM" for c in runtime.alarms.changes), runtime.alarms.changes
        notices = (tmp_path / "local" / "logs" / "notifications.log").read_text()
        assert "ALARM" in notices
        # ... and the drift notice a person reads: the features that drifted and the report's link
        assert "Drift: churn v1" in story, story
        assert re.search(r"Report: https://localhost:\d+/v1/models/churn/drift/\w+", story), story
        assert "- tenure_months (numeric):" in story, story
        assert "report page served: HTTP 200 text/html" in story, story

        # every function ran, and each logged under its own service name
        invocations = (tmp_path / "local" / "logs" / "invocations.log").read_text()
        for function in FUNCTIONS:
            assert function in invocations
        for function in ("validate_dataset", "register_model", "models_api"):
            for line in (tmp_path / "local" / "logs" / f"{function}.log").read_text().splitlines():
                if line.startswith("{") and '"service"' in line:
                    service = json.loads(line)["service"]
                    assert service.replace("-", "_") == function, line
    finally:
        runtime.stop()
