"""The clients' usage plan (keys issued through the models API) and the /clients routes in the template."""

from __future__ import annotations

from typing import Any

from mlops.request_limits import CLIENT_KEY_BURST, CLIENT_KEY_QUOTA_PER_DAY, CLIENT_KEY_RATE_PER_SECOND
from tests.infra.support import function_ids, integration_function_id, resources, routes


def _clients_plan(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(lid, plan)] = [
        (lid, plan)
        for lid, plan in resources(template, "AWS::ApiGateway::UsagePlan").items()
        if str(plan["Properties"].get("UsagePlanName", "")).endswith("-clients")
    ]
    return lid, plan["Properties"]


def test_clients_usage_plan_throttles_and_caps_each_issued_key_on_the_api_stage(template: dict[str, Any]) -> None:
    _, plan = _clients_plan(template)
    assert plan["Throttle"] == {"RateLimit": CLIENT_KEY_RATE_PER_SECOND, "BurstLimit": CLIENT_KEY_BURST}
    assert plan["Quota"] == {"Limit": CLIENT_KEY_QUOTA_PER_DAY, "Period": "DAY"}
    [stage] = plan["ApiStages"]
    [api] = resources(template, "AWS::ApiGateway::RestApi")
    assert stage["ApiId"] == {"Ref": api}


def test_models_api_finds_the_clients_plan_by_its_name(template: dict[str, Any]) -> None:
    _, plan = _clients_plan(template)
    models_api = template["Resources"][function_ids(template)["models_api"]]
    assert models_api["Properties"]["Environment"]["Variables"]["CLIENT_USAGE_PLAN_NAME"] == plan["UsagePlanName"]


def test_client_key_routes_are_iam_authorised_models_api_routes(template: dict[str, Any]) -> None:
    found = {key: method for key, method in routes(template).items() if key[1].startswith("/clients")}
    assert set(found) == {("GET", "/clients"), ("POST", "/clients"), ("POST", "/clients/{key_id}/revoke")}
    for method in found.values():
        assert method["AuthorizationType"] == "AWS_IAM"
        assert not method.get("ApiKeyRequired", False)
        assert integration_function_id(method, template) == function_ids(template)["models_api"]
