"""models_api `GET /models/{name}/quality` over in-memory fakes: the latest live-quality result in
full, a page of summaries newest first, unreadable runs listed with the reason, bad requests 4xx."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from mlops.layout import drift_report_id
from mlops.registry.access import AccessPolicy
from mlops_local.handlers import load_handler_module
from tests.support.datasets import InMemoryDatasetLedger
from tests.support.drift import InMemoryDriftResults, drift_result
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.support.lambda_context import FakeLambdaContext
from tests.support.quality import NOW, stored_quality_result
from tests.support.registry_fake import InMemoryRegistry, api_event, artifact_bytes, trained_event

ADMIN = "arn:aws:iam::123456789012:user/alice"
READER = "arn:aws:sts::123456789012:assumed-role/mlops-readers/carol"
STRANGER = "arn:aws:sts::123456789012:assumed-role/other/dave"
ACCESS = AccessPolicy(admins=[ADMIN], readers=["arn:aws:sts::123456789012:assumed-role/mlops-readers/*"])


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
def drift_runs() -> InMemoryDriftResults:
    return InMemoryDriftResults()


@pytest.fixture
def call(module: ModuleType, results: InMemoryDriftResults, drift_runs: InMemoryDriftResults) -> Any:
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
        drift_results=drift_runs,
        quality_results=results,
    )

    def call(path: str, *, user: str = ADMIN) -> tuple[int, Any]:
        response = app.resolve(api_event("GET", path, user_arn=user), FakeLambdaContext())
        if "format=html" in path:
            return response["statusCode"], response["body"]
        return response["statusCode"], json.loads(response["body"])

    return call


def store_run(results: InMemoryDriftResults, hours_ago: int, **kwargs: Any) -> str:
    at = NOW - timedelta(hours=hours_ago)
    report_id = drift_report_id(at)
    results.stored[("churn", report_id)] = stored_quality_result(at, **kwargs).model_dump_json().encode()
    return report_id


def test_models_api_quality_without_runs_is_an_empty_history(call: Any) -> None:
    status, document = call("/models/churn/quality")
    assert status == 200
    assert document == {"model": "churn", "latest": None, "history": [], "next": None}


def test_models_api_quality_serves_the_latest_in_full_and_summaries_newest_first(
    call: Any, results: InMemoryDriftResults
) -> None:
    quiet = store_run(results, 3, live=None, rows=50)
    fine = store_run(results, 2, live=0.86)
    worse = store_run(results, 1, live=0.62)
    status, document = call("/models/churn/quality", user=READER)
    assert status == 200
    assert [s["report_id"] for s in document["history"]] == [worse, fine, quiet]
    assert document["latest"]["verdict"]["below_minimum"] is True
    assert document["latest"]["production"]["metrics"]["roc_auc_error_bound"] == 0.0004
    newest = document["history"][0]
    assert (newest["metric"], newest["live"], newest["holdout"], newest["below"]) == ("roc_auc", 0.62, 0.9, True)
    assert document["history"][2]["status"] == "insufficient_data"
    assert document["history"][2]["live"] is None
    # paging: one a page, the token is the last id served
    status, first = call("/models/churn/quality?limit=1")
    assert first["next"] == worse
    status, second = call(f"/models/churn/quality?limit=1&next={worse}")
    assert [s["report_id"] for s in second["history"]] == [fine]
    assert second["latest"] is None


def test_models_api_quality_lists_an_unreadable_run_with_its_reason(call: Any, results: InMemoryDriftResults) -> None:
    report_id = store_run(results, 1)
    results.stored[("churn", report_id)] = b'{"schema_version": 0}'
    status, document = call("/models/churn/quality")
    assert status == 200
    [summary] = document["history"]
    assert "cannot read" in summary["problem"]
    assert document["latest"] is None


@pytest.mark.parametrize(
    ("path", "user", "status"),
    [
        ("/models/churn/quality", STRANGER, 403),
        ("/models/nope/quality", ADMIN, 404),
        ("/models/churn/quality?next=yesterday", ADMIN, 400),
        ("/models/Bad_Name/quality", ADMIN, 400),
    ],
)
def test_models_api_quality_refuses_bad_requests(call: Any, path: str, user: str, status: int) -> None:
    assert call(path, user=user)[0] == status


def test_drift_report_page_shows_the_live_quality_of_its_time(
    call: Any, results: InMemoryDriftResults, drift_runs: InMemoryDriftResults
) -> None:
    # GIVEN a drift run now, a quality run an hour before it (below the minimum) and one after it
    report_id = drift_runs.add(drift_result(generated_at=NOW))
    store_run(results, 1, live=0.61)
    store_run(results, -1, live=0.95)
    # WHEN its page is asked for
    status, page = call(f"/models/churn/drift/{report_id}?format=html")
    # THEN it shows the quality of its time: live vs holdout, the verdict and the labelled rows
    assert status == 200
    assert "Live quality (labelled traffic)" in page
    assert "0.61" in page
    assert "0.95" not in page
    assert "below the contract minimum" in page
    assert "400 labelled rows" in page


def test_drift_report_page_without_quality_runs_has_no_quality_section(
    call: Any, drift_runs: InMemoryDriftResults
) -> None:
    report_id = drift_runs.add(drift_result(generated_at=NOW))
    status, page = call(f"/models/churn/drift/{report_id}?format=html")
    assert status == 200
    assert "Live quality" not in page
