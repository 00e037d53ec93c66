"""The drift routes through models_api's lambda_handler on moto: results stored where the drift
function stores them (mlops.layout), listed newest first across days, served as JSON and HTML."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.adapters.drift_results_s3 import S3DriftResults
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.drift.report import HEADER_CONTENT_SECURITY_POLICY, render_html
from mlops.drift.result import DriftResult
from mlops.layout import drift_page_key, drift_report_id, drift_result_key
from mlops_local.handlers import load_handler_module
from tests.support.drift import GENERATED_AT, drift_result, insufficient_result
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import api_event, default_artifact, trained_event
from tests.support.resources import TestResources


@pytest.fixture
def resources(stack: TestResources, monkeypatch: pytest.MonkeyPatch) -> TestResources:
    monkeypatch.setenv("ADMIN_PRINCIPALS", "arn:aws:iam::123456789012:user/alice")
    event = trained_event(score=0.8)
    boto3.client("s3").put_object(Bucket=event.artifact_bucket, Key=event.artifact_key, Body=default_artifact(event))
    DynamoRegistry(stack.registry_table).register(event, actor="register-model")
    return stack


def store(bucket: str, result: DriftResult) -> str:
    """As the drift function stores a run: the result and its page side by side."""
    report_id = drift_report_id(result.generated_at)
    s3 = boto3.client("s3")
    model = result.model_name
    s3.put_object(Bucket=bucket, Key=drift_result_key(model, report_id), Body=result.model_dump_json().encode())
    s3.put_object(Bucket=bucket, Key=drift_page_key(model, report_id), Body=render_html(result).encode())
    return report_id


@pytest.fixture
def handler(resources: TestResources) -> ModuleType:
    return load_handler_module("models_api")


def call(handler: ModuleType, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = api_event("GET", path)
    event["headers"].update(headers or {})
    return handler.lambda_handler(event, FakeLambdaContext())


def test_models_api_drift_history_spans_days_newest_first_and_pages(
    handler: ModuleType, resources: TestResources
) -> None:
    # GIVEN five runs over three days, another model's run, and the drift function's other objects
    bucket = resources.artifact_bucket
    runs = [
        drift_result(features=3, drifted=(), prediction_drifted=False, generated_at=GENERATED_AT - timedelta(days=2)),
        insufficient_result(generated_at=GENERATED_AT - timedelta(days=1, hours=1)),
        drift_result(features=3, drifted=(1,), generated_at=GENERATED_AT - timedelta(days=1)),
        drift_result(features=3, drifted=(), generated_at=GENERATED_AT - timedelta(hours=1)),
        drift_result(features=3, drifted=(0, 2), generated_at=GENERATED_AT),
    ]
    ids = [store(bucket, run) for run in runs]
    store(bucket, drift_result(model="churn-eu", features=2, generated_at=GENERATED_AT + timedelta(hours=1)))
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="monitoring/churn/state.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="monitoring/churn/reports/README.txt", Body=b"not a run")

    # WHEN the history is read two runs at a time
    pages, token = [], None
    while True:
        response = call(handler, "/models/churn/drift?limit=2" + (f"&next={token}" if token else ""))
        assert response["statusCode"] == 200, response["body"]
        page = json.loads(response["body"])
        pages.append(page)
        token = page["next"]
        if token is None:
            break

    # THEN every run of this model appears once, newest first; the first page carries the latest in full
    listed = [s["report_id"] for page in pages for s in page["history"]]
    assert listed == ids[::-1]
    assert [len(page["history"]) for page in pages] == [2, 2, 1]
    assert DriftResult.model_validate(pages[0]["latest"]) == runs[-1]
    assert [p["latest"] for p in pages[1:]] == [None, None]
    assert pages[0]["history"][0]["drifted_features"] == ["feature_00", "feature_02"]
    assert pages[2]["history"][0]["dataset_drift_share"] == 0.0


def test_models_api_drift_report_is_served_as_json_and_html(handler: ModuleType, resources: TestResources) -> None:
    result = drift_result(features=5, drifted=(1,))
    report_id = store(resources.artifact_bucket, result)

    as_json = call(handler, f"/models/churn/drift/{report_id}")
    assert as_json["statusCode"] == 200
    assert as_json["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert DriftResult.model_validate_json(as_json["body"]) == result

    as_html = call(handler, f"/models/churn/drift/{report_id}", headers={"Accept": "text/html"})
    assert as_html["statusCode"] == 200
    headers = {name: values[0] for name, values in as_html["multiValueHeaders"].items()}
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == HEADER_CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert as_html["body"] == render_html(result)  # the page the drift function stored beside it

    missing = call(handler, "/models/churn/drift/20200101T000000000000Z?format=html")
    assert missing["statusCode"] == 404
    assert json.loads(missing["body"])["error"] == "DriftReportNotFoundError"


def test_models_api_drift_history_is_empty_for_a_model_without_runs(handler: ModuleType) -> None:
    response = call(handler, "/models/churn/drift")
    assert (response["statusCode"], json.loads(response["body"])["history"]) == (200, [])
    unknown = call(handler, "/models/nobody/drift")
    assert (unknown["statusCode"], json.loads(unknown["body"])["error"]) == (404, "ModelNotFoundError")


def test_s3_drift_results_lists_only_the_days_it_needs(resources: TestResources) -> None:
    # GIVEN 30 days of hourly runs (JSON and HTML: 1,440 objects)
    bucket = resources.artifact_bucket
    s3 = boto3.client("s3")
    start = GENERATED_AT - timedelta(days=30)
    for hour in range(30 * 24):
        report_id = drift_report_id(start + timedelta(hours=hour))
        s3.put_object(Bucket=bucket, Key=drift_result_key("churn", report_id), Body=b"{}")
        s3.put_object(Bucket=bucket, Key=drift_page_key("churn", report_id), Body=b"")
    calls: list[dict[str, Any]] = []
    s3.meta.events.register("before-parameter-build.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params)))
    results = S3DriftResults(bucket, s3=s3)

    # WHEN the newest 10 are asked for, then the 10 before a run three weeks back, just after midnight
    newest = results.report_ids("churn", before=None, limit=10)
    cursor = drift_report_id(start + timedelta(days=9, hours=16))  # 02:05
    older = results.report_ids("churn", before=cursor, limit=10)

    # THEN the ids come newest first, and each page lists the days once plus one day's keys
    last = start + timedelta(hours=30 * 24 - 1)
    assert newest == [drift_report_id(last - timedelta(hours=h)) for h in range(10)]
    assert older == [drift_report_id(start + timedelta(days=9, hours=15 - h)) for h in range(10)]
    assert [c.get("Delimiter") for c in calls] == ["T", None, "T", None, None]  # older spans two days
