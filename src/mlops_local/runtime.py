"""Local mode: the synthesized template running on one machine.

moto in server mode on loopback stands in for AWS; the template's resources are created on it,
its triggers wired to the very same handlers (run in-process from the source tree), its API
served over HTTPS and its alarms evaluated. Nothing of the wiring is written here a second time:
it all comes from the template.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mlops.adapters.aws import reset_clients
from mlops.contract import parse_contract
from mlops.layout import contract_key
from mlops_local.alarms import AlarmEvaluator
from mlops_local.api import LocalApi
from mlops_local.deployment import LocalDeployment
from mlops_local.functions import FunctionRunner, Invocation, discover_functions
from mlops_local.handlers import REPO_ROOT
from mlops_local.metrics import ApiRequest, MetricStore, api_datapoints, lambda_datapoints
from mlops_local.template import LOCAL_ADMIN_ARN, REGION, Template
from mlops_local.triggers import TriggerWiring

log = logging.getLogger("mlops_local")

LOCAL_ACCESS_KEY = "AKIALOCALMLOPS000001"
# Deploy-time context of the local "deployment": its stand-in admin (who signs every management
# call) is the only principal named; the stand-in has no MFA, and a deployed stack never sees it.
LOCAL_SYNTH_CONTEXT: dict[str, Any] = {"adminPrincipals": [LOCAL_ADMIN_ARN], "requireMfa": False}


@dataclass(frozen=True)
class Endpoints:
    """What a user (or the demo, or a test) needs to talk to local mode."""

    aws_endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    api_url: str
    api_key: str
    ca_bundle: str
    control_url: str
    outputs: dict[str, Any]
    log_dir: str

    def client_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


class LocalRuntime:
    def __init__(
        self,
        workdir: Path | None = None,
        *,
        api_port: int = 0,
        aws_port: int = 0,
        template: dict[str, Any] | None = None,
        contracts_dir: Path | None = None,
        schedules: bool = True,
    ) -> None:
        self.workdir = (workdir or REPO_ROOT / ".local").resolve()
        self.api_port = api_port
        self.aws_port = aws_port
        self.template_body = template
        self.contracts_dir = contracts_dir or REPO_ROOT / "contracts"
        self.schedules = schedules
        self.log_dir = self.workdir / "logs"
        self.endpoints: Endpoints | None = None
        self._moto: Any = None
        self._control: ThreadingHTTPServer | None = None
        self.invocation_listeners: list[Any] = []
        self._saved_environ: dict[str, str] | None = None

    def start(self) -> Endpoints:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _quiet_stand_in_logs()
        endpoint = self._start_stand_in()
        secret_key = secrets.token_urlsafe(24)
        self._saved_environ = dict(os.environ)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": secret_key,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                # no X-Ray daemon on this machine; Tracer becomes a no-op
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        reset_clients()

        template = Template(self.template_body if self.template_body is not None else self._synthesize())
        skipped = template.check_supported()
        (self.workdir / "template.json").write_text(json.dumps(template.body, indent=1))
        self.deployment = LocalDeployment(template, endpoint)
        self.deployment.create_all()

        self.metrics = MetricStore()
        self.alarms = AlarmEvaluator(self.deployment, self.metrics, self.log_dir)
        self.runner = FunctionRunner(
            self.deployment,
            discover_functions(self.deployment),
            log_dir=self.log_dir,
            on_metric_line=self.alarms.record_emf,
            on_invocation=self._on_invocation,
        )
        self.triggers = TriggerWiring(self.deployment, self.runner, self.log_dir)
        self.triggers.wire()
        self.api = LocalApi(
            self.deployment,
            self.runner,
            access_key=LOCAL_ACCESS_KEY,
            secret_key=secret_key,
            on_request=self._on_api_request,
        )
        port, cert = self.api.serve("127.0.0.1", self.api_port, self.workdir / "tls")
        control_port = self._serve_control()
        # the deployed API's origin (in REPORT_BASE_URL, the ApiUrl output) is served here
        local_origin = f"https://localhost:{port}"
        for origin in self.deployment.execute_api_origins():
            self.runner.rewrite_environment(origin, local_origin)
            self.alarms.rewrite_descriptions(origin, local_origin)

        outputs = {
            name: _rewritten(self.deployment.resolve(value), self.deployment.execute_api_origins(), local_origin)
            for name, value in template.outputs().items()
        }
        api_key = next(iter(self.api.api_keys.values())).value if self.api.api_keys else ""
        self.endpoints = Endpoints(
            aws_endpoint_url=endpoint,
            region=REGION,
            access_key_id=LOCAL_ACCESS_KEY,
            secret_access_key=secret_key,
            api_url=f"https://localhost:{port}/{self.api.stage}",
            api_key=api_key,
            ca_bundle=str(cert),
            control_url=f"http://127.0.0.1:{control_port}",
            outputs=outputs,
            log_dir=str(self.log_dir),
        )
        self.publish_contracts()
        self.triggers.start(timers=self.schedules)
        self.alarms.start()
        state = self.workdir / "state.json"
        state.write_text(json.dumps(asdict(self.endpoints), indent=2))
        state.chmod(0o600)
        log.info(
            "local mode up: %d resources not emulated on purpose (%s)",
            len(skipped),
            ", ".join(sorted({r.type for r in skipped})),
        )
        return self.endpoints

    def stop(self) -> None:
        for part in ("triggers", "alarms"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if hasattr(self, "api"):
            self.api.shutdown()
        if self._control:
            self._control.shutdown()
        if hasattr(self, "runner"):
            self.runner.close()
        if self._moto:
            self._moto.stop()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            reset_clients()

    # --- parts ------------------------------------------------------------------------------

    def publish_contracts(self) -> list[str]:
        """Register the repository's contracts in the data bucket, validated first."""
        bucket = self.data_bucket
        s3 = self.deployment.client("s3")
        published = []
        for path in sorted(self.contracts_dir.glob("*.json")):
            contract = parse_contract(path.read_text(), source=str(path.name))
            s3.put_object(
                Bucket=bucket,
                Key=contract_key(contract.name),
                Body=contract.canonical_json().encode(),
                ContentType="application/json",
            )
            published.append(contract.name)
        return published

    @property
    def data_bucket(self) -> str:
        assert self.endpoints is not None
        return str(self.endpoints.outputs["DataBucketName"])

    def _start_stand_in(self) -> str:
        from moto.server import ThreadedMotoServer

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        self._moto.start()
        host, port = self._moto._server.server_address[:2]
        endpoint = f"http://{host}:{port}"
        # moto's backends live in the process, not in the server: a runtime started after another one
        # in the same process (tests) would find its resources; every stand-in starts empty
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))  # noqa: S310 - loopback
        return endpoint

    def _synthesize(self) -> dict[str, Any]:
        import sys

        if str(REPO_ROOT) not in sys.path:  # the CDK app lives beside src/, not in the installed packages
            sys.path.insert(0, str(REPO_ROOT))
        from infra.synth import synthesize_template

        return synthesize_template(self.workdir / "cdk.out", context=LOCAL_SYNTH_CONTEXT)

    def _on_api_request(self, request: ApiRequest) -> None:
        self.alarms.record(api_datapoints(request, detailed=self.api.detailed_metrics))

    def _on_invocation(self, invocation: Invocation) -> None:
        function = self.runner.by_name(invocation.function)
        self.alarms.record(lambda_datapoints(function.name, invocation.ok, invocation.duration_ms, invocation.started))
        for listener in list(self.invocation_listeners):
            listener(invocation)

    def _serve_control(self) -> int:
        runtime = self

        class Control(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                try:
                    if len(parts) == 2 and parts[0] == "trigger":
                        body = {"rule": parts[1], "ok": runtime.triggers.fire(parts[1])}
                        status = 200
                    else:
                        body, status = {"error": f"unknown control path {self.path}"}, 404
                except KeyError as error:
                    body, status = {"error": str(error)}, 404
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("control %s", format % args)

        self._control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
        threading.Thread(target=self._control.serve_forever, name="local-control", daemon=True).start()
        return self._control.server_address[1]


def _rewritten(value: Any, origins: list[str], local_origin: str) -> Any:
    if isinstance(value, str):
        for origin in origins:
            value = value.replace(origin, local_origin)
    return value


def _quiet_stand_in_logs() -> None:
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)
