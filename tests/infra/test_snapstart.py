"""Predict runs with SnapStart: a published version behind the `live` alias, which the API invokes,
and local mode still routes the predict path to the predict function through that alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.catalog import FUNCTIONS, SnapStartContextError, snap_start_enabled
from mlops_local.api import template_routes
from mlops_local.deployment import LocalDeployment
from mlops_local.functions import discover_functions
from mlops_local.template import Template
from tests.infra.support import function_ids, resources, routes

PREDICT_ROUTE = ("POST", "/models/{name}/predict")


def _predict_alias(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    predict = function_ids(template)["predict"]
    aliases = {
        lid: alias["Properties"]
        for lid, alias in resources(template, "AWS::Lambda::Alias").items()
        if alias["Properties"]["FunctionName"] == {"Ref": predict}
    }
    assert len(aliases) == 1, aliases
    return next(iter(aliases.items()))


def test_predict_snapstart_applies_to_published_versions(template: dict[str, Any]) -> None:
    predict = resources(template, "AWS::Lambda::Function")[function_ids(template)["predict"]]["Properties"]
    assert predict["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert predict["Runtime"] == "python3.12"  # SnapStart supports the Python 3.12+ managed runtimes
    # SnapStart does not combine with ephemeral storage over 512 MB or EFS
    assert predict.get("EphemeralStorage", {"Size": 512})["Size"] <= 512
    assert "FileSystemConfigs" not in predict


def test_predict_alias_points_at_a_published_version_of_predict(template: dict[str, Any]) -> None:
    predict = function_ids(template)["predict"]
    _, alias = _predict_alias(template)
    version_id, attribute = alias["FunctionVersion"]["Fn::GetAtt"]
    assert attribute == "Version"
    version = resources(template, "AWS::Lambda::Version")[version_id]["Properties"]
    assert version["FunctionName"] == {"Ref": predict}
    # SnapStart and provisioned concurrency do not combine
    assert "ProvisionedConcurrencyConfig" not in alias


def test_superseded_predict_versions_are_deleted(template: dict[str, Any]) -> None:
    # every published SnapStart version keeps a cached snapshot, billed by the second while it exists:
    # a deploy that publishes a new version deletes the old one (CDK retains versions by default)
    predict = function_ids(template)["predict"]
    versions = [
        v
        for v in resources(template, "AWS::Lambda::Version").values()
        if v["Properties"]["FunctionName"] == {"Ref": predict}
    ]
    assert len(versions) == 1
    assert versions[0].get("DeletionPolicy", "Delete") == "Delete"
    assert versions[0].get("UpdateReplacePolicy", "Delete") == "Delete"


def test_api_invokes_predict_through_its_alias(template: dict[str, Any]) -> None:
    alias_id, _ = _predict_alias(template)
    uri = routes(template)[PREDICT_ROUTE]["Integration"]["Uri"]
    assert {"Ref": alias_id} in uri["Fn::Join"][1], uri
    predict = function_ids(template)["predict"]
    permissions = [
        p["Properties"]
        for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
        and p["Properties"]["FunctionName"] in ({"Ref": alias_id}, {"Fn::GetAtt": [predict, "Arn"]})
    ]
    assert permissions, "API Gateway may not invoke predict"
    # the permission is on the alias, never on the unqualified function ($LATEST has no snapshot)
    assert all(p["FunctionName"] == {"Ref": alias_id} for p in permissions), permissions
    assert all(p["Action"] == "lambda:InvokeFunction" for p in permissions)


def test_only_predict_uses_snapstart(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Lambda::Function")
    with_snapstart = {lid for lid, f in functions.items() if "SnapStart" in f["Properties"]}
    assert with_snapstart == {function_ids(template)["predict"]}
    assert FUNCTIONS["predict"].snap_start


def test_local_api_routes_predict_through_the_alias_to_the_predict_function(
    template: dict[str, Any], tmp_path: Path
) -> None:
    deployment = LocalDeployment(Template(template), endpoint="http://127.0.0.1:1")
    deployment.template.check_supported()  # the alias and its version are known types
    functions = discover_functions(deployment)
    served = {(route.method, route.path): route.function_id for route in template_routes(deployment, functions)}
    assert served[PREDICT_ROUTE] == function_ids(template)["predict"]


@pytest.fixture(scope="module")
def template_without_snapstart(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from infra.synth import synthesize_template

    return synthesize_template(tmp_path_factory.mktemp("nosnapstart"), context={"snapStart": "false"})


def test_snapstart_false_context_turns_it_off_and_keeps_the_alias(template_without_snapstart: dict[str, Any]) -> None:
    from scripts.cost import BY_TIME, idle_costs

    template = template_without_snapstart
    functions = resources(template, "AWS::Lambda::Function")
    assert not [lid for lid, f in functions.items() if "SnapStart" in f["Properties"]]
    alias_id, _ = _predict_alias(template)
    assert {"Ref": alias_id} in routes(template)[PREDICT_ROUTE]["Integration"]["Uri"]["Fn::Join"][1]
    # then nothing of the stack is billed by the hour
    assert not [c for c in idle_costs(template) if BY_TIME in c.note]


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), (True, True), ("true", True), (" FALSE ", False), (False, False)]
)
def test_snap_start_context_reads_true_or_false(value: Any, expected: bool) -> None:
    assert snap_start_enabled(value) is expected


@pytest.mark.parametrize("value", ["off", "0", 1])
def test_snap_start_context_refuses_other_values_naming_the_key(value: Any) -> None:
    with pytest.raises(SnapStartContextError, match=r"^snapStart: "):
        snap_start_enabled(value)
