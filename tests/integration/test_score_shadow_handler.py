"""score_shadow's handler on the moto server: two registered versions (real ONNX graphs), the
production one's captures written by predict's capture buffer to S3, the shadow set through the
registry; the handler scores them and the compare answer's statistics are stored."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.contract import parse_contract
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import ModelCache
from mlops.inference.service import PredictionService
from mlops.registry.service import shadow_view
from mlops.shadow import shadow_state_key
from mlops.training import train_model
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_dataset, records
from tests.support.lambda_context import FakeLambdaContext
from tests.support.registry_fake import trained_event
from tests.support.resources import create_resources

CONTRACT = json.loads((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())
APPROVER = "arn:aws:sts::123456789012:assumed-role/mlops-approvers/bob"


def test_score_shadow_handler_scores_production_captures_with_the_shadow(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = create_resources()
    s3 = boto3.client("s3")
    registry = DynamoRegistry(resources.registry_table)
    contract = parse_contract(CONTRACT)
    for score, noise in ((0.8, 0.05), (0.75, 0.45)):  # v1 production, v2 a candidate trained on noisy labels
        graph = train_model(churn_dataset(800, seed=5, label_noise=noise), contract).onnx_bytes
        event = trained_event(score=score, artifact=graph, bucket=resources.artifact_bucket, contract=CONTRACT)
        s3.put_object(Bucket=resources.artifact_bucket, Key=event.artifact_key, Body=graph)
        registry.register(event, actor="trainer")
    registry.set_shadow("churn", 2, actor=APPROVER, reason="watch v2")

    # GIVEN predict answered 120 requests with v1 and flushed its captures to S3
    store = S3ObjectStore()
    service = PredictionService(
        ModelCache(registry, store), CaptureBuffer(store, resources.artifact_bucket, max_records=40)
    )
    body = records(churn_dataset(120, seed=9).drop(columns=["churned"]))
    for start in range(0, 120, 20):
        service.predict("churn", json.dumps(body[start : start + 20]))
        service.after_request()
    service.shutdown()

    # WHEN the scheduled function runs
    for name, value in resources.env().items():
        monkeypatch.setenv(name, value)
    handler = load_handler_module("score_shadow")
    answer = handler.lambda_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, FakeLambdaContext())

    # THEN it scored every captured row with v2 and stored the statistics compare shows
    [scored] = answer["scored"]
    assert (scored["model"], scored["production_version"], scored["shadow_version"], scored["rows"]) == (
        "churn",
        1,
        2,
        120,
    )
    state = json.loads(s3.get_object(Bucket=resources.artifact_bucket, Key=shadow_state_key("churn"))["Body"].read())
    assert state["rows"] == 120
    view = shadow_view(store, resources.artifact_bucket, "churn", 1, 2)
    assert view is not None
    assert 0 <= view.statistics["label_agreement"] <= 1  # type: ignore[operator]
    assert view.statistics["max_probability_difference"] > 0  # type: ignore[operator]
    # a second run finds nothing new
    again = handler.lambda_handler({"source": "aws.events"}, FakeLambdaContext())
    assert again["scored"][0]["rows"] == 120


def test_one_models_broken_shadow_does_not_stop_the_others(
    aws: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    resources = create_resources()
    s3 = boto3.client("s3")
    registry = DynamoRegistry(resources.registry_table)
    # GIVEN two models with a shadow each; "aaa" (listed first) lost its shadow's artifact
    for name in ("aaa", "churn"):
        contract = dict(CONTRACT, name=name)
        for score, noise in ((0.8, 0.05), (0.75, 0.45)):
            graph = train_model(churn_dataset(300, seed=5, label_noise=noise), parse_contract(contract)).onnx_bytes
            event = trained_event(
                name, score=score, artifact=graph, bucket=resources.artifact_bucket, contract=contract
            )
            if (name, score) != ("aaa", 0.75):
                s3.put_object(Bucket=resources.artifact_bucket, Key=event.artifact_key, Body=graph)
            registry.register(event, actor="trainer")
        registry.set_shadow(name, 2, actor=APPROVER, reason="watch v2")
    store = S3ObjectStore()
    service = PredictionService(
        ModelCache(registry, store), CaptureBuffer(store, resources.artifact_bucket, max_records=40)
    )
    body = records(churn_dataset(40, seed=9).drop(columns=["churned"]))
    for name in ("aaa", "churn"):
        service.predict(name, json.dumps(body))
        service.after_request()
    service.shutdown()

    # WHEN the scheduled function runs
    for key, value in resources.env().items():
        monkeypatch.setenv(key, value)
    handler = load_handler_module("score_shadow")
    capsys.readouterr()
    answer = handler.lambda_handler({"source": "aws.events"}, FakeLambdaContext())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    # THEN churn's shadow is scored, aaa's failure is reported and counted with its model dimension
    assert [(s["model"], s["rows"]) for s in answer["scored"]] == [("churn", 40)]
    assert answer["failed"] == ["aaa"]
    failures = [line for line in lines if "ShadowFailures" in line]
    assert [(line["model"], line["ShadowFailures"]) for line in failures] == [("aaa", [1.0])]
