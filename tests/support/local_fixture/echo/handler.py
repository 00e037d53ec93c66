"""A tiny function for testing the local runtime: records each event, emits one EMF metric, fails on request."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

metrics = Metrics()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with open(os.environ["ECHO_LOG"], "a") as log:
        log.write(json.dumps(event) + "\n")
    if "metric_value" in event.get("detail", {}):
        metrics.add_dimension(name="model", value=event["detail"]["model"])
        for name, value in event["detail"].get("extra_dimensions", {}).items():
            metrics.add_dimension(name=name, value=value)
        metrics.add_metric(name="Score", unit=MetricUnit.Count, value=float(event["detail"]["metric_value"]))
        metrics.flush_metrics()
    if event.get("path", "").endswith("/fail") or event.get("detail", {}).get("fail"):
        raise RuntimeError("asked to fail")  # a function error, as Lambda reports it
    if "httpMethod" in event:
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"echo": event["path"], "identity": event["requestContext"]["identity"].get("userArn")}),
        }
    return {"ok": True}
