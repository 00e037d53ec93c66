"""predict's handler on the moto server (issue 13 items 1-2): `?version=` / `?alias=` pins, their
4xx answers, and the per-variant EMF documents while a canary runs."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from mlops.adapters.registry_dynamodb import DynamoRegistry
from tests.integration.test_predict_handler import (  # noqa: F401  (its fixtures: the deployed handler)
    Deployed,
    deployed,
    invoke,
    rest_event,
    sample_records,
    trained,
)

APPROVER = "arn:aws:sts::123456789012:assumed-role/mlops-approvers/bob"


def _pinned(query: dict[str, str]) -> dict[str, Any]:
    event = rest_event("churn", json.dumps({"records": sample_records(2)}))
    event["queryStringParameters"] = query
    return event


def test_predict_pins_a_version_or_alias_and_answers_4xx_naming_what_is_wrong(
    deployed: Deployed,  # noqa: F811
) -> None:
    registry = DynamoRegistry(deployed.resources.registry_table)
    registry.set_alias("churn", "stable", 1, actor=APPROVER, reason="pin me")

    status, body = invoke(deployed.handler, _pinned({"version": "1"}))
    assert (status, body["version"], body["variant"]) == (200, 1, "pinned")
    status, body = invoke(deployed.handler, _pinned({"alias": "stable"}))
    assert (status, body["version"], body["variant"]) == (200, 1, "pinned")
    plain = invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))[1]
    assert "variant" not in plain  # no canary, no pin: the answer's shape is unchanged

    for query, expected, text in [
        ({"version": "7"}, 404, "model 'churn' has no version 7"),
        ({"alias": "nightly"}, 404, "model 'churn' has no alias 'nightly'"),
        ({"version": "abc"}, 400, "version must be a positive integer, got 'abc'"),
        ({"version": "0"}, 400, "version must be a positive integer"),
        ({"version": "\u00b2"}, 400, "version must be a positive integer, got '\u00b2'"),  # isdigit(), not int()
        ({"version": "\u0661\u0662"}, 400, "version must be a positive integer"),  # Arabic-Indic 12: not v12
        ({"version": "1", "alias": "stable"}, 400, "pin a version or an alias, not both"),
    ]:
        status, body = invoke(deployed.handler, _pinned(query))
        assert (status, body["message"][: len(text)]) == (expected, text), query


def test_predict_publishes_a_variant_window_as_one_emf_document(deployed: Deployed) -> None:  # noqa: F811
    from mlops.inference.variants import VariantWindow

    window = VariantWindow(
        "churn", "canary", 2, requests=20, errors=2, latency_seconds=0.0036, outputs=18, output_sum=9
    )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        deployed.handler._publish_variant(window)
    document = json.loads(printed.getvalue())
    [directive] = document["_aws"]["CloudWatchMetrics"]
    # the exact dimension set the canary alarms match (CloudWatch compares the whole set)
    assert directive["Dimensions"] == [["service", "model", "variant"]]
    assert (document["service"], document["model"], document["variant"]) == ("predict", "churn", "canary")
    assert {m["Name"] for m in directive["Metrics"]} == {
        "VariantRequests",
        "VariantErrors",
        "VariantLatencyMs",
        "VariantOutputMean",
    }
    assert (document["VariantRequests"], document["VariantErrors"]) == (20, 2)
    assert document["VariantLatencyMs"] == pytest.approx(0.2)  # 3.6 ms over the 18 answered
    assert document["VariantOutputMean"] == 0.5
