"""The predict function end to end on the moto server: a realistic API Gateway REST event in,
the production model from the registry table and the artifact bucket, captures out to S3."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pytest

from infra.layers import REPO_ROOT
from mlops.captures import Rejected, decode_batch
from mlops.contract import parse_contract
from mlops.layout import artifact_key, baseline_key, captures_prefix
from mlops.training import TrainedModel, train_model
from mlops_local.apigw import browser_like_headers, rest_proxy_event
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_dataset, churn_features, records
from tests.support.lambda_context import FakeLambdaContext
from tests.support.resources import TestResources, create_resources

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
    assert set(first) == {"label", "probabilities", "prediction_id"}
    assert len({p["prediction_id"] for p in body["predictions"]}) == 3


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


def test_predict_cold_start_leaves_numpy_blas_single_threaded() -> None:
    # GIVEN a fresh interpreter that has not set OpenBLAS's thread count, importing the handler as Lambda does
    script = textwrap.dedent(
        """
        import json, sys
        sys.path[:0] = ["src", "functions/predict"]
        import handler
        from threadpoolctl import threadpool_info
        print(json.dumps([pool["num_threads"] for pool in threadpool_info() if pool["internal_api"] == "openblas"]))
        """
    )
    env = {name: value for name, value in os.environ.items() if name != "OPENBLAS_NUM_THREADS"}
    env |= {"REGISTRY_TABLE": "registry", "ARTIFACT_BUCKET": "artifacts", "POWERTOOLS_TRACE_DISABLED": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    # THEN numpy's OpenBLAS runs one thread: predict never calls BLAS, and idle workers spinning at
    # start-up took ~30-40 ms of CPU from the cold start (a Lambda of 1024 MB has about 0.6 vCPU)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [1]


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


def emitted_metrics(stdout: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed: one dict per metric with its dimensions and properties."""
    found = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions = {name: document[name] for names in directive["Dimensions"] for name in names}
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]  # a number, or a list of them
                found.append(
                    {"name": metric["Name"], "namespace": directive["Namespace"], "dimensions": dimensions}
                    | {"value": sum(value) if isinstance(value, list) else value, "document": document}
                )
    return found


def test_predict_keeps_serving_last_good_version_and_counts_the_load_failure(
    deployed: Deployed, trained: TrainedModel, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a warm container serving v1 that asks the registry on every request
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    handler = load_handler_module("predict")
    assert invoke(handler, rest_event("churn", json.dumps(sample_records(1))))[0] == 200
    # WHEN v2 becomes production and its artifact's bytes do not match the registered digest
    v2_bytes = trained.onnx_bytes + b"\x00"
    publish_production(deployed.resources, trained, version=2, data=v2_bytes)
    boto3.client("s3").put_object(
        Bucket=deployed.resources.artifact_bucket,
        Key=artifact_key("churn", hashlib.sha256(v2_bytes).hexdigest()),
        Body=trained.onnx_bytes + b"\x01",
    )
    capsys.readouterr()
    answers = [invoke(handler, rest_event("churn", json.dumps(sample_records(1)))) for _ in range(3)]
    # THEN v1 keeps answering, and the failure is counted once (the retry waits for its backoff)
    assert [(status, body.get("version")) for status, body in answers] == [(200, 1)] * 3
    failures = [m for m in emitted_metrics(capsys.readouterr().out) if m["name"] == "ModelLoadFailures"]
    assert len(failures) == 1
    [failure] = failures
    # Powertools adds `service`; the alarm matches this exact dimension set
    assert failure["dimensions"] == {"service": "predict", "model": "churn"}
    assert failure["namespace"] == "MLOps"
    assert failure["value"] == 1
    assert failure["document"]["production_version"] == 2
    assert failure["document"]["served_version"] == 1
    assert handler.service.models.loaded_versions() == [("churn", 1)]


def test_predict_refuses_a_version_the_registry_cannot_confirm_past_the_stale_limit(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a container that served v1 and a stale-serving limit of 0 s
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    monkeypatch.setenv("MODEL_STALE_SECONDS", "0")
    handler = load_handler_module("predict")
    assert invoke(handler, rest_event("churn", json.dumps(sample_records(1))))[0] == 200
    # WHEN the registry cannot be read
    boto3.client("dynamodb").delete_table(TableName=deployed.resources.registry_table)
    capsys.readouterr()
    status, answer = invoke(handler, rest_event("churn", json.dumps(sample_records(1))))
    # THEN 503 saying why, and the refusal is counted per model
    assert status == 503
    assert answer["error"] == "ModelUnavailableError"
    assert answer["message"].startswith(
        "cannot confirm the production version of model 'churn': the registry has been unreachable for "
    )
    names = [(m["name"], m["dimensions"]) for m in emitted_metrics(capsys.readouterr().out)]
    assert ("StaleModelRefusals", {"service": "predict", "model": "churn"}) in names
    assert ("RegistryLookupFailures", {"service": "predict", "model": "churn"}) in names


def test_predict_flushes_captures_to_s3(deployed: Deployed) -> None:
    # CAPTURE_MAX_RECORDS=5: the second request fills the buffer, which is written after it
    answered_ids = []
    for _ in range(2):
        status, answer = invoke(deployed.handler, rest_event("churn", json.dumps(sample_records(3))))
        assert status == 200
        answered_ids += [prediction["prediction_id"] for prediction in answer["predictions"]]
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=deployed.resources.artifact_bucket, Prefix=captures_prefix("churn"))
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert len(keys) == 1
    assert keys[0].endswith(".json")
    batch = decode_batch(s3.get_object(Bucket=deployed.resources.artifact_bucket, Key=keys[0])["Body"].read())
    assert len(batch) == 6
    assert batch.versions == [1] * 6
    assert set(batch.inputs) == set(CONTRACT.feature_names)
    assert set(batch.outputs) == {"label", "probability:no", "probability:yes"}
    assert batch.prediction_ids == answered_ids


def test_predict_counts_refused_records_in_the_captures(deployed: Deployed) -> None:
    rows = sample_records(2)
    rows[1]["plan"] = "gold"
    status, _ = invoke(deployed.handler, rest_event("churn", json.dumps(rows)))
    assert status == 400
    [flushed] = deployed.handler.service.shutdown()
    assert (flushed.records, flushed.rejected) == (0, 1)
    body = boto3.client("s3").get_object(Bucket=deployed.resources.artifact_bucket, Key=flushed.key)["Body"].read()
    assert decode_batch(body).rejected == [Rejected("plan", "unseen_category", 1)]


def test_predict_shutdown_flush_writes_partial_buffer(deployed: Deployed) -> None:
    invoke(deployed.handler, rest_event("churn", json.dumps(sample_records(2))))
    assert [r.records for r in deployed.handler.service.shutdown()] == [2]


# Runs in a fresh interpreter as Lambda's runtime would: import the handler, answer one request, then
# wait for the next invocation on the Runtime API (a GET the fake API never answers), where the
# SIGTERM that the registered graceful-shutdown extension makes Lambda send arrives.
_RUNTIME_PROCESS = """
import http.client, json, os, sys
from mlops_local.handlers import load_handler_module
from tests.support.lambda_context import FakeLambdaContext

handler = load_handler_module("predict")
response = handler.lambda_handler(json.loads(sys.stdin.readline()), FakeLambdaContext(function_name="predict"))
print("READY", json.dumps({"status": response["statusCode"], "buffered": len(handler.service.capture)}), flush=True)
connection = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
connection.request("GET", "/2018-06-01/runtime/invocation/next")
connection.getresponse()
print("next invocation arrived; SIGTERM never did", flush=True)
"""


class _SilentRuntimeApi(BaseHTTPRequestHandler):
    """A Lambda Runtime API whose /invocation/next never answers (no more requests come)."""

    def do_GET(self) -> None:
        self.server.waiting.set()  # type: ignore[attr-defined]
        self.server.released.wait(timeout=60)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def runtime_api() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SilentRuntimeApi)
    server.waiting, server.released = threading.Event(), threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.released.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_predict_runtime_flushes_buffered_captures_to_s3_on_a_real_sigterm(
    deployed: Deployed, runtime_api: ThreadingHTTPServer
) -> None:
    # GIVEN the predict handler in its own process, as in Lambda (AWS_LAMBDA_RUNTIME_API set), with
    # two captured records below every flush threshold, waiting for its next invocation
    host, port = runtime_api.server_address[:2]
    env = os.environ | {
        "AWS_LAMBDA_RUNTIME_API": f"{host}:{port}",
        "CAPTURE_MAX_RECORDS": "500",
        "CAPTURE_MAX_AGE_SECONDS": "3600",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)]),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _RUNTIME_PROCESS],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(rest_event("churn", json.dumps(sample_records(2)))) + "\n")
        process.stdin.flush()
        ready = next((line for line in process.stdout if line.startswith("READY ")), "")  # past the logs
        assert ready, process.stderr.read()
        assert json.loads(ready.removeprefix("READY ")) == {"status": 200, "buffered": 2}
        assert runtime_api.waiting.wait(timeout=30)  # type: ignore[attr-defined]
        s3 = boto3.client("s3")
        prefix = captures_prefix("churn")
        assert s3.list_objects_v2(Bucket=deployed.resources.artifact_bucket, Prefix=prefix).get("KeyCount") == 0
        # WHEN Lambda shuts the environment down (a real signal, delivered while the runtime waits)
        os.kill(process.pid, signal.SIGTERM)
        # THEN the process exits cleanly and the buffered records are in S3
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        process.kill()
        process.wait()
    listed = s3.list_objects_v2(Bucket=deployed.resources.artifact_bucket, Prefix=prefix)
    [key] = [item["Key"] for item in listed.get("Contents", [])]
    batch = decode_batch(s3.get_object(Bucket=deployed.resources.artifact_bucket, Key=key)["Body"].read())
    assert batch.inputs == {name: [record[name] for record in sample_records(2)] for name in CONTRACT.feature_names}


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


def test_predict_log_lines_carry_the_lambda_context_of_their_request(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the function's log stream, and invocations with their own request ids
    handler = deployed.handler
    stream = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", stream)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:predict"
    first, second, third = (FakeLambdaContext(function_name="predict", invoked_function_arn=arn) for _ in range(3))
    # WHEN the first loads the model (a log line), the second answers and the third fails unexpectedly
    for context in (first, second):
        assert handler.lambda_handler(rest_event("churn", json.dumps(sample_records(1))), context)["statusCode"] == 200

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(handler.service, "predict", broken)
    assert handler.lambda_handler(rest_event("churn", json.dumps(sample_records(1))), third)["statusCode"] == 500
    # THEN each line carries the Lambda context of the request that logged it (Powertools' keys)
    lines = {line["message"]: line for line in map(json.loads, stream.getvalue().splitlines())}
    context = {"function_name": "predict", "function_memory_size": 1024, "function_arn": arn}
    assert lines["model loaded"].items() >= (context | {"function_request_id": first.aws_request_id}).items()
    assert (
        lines["unexpected error"].items()
        >= (context | {"function_request_id": third.aws_request_id, "cold_start": False}).items()
    )


class _NaNSession:
    """An onnxruntime session stand-in whose classifier answers NaN probabilities."""

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(next(iter(feed.values())))
        return [np.array(["no"] * rows, dtype=object), np.full((rows, 2), np.nan, dtype=np.float32)]


def test_predict_non_finite_answer_is_422_in_strict_json(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    models = deployed.handler.service.models
    broken = dataclasses.replace(models.get("churn"), session=_NaNSession())
    monkeypatch.setattr(models, "choose", lambda name, **pin: (broken, None))  # what answers (issue 13)
    response = deployed.handler.lambda_handler(
        rest_event("churn", json.dumps(sample_records(2))), FakeLambdaContext(function_name="predict")
    )
    assert response["statusCode"] == 422

    def strict(literal: str) -> None:
        raise AssertionError(f"{literal} is not JSON")

    answer = json.loads(response["body"], parse_constant=strict)
    assert answer == {"error": "PredictionError", "message": "the model produced a non-finite value for records[0]"}
    assert len(deployed.handler.service.capture) == 0
