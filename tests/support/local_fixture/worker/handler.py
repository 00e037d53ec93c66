"""A function for testing local mode's workers: reports its process, module state and environment;
sleeps, fails or exits on request."""

from __future__ import annotations

import json
import os
import time
from typing import Any

calls = 0  # module state: kept between invocations of one warm worker


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global calls
    calls += 1
    time.sleep(float(event.get("sleep", 0)))
    if event.get("raise"):
        raise ValueError(event["raise"])
    if event.get("exit"):
        os._exit(3)  # a crash: nothing returns
    answer = {
        "pid": os.getpid(),
        "calls": calls,
        "mark": os.environ.get("MARK"),
        "niceness": os.nice(0),
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    if "httpMethod" in event:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(answer)}
    return answer
