"""The template's REST API served over HTTPS on localhost.

Routes come from the template's `AWS::ApiGateway::Resource`/`Method` chain; each request becomes
an API Gateway REST proxy event for the function the method integrates with. The template's usage
plans and API keys are created on the stand-in's API Gateway, and keys are checked against it for
every request (so keys issued or deleted through the API Gateway API, e.g. by the models API's
/clients routes, count at once): an enabled key in a usage plan, within the plan's throttle and
quota. `AWS_IAM` methods require a valid SigV4 signature by the local credentials.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlops_local.apigw import rest_proxy_event
from mlops_local.deployment import LocalDeployment
from mlops_local.functions import FunctionRunner
from mlops_local.metrics import ApiRequest
from mlops_local.template import TemplateError

log = logging.getLogger("mlops_local")

_INTEGRATION = re.compile(r"functions/(arn:aws:lambda:[^/]+)/invocations")
_PATH_PARAM = re.compile(r"^\{(.+?)(\+)?\}$")
SIGNATURE_MAX_SKEW_SECONDS = 300  # SigV4: API Gateway refuses requests signed further off than this
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# An oversized body is read and discarded (up to this much, for this long) so that clients which
# send the whole body before reading (urllib, requests, botocore) see the 413, not a reset connection.
DISCARD_MAX_BYTES = 8 * MAX_BODY_BYTES
DISCARD_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Route:
    path: str  # /models/{name}/predict
    method: str
    function_id: str
    authorization: str  # NONE | AWS_IAM
    api_key_required: bool

    def match(self, path: str) -> dict[str, str] | None:
        wanted = self.path.strip("/").split("/") if self.path != "/" else []
        actual = path.strip("/").split("/") if path.strip("/") else []
        params: dict[str, str] = {}
        for index, part in enumerate(wanted):
            variable = _PATH_PARAM.match(part)
            if variable and variable.group(2):  # greedy {proxy+}
                params[variable.group(1)] = "/".join(actual[index:])
                return params if index < len(actual) else None
            if index >= len(actual):
                return None
            if variable:
                params[variable.group(1)] = actual[index]
            elif part != actual[index]:
                return None
        return params if len(actual) == len(wanted) else None


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class ApiKey:
    """A key the template declares (its value is kept across restarts)."""

    logical_id: str
    key_id: str  # on the stand-in
    value: str


QUOTA_EXCEEDED = "Limit Exceeded"  # API Gateway's answer when a usage plan's quota is used up


def template_routes(deployment: LocalDeployment, functions: Collection[str]) -> list[Route]:
    """The template's REST routes and the function (logical id) behind each; refuses what is not emulated."""
    template = deployment.template
    apis = list(template.of_type("AWS::ApiGateway::RestApi"))
    if len(apis) > 1:
        raise TemplateError("local mode serves one REST API per template")
    resources = {r.logical_id: r.properties for r in template.of_type("AWS::ApiGateway::Resource")}

    def path_of(reference: Any) -> str:
        if isinstance(reference, dict) and "Ref" in reference:
            props = resources[reference["Ref"]]
            return path_of(props["ParentId"]).rstrip("/") + "/" + props["PathPart"]
        return "/"  # Fn::GetAtt [api, RootResourceId]

    routes = []
    for method in template.of_type("AWS::ApiGateway::Method"):
        props = method.properties
        if props["HttpMethod"] == "OPTIONS":
            continue
        integration = props.get("Integration", {})
        if integration.get("Type") != "AWS_PROXY":
            raise TemplateError(f"{method.logical_id}: only Lambda proxy integrations are emulated")
        uri = str(deployment.resolve(integration["Uri"]))
        found = _INTEGRATION.search(uri)
        function_id = deployment.logical_id_of_arn(found.group(1)) if found else None
        if function_id is None or function_id not in functions:
            raise TemplateError(f"{method.logical_id}: integration {uri} is not a function local mode runs")
        routes.append(
            Route(
                path_of(props["ResourceId"]),
                props["HttpMethod"],
                function_id,
                props.get("AuthorizationType", "NONE"),
                bool(props.get("ApiKeyRequired", False)),
            )
        )
    return routes


class LocalApi:
    def __init__(
        self,
        deployment: LocalDeployment,
        runner: FunctionRunner,
        *,
        access_key: str,
        secret_key: str,
        stage: str | None = None,
        on_request: Callable[[ApiRequest], None] | None = None,
        key_values: dict[str, str] | None = None,
    ) -> None:
        """`on_request` hears of every answered request (API Gateway's metrics); `key_values` are the
        values of generated API keys by logical id (kept across restarts), new keys are generated."""
        self.deployment = deployment
        self.runner = runner
        self.access_key = access_key
        self.secret_key = secret_key
        self.routes = template_routes(deployment, runner.functions)
        self.stage = stage or self._stage_name()
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}  # (plan id, key id) -> its throttle
        self._quota_used: dict[tuple[str, str, str], int] = {}  # (plan id, key id, period) -> requests
        self.api_keys = self._declare_keys(key_values or {})
        self.api_name, self.detailed_metrics = self._metrics_settings()
        self.on_request = on_request
        self.server: ThreadingHTTPServer | None = None

    # --- from the template ----------------------------------------------------------------

    def _stage_name(self) -> str:
        stages = [r.properties.get("StageName") for r in self.deployment.template.of_type("AWS::ApiGateway::Stage")]
        return stages[0] if stages and isinstance(stages[0], str) else "prod"

    def _metrics_settings(self) -> tuple[str, bool]:
        """The ApiName dimension (the API's Name) and whether the stage publishes per-method metrics."""
        api = next(self.deployment.template.of_type("AWS::ApiGateway::RestApi"), None)
        name = str(self.deployment.resolve(api.properties.get("Name", api.logical_id))) if api else ""
        detailed = any(
            setting.get("MetricsEnabled") in (True, "true")
            and setting.get("HttpMethod", "*") == "*"
            and setting.get("ResourcePath", "/*") == "/*"
            for stage in self.deployment.template.of_type("AWS::ApiGateway::Stage")
            for setting in stage.properties.get("MethodSettings", []) or []
        )
        return name, detailed

    def _declare_keys(self, kept: dict[str, str]) -> dict[str, ApiKey]:
        """Bring the stand-in's usage plans and API keys to the template's; the keys by logical id.
        A restored stand-in already holds them (and the keys issued through the API): a plan is found
        by name and given the template's limits, a key by its name (the logical id) and kept with its
        value, a membership is added only when missing. `kept` holds key values of a state saved
        without API Gateway's backend."""
        template = self.deployment.template
        apigateway = self.deployment.client("apigateway")
        existing_plans = {plan["name"]: plan for plan in _all_items(apigateway, "get_usage_plans")}
        plans: dict[str, str] = {}
        for plan in template.of_type("AWS::ApiGateway::UsagePlan"):
            props = self.deployment.resolve(plan.properties)
            name = props.get("UsagePlanName")
            name = name if isinstance(name, str) else self.deployment.names[plan.logical_id]
            limits = _plan_limits(props)
            found = existing_plans.get(name)
            if found is None:
                plans[plan.logical_id] = apigateway.create_usage_plan(name=name, **limits)["id"]
                continue
            plans[plan.logical_id] = found["id"]
            changes = _limit_changes(found, limits)
            if changes:
                apigateway.update_usage_plan(usagePlanId=found["id"], patchOperations=changes)
        existing_keys: dict[str, dict[str, Any]] = {}
        for item in _all_items(apigateway, "get_api_keys", includeValues=True):
            existing_keys.setdefault(item["name"], item)
        keys: dict[str, ApiKey] = {}
        for key in template.of_type("AWS::ApiGateway::ApiKey"):
            if key.properties.get("Enabled") is False:
                continue
            declared = key.properties.get("Value")
            found = existing_keys.get(key.logical_id)
            if found is not None and (not isinstance(declared, str) or declared == found["value"]):
                keys[key.logical_id] = ApiKey(key.logical_id, found["id"], found["value"])
                continue
            if found is not None:  # the template now declares another value
                apigateway.delete_api_key(apiKey=found["id"])
            value = declared if isinstance(declared, str) else kept.get(key.logical_id) or secrets.token_urlsafe(30)
            created = apigateway.create_api_key(name=key.logical_id, value=value, enabled=True)
            keys[key.logical_id] = ApiKey(key.logical_id, created["id"], value)
        for link in template.of_type("AWS::ApiGateway::UsagePlanKey"):
            key_ref = link.properties["KeyId"].get("Ref")
            plan_id = plans.get(link.properties["UsagePlanId"].get("Ref"))
            if key_ref not in keys or plan_id is None:
                continue
            members = {item["id"] for item in _all_items(apigateway, "get_usage_plan_keys", usagePlanId=plan_id)}
            if keys[key_ref].key_id not in members:
                apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=keys[key_ref].key_id, keyType="API_KEY")
        return keys

    def _admit_key(self, offered: str) -> tuple[int, str] | str:
        """The key's id on the stand-in when an enabled key with this value is in a usage plan and
        within its limits; otherwise the refusal (status, message)."""
        key, plans = _stand_in_key(self.deployment, offered)
        if key is None or not plans:
            return 403, "Forbidden"
        with self._lock:
            for plan in plans:
                throttle = plan.throttle or {}
                if throttle:
                    bucket = self._buckets.get((plan.id, key.id))
                    if bucket is None:
                        bucket = self._buckets[(plan.id, key.id)] = TokenBucket(
                            float(throttle.get("rateLimit", 10_000)), float(throttle.get("burstLimit", 5_000))
                        )
                    if not bucket.take():
                        return 429, "Too Many Requests"
            for plan in plans:
                quota = plan.quota or {}
                if quota:
                    counted = (plan.id, key.id, _quota_period(str(quota.get("period", "DAY"))))
                    if self._quota_used.get(counted, 0) >= int(quota["limit"]):
                        return 429, QUOTA_EXCEEDED
                    self._quota_used[counted] = self._quota_used.get(counted, 0) + 1
        return str(key.id)

    # --- request handling -----------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        started = time.perf_counter()
        seen: dict[str, Any] = {}
        answer = self._handle(method, raw_path, headers, body, source_ip, seen)
        if self.on_request is not None and seen.get("stage"):
            try:
                self.on_request(
                    ApiRequest(
                        self.api_name,
                        self.stage,
                        method,
                        seen.get("resource"),
                        answer[0],
                        (time.perf_counter() - started) * 1000,
                        seen.get("integration_ms"),
                        time.time(),
                    )
                )
            except Exception:  # metrics never change an answer
                log.warning("could not record the request's metrics", exc_info=True)
        return answer

    def _handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str, seen: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        """The answer; `seen` learns whether the stage answered, the route and the integration time."""
        url = urlsplit(raw_path)
        served = sorted({r.method for r in self.routes})
        if method not in served and "ANY" not in served:  # TRACE, CONNECT, any other token
            allowed = ", ".join(served)
            return _json(
                405, {"message": f"Method Not Allowed: {method}; the API serves {allowed}"}, {"Allow": allowed}
            )
        prefix = f"/{self.stage}"
        if not (url.path == prefix or url.path.startswith(prefix + "/")):
            return _json(404, {"message": f"Not Found: routes live under /{self.stage}/"})
        path = url.path[len(prefix) :] or "/"
        seen["stage"] = True
        matches = [(route, params) for route in self.routes if (params := route.match(path)) is not None]
        if not matches:
            return _json(404, {"message": f"Not Found: no route for {path}"})
        chosen = next(((r, p) for r, p in matches if r.method in (method, "ANY")), None)
        if chosen is None:
            allowed = ", ".join(sorted({r.method for r, _ in matches}))
            return _json(
                405, {"message": f"Method Not Allowed: {method} {path}; allowed: {allowed}"}, {"Allow": allowed}
            )
        route, params = chosen
        seen["resource"] = route.path
        lower = {k.lower(): v for k, v in headers.items()}
        identity: dict[str, Any] = {"sourceIp": source_ip, "userAgent": lower.get("user-agent")}
        if route.api_key_required:
            offered = lower.get("x-api-key") or ""
            admitted = self._admit_key(offered)
            if isinstance(admitted, tuple):
                return _json(admitted[0], {"message": admitted[1]})
            identity["apiKey"] = offered
            identity["apiKeyId"] = admitted
        if route.authorization == "AWS_IAM":
            problem = self._check_signature(method, raw_path, headers, body)
            if problem:
                return _json(403, {"message": problem})
            identity.update(
                {
                    "accessKey": self.access_key,
                    "caller": f"AIDALOCAL:{self.access_key}",
                    "user": f"AIDALOCAL:{self.access_key}",
                    "userArn": f"arn:aws:iam::{self.deployment.account}:user/local-admin",
                    "accountId": self.deployment.account,
                }
            )
        event = self._proxy_event(route, method, url, params, headers, body, identity)
        invocation = self.runner.invoke(route.function_id, event, f"api:{method} {route.path}")
        seen["integration_ms"] = invocation.duration_ms
        if not invocation.ok or not isinstance(invocation.result, dict) or "statusCode" not in invocation.result:
            return _json(502, {"message": "Internal server error"})
        return _response(invocation.result)

    def _proxy_event(
        self,
        route: Route,
        method: str,
        url: Any,
        params: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        identity: dict[str, Any],
    ) -> dict[str, Any]:
        multi_query: dict[str, list[str]] = {}
        for key, value in parse_qsl(url.query, keep_blank_values=True):
            multi_query.setdefault(key, []).append(value)
        return rest_proxy_event(
            method,
            url.path[len(self.stage) + 1 :] or "/",
            route.path,
            body=body.decode("utf-8", errors="replace") if body else None,
            path_parameters=params,
            headers=dict(headers),
            query=multi_query,
            identity=identity,
            stage=self.stage,
            api_id="local",
        )

    def _check_signature(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> str | None:
        lower = {k.lower(): v for k, v in headers.items()}
        authorization = lower.get("authorization", "")
        found = re.match(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, *SignedHeaders=([^,]+), *Signature=([0-9a-f]+)",
            authorization,
        )
        if not found:
            return "Missing Authentication Token"
        access_key, scope_date, region, service, signed_headers, signature = found.groups()
        if access_key != self.access_key:
            return "The security token included in the request is invalid."
        amz_date = lower.get("x-amz-date")
        if not amz_date:
            return "Missing X-Amz-Date"
        try:
            signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return f"X-Amz-Date {amz_date!r} is not in the form YYYYMMDDTHHMMSSZ"
        if abs((dt.datetime.now(dt.UTC) - signed_at).total_seconds()) > SIGNATURE_MAX_SKEW_SECONDS:
            return "Signature expired: the request was signed more than 5 minutes from now"
        if scope_date != amz_date[:8] or service != "execute-api" or region != self.deployment.region:
            return f"Credential should be scoped to {amz_date[:8]}/{self.deployment.region}/execute-api"
        request = AWSRequest(
            method=method,
            url=f"https://{lower.get('host', 'localhost')}{raw_path}",
            data=body,
            headers={name: lower.get(name, "") for name in signed_headers.split(";")},
        )
        request.context["timestamp"] = amz_date
        token = lower.get("x-amz-security-token")
        signer = SigV4Auth(Credentials(self.access_key, self.secret_key, token), service, region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not secrets.compare_digest(expected, signature):
            return "The request signature we calculated does not match the signature you provided."
        return None

    # --- serving ----------------------------------------------------------------------------

    def serve(self, host: str, port: int, cert_dir: Path) -> tuple[int, Path]:
        cert, key = ensure_certificate(cert_dir)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            default_request_version = "HTTP/1.1"  # answers to unparsable request lines carry a status line

            def setup(self) -> None:
                self.request.settimeout(DISCARD_TIMEOUT_SECONDS)  # a client that never finishes its handshake
                self.request.do_handshake()
                self.request.settimeout(None)
                super().setup()

            def _dispatch(self) -> None:
                declared = (self.headers.get("Content-Length") or "0").strip()
                discard = 0
                try:
                    if self.headers.get("Transfer-Encoding"):
                        # not read here: its chunks would be parsed as the next request
                        status, headers, payload = _json(411, {"message": "Length Required: send a Content-Length"})
                        self.close_connection = True
                    elif not declared.isdigit():
                        status, headers, payload = _json(400, {"message": f"invalid Content-Length {declared!r}"})
                        self.close_connection = True
                    elif int(declared) > MAX_BODY_BYTES:
                        status, headers, payload = _json(413, {"message": "Request Too Long"})
                        self.close_connection = True
                        discard = int(declared)
                    else:
                        body = self.rfile.read(int(declared)) if int(declared) else b""
                        status, headers, payload = api.handle(
                            self.command, self.path, dict(self.headers.items()), body, self.client_address[0]
                        )
                except Exception:
                    log.exception("local API failure")
                    status, headers, payload = _json(502, {"message": "Internal server error"})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                self.wfile.flush()
                if discard:
                    self._discard(discard)

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                # the server's own refusals (malformed request line, oversized headers) in JSON too
                _, headers, payload = _json(code, {"message": message or self.responses[code][0]})
                self.close_connection = True
                self.send_response(code, message)
                for name, value in {**headers, "Connection": "close"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                    self.wfile.write(payload)

            def _discard(self, declared: int) -> None:
                """Read the refused body so the client's send completes and it reads the answer."""
                self.connection.settimeout(DISCARD_TIMEOUT_SECONDS)
                remaining = min(declared, DISCARD_MAX_BYTES)
                try:
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 1 << 16))
                        if not chunk:
                            break
                        remaining -= len(chunk)
                except OSError:
                    pass  # the client gave up; the connection closes anyway

            def __getattr__(self, name: str) -> Any:
                # every method token reaches `handle`, which answers the ones no route serves with 405
                if name.startswith("do_"):
                    return self._dispatch
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("api %s", format % args)

        server = _ApiServer((host, port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        # the handshake happens in each connection's own thread (Handler.setup), not in the accepting one
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=server.serve_forever, name="local-api", daemon=True).start()
        self.server = server
        return server.server_address[1], cert

    def shutdown(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class _ApiServer(ThreadingHTTPServer):
    """Many clients connect at once (each urllib request is a new TLS connection): socketserver's
    backlog of 5 drops their SYNs, and each dropped one waits out TCP's 1 s retransmission."""

    request_queue_size = 256
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("api connection from %s failed", client_address, exc_info=True)  # e.g. a failed handshake


def _stand_in_key(deployment: LocalDeployment, offered: str) -> tuple[Any, list[Any]]:
    """The stand-in's enabled API key with this value and the usage plans it is in, read from moto's
    backend directly (it runs in this process): a request's check costs no HTTP call, and a key
    deleted through the API is refused from that moment."""
    from moto.apigateway.models import apigateway_backends

    backend = apigateway_backends[deployment.account][deployment.region]
    if not offered:
        return None, []
    key = next(
        (
            k
            for k in list(backend.keys.values())
            if k.enabled and secrets.compare_digest(str(k.value).encode(), offered.encode())
        ),
        None,
    )
    if key is None:
        return None, []
    plans = [
        backend.usage_plans[plan_id]
        for plan_id, members in list(backend.usage_plan_keys.items())
        if key.id in members and plan_id in backend.usage_plans
    ]
    return key, plans


def _all_items(apigateway: Any, operation: str, **arguments: Any) -> list[dict[str, Any]]:
    return [item for page in apigateway.get_paginator(operation).paginate(**arguments) for item in page["items"]]


def _plan_limits(props: dict[str, Any]) -> dict[str, Any]:
    """A template usage plan's throttle and quota as the API Gateway API takes them (absent: none)."""
    throttle, quota = props.get("Throttle") or {}, props.get("Quota") or {}
    limits: dict[str, Any] = {}
    if throttle:
        limits["throttle"] = {
            "rateLimit": float(throttle.get("RateLimit", 10_000)),
            "burstLimit": int(throttle.get("BurstLimit", 5_000)),
        }
    if quota:
        limits["quota"] = {"limit": int(quota["Limit"]), "period": quota["Period"], "offset": 0}
    return limits


def _limit_changes(plan: dict[str, Any], limits: dict[str, Any]) -> list[dict[str, str]]:
    """The patch operations that give a kept usage plan the template's throttle and quota."""
    changes = []
    for part, fields in (("throttle", ("rateLimit", "burstLimit")), ("quota", ("limit", "period", "offset"))):
        wanted, current = limits.get(part), plan.get(part) or {}
        if not wanted:
            if current:
                changes.append({"op": "remove", "path": f"/{part}"})
            continue
        changes += [
            # `:g` writes 20.0 as "20": moto 5.2.5 parses a patched rateLimit with int()
            {
                "op": "replace",
                "path": f"/{part}/{name}",
                "value": f"{wanted[name]:g}" if name == "rateLimit" else str(wanted[name]),
            }
            for name in fields
            if current.get(name) != wanted[name]
        ]
    return changes


def _quota_period(period: str) -> str:
    """The current quota period (UTC) of a usage plan's DAY, WEEK or MONTH."""
    now = dt.datetime.now(dt.UTC)
    if period == "MONTH":
        return now.strftime("%Y-%m")
    if period == "WEEK":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    return now.strftime("%Y-%m-%d")


def ensure_certificate(cert_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (generated once, reused)."""
    cert_path, key_path = cert_dir / "localhost.pem", cert_dir / "localhost-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _json(status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(extra or {})}, json.dumps(body).encode()


def _response(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ",".join(str(v) for v in values)
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        import base64

        payload = base64.b64decode(body)
    else:
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return int(result["statusCode"]), headers, payload
