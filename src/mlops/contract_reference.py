"""The contract reference (docs/contracts.md), rendered from the contract's JSON schema.

`mlops contracts reference` writes it; a test fails when the committed file differs from what the
schema renders, so the reference cannot drift from the contract models (their field docstrings
are the descriptions).
"""

from __future__ import annotations

import json
from typing import Any

HEADER = """# Contract reference

Generated from the contract's JSON schema by `mlops contracts reference` (do not edit by hand;
`mlops contracts schema` prints the schema itself). A contract is a JSON or YAML document; `mlops
contracts check FILE` validates one, `mlops contracts infer DATA_FILE` drafts one from a sample.
Column names are written exactly as in the file's header (spaces, punctuation and unicode are
fine); where an identifier is needed (the ONNX graph's inputs) each name is mapped to one.
"""


def render_reference(schema: dict[str, Any]) -> str:
    """Markdown: one table per object of the schema (every field: type, default, description),
    the estimators and the metrics with their direction."""
    definitions: dict[str, Any] = schema.get("$defs", {})
    order = _reachable(schema, definitions)
    parts = [HEADER]
    parts.append(_object_section(schema.get("title", "Contract"), schema))
    for name in order:
        definition = definitions[name]
        if definition.get("type") == "object":
            parts.append(_object_section(name, definition))
        else:
            parts.append(_enum_section(name, definition))
    metric = _find_property(definitions, "Metric", "name")
    estimator = _find_property(definitions, "Estimator", "name")
    if estimator:
        parts.append(_estimators(estimator))
    if metric:
        parts.append(_metrics(metric))
    return "\n".join(parts).rstrip() + "\n"


def _reachable(schema: dict[str, Any], definitions: dict[str, Any]) -> list[str]:
    """Definitions in the order a reader meets them from the top object (depth first)."""
    seen: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in seen and name in definitions:
                    seen.append(name)
                    visit(definitions[name])
            for key, value in node.items():
                if key != "$defs":
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit({k: v for k, v in schema.items() if k != "$defs"})
    return seen + [name for name in definitions if name not in seen]


def _object_section(name: str, definition: dict[str, Any]) -> str:
    lines = [f"## {name}", ""]
    if description := definition.get("description"):
        lines += [_one_line(description), ""]
    required = set(definition.get("required", ()))
    lines += ["| field | type | default | description |", "|---|---|---|---|"]
    for field, prop in definition.get("properties", {}).items():
        default = "required" if field in required else _default(prop)
        lines.append(
            f"| `{field}` | {_cell(_type(prop))} | {_cell(default)} | {_cell(_one_line(prop.get('description', '')))} |"
        )
    return "\n".join(lines) + "\n"


def _enum_section(name: str, definition: dict[str, Any]) -> str:
    values = ", ".join(f"`{v}`" for v in definition.get("enum", ()))
    return f"## {name}\n\nOne of {values}.\n"


def _estimators(prop: dict[str, Any]) -> str:
    lines = ["## Estimators", "", _one_line(prop.get("description", "")), ""]
    return "\n".join(lines)


def _metrics(prop: dict[str, Any]) -> str:
    higher = prop.get("x-higher-is-better", {})
    lines = [
        "## Metrics and their direction",
        "",
        "The threshold's name says which way it goes: `at_least` for a score, `at_most` for an error.",
        "(`minimum`, the name before, is still read: a minimum for scores, a maximum for errors.)",
        "",
        "| metric | direction | threshold |",
        "|---|---|---|",
    ]
    for metric in prop.get("enum", ()):
        up = higher.get(metric, True)
        lines.append(
            f"| `{metric}` | {'higher is better' if up else 'lower is better'} | `{'at_least' if up else 'at_most'}` |"
        )
    return "\n".join(lines) + "\n"


def _find_property(definitions: dict[str, Any], model: str, field: str) -> dict[str, Any] | None:
    prop = definitions.get(model, {}).get("properties", {}).get(field)
    return prop if isinstance(prop, dict) else None


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in prop:
        options = [option for option in prop["anyOf"] if option.get("type") != "null"]
        text = " or ".join(_type(option) for option in options)
        return f"{text} or null" if len(options) < len(prop["anyOf"]) else text
    if "enum" in prop:
        text = "one of " + ", ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    elif "const" in prop:
        text = f"`{json.dumps(prop['const'])}`"
    elif prop.get("type") == "array":
        items = prop.get("items")
        text = f"list of {_type(items)}" if isinstance(items, dict) and items else "list"
    elif prop.get("type") == "object":
        values = prop.get("additionalProperties")
        text = f"map of text to {_type(values)}" if isinstance(values, dict) and values else "object"
    else:
        text = str(prop.get("type", "any"))
    return text + _constraints(prop)


def _constraints(prop: dict[str, Any]) -> str:
    bounds = [
        ("minimum", ">= {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "<= {}"),
        ("exclusiveMaximum", "< {}"),
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minItems", "at least {} items"),
        ("maxItems", "at most {} items"),
        ("pattern", "matching `{}`"),
    ]
    found = [template.format(prop[key]) for key, template in bounds if key in prop]
    return f" ({', '.join(found)})" if found else ""


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    default = prop["default"]
    if isinstance(default, dict):
        return "its defaults" if default else "`{}`"
    return f"`{json.dumps(default)}`"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
