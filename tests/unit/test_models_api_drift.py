"""models_api drift routes over in-memory fakes: a model's drift history (latest, newest first,
paged), one run's result as JSON or its report page as HTML, and every bad request a 4xx."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from mlops.drift.report import HEADER_CONTENT_SECURITY_POLICY
from mlops.drift.result import DriftResult
from mlops.registry.access import AccessPolicy
from mlops_local.handlers import load_handler_module
from tests.support.datasets import InMemoryDatasetLedger
from tests.support.drift import GENERATED_AT, InMemoryDriftResults, drift_result, insufficient_result
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import InMemoryRegistry, api_event, artifact_bytes, trained_event

ADMIN = "arn:aws:iam::123456789012:user/alice"
READER = "arn:aws:sts::123456789012:assumed-role/mlops-readers/carol"
STRANGER = "arn:aws:sts::123456789012:assumed-role/other/dave"
ACCESS = AccessPolicy(admins=[ADMIN], readers=["arn:aws:sts::123456789012:assumed-role/mlops-readers/*"])
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def module() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "REGISTRY_TABLE": "registry",
            "LEDGER_TABLE": "ledger",
            "EVENT_BUS_NAME": "bus",
            "DATA_BUCKET": "data",
            "ARTIFACT_BUCKET": "artifacts",
        }.items():
            patch.setenv(name, value)
        return load_handler_module("models_api")


@pytest.fixture
def results() -> InMemoryDriftResults:
    return InMemoryDriftResults()


@pytest.fixture
def call(module: ModuleType, results: InMemoryDriftResults) -> Any:
    store = InMemoryObjectStore()
    registry = InMemoryRegistry(artifacts=store)
    event = trained_event(score=0.8)
    store.put_bytes(event.artifact_bucket, event.artifact_key, artifact_bytes("churn"))
    registry.register(event, actor="trainer")
    app = module.build_app(
        registry,
        RecordingPublisher(),
        store=store,
        access=ACCESS,
        ledger=InMemoryDatasetLedger(),
        drift_results=results,
    )

    def call(path: str, *, user: str = ADMIN, headers: dict[str, str] | None = None) -> dict[str, Any]:
        event = api_event("GET", path, user_arn=user)
        event["headers"].update(headers or {})
        return app.resolve(event, FakeLambdaContext())

    return call


def body(response: dict[str, Any]) -> Any:
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"], response
    return json.loads(response["body"])


def _three_runs(results: InMemoryDriftResults) -> list[tuple[str, DriftResult]]:
    """Oldest first: a quiet hour (too small), a clean run, a drifted run."""
    runs = [
        insufficient_result(generated_at=GENERATED_AT - timedelta(hours=2)),
        drift_result(features=4, drifted=(), prediction_drifted=False, generated_at=GENERATED_AT - timedelta(hours=1)),
        drift_result(features=4, drifted=(1, 2), generated_at=GENERATED_AT),
    ]
    return [(results.add(run), run) for run in runs]


def test_drift_history_is_empty_before_the_first_run(call: Any) -> None:
    response = call("/models/churn/drift")

    assert response["statusCode"] == 200
    assert body(response) == {"model": "churn", "latest": None, "history": [], "next": None}


def test_drift_history_has_the_latest_result_and_summaries_newest_first(
    call: Any, results: InMemoryDriftResults
) -> None:
    (quiet_id, _), (clean_id, _), (drifted_id, drifted) = _three_runs(results)

    response = call("/models/churn/drift", user=READER)  # readers may read drift

    assert response["statusCode"] == 200
    page = body(response)
    assert DriftResult.model_validate(page["latest"]) == drifted
    assert [s["report_id"] for s in page["history"]] == [drifted_id, clean_id, quiet_id]
    newest, clean, quiet = page["history"]
    assert newest == {
        "report_id": drifted_id,
        "generated_at": "2026-12-02T10:05:00Z",
        "version": 3,
        "status": "scored",
        "drift_detected": True,
        "dataset_drift_share": 0.5,
        "dataset_drift_threshold": 0.5,
        "drifted_features": ["feature_01", "feature_02"],
        "prediction_drifted": True,
        "data_quality_alarm": True,
        "window_rows": 5000,
        "problem": None,
    }
    assert (clean["drift_detected"], clean["drifted_features"]) == (False, [])
    assert (quiet["status"], quiet["drift_detected"], quiet["dataset_drift_share"]) == (
        "insufficient_data",
        False,
        None,
    )
    assert page["next"] is None


def test_drift_history_pages_with_limit_and_next(call: Any, results: InMemoryDriftResults) -> None:
    (quiet_id, _), (clean_id, _), (drifted_id, _) = _three_runs(results)

    first = body(call("/models/churn/drift?limit=2"))
    assert [s["report_id"] for s in first["history"]] == [drifted_id, clean_id]
    assert first["next"] == clean_id

    second = body(call(f"/models/churn/drift?limit=2&next={first['next']}"))
    assert [s["report_id"] for s in second["history"]] == [quiet_id]
    assert (second["next"], second["latest"]) == (None, None)  # `latest` is the first page's


def test_drift_history_lists_an_unreadable_result_with_the_reason(call: Any, results: InMemoryDriftResults) -> None:
    # GIVEN a result written before this schema (issue 8's earlier report shape) and a current one
    results.stored[("churn", "20261202T090000000000Z")] = json.dumps(
        {"model_name": "churn", "version": 3, "status": "scored", "window_rows": 500, "features": {"x": 0.1}}
    ).encode()
    current = results.add(drift_result(features=3))

    page = body(call("/models/churn/drift"))

    assert [s["report_id"] for s in page["history"]] == [current, "20261202T090000000000Z"]
    old = page["history"][1]
    assert old["status"] is None
    assert old["generated_at"] == "2026-12-02T09:00:00Z"
    assert "cannot read" in old["problem"]
    response = call("/models/churn/drift/20261202T090000000000Z")
    assert (response["statusCode"], body(response)["error"]) == (404, "DriftReportNotFoundError")
    assert "older schema" in body(response)["message"]


def test_drift_report_serves_the_stored_result_as_json(call: Any, results: InMemoryDriftResults) -> None:
    [*_, (drifted_id, drifted)] = _three_runs(results)

    for headers in (None, {"Accept": "application/json"}, {"accept": "*/*"}, {"Accept": "text/html;q=0.5, */*"}):
        response = call(f"/models/churn/drift/{drifted_id}", headers=headers)
        assert response["statusCode"] == 200, headers
        assert DriftResult.model_validate(body(response)) == drifted
    assert body(call(f"/models/churn/drift/{drifted_id}?format=json", headers={"Accept": "text/html"}))["version"] == 3


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?format=html", None),
        ("", {"Accept": "text/html"}),
        ("", {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}),  # a browser
    ],
)
def test_drift_report_serves_the_page_as_html_with_security_headers(
    call: Any, results: InMemoryDriftResults, query: str, headers: dict[str, str] | None
) -> None:
    [*_, (drifted_id, _)] = _three_runs(results)

    response = call(f"/models/churn/drift/{drifted_id}{query}", headers=headers, user=READER)

    assert response["statusCode"] == 200
    sent = {name: values[0] for name, values in response["multiValueHeaders"].items()}
    assert sent["Content-Type"] == "text/html; charset=utf-8"
    assert sent["Content-Security-Policy"] == HEADER_CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in sent["Content-Security-Policy"]
    assert sent["X-Content-Type-Options"] == "nosniff"
    page = response["body"]
    assert page.startswith("<!doctype html>")
    assert "feature_01" in page
    assert "<svg" in page
    assert "<script" not in page


def test_drift_report_page_escapes_hostile_feature_names(call: Any, results: InMemoryDriftResults) -> None:
    report_id = results.add(drift_result(features=3, names=[HOSTILE, "b", "c"]))

    page = call(f"/models/churn/drift/{report_id}?format=html")["body"]

    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/models/unknown/drift", 404, "ModelNotFoundError"),
        ("/models/unknown/drift/20261202T100500000000Z", 404, "ModelNotFoundError"),
        ("/models/Bad_Name/drift", 400, "BadRequestError"),
        ("/models/churn/drift/20261202T100500000000Z", 404, "DriftReportNotFoundError"),
        ("/models/churn/drift/latest", 400, "BadRequestError"),
        ("/models/churn/drift/2026-12-02", 400, "BadRequestError"),
        ("/models/churn/drift/..%2F..%2Fbaselines", 400, "BadRequestError"),
        ("/models/churn/drift/20261202T100500000000Z%20", 400, "BadRequestError"),
        ("/models/churn/drift?next=20261202", 400, "BadRequestError"),
        ("/models/churn/drift?next=..%2Fx", 400, "BadRequestError"),
        ("/models/churn/drift?limit=0", 422, "RequestValidationError"),
        ("/models/churn/drift?limit=51", 422, "RequestValidationError"),
        ("/models/churn/drift?limit=x", 422, "RequestValidationError"),
        ("/models/churn/drift/20261202T100500000000Z?format=pdf", 422, "RequestValidationError"),
    ],
)
def test_drift_routes_answer_bad_requests_with_4xx(call: Any, path: str, status: int, error: str) -> None:
    response = call(path)
    assert (response["statusCode"], body(response)["error"]) == (status, error), body(response)


def test_drift_routes_need_a_role(call: Any, results: InMemoryDriftResults) -> None:
    report_id = results.add(drift_result(features=2))
    for path in ("/models/churn/drift", f"/models/churn/drift/{report_id}?format=html"):
        response = call(path, user=STRANGER)
        assert (response["statusCode"], body(response)["error"]) == (403, "ForbiddenError")


def test_drift_report_keys_are_where_the_drift_function_writes_them() -> None:
    # the API reads through mlops.layout; the drift function names its objects with its own helper
    from mlops.drift.monitor import drift_report_key
    from mlops.layout import drift_report_id, drift_result_key, is_drift_report_id

    at = GENERATED_AT + timedelta(microseconds=123)
    assert drift_report_key("churn", at) == drift_result_key("churn", drift_report_id(at))
    assert drift_report_id(at) == "20261202T100500000123Z"
    assert is_drift_report_id(drift_report_id(at))


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("text/html", True),
        ("TEXT/HTML", True),
        ("application/json;q=0.9, text/html", True),
        ("text/html;q=0.5, application/json", False),
        ("text/html;q=nan, application/json;q=0.1", False),
        ("text/html;q=x", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
    ],
)
def test_wants_html_follows_the_accept_header_when_no_format_is_given(
    module: ModuleType, accept: str | None, html: bool
) -> None:
    assert module.wants_html(None, accept) is html
    assert module.wants_html(module.ReportFormat.JSON, "text/html") is False
    assert module.wants_html(module.ReportFormat.HTML, "application/json") is True
