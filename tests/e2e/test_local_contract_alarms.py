"""A contract published to a running local mode gets its alarms without a restart (as a deployed
stack does after `cdk deploy`), they are evaluated at once, and they and their state survive a restart."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest

import infra.synth
from infra.outputs import STACK_NAME
from mlops_local.handlers import REPO_ROOT
from mlops_local.metrics import Datapoint
from mlops_local.runtime import Endpoints, LocalRuntime

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]


def _contract(name: str) -> bytes:
    document = json.loads((REPO_ROOT / "contracts" / "churn.json").read_text())
    document["name"] = name
    return json.dumps(document).encode()


def _client(endpoints: Endpoints, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoints.aws_endpoint_url,
        region_name=endpoints.region,
        aws_access_key_id=endpoints.access_key_id,
        aws_secret_access_key=endpoints.secret_access_key,
    )


def _alarm_names(endpoints: Endpoints, model: str) -> list[str]:
    listed = _client(endpoints, "cloudwatch").describe_alarms(AlarmNamePrefix=f"{STACK_NAME}-model-{model}-")
    return [alarm["AlarmName"] for alarm in listed["MetricAlarms"]]


def _count_syntheses(runtime: LocalRuntime) -> list[Any]:
    calls: list[Any] = []
    synthesize = runtime._synthesize

    def counted(*args: Any) -> Any:
        calls.append(args)
        return synthesize(*args)

    runtime._synthesize = counted  # type: ignore[method-assign]
    return calls


def test_contract_published_while_running_gets_its_drift_alarm_kept_after_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "local"
    drift_alarm = f"{STACK_NAME}-model-penguins-drift"
    runtime = LocalRuntime(workdir, schedules=False, contracts_poll_seconds=0)
    endpoints = runtime.start()
    try:
        assert _alarm_names(endpoints, "penguins") == []
        # WHEN a contract is published as `mlops contracts publish` does: into the data bucket, then the
        # control endpoint (the watcher would find it within seconds)
        _client(endpoints, "s3").put_object(
            Bucket=endpoints.outputs["DataBucketName"], Key="contracts/penguins.json", Body=_contract("penguins")
        )
        request = urllib.request.Request(f"{endpoints.control_url}/contracts/sync", method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
        # THEN its alarms exist on the stand-in and in the evaluator, and nothing else needs a restart
        assert drift_alarm in answer["alarms_added"]
        assert answer["contracts"] == ["churn", "penguins"]
        assert answer["restart_needed"] == []
        assert drift_alarm in _alarm_names(endpoints, "penguins")
        assert runtime.alarms.states[drift_alarm] == "INSUFFICIENT_DATA"
        # and the new alarm is evaluated: a drifted window puts it in ALARM
        spec = next(s for s in runtime.alarms.specs if s.name == drift_alarm)
        runtime.alarms.record([Datapoint(spec.namespace, spec.metric_name, spec.dimensions, 1.0, time.time())])
        assert runtime.alarms.states[drift_alarm] == "ALARM"
        assert runtime.alarms.states[f"{STACK_NAME}-model-churn-drift"] != "ALARM"  # churn's alarms untouched
    finally:
        runtime.stop()

    # WHEN local mode starts again, with the watcher on
    runtime = LocalRuntime(workdir, schedules=False, contracts_poll_seconds=0.5)
    synthesized = _count_syntheses(runtime)
    real_syntheses: list[Any] = []
    synthesize_template = infra.synth.synthesize_template
    monkeypatch.setattr(
        infra.synth, "synthesize_template", lambda *a, **k: real_syntheses.append(a) or synthesize_template(*a, **k)
    )
    endpoints = runtime.start()
    try:
        # THEN the restored contract has its alarm, in the state it had, from one template: the one
        # synthesized with the same contracts before the restart (cached), so no CDK synthesis at all
        assert runtime.alarms.states[drift_alarm] == "ALARM"
        assert len(synthesized) == 1
        assert real_syntheses == []
        assert drift_alarm in _alarm_names(endpoints, "penguins")
        # and an upload under contracts/ alone is picked up by the watcher
        _client(endpoints, "s3").put_object(
            Bucket=endpoints.outputs["DataBucketName"], Key="contracts/wine.json", Body=_contract("wine")
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and f"{STACK_NAME}-model-wine-drift" not in runtime.alarms.states:
            time.sleep(0.2)
        assert f"{STACK_NAME}-model-wine-drift" in _alarm_names(endpoints, "wine")
        assert len(real_syntheses) == 1  # new contracts, a new template
    finally:
        runtime.stop()
