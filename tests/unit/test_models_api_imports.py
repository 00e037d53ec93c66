"""`POST /models/{name}/imports`: approvers get an upload URL for a model built elsewhere; readers do not."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from mlops.imports.requests import ticket_of
from tests.support.datasets import InMemoryDatasetLedger
from tests.support.drift import InMemoryDriftResults
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher, SignedUrls
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import InMemoryRegistry, api_event
from tests.unit.test_models_api import ACCESS, APPROVER, READER, module  # noqa: F401  (the module fixture)

DATA = "data"


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore()


@pytest.fixture
def urls() -> SignedUrls:
    return SignedUrls()


@pytest.fixture
def call(module: ModuleType, store: InMemoryObjectStore, urls: SignedUrls) -> Any:  # noqa: F811
    app = module.build_app(
        InMemoryRegistry(artifacts=store),
        RecordingPublisher(),
        store=store,
        access=ACCESS,
        ledger=InMemoryDatasetLedger(),
        drift_results=InMemoryDriftResults(),
        upload_urls=urls,
        data_bucket=DATA,
    )

    def call(path: str, body: Any, *, user: str) -> tuple[int, Any]:
        response = app.resolve(api_event("POST", path, body=body, user_arn=user), FakeLambdaContext())
        return response["statusCode"], json.loads(response["body"])

    return call


def test_models_api_import_gives_an_approver_an_upload_url_and_records_who_asked(
    call: Any, store: InMemoryObjectStore, urls: SignedUrls
) -> None:
    status, body = call("/models/churn/imports", {"file_name": "lgbm.onnx", "reason": "vendor model"}, user=APPROVER)
    assert status == 200
    assert body["method"] == "PUT"
    assert body["key"].startswith("models/churn/incoming/lgbm-")
    assert urls.signed == [(DATA, body["key"], 900)]
    assert body["upload_url"] == f"https://{DATA}.example/{body['key']}?signature=fake"
    ticket = ticket_of(store, DATA, body["key"])
    assert ticket is not None
    assert ticket.importer == APPROVER
    assert ticket.reason == "vendor model"


def test_models_api_import_is_refused_to_a_reader(call: Any, urls: SignedUrls) -> None:
    status, body = call("/models/churn/imports", {"file_name": "lgbm.onnx"}, user=READER)
    assert status == 403
    assert body["error"] == "ForbiddenError"
    assert urls.signed == []


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/models/churn/imports", {"file_name": "../../datasets/churn/x.onnx"}, 400, "file_name '../../datasets"),
        ("/models/churn/imports", {"file_name": "model.pkl"}, 400, "file_name 'model.pkl' is not a plain ONNX"),
        ("/models/Churn/imports", {"file_name": "a.onnx"}, 400, "'Churn' is not a valid model name"),
    ],
)
def test_models_api_import_names_a_bad_request(
    call: Any, urls: SignedUrls, path: str, body: Any, status: int, message: str
) -> None:
    got_status, got = call(path, body, user=APPROVER)
    assert got_status == status
    assert got["message"].startswith(message)
    assert urls.signed == []


def test_models_api_import_refuses_a_body_with_the_graph_in_it(call: Any) -> None:
    status, body = call("/models/churn/imports", {"file_name": "a.onnx", "graph": "AAAA"}, user=APPROVER)
    assert status == 422
    assert body["details"][0]["loc"][-1] == "graph"
