"""Local mode evaluates the alarm kinds the template uses: Lambda, API Gateway and SQS metrics local
mode produces itself, metric math, percentiles, composites and alarms it cannot compute."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_local.client import ApiClient
from mlops_local.runtime import LocalRuntime
from tests.integration.test_local_runtime import _client, mini_template

pytestmark = pytest.mark.xdist_group("local-runtime")


def _alarm(namespace: str, metric: str, dimensions: list[dict[str, Any]], statistic: str = "Sum") -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": dimensions,
            "Statistic": statistic,
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        },
    }


def _api_query(query_id: str, metric: str) -> dict[str, Any]:
    dimensions = [{"Name": "ApiName", "Value": "test"}, {"Name": "Stage", "Value": {"Ref": "Stage"}}]
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": "AWS/ApiGateway", "MetricName": metric, "Dimensions": dimensions},
            "Period": 300,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }


def alarms_template(echo_log: Path) -> dict[str, Any]:
    """The runtime tests' small template plus operational alarms feeding one composite on its own topic."""
    template = mini_template(echo_log)
    template["Resources"]["Stage"]["Properties"]["MethodSettings"] = [
        {"HttpMethod": "*", "ResourcePath": "/*", "MetricsEnabled": True}  # per-method metrics too
    ]
    # the deployed API's stage URL, as CDK writes it (RestApi.url), in a variable and an output
    stage_url = {
        "Fn::Join": [
            "",
            [
                "https://",
                {"Ref": "Api"},
                ".execute-api.",
                {"Ref": "AWS::Region"},
                ".",
                {"Ref": "AWS::URLSuffix"},
                "/",
                {"Ref": "Stage"},
                "/",
            ],
        ]
    }
    template["Resources"]["Echo"]["Properties"]["Environment"]["Variables"]["REPORT_BASE_URL"] = stage_url
    template["Outputs"]["ApiUrl"] = {"Value": stage_url}
    template["Resources"].update(
        {
            # operational alarms feeding one composite on its own topic (Topic stays the first topic)
            "OpsTopic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "DeadLetters": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "EchoErrors": _alarm("AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": {"Ref": "Echo"}}]),
            "DeadLetterDepth": _alarm(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetters", "QueueName"]}}],
                statistic="Maximum",
            ),
            "ThingLatency": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Namespace": "AWS/ApiGateway",
                    "MetricName": "Latency",
                    "Dimensions": [
                        {"Name": "ApiName", "Value": "test"},
                        {"Name": "Method", "Value": "POST"},
                        {"Name": "Resource", "Value": "/things/{name}"},
                        {"Name": "Stage", "Value": {"Ref": "Stage"}},
                    ],
                    "ExtendedStatistic": "p99",
                    "Period": 300,
                    "EvaluationPeriods": 1,
                    "Threshold": 0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                },
            },
            "Api5xxRate": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [
                        {
                            "Id": "rate",
                            "Expression": "IF(requests >= 1, 100 * errors / requests, 0)",
                            "ReturnData": True,
                        },
                        _api_query("errors", "5XXError"),
                        _api_query("requests", "Count"),
                    ],
                    "EvaluationPeriods": 1,
                    "Threshold": 10,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                },
            },
            "NotEmulated": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [
                        {"Id": "s", "Expression": "SEARCH('{AWS/Lambda} Errors', 'Sum', 300)", "ReturnData": True}
                    ],
                    "EvaluationPeriods": 1,
                    "Threshold": 1,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                },
            },
            "OpsHealth": {
                "Type": "AWS::CloudWatch::CompositeAlarm",
                "Properties": {
                    "AlarmName": "ops-health",
                    "AlarmDescription": {"Fn::Join": ["", ["echo needs attention; its API: ", stage_url]]},
                    "AlarmRule": {
                        "Fn::Join": [
                            "",
                            [
                                'ALARM("',
                                {"Fn::GetAtt": ["EchoErrors", "Arn"]},
                                '") OR (ALARM("',
                                {"Fn::GetAtt": ["Api5xxRate", "Arn"]},
                                '") OR ALARM(',
                                {"Ref": "DeadLetterDepth"},
                                "))",
                            ],
                        ]
                    },
                    "AlarmActions": [{"Ref": "OpsTopic"}],
                    "OKActions": [{"Ref": "OpsTopic"}],
                },
            },
            "Board": {
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {"DashboardName": "echo", "DashboardBody": '{"widgets": []}'},
            },
        }
    )
    return template


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    workdir = tmp_path_factory.mktemp("local-alarms")
    echo_log = workdir / "echo.jsonl"
    echo_log.touch()
    runtime = LocalRuntime(workdir, template=alarms_template(echo_log), contracts_dir=workdir / "none", schedules=False)
    runtime.start()
    yield runtime
    runtime.stop()


def _inbox(runtime: LocalRuntime, topic_logical_id: str, name: str) -> tuple[Any, str]:
    sqs, sns = _client(runtime, "sqs"), _client(runtime, "sns")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = runtime.deployment.resolve({"Ref": topic_logical_id})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return sqs, queue


def _alarm_messages(sqs: Any, queue: str, wait: float = 5.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        found += [json.loads(json.loads(m["Body"])["Message"]) for m in batch]
    return found


def _state_change_events(runtime: LocalRuntime) -> tuple[Any, str]:
    """A queue receiving what a rule on the default bus matches of CloudWatch's alarm state changes."""
    sqs, events = _client(runtime, "sqs"), _client(runtime, "events")
    queue = sqs.create_queue(QueueName="alarm-state-changes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}
    events.put_rule(Name="alarm-state-changes", EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule="alarm-state-changes", Targets=[{"Id": "q", "Arn": queue_arn}])
    return sqs, queue


def _bus_events(sqs: Any, queue: str, wait: float = 3.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        found += [json.loads(m["Body"]) for m in batch]
    return found


def message_reason(runtime: LocalRuntime, name: str, state: str) -> str:
    """The reason of `name`'s latest change into `state` (on a loaded machine the evaluator may have
    moved it on again before the test reads its changes)."""
    return next(c.reason for c in reversed(runtime.alarms.changes) if c.alarm == name and c.new == state)


def test_function_api_and_queue_metrics_raise_one_composite_notification(local: LocalRuntime) -> None:
    runtime = local
    alarms = runtime.alarms
    by_logical_id = {s.logical_id: s for s in alarms.specs} | {c.logical_id: c for c in alarms.composites}
    state = {lid: (lambda name: lambda: alarms.states[name])(spec.name) for lid, spec in by_logical_id.items()}
    sqs, inbox = _inbox(runtime, "OpsTopic", "ops-inbox")
    bus_sqs, state_changes = _state_change_events(runtime)
    alarms.evaluate_all()
    assert state["OpsHealth"]() == "OK"  # evaluated once: a composite is INSUFFICIENT_DATA only when new
    assert state["NotEmulated"]() == "INSUFFICIENT_DATA"
    assert "not evaluated locally" in by_logical_id["NotEmulated"].problem
    assert [m["NewStateValue"] for m in _alarm_messages(sqs, inbox, wait=1.5)] in ([], ["OK"])

    # WHEN a request makes the function fail: Lambda Errors=1, API 5XXError=1 of Count=1, per stage and method
    endpoints = runtime.endpoints
    assert endpoints is not None
    api = ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle)
    answer = api.request("POST", "/things/fail", {"x": 1}, headers={"x-api-key": endpoints.api_key})
    for _ in range(10):  # the usage plan refills one request a second; an earlier test may have spent the burst
        if answer.status != 429:
            break
        time.sleep(1)
        answer = api.request("POST", "/things/fail", {"x": 1}, headers={"x-api-key": endpoints.api_key})
    assert answer.status == 502

    # THEN the function's Errors alarm, the metric-math 5xx rate and the method's p99 latency are raised
    assert state["EchoErrors"]() == "ALARM"
    assert state["Api5xxRate"]() == "ALARM"
    assert state["ThingLatency"]() == "ALARM"
    # AND the composite notifies once, in CloudWatch's composite format, naming the child that opened it
    assert state["OpsHealth"]() == "ALARM"
    messages = _alarm_messages(sqs, inbox)
    assert [m["NewStateValue"] for m in messages] == ["ALARM"], messages
    [message] = messages
    assert message["AlarmName"] == "ops-health"
    # the deployed API's URL in the description is the local API's
    assert message["AlarmDescription"] == f"echo needs attention; its API: {endpoints.api_url}/"
    assert message["OldStateValue"] == "OK"
    assert by_logical_id["EchoErrors"].arn in message["AlarmRule"]
    children = {child["Arn"] for child in message["TriggeringChildren"]}
    assert by_logical_id["EchoErrors"].arn in children
    assert all(child["State"]["Value"] == "ALARM" for child in message["TriggeringChildren"])
    assert "transitioned to ALARM" in message["NewStateReason"]

    # AND, as CloudWatch does, every state change is an event on the default bus (rules there start
    # work on an alarm, e.g. retraining): CloudWatch's shape, one per alarm that changed
    changes = [e for e in _bus_events(bus_sqs, state_changes) if e["detail"]["state"]["value"] == "ALARM"]
    by_name = {e["detail"]["alarmName"]: e for e in changes}
    echo_errors = by_logical_id["EchoErrors"]
    assert {echo_errors.name, "ops-health"} <= set(by_name)
    event = by_name[echo_errors.name]
    assert (event["source"], event["detail-type"]) == ("aws.cloudwatch", "CloudWatch Alarm State Change")
    assert event["resources"] == [echo_errors.arn]
    assert event["detail"]["previousState"]["value"] == "OK"
    assert event["detail"]["state"]["reason"] == message_reason(runtime, echo_errors.name, "ALARM")

    # WHEN a message lands in the dead-letter queue while the incident is open
    queue_url = runtime.deployment.resolve({"Ref": "DeadLetters"})
    _client(runtime, "sqs").send_message(QueueUrl=queue_url, MessageBody="{}")
    alarms.evaluate_all()
    # THEN its depth alarm (named by alarm name in the rule) is raised, and no second notification is sent
    assert state["DeadLetterDepth"]() == "ALARM"
    assert state["OpsHealth"]() == "ALARM"
    assert _alarm_messages(sqs, inbox, wait=1.5) == []

    # AND the stand-in holds the dashboard for ordinary clients
    cloudwatch = _client(runtime, "cloudwatch")
    assert cloudwatch.get_dashboard(DashboardName="echo")["DashboardBody"] == '{"widgets": []}'


def test_the_deployed_api_url_resolves_to_the_local_api(local: LocalRuntime) -> None:
    # REPORT_BASE_URL (detect_drift's report links) and the ApiUrl output point at the API local mode serves
    endpoints = local.endpoints
    assert endpoints is not None
    echo = local.runner.by_name("echo")
    assert echo.environment["REPORT_BASE_URL"] == endpoints.api_url + "/"
    assert endpoints.outputs["ApiUrl"] == endpoints.api_url + "/"
    assert endpoints.api_url.startswith("https://localhost:")
