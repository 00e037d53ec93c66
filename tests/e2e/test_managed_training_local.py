"""The managed-engine path in local mode (the synthesized stack): a dataset over the lowered
threshold is handed to the training state machine, whose SageMaker job (train_model's job.py, run
in a subprocess) trains it; it registers as any model does, with the engine in its lineage. A job
that fails ends in record_training_failure, as the template's Catch says."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.events import DatasetValidated
from mlops.training.engine import ENGINE, execution_input, job_name
from mlops_local.client import ApiClient
from mlops_local.demo import InvocationWatch
from mlops_local.runtime import LocalRuntime
from mlops_local.sample_data import churn_dataset

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]

THRESHOLD_ROWS = 1_500
STATES = ("accepted", "trained", "registered", "training_failed", "training_rejected")


def test_a_dataset_over_the_lowered_threshold_trains_on_the_engine_and_registers_with_its_lineage(
    tmp_path: Path,
) -> None:
    runtime = LocalRuntime(tmp_path / "local", schedules=False, persist=False, managed_training_min_rows=THRESHOLD_ROWS)
    endpoints = runtime.start()
    try:
        watch = InvocationWatch(runtime)
        session = boto3.session.Session(
            aws_access_key_id=endpoints.access_key_id,
            aws_secret_access_key=endpoints.secret_access_key,
            region_name=endpoints.region,
        )
        s3: Any = session.client("s3", endpoint_url=endpoints.aws_endpoint_url)
        api = ApiClient(
            endpoints.api_url,
            ca_bundle=endpoints.ca_bundle,
            api_key=endpoints.api_key,
            access_key=endpoints.access_key_id,
            secret_key=endpoints.secret_access_key,
            region=endpoints.region,
        )
        data_bucket = endpoints.outputs["DataBucketName"]

        # GIVEN a dataset over the threshold
        mark = watch.mark()
        csv = io.StringIO()
        churn_dataset(2_000, seed=11, label_noise=0.05).to_csv(csv, index=False)
        s3.put_object(Bucket=data_bucket, Key="datasets/churn/big.csv", Body=csv.getvalue().encode())
        # WHEN train_model receives it, it hands it off; the engine trains; register_model registers
        handed = watch.wait_for("train_model", mark, timeout=300)
        assert handed.result["status"] == "TrainingHandedOff", handed.result
        assert handed.result["engine"] == ENGINE
        registered = watch.wait_for("register_model", mark, timeout=600)
        assert registered.ok

        # THEN the version's lineage says where and how it trained
        [version] = api.admin("GET", "/models/churn/versions").body
        trained_on = version["lineage"]["trained_on"]
        assert trained_on["engine"] == ENGINE
        assert trained_on["job_id"] == handed.result["job_name"]
        assert trained_on["compute"] == "ml.r5.2xlarge"
        assert trained_on["seconds"] > 0
        # AND the ledger went accepted -> (handed off) -> trained -> registered
        listed = {state: api.admin("GET", f"/models/churn/datasets?state={state}").body for state in STATES}
        assert len(listed["registered"]) == 1, listed
        [entry] = listed["registered"]
        reasons = [change["reason"] for change in entry["history"]]
        assert any(reason.startswith(f"handed off to {ENGINE}") for reason in reasons), reasons
        assert [change["state"] for change in entry["history"]][-2:] == ["trained", "registered"]
        [(_, outcome)] = runtime.state_machines.history
        assert outcome.status == "SUCCEEDED"

        # WHEN an execution's job fails (its ledger entry is gone: job.py exits 1)
        machine = runtime.state_machines.machines[0]
        event = DatasetValidated.model_validate(
            {
                "model_name": "churn",
                "dataset": {**entry_ref(entry), "version_id": "another"},
                "contract_digest": "0" * 64,
                "report_key": "reports/churn/x.json",
            }
        )
        document = execution_input(event, job_name(event))
        document["job"]["dataset_id"] = "gone-0123456789abcdef"
        mark = watch.mark()
        session.client("stepfunctions", endpoint_url=endpoints.aws_endpoint_url).start_execution(
            stateMachineArn=machine.arn, name=job_name(event), input=json.dumps(document)
        )
        recorded = watch.wait_for("record_training_failure", mark, timeout=300)
        # THEN the Catch hands the job's failure to record_training_failure, and the execution fails
        assert recorded.result["status"] == "Recorded", recorded.result
        assert "ManagedTrainingFailed" in recorded.result["reason"]
        assert "exited with status 1" in recorded.result["reason"]
        deadline = time.monotonic() + 30  # the execution closes just after its last state
        while len(runtime.state_machines.history) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        _, failed = runtime.state_machines.history[-1]
        assert failed.status == "FAILED"
        assert failed.error == "ManagedTrainingFailed"
    finally:
        runtime.stop()


def entry_ref(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in ("bucket", "key", "sha256", "size_bytes", "rows")}
