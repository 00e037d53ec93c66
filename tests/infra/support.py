"""Reading a synthesized template: resources by type, functions by source folder, API routes."""

from __future__ import annotations

from typing import Any

from infra.catalog import SOURCE_METADATA_KEY

Template = dict[str, Any]


def resources(template: Template, type_name: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == type_name}


def function_ids(template: Template) -> dict[str, str]:
    """Function folder (e.g. `predict`) -> logical id, from the `mlops:source` metadata."""
    found = {}
    for lid, resource in resources(template, "AWS::Lambda::Function").items():
        source = resource.get("Metadata", {}).get(SOURCE_METADATA_KEY)
        if source:
            found[source.removeprefix("functions/")] = lid
    return found


def target_function_id(arn_expression: Any) -> str:
    """`{"Fn::GetAtt": [<function>, "Arn"]}` -> the function's logical id."""
    assert isinstance(arn_expression, dict), arn_expression
    assert "Fn::GetAtt" in arn_expression, arn_expression
    logical_id, attribute = arn_expression["Fn::GetAtt"]
    assert attribute == "Arn"
    return logical_id


def route_path(template: Template, resource_ref: Any) -> str:
    """Rebuild `/models/{name}/predict` from the chain of `AWS::ApiGateway::Resource` parents."""
    parts: list[str] = []
    while isinstance(resource_ref, dict) and "Ref" in resource_ref:
        node = template["Resources"][resource_ref["Ref"]]["Properties"]
        parts.append(node["PathPart"])
        resource_ref = node["ParentId"]
    # the root resource is `{"Fn::GetAtt": [<RestApi>, "RootResourceId"]}`
    return "/" + "/".join(reversed(parts))


def routes(template: Template) -> dict[tuple[str, str], dict[str, Any]]:
    """(HTTP method, path) -> method properties."""
    return {
        (props["HttpMethod"], route_path(template, props["ResourceId"])): props
        for props in (r["Properties"] for r in resources(template, "AWS::ApiGateway::Method").values())
    }


def integration_function_id(method: dict[str, Any], template: Template) -> str:
    """The logical id of the Lambda function behind a proxy integration URI (through its alias, if any)."""
    uri = method["Integration"]["Uri"]
    for part in uri["Fn::Join"][1]:
        if isinstance(part, dict) and "Fn::GetAtt" in part:
            return target_function_id(part)
        if isinstance(part, dict) and "Ref" in part and part["Ref"] in resources(template, "AWS::Lambda::Alias"):
            return template["Resources"][part["Ref"]]["Properties"]["FunctionName"]["Ref"]
    raise AssertionError(f"no function in {uri}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
