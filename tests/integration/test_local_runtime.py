"""The local runtime against a small hand-written template: wiring comes from the template only."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_local.client import ApiClient
from mlops_local.runtime import LocalRuntime
from mlops_local.template import Template, TemplateError

pytestmark = pytest.mark.xdist_group("local-runtime")

FUNCTION = {
    "Type": "AWS::Lambda::Function",
    "Metadata": {"mlops:source": "tests/support/local_fixture/echo"},
    "Properties": {
        "Handler": "handler.lambda_handler",
        "Timeout": 30,
        "Environment": {
            "Variables": {
                "ECHO_LOG": "__ECHO_LOG__",
                "POWERTOOLS_SERVICE_NAME": "echo",
                "POWERTOOLS_METRICS_NAMESPACE": "Test",
                "BUCKET": {"Ref": "Uploads"},
            }
        },
    },
}


def _logging_function(service: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Metadata": {"mlops:source": "tests/support/local_fixture/logs"},
        "Properties": {
            "Handler": "handler.lambda_handler",
            "Timeout": 30,
            "Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": service}},
        },
    }


def mini_template(echo_log: Path) -> dict[str, Any]:
    function = json.loads(json.dumps(FUNCTION).replace("__ECHO_LOG__", str(echo_log)))
    fn_arn = {"Fn::GetAtt": ["Echo", "Arn"]}
    return {
        "Resources": {
            "Uploads": {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfiguration": {"Status": "Enabled"}}},
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "test-bus"}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Echo": function,
            "Validator": _logging_function("fixture-validator"),
            "Registrar": _logging_function("fixture-registrar"),
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Notifications": {
                "Type": "Custom::S3BucketNotifications",
                "Properties": {
                    "BucketName": {"Ref": "Uploads"},
                    "NotificationConfiguration": {
                        "LambdaFunctionConfigurations": [
                            {
                                "Events": ["s3:ObjectCreated:*"],
                                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "datasets/"}]}},
                                "LambdaFunctionArn": fn_arn,
                            }
                        ]
                    },
                },
            },
            "OnReady": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventBusName": {"Ref": "Bus"},
                    "EventPattern": {"source": ["mlops"], "detail-type": ["Ready"]},
                    "State": "ENABLED",
                    "Targets": [{"Arn": fn_arn, "Id": "Target0"}],
                },
            },
            "Hourly": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": "rate(1 hour)",
                    "State": "ENABLED",
                    "Targets": [{"Arn": fn_arn, "Id": "T"}],
                },
            },
            # a target with a constant input (a contract's retraining schedule): EventBridge sends it instead
            "Weekly": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": "rate(7 days)",
                    "State": "ENABLED",
                    "Targets": [{"Arn": fn_arn, "Id": "T", "Input": '{"retrain": {"model": "churn"}}'}],
                },
            },
            "ScoreAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Namespace": "Test",
                    "MetricName": "Score",
                    "Dimensions": [{"Name": "model", "Value": "churn"}, {"Name": "service", "Value": "echo"}],
                    "Statistic": "Maximum",
                    "Period": 3600,
                    "EvaluationPeriods": 1,
                    "Threshold": 0.2,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [{"Ref": "Topic"}],
                },
            },
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "test"}},
            "Things": {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                    "PathPart": "things",
                    "RestApiId": {"Ref": "Api"},
                },
            },
            "Thing": {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {"ParentId": {"Ref": "Things"}, "PathPart": "{name}", "RestApiId": {"Ref": "Api"}},
            },
            "ThingPost": _method("Thing", "POST", api_key=True),
            "ThingsGet": _method("Things", "GET", iam=True),
            "Key": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Enabled": True}},
            "Plan": {
                "Type": "AWS::ApiGateway::UsagePlan",
                "Properties": {
                    "Throttle": {"RateLimit": 1, "BurstLimit": 5},  # slow refill: a burst is throttled on any machine
                    "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "prod"}],
                },
            },
            "PlanKey": {
                "Type": "AWS::ApiGateway::UsagePlanKey",
                "Properties": {"KeyId": {"Ref": "Key"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "Plan"}},
            },
            "Stage": {
                "Type": "AWS::ApiGateway::Stage",
                "Properties": {"StageName": "prod", "RestApiId": {"Ref": "Api"}},
            },
        },
        "Outputs": {"DataBucketName": {"Value": {"Ref": "Uploads"}}},
    }


def _method(resource: str, verb: str, *, api_key: bool = False, iam: bool = False) -> dict[str, Any]:
    uri = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":apigateway:",
                {"Ref": "AWS::Region"},
                ":lambda:path/2015-03-31/functions/",
                {"Fn::GetAtt": ["Echo", "Arn"]},
                "/invocations",
            ],
        ]
    }
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "HttpMethod": verb,
            "ResourceId": {"Ref": resource},
            "RestApiId": {"Ref": "Api"},
            "AuthorizationType": "AWS_IAM" if iam else "NONE",
            "ApiKeyRequired": api_key,
            "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": uri},
        },
    }


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, Path]]:
    workdir = tmp_path_factory.mktemp("local")
    echo_log = workdir / "echo.jsonl"
    echo_log.touch()
    runtime = LocalRuntime(workdir, template=mini_template(echo_log), contracts_dir=workdir / "none", schedules=False)
    runtime.start()
    yield runtime, echo_log
    runtime.stop()


def _events(echo_log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in echo_log.read_text().splitlines()]


def _wait_for(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _client(runtime: LocalRuntime, service: str) -> Any:
    endpoints = runtime.endpoints
    assert endpoints is not None
    return boto3.client(
        service,
        endpoint_url=endpoints.aws_endpoint_url,
        region_name=endpoints.region,
        aws_access_key_id=endpoints.access_key_id,
        aws_secret_access_key=endpoints.secret_access_key,
    )


def test_template_unknown_resource_type_is_refused() -> None:
    template = Template({"Resources": {"Thing": {"Type": "AWS::Kinesis::Stream", "Properties": {}}}})
    with pytest.raises(TemplateError, match=r"Thing \(AWS::Kinesis::Stream\)"):
        template.check_supported()


def test_s3_upload_under_prefix_triggers_and_outside_does_not(local: tuple[LocalRuntime, Path]) -> None:
    runtime, echo_log = local
    s3 = _client(runtime, "s3")
    bucket = runtime.endpoints.outputs["DataBucketName"]  # type: ignore[union-attr]
    s3.put_object(Bucket=bucket, Key="elsewhere/skip.csv", Body=b"a")
    s3.put_object(Bucket=bucket, Key="datasets/m/jan 2026.csv", Body=b"a")

    def s3_events() -> list[dict[str, Any]]:
        return [e for e in _events(echo_log) if "Records" in e]

    assert _wait_for(lambda: len(s3_events()) >= 1)
    time.sleep(1.5)  # give a wrongly delivered event time to show up
    keys = [r["s3"]["object"]["key"] for e in s3_events() for r in e["Records"]]
    assert keys == ["datasets%2Fm%2Fjan+2026.csv"]  # URL-encoded, as S3 sends it
    record = s3_events()[0]["Records"][0]
    assert record["s3"]["object"]["versionId"]


def test_bus_event_matching_pattern_triggers_and_other_does_not(local: tuple[LocalRuntime, Path]) -> None:
    runtime, echo_log = local
    events = _client(runtime, "events")
    for detail_type in ("NotReady", "Ready"):
        events.put_events(
            Entries=[
                {
                    "Source": "mlops",
                    "DetailType": detail_type,
                    "Detail": json.dumps({"n": detail_type}),
                    "EventBusName": "test-bus",
                }
            ]
        )

    def bus_events() -> list[str]:
        return [e["detail-type"] for e in _events(echo_log) if "detail-type" in e and e.get("source") == "mlops"]

    assert _wait_for(lambda: "Ready" in bus_events())
    time.sleep(1.5)
    assert bus_events() == ["Ready"]


def test_a_schedule_target_with_a_constant_input_receives_that_input(local: tuple[LocalRuntime, Path]) -> None:
    runtime, echo_log = local
    assert runtime.triggers.fire("Weekly") == [True]
    assert _events(echo_log)[-1] == {"retrain": {"model": "churn"}}
    assert runtime.triggers.fire("Hourly") == [True]  # without an input: the scheduled event
    assert _events(echo_log)[-1]["detail-type"] == "Scheduled Event"


def test_alarm_fires_only_on_exact_dimensions(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    sqs, sns = _client(runtime, "sqs"), _client(runtime, "sns")
    topic = next(iter(sns.list_topics()["Topics"]))["TopicArn"]
    inbox = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    echo = next(iter(runtime.runner.functions))
    rule = next(iter(runtime.triggers.schedules))
    assert runtime.triggers.fire(rule) == [True]  # on demand, like `mlops local trigger`

    # GIVEN a breaching value emitted with dimensions {service, model, extra}: not the alarm's set
    breaching = {"detail": {"model": "churn", "metric_value": 0.9}}
    runtime.runner.invoke(echo, {"detail": {**breaching["detail"], "extra_dimensions": {"feature": "x"}}}, "test")
    assert runtime.alarms.states[runtime.alarms.specs[0].name] in {"OK", "INSUFFICIENT_DATA"}
    spec = runtime.alarms.specs[0]
    from mlops_local.metrics import Datapoint

    runtime.metrics.add([Datapoint("Test", "Score", frozenset({("model", "churn")}), 5.0, time.time())])
    runtime.alarms.evaluate_all()
    assert runtime.alarms.states[spec.name] != "ALARM"  # a subset of the dimensions never matches

    # WHEN the function emits the value with exactly {service, model}
    runtime.runner.invoke(echo, breaching, "test")

    # THEN the alarm goes to ALARM and the subscribed queue receives CloudWatch's notification
    assert runtime.alarms.states[spec.name] == "ALARM"
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15  # a loaded machine may take a moment to deliver
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert messages, f"no notification; alarm changes: {runtime.alarms.changes}"
    alarm = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert alarm["NewStateValue"] == "ALARM"
    assert {d["name"] for d in alarm["Trigger"]["Dimensions"]} == {"model", "service"}


def test_api_key_iam_and_routing(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    endpoints = runtime.endpoints
    assert endpoints is not None
    api = ApiClient(
        endpoints.api_url,
        ca_bundle=endpoints.ca_bundle,
        api_key=endpoints.api_key,
        access_key=endpoints.access_key_id,
        secret_key=endpoints.secret_access_key,
    )
    assert api.request("POST", "/things/a", {}).status == 403  # no API key
    assert api.request("POST", "/things/a", {}, headers={"x-api-key": "wrong"}).status == 403
    ok = api.request("POST", "/things/a", {}, headers={"x-api-key": endpoints.api_key})
    assert (ok.status, ok.body["echo"]) == (200, "/things/a")
    assert api.request("GET", "/nowhere").status == 404
    assert api.request("DELETE", "/things/a", headers={"x-api-key": endpoints.api_key}).status == 405
    assert api.request("GET", "/things").status == 403  # IAM route without a signature
    signed = api.admin("GET", "/things")
    assert signed.status == 200
    assert signed.body["identity"].endswith(":user/local-admin")
    forged = ApiClient(
        endpoints.api_url, ca_bundle=endpoints.ca_bundle, access_key=endpoints.access_key_id, secret_key="nope"
    )
    assert forged.admin("GET", "/things").status == 403


def test_api_usage_plan_throttles_bursts(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    endpoints = runtime.endpoints
    assert endpoints is not None
    api = ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle, api_key=endpoints.api_key)
    statuses = [
        api.request("POST", "/things/b", {}, headers={"x-api-key": endpoints.api_key}).status for _ in range(30)
    ]
    assert 429 in statuses
    assert 200 in statuses


def test_failing_handler_is_retried_then_kept_not_dropped(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    subscription = next(s for s in runtime.triggers.subscriptions if s.name.startswith("rule:"))
    echo = runtime.runner.functions[subscription.function_id]
    broken = echo.__class__(
        **{**echo.__dict__, "environment": {**echo.environment, "ECHO_LOG": "/nonexistent/dir/log"}}
    )
    runtime.runner.functions[subscription.function_id] = broken
    try:
        assert runtime.triggers.deliver(subscription, {"detail-type": "Ready", "detail": {}}) is False
    finally:
        runtime.runner.functions[subscription.function_id] = echo
    failed = (Path(runtime.log_dir) / "failed-events.log").read_text().splitlines()
    assert json.loads(failed[-1])["event"] == {"detail-type": "Ready", "detail": {}}
    attempts = [i for i in runtime.runner.history if i.trigger.startswith(subscription.name)][-3:]
    assert [i.ok for i in attempts] == [False, False, False]


def test_api_refuses_stale_or_misscoped_signatures(local: tuple[LocalRuntime, Path]) -> None:
    import datetime as dt

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    runtime, _ = local
    endpoints = runtime.endpoints
    assert endpoints is not None
    api = ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle)
    credentials = Credentials(endpoints.access_key_id, endpoints.secret_access_key)

    def signed(service: str, region: str, *, days_ago: int = 0) -> dict[str, str]:
        url = endpoints.api_url + "/things"
        request = AWSRequest(method="GET", url=url, headers={"Host": url.split("/")[2]})
        SigV4Auth(credentials, service, region).add_auth(request)
        if days_ago:  # a request captured earlier and replayed (its signature was valid then)
            then = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
            request.headers.replace_header("X-Amz-Date", then.strftime("%Y%m%dT%H%M%SZ"))
        return dict(request.headers.items())

    fresh = api.request("GET", "/things", headers=signed("execute-api", "us-east-1"))
    stale = api.request("GET", "/things", headers=signed("execute-api", "us-east-1", days_ago=2))
    wrong_service = api.request("GET", "/things", headers=signed("s3", "us-east-1"))
    wrong_region = api.request("GET", "/things", headers=signed("execute-api", "eu-west-1"))
    assert fresh.status == 200, fresh.body
    assert (stale.status, wrong_service.status, wrong_region.status) == (403, 403, 403)
    assert "expired" in stale.body["message"]


def test_api_answers_a_bad_content_length_with_400(local: tuple[LocalRuntime, Path]) -> None:
    import socket
    import ssl
    from urllib.parse import urlsplit

    runtime, _ = local
    endpoints = runtime.endpoints
    assert endpoints is not None
    url = urlsplit(endpoints.api_url)
    context = ssl.create_default_context(cafile=endpoints.ca_bundle)
    with (
        socket.create_connection((url.hostname, url.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=url.hostname) as tls,
    ):
        tls.sendall(f"POST {url.path}/things/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n".encode())
        reply = tls.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 400"), reply


def test_alarm_notification_carries_cloudwatch_fields(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    spec = runtime.alarms.specs[0]
    assert spec.arn.startswith("arn:aws:cloudwatch:us-east-1:123456789012:alarm:")


def _https(runtime: LocalRuntime) -> tuple[Any, str]:
    """A standard-library HTTPS connection to the local API, trusting its certificate; the stage prefix."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    endpoints = runtime.endpoints
    assert endpoints is not None
    url = urlsplit(endpoints.api_url)
    context = ssl.create_default_context(cafile=endpoints.ca_bundle)
    return http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=30), url.path


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW", "PROPFIND"])
@pytest.mark.parametrize("path", ["/things/a", "/nowhere"])
def test_api_answers_an_unsupported_method_with_a_json_405(
    local: tuple[LocalRuntime, Path], method: str, path: str
) -> None:
    runtime, _ = local
    connection, stage = _https(runtime)
    try:
        connection.request(method, stage + path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 405, body
    assert response.getheader("Content-Type") == "application/json"
    assert method in json.loads(body)["message"]
    assert set(response.getheader("Allow", "").split(", ")) <= {"GET", "POST"}


def test_api_head_answers_without_a_body_and_keeps_the_connection_usable(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    connection, stage = _https(runtime)
    try:
        connection.request("HEAD", stage + "/things/a")
        head = connection.getresponse()
        assert head.read() == b""
        connection.request("POST", stage + "/things/a", body=b"{}", headers={"x-api-key": runtime.endpoints.api_key})  # type: ignore[union-attr]
        after = connection.getresponse()
        after_body = after.read()
    finally:
        connection.close()
    assert head.status == 405
    assert after.status in (200, 429), after_body


def test_api_oversized_body_reaches_python_clients_as_a_413(local: tuple[LocalRuntime, Path]) -> None:
    import requests

    from mlops_local.api import MAX_BODY_BYTES

    runtime, _ = local
    endpoints = runtime.endpoints
    assert endpoints is not None
    too_big = b"x" * (MAX_BODY_BYTES + 1)
    # GIVEN a body one byte over API Gateway's payload limit, sent whole before the client reads
    api = ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle)
    via_urllib = api.request("POST", "/things/a", too_big, headers={"x-api-key": endpoints.api_key})
    via_requests = requests.post(
        endpoints.api_url + "/things/a",
        data=too_big,
        headers={"x-api-key": endpoints.api_key},
        verify=endpoints.ca_bundle,
        timeout=60,
    )
    # THEN both standard Python clients read the 413, not a reset TLS connection
    assert via_urllib.status == 413, via_urllib.body
    assert via_urllib.body == {"message": "Request Too Long"}
    assert via_requests.status_code == 413
    assert via_requests.json() == {"message": "Request Too Long"}


def test_each_function_logs_under_its_own_service_name(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    # GIVEN two functions whose imports each point the shared `mlops` loggers at their own Logger
    for function_id, marker in [("Validator", "v1"), ("Registrar", "r1"), ("Validator", "v2"), ("Registrar", "r2")]:
        assert runtime.runner.invoke(function_id, {"marker": marker}, "test").ok

    # THEN every line (the handler's and the domain module's) carries the service that logged it
    lines = [json.loads(line) for line in (Path(runtime.log_dir) / "logs.log").read_text().splitlines()]
    # services of their own: the real handlers (imported by e2e tests in this process) hold theirs
    service_of = {"v": "fixture-validator", "r": "fixture-registrar"}
    seen = []
    for line in lines:
        marker = line.get("marker") or line["message"].removeprefix("domain line ")
        seen.append(marker)
        assert line["service"] == service_of[marker[0]], line
    assert sorted(seen) == ["r1", "r1", "r2", "r2", "v1", "v1", "v2", "v2"]


def test_local_runtime_logs_keep_their_own_format_after_a_function_ran(
    local: tuple[LocalRuntime, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    runtime, _ = local
    # GIVEN the shared `mlops` logger as a process that imported no handler module has it (a test
    # earlier in this worker may have imported one, which configures it at import)
    mlops = logging.getLogger("mlops")
    monkeypatch.setattr(mlops, "handlers", [])
    monkeypatch.setattr(mlops, "propagate", True)
    assert runtime.runner.invoke("Registrar", {"marker": "r3"}, "test").ok
    # THEN it is back as the runtime had it, not a function's JSON handler
    assert (mlops.handlers, mlops.propagate) == ([], True)


def test_local_runtime_lines_logged_during_an_invocation_keep_their_own_handlers(
    local: tuple[LocalRuntime, Path],
) -> None:
    import logging
    import threading

    from mlops_local import functions

    runtime, _ = local
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    collect = Collect(level=logging.INFO)
    logging.root.addHandler(collect)
    level = functions.log.level
    functions.log.setLevel(logging.INFO)
    outcome: list[bool] = []
    running = threading.Thread(
        target=lambda: outcome.append(runtime.runner.invoke("Registrar", {"marker": "r4", "sleep": 1}, "test").ok)
    )
    try:
        # WHEN the runtime logs (as its other threads do) while a function with its own logger config runs
        running.start()
        time.sleep(0.3)
        functions.log.info("runtime line")
        running.join()
    finally:
        logging.root.removeHandler(collect)
        functions.log.setLevel(level)
    # THEN the line reaches the runtime's handlers, not the function's
    assert outcome == [True]
    assert "runtime line" in seen


def test_api_key_alone_never_opens_an_iam_route(local: tuple[LocalRuntime, Path]) -> None:
    runtime, echo_log = local
    endpoints = runtime.endpoints
    assert endpoints is not None
    api = ApiClient(
        endpoints.api_url,
        ca_bundle=endpoints.ca_bundle,
        access_key=endpoints.access_key_id,
        secret_key=endpoints.secret_access_key,
    )
    before = len(_events(echo_log))
    # a prediction client's key on the IAM route: refused before the function runs
    refused = api.request("GET", "/things", headers={"x-api-key": endpoints.api_key})
    assert refused.status == 403
    assert len(_events(echo_log)) == before
    # a signed call: the function sees the IAM caller, and no API key in the identity
    signed = api.admin("GET", "/things")
    assert signed.status == 200
    identity = _events(echo_log)[-1]["requestContext"]["identity"]
    assert identity["userArn"].endswith(":user/local-admin")
    assert not identity.get("apiKey")


def _raw_exchange(runtime: LocalRuntime, request: bytes) -> str:
    import socket
    import ssl
    from urllib.parse import urlsplit

    endpoints = runtime.endpoints
    assert endpoints is not None
    url = urlsplit(endpoints.api_url)
    context = ssl.create_default_context(cafile=endpoints.ca_bundle)
    with (
        socket.create_connection((url.hostname, url.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=url.hostname) as tls,
    ):
        tls.sendall(request)
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    return reply.decode()


def test_api_answers_a_malformed_request_line_with_a_json_400(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    reply = _raw_exchange(runtime, b"GARBAGE\r\n\r\n")
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400") or head.startswith("HTTP/1.0 400"), reply
    assert "application/json" in head
    assert json.loads(body)["message"]


def test_api_refuses_a_chunked_body_with_a_json_411(local: tuple[LocalRuntime, Path]) -> None:
    runtime, _ = local
    stage = runtime.endpoints.api_url.split("/", 3)[3]  # type: ignore[union-attr]
    reply = _raw_exchange(
        runtime,
        f"POST /{stage}/things/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
        f"Connection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode(),
    )
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 411"), reply
    assert "Content-Length" in json.loads(body)["message"]
    assert reply.count("HTTP/1.1") == 1  # the chunks were not read as a second request
