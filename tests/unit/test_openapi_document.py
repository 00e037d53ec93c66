"""The models API's OpenAPI document describes what the API really answers: every status each
route can send with its body, the constraints the handlers enforce, and the predict route with
the request schema of each production contract."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from mlops.contract import parse_contract
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.registry.access import AccessPolicy
from mlops_local.handlers import load_handler_module
from tests.support.datasets import InMemoryDatasetLedger
from tests.support.drift import InMemoryDriftResults
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import InMemoryRegistry, api_event, artifact_bytes, trained_event

ADMIN = "arn:aws:iam::123456789012:user/alice"
CHURN = json.loads((Path(__file__).resolve().parents[2] / "contracts" / "churn.json").read_text())
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture(scope="module")
def module() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGISTRY_TABLE", "registry")
        patch.setenv("LEDGER_TABLE", "ledger")
        patch.setenv("EVENT_BUS_NAME", "bus")
        patch.setenv("DATA_BUCKET", "data")
        patch.setenv("ARTIFACT_BUCKET", "artifacts")
        return load_handler_module("models_api")


@pytest.fixture(scope="module")
def document(module: ModuleType) -> dict[str, Any]:
    store = InMemoryObjectStore()
    registry = InMemoryRegistry(store)
    event = trained_event("churn", score=0.9, contract=CHURN)
    store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes("churn-0.9"))
    registry.register(event, actor="trainer")  # promoted: the first version of a model
    app = module.build_app(
        registry,
        RecordingPublisher(),
        store=store,
        access=AccessPolicy(admins=[ADMIN], approvers=[], readers=[]),
        ledger=InMemoryDatasetLedger(),
        drift_results=InMemoryDriftResults(),
    )
    response = app.resolve(api_event("GET", "/openapi.json", user_arn=ADMIN), FakeLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in document["paths"].items() for method, op in item.items()}


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["name"] == name)["schema"]


# routes that never answer 422: the feedback route refuses bad labels with a 400 listing each
NO_422 = {("POST", "/models/{name}/feedback")}


# routes that queue work answer 202 (retrain_model decides later), routes that create something 201,
# every other route 200
ACCEPTED = {("POST", "/models/{name}/retrain")}
CREATED = {("POST", "/clients")}


def test_openapi_every_route_documents_each_error_status_with_the_error_body(document: dict[str, Any]) -> None:
    for (method, path), operation in _operations(document).items():
        responses = operation["responses"]
        success = "202" if (method, path) in ACCEPTED else "201" if (method, path) in CREATED else "200"
        assert {success, "400", "403", "404", "413", "429"} <= set(responses), (method, path)
        assert ("200" in responses) is (success == "200"), (method, path)
        assert ("422" in responses) is ((method, path) not in NO_422), (method, path)
        for status, response in responses.items():
            if status != success:
                assert response["content"]["application/json"]["schema"] == ERROR_BODY, (method, path, status)


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        ("POST", "/models/{name}/versions/{version}/approve", {"409"}),
        ("POST", "/models/{name}/versions/{version}/reject", {"409"}),
        ("POST", "/models/{name}/versions/{version}/archive", {"409"}),
        ("POST", "/models/{name}/versions/{version}/promote", {"409", "503"}),
        ("POST", "/models/{name}/rollback", {"409", "503"}),
        ("PUT", "/models/{name}/aliases/{alias}", {"409"}),
        ("POST", "/models/{name}/datasets/{dataset_id}/review", {"409"}),
        ("GET", "/models/{name}/compare", {"503"}),
        ("POST", "/models/{name}/predict", {"503"}),
        ("POST", "/models/{name}/feedback", {"409", "503"}),
    ],
)
def test_openapi_changes_document_conflicts_and_integrity_failures(
    document: dict[str, Any], method: str, path: str, extra: set[str]
) -> None:
    assert extra <= set(_operations(document)[(method, path)]["responses"])


def test_openapi_error_body_is_what_the_handlers_and_api_gateway_send(document: dict[str, Any]) -> None:
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["message"]
    assert {"error", "message", "details"} == set(error_body["properties"])


def test_openapi_documents_the_constraints_the_handlers_enforce(document: dict[str, Any]) -> None:
    operations = _operations(document)
    get_version = operations[("GET", "/models/{name}/versions/{version}")]
    assert _parameter(get_version, "name")["pattern"] == "^[a-z][a-z0-9-]{0,62}$"
    assert _parameter(get_version, "version")["pattern"] == "^0*[1-9][0-9]*$"
    set_alias = operations[("PUT", "/models/{name}/aliases/{alias}")]
    assert _parameter(set_alias, "alias")["not"] == {"const": "production"}
    review = document["components"]["schemas"]["ReviewRequest"]
    assert review["properties"]["decision"]["enum"] == ["approve", "reject"]
    review_op = operations[("POST", "/models/{name}/datasets/{dataset_id}/review")]
    assert _parameter(review_op, "dataset_id")["pattern"].endswith("-[0-9a-f]{16}$")


def test_openapi_documents_predict_with_the_production_contract(document: dict[str, Any]) -> None:
    predict = _operations(document)[("POST", "/models/{name}/predict")]
    assert predict["security"] == [{"api_key": []}]
    assert document["security"] == [{"sigv4": []}]
    schemes = document["components"]["securitySchemes"]
    assert (schemes["api_key"]["in"], schemes["api_key"]["name"]) == ("header", "x-api-key")
    request = document["components"]["schemas"]["PredictRequest"]
    envelope, bare_list = request["oneOf"]
    assert envelope["required"] == ["records"]
    record = bare_list["items"]
    contract = parse_contract(CHURN)
    assert set(record["properties"]) == set(contract.feature_names)
    assert set(record["required"]) == {f.name for f in contract.features if not f.nullable}
    assert record["properties"]["plan"] == {"type": "string", "enum": ["basic", "standard", "premium"]}
    assert record["properties"]["tenure_months"] == {"type": "number", "minimum": 0, "maximum": 240}
    assert record["properties"]["autopay"] == {"type": "boolean"}
    assert {"type": "null"} in record["properties"]["data_usage_gb"]["anyOf"]


@pytest.mark.parametrize(
    "answer",
    [
        {"label": "yes", "probabilities": {"no": 0.3, "yes": 0.7}},  # classification
        {"value": 12.5},  # regression
    ],
    ids=["classification", "regression"],
)
def test_openapi_documents_a_prediction_id_per_answer(document: dict[str, Any], answer: dict[str, Any]) -> None:
    response = document["components"]["schemas"]["PredictResponse"]
    item = response["properties"]["predictions"]["items"]
    assert "prediction_id" in item["required"]
    with_id = {"model": "churn", "version": 3, "predictions": [answer | {"prediction_id": new_prediction_ids(1)[0]}]}
    jsonschema.validate(with_id, response)
    # an answer without its id, or with an id of another shape, is not what predict sends
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**with_id, "predictions": [answer]}, response)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**with_id, "predictions": [answer | {"prediction_id": "1"}]}, response)


def test_openapi_documents_the_drift_routes(document: dict[str, Any]) -> None:
    operations = _operations(document)
    history = operations[("GET", "/models/{name}/drift")]
    assert history["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DriftHistory"
    }
    assert (_parameter(history, "limit")["minimum"], _parameter(history, "limit")["maximum"]) == (1, 50)
    assert _parameter(history, "next")["pattern"] == "^[0-9]{8}T[0-9]{12}Z$"
    report = operations[("GET", "/models/{name}/drift/{report_id}")]
    assert _parameter(report, "report_id")["pattern"] == "^[0-9]{8}T[0-9]{12}Z$"
    # one route, two representations: the stored result, or its page with ?format=html / Accept: text/html
    content = report["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/DriftResult"}
    assert content["text/html"]["schema"] == {"type": "string"}
    assert document["components"]["schemas"]["ReportFormat"]["enum"] == ["json", "html"]
    summary = document["components"]["schemas"]["DriftSummary"]["properties"]
    assert {"generated_at", "status", "drift_detected", "dataset_drift_share", "drifted_features"} <= set(summary)
    assert {"data_quality_alarm", "report_id"} <= set(summary)


def test_openapi_documents_the_feedback_route_and_its_rules(document: dict[str, Any]) -> None:
    feedback = _operations(document)[("POST", "/models/{name}/feedback")]
    assert feedback["security"] == [{"api_key": []}]
    # the description states the repeat rule and what an id never issued becomes
    assert "the first label received for a prediction counts" in feedback["description"]
    assert "counted as unmatched by the quality join" in feedback["description"]
    assert "All or nothing" in feedback["description"]
    request = document["components"]["schemas"]["FeedbackRequest"]
    (prediction_id,) = new_prediction_ids(1)
    jsonschema.validate({"labels": [{"prediction_id": prediction_id, "label": "yes"}]}, request)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"labels": [{"prediction_id": prediction_id, "label": "yes"}] * 1001}, request)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"labels": [{"prediction_id": "1", "label": "yes"}]}, request)
    assert "older_than_horizon" in feedback["responses"]["400"]["description"]


def test_openapi_predict_documents_the_request_limits(document: dict[str, Any]) -> None:
    from mlops.request_limits import USAGE_PLAN_BURST, USAGE_PLAN_RATE_PER_SECOND
    from mlops.settings import PredictSettings

    max_records = int(PredictSettings.env_defaults()["MAX_RECORDS_PER_REQUEST"])
    predict = _operations(document)[("POST", "/models/{name}/predict")]
    description = predict["description"]
    assert f"at most {max_records:,} records" in description
    assert "6 MB" in description  # Lambda's synchronous payload, the whole event
    assert "10 MB" in description  # API Gateway's own limit (its 413)
    assert f"{USAGE_PLAN_RATE_PER_SECOND} requests per second" in description
    assert f"bursts of {USAGE_PLAN_BURST}" in description
    assert "per client IP" in description  # the web ACL's rate rule
    # the envelope and the bare list both carry the records limit as a schema constraint
    envelope, bare_list = document["components"]["schemas"]["PredictRequest"]["oneOf"]
    assert envelope["properties"]["records"]["maxItems"] == max_records
    assert bare_list["maxItems"] == max_records
