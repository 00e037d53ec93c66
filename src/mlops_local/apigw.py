"""API Gateway REST (v1 proxy) events, shaped as API Gateway delivers them to Lambda.

One builder for the local API server, the benchmarks and the tests, so every handler sees the
same realistic event whichever way it is invoked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

ACCOUNT = "123456789012"


def rest_proxy_event(
    method: str,
    path: str,
    resource: str,
    *,
    body: str | None = None,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    identity: dict[str, Any] | None = None,
    stage: str = "prod",
    api_id: str = "abc123",
    request_id: str | None = None,
    base64_encoded: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """`path` is the path after the stage (`/models/churn/predict`); `resource` its template."""
    headers = dict(headers or {})
    query = query or {}
    request_id = request_id or str(uuid.uuid4())
    now = now or dt.datetime.now(dt.UTC)
    domain = f"{api_id}.execute-api.us-east-1.amazonaws.com"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "a1b2c3",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": api_id,
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": identity or {"sourceIp": "203.0.113.7"},
            "domainName": domain,
            "apiId": api_id,
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def browser_like_headers(api_key: str | None = None) -> dict[str, str]:
    """The headers a typical HTTPS client sends through API Gateway."""
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "python-requests/2.32",
        "X-Amzn-Trace-Id": "Root=1-65f0c0de-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if api_key:
        headers["x-api-key"] = api_key
    return headers
