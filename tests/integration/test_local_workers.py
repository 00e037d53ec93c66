"""Local mode runs each function in worker processes of its own, like Lambda containers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mlops_local.client import ApiClient
from mlops_local.runtime import LocalRuntime

pytestmark = pytest.mark.xdist_group("local-runtime")

MAX_WORKERS = 2  # the local cap: below the Pinger's reserved concurrency
BACKGROUND_NICE = 7
QUOTA = 3  # requests per day for each key in the template's usage plan


def _function(mark: str, timeout: int, reserved: int | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Handler": "handler.lambda_handler",
        "Timeout": timeout,
        "Environment": {"Variables": {"MARK": mark}},
    }
    if reserved:
        properties["ReservedConcurrentExecutions"] = reserved
    return {
        "Type": "AWS::Lambda::Function",
        "Metadata": {"mlops:source": "tests/support/local_fixture/worker"},
        "Properties": properties,
    }


def workers_template() -> dict[str, Any]:
    uri = {
        "Fn::Join": [
            "",
            [
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/",
                {"Fn::GetAtt": ["Pinger", "Arn"]},
                "/invocations",
            ],
        ]
    }
    return {
        "Resources": {
            "Data": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "Pinger": _function("pinger", timeout=2, reserved=3),  # serves the API
            "Slow": _function("slow", timeout=30),  # no route: asynchronous work
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "workers"}},
            "Ping": {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                    "PathPart": "ping",
                    "RestApiId": {"Ref": "Api"},
                },
            },
            "PingGet": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "HttpMethod": "GET",
                    "ResourceId": {"Ref": "Ping"},
                    "RestApiId": {"Ref": "Api"},
                    "AuthorizationType": "NONE",
                    "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": uri},
                },
            },
            "PingPost": {  # the same function behind an API key
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "HttpMethod": "POST",
                    "ResourceId": {"Ref": "Ping"},
                    "RestApiId": {"Ref": "Api"},
                    "AuthorizationType": "NONE",
                    "ApiKeyRequired": True,
                    "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": uri},
                },
            },
            "Plan": {
                "Type": "AWS::ApiGateway::UsagePlan",
                "Properties": {
                    "UsagePlanName": "workers-clients",
                    "Throttle": {"RateLimit": 100, "BurstLimit": 100},
                    "Quota": {"Limit": QUOTA, "Period": "DAY"},
                    "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "prod"}],
                },
            },
            "Stage": {
                "Type": "AWS::ApiGateway::Stage",
                "Properties": {"StageName": "prod", "RestApiId": {"Ref": "Api"}},
            },
        },
        "Outputs": {"DataBucketName": {"Value": {"Ref": "Data"}}},
    }


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    workdir = tmp_path_factory.mktemp("workers")
    runtime = LocalRuntime(
        workdir,
        template=workers_template(),
        contracts_dir=workdir / "none",
        schedules=False,
        persist=False,
        max_workers=MAX_WORKERS,
        background_nice=BACKGROUND_NICE,
    )
    runtime.start()
    yield runtime
    runtime.stop()


def _api(runtime: LocalRuntime) -> ApiClient:
    assert runtime.endpoints is not None
    return ApiClient(runtime.endpoints.api_url, ca_bundle=runtime.endpoints.ca_bundle)


def test_local_api_answers_while_another_function_runs_a_long_invocation(local: LocalRuntime) -> None:
    # GIVEN a long asynchronous invocation of one function under way
    api = _api(local)
    assert api.request("GET", "/ping").status == 200  # the Pinger is warm
    slow = threading.Thread(target=local.runner.invoke, args=("Slow", {"sleep": 4}, "test"))
    slow.start()
    time.sleep(0.5)
    try:
        # WHEN a request reaches another function
        started = time.perf_counter()
        answer = api.request("GET", "/ping")
        waited = time.perf_counter() - started
    finally:
        slow.join()
    # THEN it is answered at once, not after the other invocation
    assert answer.status == 200, answer.body
    assert waited < 2.0, f"the request waited {waited:.1f} s for another function"


def test_local_function_keeps_its_module_state_and_environment_in_its_own_process(local: LocalRuntime) -> None:
    first = local.runner.invoke("Slow", {}, "test")
    second = local.runner.invoke("Slow", {}, "test")
    other = local.runner.invoke("Pinger", {}, "test")
    assert [first.ok, second.ok, other.ok] == [True, True, True], (first.error, second.error, other.error)
    # a worker process of its own, warm after its first invocation (the module's counter goes on)
    assert first.result["pid"] == second.result["pid"] != os.getpid()
    assert second.result["calls"] == first.result["calls"] + 1
    # each function has its own process and its own variables from the template
    assert other.result["pid"] != first.result["pid"]
    assert (first.result["mark"], other.result["mark"]) == ("slow", "pinger")
    assert first.result["request_id"] != second.result["request_id"]


def test_local_function_serves_concurrent_invocations_with_up_to_its_capped_concurrency(
    local: LocalRuntime,
) -> None:
    # GIVEN the Pinger, with a reserved concurrency of 3 and the local cap of 2 workers
    assert local.runner.workers_of("Pinger") == MAX_WORKERS
    started = time.perf_counter()
    # WHEN four invocations of one second each arrive together
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: local.runner.invoke("Pinger", {"sleep": 1}, "test"), range(4)))
    elapsed = time.perf_counter() - started
    # THEN two workers serve them, two at a time
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert len({o.result["pid"] for o in outcomes}) == MAX_WORKERS
    assert 1.9 < elapsed < 3.8, elapsed


def test_local_invocation_past_its_timeout_is_stopped_and_reported_like_lambda(local: LocalRuntime) -> None:
    # WHEN an invocation runs past the function's timeout (2 s)
    started = time.perf_counter()
    overrun = local.runner.invoke("Pinger", {"sleep": 6}, "test")
    elapsed = time.perf_counter() - started
    # THEN it is stopped at the timeout and reported as Lambda reports it
    assert not overrun.ok
    assert "Task timed out after 2.00 seconds" in overrun.error
    assert elapsed < 4.5, elapsed
    # AND the function keeps serving (from a new worker)
    after = local.runner.invoke("Pinger", {}, "test")
    assert after.ok, after.error
    assert after.result["pid"] != os.getpid()


def test_local_handler_error_returns_its_type_message_and_traceback(local: LocalRuntime) -> None:
    failed = local.runner.invoke("Slow", {"raise": "asked to fail"}, "test")
    assert not failed.ok
    assert failed.error == "ValueError: asked to fail"
    function_log = (Path(local.log_dir) / "worker.log").read_text()
    assert "Traceback (most recent call last)" in function_log
    assert "ValueError: asked to fail" in function_log
    # a handled error keeps the container: the next invocation is warm
    assert local.runner.invoke("Slow", {}, "test").result["calls"] > 1


def test_local_worker_that_dies_is_reported_and_replaced(local: LocalRuntime) -> None:
    died = local.runner.invoke("Slow", {"exit": True}, "test")
    assert not died.ok
    assert died.error.startswith("Runtime.ExitError")
    again = local.runner.invoke("Slow", {}, "test")
    assert again.ok, again.error
    assert again.result["calls"] == 1  # a new container: cold


def test_local_asynchronous_functions_run_at_a_lower_cpu_priority(local: LocalRuntime) -> None:
    # the function behind an API route keeps the runtime's priority; one no route reaches yields
    serving = local.runner.invoke("Pinger", {}, "test").result["niceness"]
    background = local.runner.invoke("Slow", {}, "test").result["niceness"]
    assert background - serving == BACKGROUND_NICE
    assert serving == os.nice(0)


def test_local_api_accepts_a_burst_of_new_connections_without_stalling(local: LocalRuntime) -> None:
    # GIVEN many clients opening their TLS connections at the same moment (each request a new one)
    api = _api(local)
    with ThreadPoolExecutor(MAX_WORKERS) as pool:  # both workers warm: a cold start is not what is measured
        warm = list(pool.map(lambda _: local.runner.invoke("Pinger", {"sleep": 0.5}, "test"), range(MAX_WORKERS)))
    assert len({w.result["pid"] for w in warm}) == MAX_WORKERS
    barrier = threading.Barrier(40)

    def one(_: int) -> tuple[int, float]:
        barrier.wait()
        started = time.perf_counter()
        status = api.request("GET", "/ping").status
        return status, time.perf_counter() - started

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(one, range(40)))
    # THEN every one is answered without waiting out a dropped connection (TCP retries after 1 s)
    assert [status for status, _ in answers] == [200] * 40
    slowest = max(seconds for _, seconds in answers)
    assert slowest < 0.9, f"the slowest answer took {slowest:.2f} s"


def test_local_api_checks_keys_on_the_stand_in_with_their_plan_quota(local: LocalRuntime) -> None:
    import boto3

    assert local.endpoints is not None
    apigateway = boto3.client(
        "apigateway",
        endpoint_url=local.endpoints.aws_endpoint_url,
        region_name=local.endpoints.region,
        aws_access_key_id=local.endpoints.access_key_id,
        aws_secret_access_key=local.endpoints.secret_access_key,
    )
    [plan] = [p for p in apigateway.get_usage_plans()["items"] if p["name"] == "workers-clients"]
    api = _api(local)
    # GIVEN a key created through API Gateway's API (as models_api issues them), not in the template
    key = apigateway.create_api_key(name="client-acme", enabled=True)
    outside = api.request("POST", "/ping", {}, headers={"x-api-key": key["value"]})
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    # THEN it is refused outside any plan, accepted in the plan up to its quota, then refused
    answers = [api.request("POST", "/ping", {}, headers={"x-api-key": key["value"]}) for _ in range(QUOTA + 1)]
    assert outside.status == 403
    assert [a.status for a in answers] == [200] * QUOTA + [429]
    assert answers[-1].body == {"message": "Limit Exceeded"}
    # AND once deleted, it is refused at once
    apigateway.delete_api_key(apiKey=key["id"])
    assert api.request("POST", "/ping", {}, headers={"x-api-key": key["value"]}).status == 403
