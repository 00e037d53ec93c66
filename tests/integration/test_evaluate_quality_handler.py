"""The evaluate_quality function on the moto server: the trained churn model's answers captured as
predict captures them, labels written as the feedback paths write them, the registry table, and
EMF metrics on stdout with exactly the dimensions the quality alarm uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from sklearn import metrics as skmetrics

from mlops.adapters.s3 import S3ObjectStore
from mlops.contract import parse_contract
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import ModelCache
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.labels import LabelBatch, encode_labels, new_label_batch_id, prediction_minute
from mlops.layout import label_key, quality_results_prefix
from mlops.training import TrainedModel, train_model
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_dataset, records
from tests.integration.test_detect_drift_handler import metric_lines, publish_production, scheduled_event, value
from tests.support.lambda_context import FakeLambdaContext
from tests.support.resources import TestResources, create_resources

CONTRACT = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(churn_dataset(2_000), CONTRACT)


@pytest.fixture
def quality(aws: str, monkeypatch: pytest.MonkeyPatch, trained: TrainedModel) -> tuple[TestResources, ModuleType]:
    resources = create_resources()
    publish_production(resources, trained)
    for name, value_ in resources.env().items():
        monkeypatch.setenv(name, value_)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "evaluate-quality")
    return resources, load_handler_module("evaluate_quality", fresh=True)


def serve_and_label(resources: TestResources, rows: int, *, flip: float = 0.0) -> tuple[list[str], list[float]]:
    """Answer `rows` records an hour ago through the production model, capture them as predict does,
    and label them with the data's truth (a share `flip` of the labels inverted). Returns the labels
    and the captured probability of "yes", for the scikit-learn reference."""
    from mlops.adapters.registry_dynamodb import DynamoRegistry

    store = S3ObjectStore()
    model = ModelCache(DynamoRegistry(resources.registry_table), store).get("churn")
    frame = churn_dataset(rows, seed=31)
    answered = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    answers = model.predict(records(frame[CONTRACT.feature_names]))
    ids = new_prediction_ids(len(answers), clock=lambda: answered)
    for answer, prediction_id in zip(answers, ids, strict=True):
        answer["prediction_id"] = prediction_id
    buffer = CaptureBuffer(store, resources.artifact_bucket, clock=lambda: answered + 30)
    buffer.add("churn", model.version, CONTRACT.feature_names, records(frame), answers, sample_rate=1.0)
    assert [r.error for r in buffer.flush()] == [None]
    truth = [str(label) for label in frame["churned"]]
    flipped = int(rows * flip)
    labels = [("no" if t == "yes" else "yes") if i < flipped else t for i, t in enumerate(truth)]
    arrived = datetime.now(UTC) - timedelta(minutes=30)
    batch = LabelBatch(ids, labels, [arrived.timestamp()] * rows, "api")
    boto3.client("s3").put_object(
        Bucket=resources.artifact_bucket,
        Key=label_key("churn", prediction_minute(ids[0]), new_label_batch_id(arrived)),
        Body=encode_labels(batch),
    )
    return labels, [float(a["probabilities"]["yes"]) for a in answers]


def run(handler: ModuleType, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    capsys.readouterr()
    result = handler.lambda_handler(scheduled_event(), FakeLambdaContext(function_name="evaluate-quality"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return result, [line for line in lines if "_aws" in line]


def stored_results(resources: TestResources) -> list[dict[str, Any]]:
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=resources.artifact_bucket, Prefix=quality_results_prefix("churn"))
    return [
        json.loads(s3.get_object(Bucket=resources.artifact_bucket, Key=item["Key"])["Body"].read())
        for item in sorted(listed.get("Contents", []), key=lambda item: item["Key"])
    ]


def test_evaluate_quality_scores_labelled_traffic_with_the_alarm_dimensions(
    quality: tuple[TestResources, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    resources, handler = quality
    labels, yes_probability = serve_and_label(resources, 400)
    result, emf = run(handler, capsys)
    assert result == {"models": {"churn": "scored"}}
    # THEN the live AUC is scikit-learn's on the same rows, within the stated bound
    [stored] = stored_results(resources)
    production = stored["production"]
    exact = skmetrics.roc_auc_score([label == "yes" for label in labels], yes_probability)
    assert abs(production["metrics"]["roc_auc"] - exact) <= production["metrics"]["roc_auc_error_bound"]
    assert stored["run"]["joined"] == 400
    assert stored["run"]["unmatched"] == 0
    assert stored["verdict"]["below_minimum"] is False
    # and every quality metric carries exactly the dimensions the alarm uses
    for name in ("LiveRocAuc", "LiveAccuracy", "LabelsJoined", "QualityBelowMinimum", "QualityCheckFailures"):
        [line] = metric_lines(emf, name)
        directive = line["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "MLOps"
        assert [sorted(d) for d in directive["Dimensions"]] == [["model", "service"]]
        assert (line["service"], line["model"]) == ("evaluate-quality", "churn")
    assert value(metric_lines(emf, "LiveRocAuc")[0], "LiveRocAuc") == pytest.approx(production["metrics"]["roc_auc"])
    assert value(metric_lines(emf, "LabelsJoined")[0], "LabelsJoined") == 400


def test_evaluate_quality_wrong_labels_raise_quality_below_minimum(
    quality: tuple[TestResources, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    resources, handler = quality
    serve_and_label(resources, 400, flip=0.6)  # most labels contradict the model
    _, emf = run(handler, capsys)
    assert value(metric_lines(emf, "QualityBelowMinimum")[0], "QualityBelowMinimum") == 1
    [stored] = stored_results(resources)
    assert stored["verdict"]["below_minimum"] is True
    assert stored["verdict"]["metric"] == "roc_auc"


def test_evaluate_quality_without_labels_publishes_no_score(
    quality: tuple[TestResources, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    resources, handler = quality
    result, emf = run(handler, capsys)
    assert result == {"models": {"churn": "insufficient_data"}}
    assert not metric_lines(emf, "QualityBelowMinimum")
    assert not metric_lines(emf, "LiveRocAuc")
    assert [value(line, "QualityCheckFailures") for line in metric_lines(emf, "QualityCheckFailures")] == [0]
    assert stored_results(resources)[0]["status"] == "insufficient_data"


def test_models_api_reads_the_stored_quality_runs_from_s3(
    quality: tuple[TestResources, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops.adapters.drift_results_s3 import S3DriftResults
    from mlops.adapters.registry_dynamodb import DynamoRegistry
    from mlops.layout import quality_result_key
    from mlops.quality.history import quality_history

    resources, handler = quality
    serve_and_label(resources, 300)
    run(handler, capsys)
    run(handler, capsys)  # nothing new: the same window judged again
    results = S3DriftResults(resources.artifact_bucket, prefix_of=quality_results_prefix, key_of=quality_result_key)
    history = quality_history(DynamoRegistry(resources.registry_table), results, "churn")
    assert len(history.history) == 2
    assert history.latest is not None
    assert history.latest.production is not None
    assert history.latest.production.labelled_rows == 300
    assert [summary.labels_joined for summary in history.history] == [0, 300]
