"""retrain_model on the moto server: the churn model in production, its accepted dataset, labelled
traffic captured as predict captures it; a quality alarm's state change starts a retraining whose
training set validate_dataset then accepts like any upload; the next alarm within the cooldown is
skipped; each step is in the registry's audit trail."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.contract import parse_contract
from mlops.events import DatasetRef
from mlops.layout import contract_key
from mlops.training import train_model
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_dataset
from tests.integration.test_detect_drift_handler import publish_production
from tests.integration.test_validate_dataset_handler import s3_event
from tests.support.challenger import write_labelled_traffic
from tests.support.datasets import accepted_entry
from tests.support.lambda_context import FakeLambdaContext
from tests.support.resources import TestResources

CONTRACT_TEXT = (Path(__file__).parents[2] / "contracts" / "churn.json").read_text()
CONTRACT = parse_contract(CONTRACT_TEXT)
PREFIX = "MlopsStack-model-"


def alarm_event(name: str = f"{PREFIX}churn-quality") -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": "ALARM", "reason": "Threshold Crossed: 1 datapoint [1.0] >= 1.0"},
            "previousState": {"value": "OK"},
        },
    }


@pytest.fixture
def world(stack: TestResources, monkeypatch: pytest.MonkeyPatch) -> TestResources:
    """Production v1, its accepted dataset (uploaded a day ago) and 300 labelled predictions since."""
    monkeypatch.setenv("ALARM_NAME_PREFIX", PREFIX)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=stack.data_bucket, Key=contract_key("churn"), Body=CONTRACT_TEXT.encode())
    first = churn_dataset(2_000, seed=7, label_noise=0.05)
    publish_production(stack, train_model(first, CONTRACT))
    body = first.to_csv(index=False).encode()
    key = "datasets/churn/first.csv"
    version = s3.put_object(Bucket=stack.data_bucket, Key=key, Body=body)["VersionId"]
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    ref = DatasetRef(
        bucket=stack.data_bucket,
        key=key,
        version_id=version,
        sha256=hashlib.sha256(body).hexdigest(),
        size_bytes=len(body),
        rows=len(first),
        uploaded_at=yesterday,
    )
    entry = accepted_entry(ref, at=yesterday).model_copy(update={"contract_digest": CONTRACT.digest})
    DynamoDatasetLedger(stack.ledger_table).record(entry)
    served = churn_dataset(300, seed=99, label_noise=0.05)
    write_labelled_traffic(
        S3ObjectStore(),
        stack.artifact_bucket,
        served,
        answered_at=datetime.now(UTC) - timedelta(hours=2),
        target="churned",
        model="churn",
    )
    return stack


def test_a_quality_alarm_retrains_through_the_dataset_gate_and_the_next_one_waits_for_the_cooldown(
    world: TestResources,
) -> None:
    handler = load_handler_module("retrain_model", fresh=True)

    # WHEN the model's quality alarm enters ALARM
    started = handler.lambda_handler(alarm_event(), FakeLambdaContext())

    # THEN the last accepted dataset plus the 300 labelled predictions are written under datasets/
    assert started["started"] is True, started
    key = started["dataset_key"]
    assert key.startswith("datasets/churn/retrain-")
    body = boto3.client("s3").get_object(Bucket=world.data_bucket, Key=key)["Body"].read()
    written = pd.read_parquet(io.BytesIO(body))
    assert list(written.columns) == CONTRACT.columns
    assert len(written) == 2_300

    # AND the dataset gate takes it like an upload
    validate = load_handler_module("validate_dataset", fresh=True)
    uploaded = {"key": key, "size": len(body), "eTag": hashlib.md5(body).hexdigest()}
    [outcome] = validate.lambda_handler(s3_event(world.data_bucket, uploaded), FakeLambdaContext())["results"]
    assert outcome["disposition"] == "validated", outcome

    # WHEN the drift alarm fires an hour later... here: at once, within the 6 h cooldown
    skipped = handler.lambda_handler(alarm_event(f"{PREFIX}churn-drift"), FakeLambdaContext())
    assert skipped["started"] is False
    assert skipped["reason"].startswith("cooldown: the last retraining started ")

    # THEN the audit trail says what asked, what started (with its numbers) and what was skipped and why
    events = [e for e in DynamoRegistry(world.registry_table).audit_events("churn") if e.action.startswith("retrain")]
    assert [e.action for e in events] == [
        "retrain_requested",
        "retrain_started",
        "retrain_requested",
        "retrain_skipped",
    ]
    assert events[0].actor == f"alarm:{PREFIX}churn-quality"
    assert events[1].after["dataset_key"] == key
    assert (events[1].after["base_rows"], events[1].after["traffic_rows"]) == (2_000, 300)
    assert events[3].after["gate"] == "cooldown"


def test_a_training_set_the_gate_refuses_is_the_retrainings_outcome_in_the_audit_trail(
    world: TestResources,
) -> None:
    handler = load_handler_module("retrain_model", fresh=True)
    started = handler.lambda_handler(alarm_event(), FakeLambdaContext())
    key = started["dataset_key"]
    # WHEN the dataset gate's refusal of that training set comes back over the bus, twice
    refusal = {
        "id": "refusal-1",
        "source": "mlops",
        "detail-type": "DatasetQuarantined",
        "detail": {
            "model_name": "churn",
            "source_key": key,
            "quarantine_key": "quarantine/" + key.removeprefix("datasets/"),
            "report_key": "reports/churn/r.json",
            "reasons": ["range: 12 rows outside the declared range of tenure_months"],
        },
    }
    answer = handler.lambda_handler(refusal, FakeLambdaContext())
    handler.lambda_handler(refusal, FakeLambdaContext())
    # THEN the model's audit trail (DynamoDB) says once what became of the retraining, and why
    assert answer["refused"] == "quarantined by the dataset gate"
    events = [e for e in DynamoRegistry(world.registry_table).audit_events("churn") if e.action == "retrain_refused"]
    assert len(events) == 1
    assert events[0].after["dataset_key"] == key
    assert "12 rows outside the declared range" in events[0].reason
