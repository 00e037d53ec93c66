"""The predict function end to end on the moto server: a realistic API Gateway REST event in,
the production model from the registry table and the artifact bucket, captures out to S3."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest

from mlops.contract import parse_contract
from mlops.layout import artifact_key, baseline_key, captures_prefix
from mlops.training import TrainedModel, train_model
from mlops_local.apigw import browser_like_headers, rest_proxy_event
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_dataset, churn_features, records
from tests.support.lambda_context import FakeLambdaContext
from tests.support.resources import TestResources, create_resources

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(churn_dataset(2_000), CONTRACT)


@dataclass
class Deployed:
    resources: TestResources
    handler: ModuleType
    sha256: str


def publish_production(
    resources: TestResources, model: TrainedModel, version: int = 1, data: bytes | None = None
) -> str:
    """Upload the artifact and baseline and write registry items as the registry stores them."""
    data = model.onnx_bytes if data is None else data
    sha256 = hashlib.sha256(data).hexdigest()
    s3 = boto3.client("s3")
    s3.put_object(Bucket=resources.artifact_bucket, Key=artifact_key(CONTRACT.name, sha256), Body=data)
    s3.put_object(
        Bucket=resources.artifact_bucket,
        Key=baseline_key(CONTRACT.name, sha256),
        Body=model.profile.model_dump_json().encode(),
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    table = boto3.resource("dynamodb").Table(resources.registry_table)
    table.put_item(
        Item=_dynamo(
            {
                "pk": f"MODEL#{CONTRACT.name}",
                "sk": f"VERSION#{version:010d}",
                "model_name": CONTRACT.name,
                "version": version,
                "status": "production",
                "metric_name": "roc_auc",
                "metrics": {"roc_auc": 0.8},
                "artifact": {
                    "bucket": resources.artifact_bucket,
                    "key": artifact_key(CONTRACT.name, sha256),
                    "sha256": sha256,
                    "size_bytes": len(data),
                    "baseline_key": baseline_key(CONTRACT.name, sha256),
                },
                "contract": CONTRACT.model_dump(mode="json"),
                "lineage": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    )
    table.put_item(
        Item={
            "pk": f"MODEL#{CONTRACT.name}",
            "sk": "MODEL",
            "gsi1pk": "MODELS",
            "gsi1sk": CONTRACT.name,
            "name": CONTRACT.name,
            "latest_version": version,
            "production_version": version,
            "production_history": [version],
            "updated_at": now,
        }
    )
    return sha256


def _dynamo(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values), parse_float=Decimal)


def rest_event(name: str, body: str | None, *, base64_encoded: bool = False) -> dict[str, Any]:
    """An API Gateway REST (v1 proxy) event as the `prod` stage delivers it."""
    return rest_proxy_event(
        "POST",
        f"/models/{name}/predict",
        "/models/{name}/predict",
        body=body,
        path_parameters={"name": name},
        headers=browser_like_headers("test-api-key"),
        identity={"sourceIp": "203.0.113.7", "userAgent": "python-requests/2.32", "apiKey": "test-api-key"},
        base64_encoded=base64_encoded,
    )


@pytest.fixture
def deployed(aws: str, monkeypatch: pytest.MonkeyPatch, trained: TrainedModel) -> Iterator[Deployed]:
    resources = create_resources()
    sha256 = publish_production(resources, trained)
    for name, value in resources.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "predict")
    monkeypatch.setenv("CAPTURE_MAX_RECORDS", "5")
    deployed = Deployed(resources, load_handler_module("predict"), sha256)
    yield deployed
    deployed.handler.service.shutdown()  # while the moto endpoint is set, not at interpreter exit


def invoke(handler: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler.lambda_handler(event, FakeLambdaContext(function_name="predict"))
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"])


def sample_records(n: int) -> list[dict[str, Any]]:
    return records(churn_features(n, seed=11))


def test_predict_answers_with_predictions_and_version(deployed: Deployed) -> None:
    status, body = invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(3)})))
    assert status == 200
    assert body["model"] == "churn"
    assert body["version"] == 1
    assert len(body["predictions"]) == 3
    first = body["predictions"][0]
    assert first["label"] in ("no", "yes")
    assert set(first["probabilities"]) == {"no", "yes"}


def test_predict_accepts_bare_list_and_base64_body(deployed: Deployed) -> None:
    body = base64.b64encode(json.dumps(sample_records(2)).encode()).decode()
    status, answer = invoke(deployed.handler, rest_event("churn", body, base64_encoded=True))
    assert status == 200
    assert len(answer["predictions"]) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "request body is empty"),
        ("", "request body is empty"),
        ("{not json", "request body is not valid JSON"),
        ('{"records": "x"}', "records must be a JSON list of objects"),
        ("[]", "records must not be empty"),
        ('{"records": [{"tenure_months": 1}]}', "records[0].monthly_charges: required field is missing"),
    ],
)
def test_predict_rejects_bad_requests_with_400(deployed: Deployed, body: str | None, message: str) -> None:
    status, answer = invoke(deployed.handler, rest_event("churn", body))
    assert status == 400
    assert answer["message"].startswith(message)
    assert answer["error"] in ("BadRequestError", "RecordError")


def test_predict_bad_record_names_index_and_field(deployed: Deployed) -> None:
    rows = sample_records(4)
    rows[2]["tenure_months"] = "abc"
    status, answer = invoke(deployed.handler, rest_event("churn", json.dumps({"records": rows})))
    assert status == 400
    assert answer == {"error": "RecordError", "message": "records[2].tenure_months: expected a number, got 'abc'"}


@pytest.mark.parametrize("duplicate", ['"tenure_months"', '"tenure\\u005fmonths"'])
def test_predict_duplicate_key_is_400_naming_the_field(deployed: Deployed, duplicate: str) -> None:
    # GIVEN a record whose first tenure_months is invalid and a later duplicate is valid
    record = json.dumps(sample_records(1)[0])[1:-1]
    body = '{"records": [{"tenure_months": "abc", ' + record + ", " + duplicate + ": 240}]}"
    # WHEN it is sent THEN the duplicate is refused instead of silently keeping the last value
    status, answer = invoke(deployed.handler, rest_event("churn", body))
    assert status == 400
    assert answer["error"] == "BadRequestError"
    assert '"tenure_months"' in answer["message"]


def test_predict_cold_start_and_first_answer_do_not_import_pydantic(deployed: Deployed) -> None:
    # GIVEN a fresh interpreter, as a Lambda cold start, importing the handler the way Lambda does
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path[:0] = ["src", "functions/predict", "."]
        import handler
        from mlops_local.apigw import rest_proxy_event
        from tests.support.lambda_context import FakeLambdaContext
        body = json.dumps({{"records": {sample_records(1)!r}}})
        event = rest_proxy_event("POST", "/models/churn/predict", "/models/{{name}}/predict", body=body,
                                 path_parameters={{"name": "churn"}})
        response = handler.lambda_handler(event, FakeLambdaContext(function_name="predict"))
        handler.service.shutdown()
        loaded = sorted(m for m in sys.modules if m == "pydantic" or m.startswith(("pydantic.", "pydantic_core")))
        print(json.dumps({{"status": response["statusCode"], "pydantic": loaded}}))
        """
    )
    # WHEN it serves its first request THEN it answers, and pydantic (~0.1 s of import) never loaded
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 200, "pydantic": []}


def test_predict_too_many_records_is_400(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_RECORDS_PER_REQUEST", "2")
    handler = load_handler_module("predict")
    status, answer = invoke(handler, rest_event("churn", json.dumps(sample_records(3))))
    assert status == 400
    assert answer["message"] == "at most 2 records per request, got 3"


@pytest.mark.parametrize("name", ["unknown", "BadName"])
def test_predict_unknown_model_is_404(deployed: Deployed, name: str) -> None:
    status, answer = invoke(deployed.handler, rest_event(name, json.dumps(sample_records(1))))
    assert status == 404
    assert answer["error"] == "ModelNotFoundError"


def test_predict_tampered_artifact_is_503_and_not_loaded(deployed: Deployed, trained: TrainedModel) -> None:
    # GIVEN the registered artifact's bytes replaced in the bucket
    boto3.client("s3").put_object(
        Bucket=deployed.resources.artifact_bucket,
        Key=artifact_key("churn", deployed.sha256),
        Body=trained.onnx_bytes + b"\x00",
    )
    handler = load_handler_module("predict")
    status, answer = invoke(handler, rest_event("churn", json.dumps(sample_records(1))))
    assert status == 503
    assert answer["error"] == "IntegrityError"
    assert handler.service.models.loaded_versions() == []


def test_predict_flushes_captures_to_s3(deployed: Deployed) -> None:
    # CAPTURE_MAX_RECORDS=5: the second request fills the buffer, which is written after it
    for _ in range(2):
        status, _ = invoke(deployed.handler, rest_event("churn", json.dumps(sample_records(3))))
        assert status == 200
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=deployed.resources.artifact_bucket, Prefix=captures_prefix("churn"))
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert len(keys) == 1
    lines = s3.get_object(Bucket=deployed.resources.artifact_bucket, Key=keys[0])["Body"].read().decode().splitlines()
    assert len(lines) == 6
    row = json.loads(lines[0])
    assert row["version"] == 1
    assert set(row["input"]) == set(CONTRACT.feature_names)
    assert set(row["output"]) == {"label", "probabilities"}


def test_predict_shutdown_flush_writes_partial_buffer(deployed: Deployed) -> None:
    invoke(deployed.handler, rest_event("churn", json.dumps(sample_records(2))))
    assert [r.records for r in deployed.handler.service.shutdown()] == [2]


@pytest.mark.parametrize(("method", "path_parameters"), [("GET", {"name": "churn"}), ("POST", None)])
def test_predict_event_for_another_route_is_404(
    deployed: Deployed, method: str, path_parameters: dict[str, str] | None
) -> None:
    # API Gateway sends this function one route only; anything else is answered, not crashed on
    event = rest_event("churn", json.dumps(sample_records(1)))
    event["httpMethod"] = method
    event["pathParameters"] = path_parameters
    status, answer = invoke(deployed.handler, event)
    assert status == 404
    assert answer["error"] == "NotFoundError"


def test_predict_unexpected_error_is_500_without_details(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(deployed.handler.service, "predict", broken)
    status, answer = invoke(deployed.handler, rest_event("churn", json.dumps(sample_records(1))))
    assert status == 500
    assert answer == {"error": "InternalError", "message": "internal error; see the function logs"}


class _NaNSession:
    """An onnxruntime session stand-in whose classifier answers NaN probabilities."""

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(next(iter(feed.values())))
        return [np.array(["no"] * rows, dtype=object), np.full((rows, 2), np.nan, dtype=np.float32)]


def test_predict_non_finite_answer_is_422_in_strict_json(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    models = deployed.handler.service.models
    broken = dataclasses.replace(models.get("churn"), session=_NaNSession())
    monkeypatch.setattr(models, "get", lambda name: broken)
    response = deployed.handler.lambda_handler(
        rest_event("churn", json.dumps(sample_records(2))), FakeLambdaContext(function_name="predict")
    )
    assert response["statusCode"] == 422

    def strict(literal: str) -> None:
        raise AssertionError(f"{literal} is not JSON")

    answer = json.loads(response["body"], parse_constant=strict)
    assert answer == {"error": "PredictionError", "message": "the model produced a non-finite value for records[0]"}
    assert len(deployed.handler.service.capture) == 0
