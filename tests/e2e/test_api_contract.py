"""The API answers as its OpenAPI document says: schemathesis generates requests from the document
local mode serves (GET /openapi.json) and sends them over HTTPS, SigV4-signed for the IAM routes
and with the API key for predict and feedback. Checks: no server error, no undocumented status, every body
matches its schema, every content type is documented."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mlops.drift.report import HEADER_CONTENT_SECURITY_POLICY, render_html
from mlops.drift.result import DriftResult
from mlops.layout import drift_page_key, drift_report_id, drift_result_key
from mlops_local.client import ApiClient
from mlops_local.demo import InvocationWatch
from mlops_local.runtime import Endpoints, LocalRuntime
from mlops_local.sample_data import churn_dataset
from tests.support.drift import drift_result

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]

MAX_EXAMPLES = 6  # per operation and run: the three runs take about two minutes on 2 cores
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
PREDICT_PATH = "/models/{name}/predict"
FEEDBACK_PATH = "/models/{name}/feedback"


class SigV4(requests.auth.AuthBase):
    """Signs a request for `execute-api` as the AWS SDKs sign IAM-authorised API calls."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.credentials = Credentials(endpoints.access_key_id, endpoints.secret_access_key)
        self.region = endpoints.region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        signed = AWSRequest(method=request.method, url=request.url, data=body)
        signed.headers["Host"] = requests.utils.urlparse(request.url).netloc
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date"):
            request.headers[name] = signed.headers[name]
        return request


_DRIFT_FEATURES = ("tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "plan", "region", "autopay")


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, Endpoints]]:
    runtime = LocalRuntime(tmp_path_factory.mktemp("api-contract") / "local", schedules=False)
    endpoints = runtime.start()
    try:
        # a production model, so that predict answers from a real model, not only 404
        watch = InvocationWatch(runtime)
        mark = watch.mark()
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoints.aws_endpoint_url,
            region_name=endpoints.region,
            aws_access_key_id=endpoints.access_key_id,
            aws_secret_access_key=endpoints.secret_access_key,
        )
        csv = io.StringIO()
        churn_dataset(1_000, seed=7, label_noise=0.05).to_csv(csv, index=False)
        s3.put_object(
            Bucket=endpoints.outputs["DataBucketName"], Key="datasets/churn/contract.csv", Body=csv.getvalue().encode()
        )
        watch.wait_for("register_model", mark, timeout=300)
        # a drift run stored as the drift function stores it, so the drift routes answer with data
        run = drift_result(features=7, drifted=(0, 4), names=list(_DRIFT_FEATURES))
        report_id = drift_report_id(run.generated_at)
        artifacts = endpoints.outputs["ArtifactBucketName"]
        s3.put_object(Bucket=artifacts, Key=drift_result_key("churn", report_id), Body=run.model_dump_json().encode())
        s3.put_object(Bucket=artifacts, Key=drift_page_key("churn", report_id), Body=render_html(run).encode())
        yield runtime, endpoints
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def api_schema(local_api: tuple[LocalRuntime, Endpoints]) -> Any:
    _, endpoints = local_api
    admin = ApiClient(
        endpoints.api_url,
        ca_bundle=endpoints.ca_bundle,
        access_key=endpoints.access_key_id,
        secret_key=endpoints.secret_access_key,
        region=endpoints.region,
    )
    served = admin.admin("GET", "/openapi.json")
    assert served.status == 200, served.body
    assert "churn" in str(served.body["components"]["schemas"]["PredictRequest"])
    return schemathesis.openapi.from_dict(served.body)


def _exercise(operation: Any, strategy: Any, send: Any, statuses: Counter[tuple[str, int]]) -> None:
    """Up to MAX_EXAMPLES generated requests to one operation; raises on the first failed check."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the report names the request
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = send(case)
        statuses[(operation.label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    run()


@pytest.mark.parametrize(
    ("mode", "model"),
    [
        (GenerationMode.POSITIVE, None),  # any model name the document allows (mostly unknown: 404)
        (GenerationMode.POSITIVE, "churn"),  # the trained model: real predictions, real registry changes
        (GenerationMode.NEGATIVE, None),
    ],
)
def test_api_answers_as_its_openapi_document_says(
    local_api: tuple[LocalRuntime, Endpoints], api_schema: Any, mode: GenerationMode, model: str | None
) -> None:
    _, endpoints = local_api
    session = requests.Session()  # keep-alive: one TLS handshake per run, not per request
    signed = {"auth": SigV4(endpoints)}
    keyed = {"headers": {"x-api-key": endpoints.api_key}}
    failures: dict[str, str] = {}
    statuses: Counter[tuple[str, int]] = Counter()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        credentials = keyed if operation.path in (PREDICT_PATH, FEEDBACK_PATH) else signed

        def send(case: Any, credentials: dict[str, Any] = credentials) -> Any:
            return case.call(
                base_url=endpoints.api_url, session=session, verify=endpoints.ca_bundle, timeout=60, **credentials
            )

        strategy = operation.as_strategy(generation_mode=mode, path_parameters={"name": model} if model else None)
        try:
            _exercise(operation, strategy, send, statuses)
        except Exception as error:  # every operation runs; all failures are reported together
            failures[operation.label] = str(error)[:3000]
    print(f"{mode.value}/{model}: {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
    assert not failures, "\n\n".join(f"{label}:\n{report}" for label, report in failures.items())
    assert any(status == 200 for (_, status) in statuses), "no request was ever accepted"


def test_api_contract_run_reached_predict_and_models_api(local_api: tuple[LocalRuntime, Endpoints]) -> None:
    runtime, _ = local_api
    log = Path(runtime.log_dir) / "invocations.log"
    text = log.read_text()
    assert "predict" in text
    assert "models_api" in text


def test_local_mode_serves_the_drift_history_and_report_page(local_api: tuple[LocalRuntime, Endpoints]) -> None:
    _, endpoints = local_api
    session = requests.Session()
    signed = {"auth": SigV4(endpoints), "verify": endpoints.ca_bundle, "timeout": 60}

    history = session.get(f"{endpoints.api_url}/models/churn/drift", **signed)
    assert history.status_code == 200, history.text
    [run] = history.json()["history"]
    assert run["drifted_features"] == ["tenure_months", "plan"]

    as_json = session.get(f"{endpoints.api_url}/models/churn/drift/{run['report_id']}", **signed)
    assert as_json.status_code == 200, as_json.text
    assert as_json.headers["Content-Type"] == "application/json"
    assert DriftResult.model_validate(as_json.json()).dataset.drifted_features == ["tenure_months", "plan"]  # type: ignore[union-attr]

    for query, headers in (("?format=html", {}), ("", {"Accept": "text/html"})):
        page = session.get(
            f"{endpoints.api_url}/models/churn/drift/{run['report_id']}{query}", headers=headers, **signed
        )
        assert page.status_code == 200, page.text
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert page.headers["Content-Security-Policy"] == HEADER_CONTENT_SECURITY_POLICY
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.text.startswith("<!doctype html>")
        assert "tenure_months" in page.text
        assert "<svg" in page.text
        assert "<script" not in page.text
