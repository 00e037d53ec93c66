"""Local mode: the synthesized template running on one machine.

moto in server mode on loopback stands in for AWS; the template's resources are created on it,
its triggers wired to the very same handlers (run from the source tree, each function in worker
processes of its own, as Lambda runs it in containers: mlops_local.functions), its API
served over HTTPS and its alarms evaluated. Nothing of the wiring is written here a second time:
it all comes from the template.

State is kept in `.local/state/` (mlops_local.state): restored at start, saved at stop and every
`save_every_seconds`; `fresh=True` discards it first. Contracts published to the data bucket while
running get their alarms and dashboards: the template is re-synthesized with them and the alarms
reconciled (a deployed stack needs `cdk deploy` for that).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from mlops.adapters.aws import reset_clients
from mlops.contract import contract_files, parse_contract
from mlops.errors import ContractError
from mlops.layout import CONTRACTS_PREFIX, contract_key
from mlops_local.alarms import AlarmEvaluator
from mlops_local.api import LocalApi
from mlops_local.deployment import LocalDeployment
from mlops_local.functions import DEFAULT_MAX_WORKERS, FunctionRunner, Invocation, discover_functions
from mlops_local.handlers import REPO_ROOT
from mlops_local.metrics import ApiRequest, MetricStore, api_datapoints, lambda_datapoints
from mlops_local.state import LocalState, RequestGate, SavedState, Secrets
from mlops_local.state_machines import StateMachineRunner
from mlops_local.template import ACCOUNT, LOCAL_ADMIN_ARN, REGION, Template
from mlops_local.triggers import TriggerWiring

log = logging.getLogger("mlops_local")

LOCAL_ACCESS_KEY = "AKIALOCALMLOPS000001"
# Deploy-time context of the local "deployment": its stand-in admin (who signs every management
# call) is the only principal named; the stand-in has no MFA, and a deployed stack never sees it.
LOCAL_SYNTH_CONTEXT: dict[str, Any] = {"adminPrincipals": [LOCAL_ADMIN_ARN], "requireMfa": False}
# Local mode only (Lambda gives every container the same CPU share per MB): on a 2-core machine a
# training at equal priority doubles prediction latency; at this niceness it takes the idle CPU.
BACKGROUND_NICE = 10
CONTRACTS_DIR_CONTEXT = "mlops:contractsDir"  # infra.constructs.monitoring reads it
SYNTHESIS_INPUTS = ("infra", "functions", "src", "layers", "requirements")
TEMPLATES_CACHED = 4
# what a contract change may change in a running local mode (CDK metadata lists constructs: ignored)
MONITORING_TYPES = {
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::CompositeAlarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::CDK::Metadata",
}


@dataclass(frozen=True)
class ContractSync:
    """What a contract change did to a running local mode."""

    contracts: list[str]
    alarms_added: list[str]
    alarms_removed: list[str]
    refused: dict[str, str]  # object key -> why its contract was not used
    restart_needed: list[str]  # resources other than alarms/dashboards the new template changes


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
        persist: bool = True,
        fresh: bool = False,
        save_every_seconds: float = 60.0,
        contracts_poll_seconds: float = 5.0,
        managed_training_min_rows: int = 0,
        max_workers: int = DEFAULT_MAX_WORKERS,
        background_nice: int = BACKGROUND_NICE,
    ) -> None:
        """`persist`: restore `.local/state/` at start and save it (False: a blank stand-in, nothing
        saved: the demo); `fresh`: discard the saved state first; `contracts_poll_seconds`: how often
        the data bucket's contracts/ is checked for changes (0: only on `sync_contracts()`);
        `managed_training_min_rows`: datasets of at least this many rows train on the managed engine
        (its state machine, run in-process) whatever their size (0: only past train_model's budget);
        `max_workers`: the most worker processes one function gets (its reserved concurrency, capped);
        `background_nice`: the niceness of the workers of functions no API route invokes (0: none)."""
        self.workdir = (workdir or REPO_ROOT / ".local").resolve()
        self.api_port = api_port
        self.aws_port = aws_port
        self.template_body = template
        self.contracts_dir = contracts_dir or REPO_ROOT / "contracts"
        self.schedules = schedules
        self.managed_training_min_rows = managed_training_min_rows
        self.log_dir = self.workdir / "logs"
        self.endpoints: Endpoints | None = None
        self._moto: Any = None
        self._control: ThreadingHTTPServer | None = None
        self.invocation_listeners: list[Any] = []
        self._saved_environ: dict[str, str] | None = None
        self.persist = persist
        self.fresh = fresh
        self.save_every_seconds = save_every_seconds
        self.contracts_poll_seconds = contracts_poll_seconds
        self.state = LocalState(self.workdir / "state", account=ACCOUNT, region=REGION)
        self.restored: SavedState | None = None
        self.discarded = False
        self._gate = RequestGate()
        self._stop_background = threading.Event()
        self._background: list[threading.Thread] = []
        self._contracts_lock = threading.Lock()
        self._contracts_fingerprint = ""
        self._contracts_seen: dict[str, str] = {}  # object key -> ETag, as last synchronised
        self._synthesized_with: Path | None = None
        self._initial_contracts = self.contracts_dir  # what the start-up template is synthesized with
        self._initial_fingerprint = ""
        self._started = False
        self._saved_changes = -1  # the gate's change count at the last periodic save
        self.max_workers = max_workers
        self.background_nice = background_nice

    def start(self) -> Endpoints:
        """Start every part; on failure stop what started (saving nothing) and raise."""
        try:
            endpoints = self._start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return endpoints

    def _start(self) -> Endpoints:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _quiet_stand_in_logs()
        if self.persist:
            self.state.acquire()
        if self.persist and self.fresh:
            self.discarded = self.state.discard()
            log.info(
                "starting fresh: %s",
                f"discarded the saved state in {self.state.directory}"
                if self.discarded
                else "no saved state to discard",
            )
        if self.persist and self.state.exists():
            self.state.check_compatible()  # refuses before anything starts
        kept_secrets = self.state.load_secrets() if self.persist else None
        endpoint = self._start_stand_in()
        if self.persist:
            self.restored = self.state.restore()
        secret_key = kept_secrets.secret_access_key if kept_secrets else secrets.token_urlsafe(24)
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

        if self.template_body is None:
            self._initial_contracts = self._contracts_to_synthesize()
            self._initial_fingerprint = _fingerprint(self._initial_contracts)
        template = Template(self.template_body if self.template_body is not None else self._synthesize())
        skipped = template.check_supported()
        (self.workdir / "template.json").write_text(json.dumps(template.body, indent=1))
        self.deployment = LocalDeployment(template, endpoint)
        self.reconciled = self.deployment.create_all()
        self._report_restored()

        self.metrics = MetricStore()
        if self.restored:
            self.metrics.add(self.restored.datapoints)
        self.alarms = AlarmEvaluator(
            self.deployment,
            self.metrics,
            self.log_dir,
            kept_states=self.restored.alarm_states if self.restored else None,
        )
        self.runner = FunctionRunner(
            self.deployment,
            discover_functions(self.deployment),
            log_dir=self.log_dir,
            on_metric_line=self.alarms.record_emf,
            on_invocation=self._on_invocation,
            max_workers=self.max_workers,
            background_nice=self.background_nice,
        )
        if self.managed_training_min_rows:
            self.runner.by_name("train_model").environment["MANAGED_TRAINING_MIN_ROWS"] = str(
                self.managed_training_min_rows
            )
        self.triggers = TriggerWiring(self.deployment, self.runner, self.log_dir)
        self.triggers.wire()
        self.state_machines = StateMachineRunner(self.deployment, self.runner, self.log_dir)
        self.api = LocalApi(
            self.deployment,
            self.runner,
            access_key=LOCAL_ACCESS_KEY,
            secret_key=secret_key,
            on_request=self._on_api_request,
            key_values=kept_secrets.api_keys if kept_secrets else None,
        )
        # asynchronous work (validation, training, drift checks) yields the cores to what answers requests
        self.runner.background = set(self.runner.functions) - {route.function_id for route in self.api.routes}
        if self.persist:
            self.state.save_secrets(Secrets(secret_key, {k.logical_id: k.value for k in self.api.api_keys.values()}))
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
        self.sync_contracts()  # contracts published earlier (restored) get their alarms too
        self.triggers.start(timers=self.schedules)
        self.state_machines.start()
        self.alarms.start()
        if self.persist and self.save_every_seconds > 0:
            self._every(self.save_every_seconds, self._save_quietly, "state-saver")
        if self.contracts_poll_seconds > 0 and self.template_body is None:
            self._every(self.contracts_poll_seconds, self._sync_quietly, "contracts-watcher")
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
        """Stop every part, save the state (when persisting), then stop the stand-in."""
        self._stop_background.set()
        for thread in self._background:
            thread.join(timeout=30)
        for part in ("triggers", "state_machines", "alarms"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if hasattr(self, "api"):
            self.api.shutdown()
        if self._control:
            self._control.shutdown()
        if hasattr(self, "runner"):
            self.runner.close()
        if self._moto and self.persist and self._started:  # a failed start never overwrites the saved state
            sizes = self.save()
            log.info("state saved in %s (%.1f MB)", self.state.directory, sum(sizes.values()) / 1e6)
        if self._moto:
            self._moto.stop()
        self.state.release()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            reset_clients()

    # --- state ------------------------------------------------------------------------------

    def save(self) -> dict[str, int]:
        """Save the stand-in's data, the alarm states and recent datapoints now; bytes per file."""
        resources = {
            logical_id: {"type": resource.type, "name": self.deployment.names[logical_id]}
            for logical_id, resource in self.deployment.template.resources.items()
            if resource.type in {"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic"}
        }
        alarms = getattr(self, "alarms", None)
        return self.state.save(
            self._gate,
            resources=resources,
            alarm_states=dict(alarms.states) if alarms else {},
            datapoints=list(self.metrics.points) if hasattr(self, "metrics") else [],
            data_bucket=self.data_bucket,
        )

    def _save_quietly(self) -> None:
        """The periodic save: skipped while no request could have changed the kept data."""
        changes = self._gate.changes
        if changes == self._saved_changes:
            return
        try:
            self.save()
            self._saved_changes = changes
        except Exception:  # the next round tries again; stop() saves once more
            log.warning("periodic state save failed", exc_info=True)

    def _report_restored(self) -> None:
        if not self.persist:
            return
        if self.restored is None:
            log.info("no saved state: starting with empty buckets and tables (saved in %s)", self.state.directory)
            return
        log.info(
            "state restored from %s (saved %s): %d resources kept with their data, %d created",
            self.state.directory,
            self.restored.saved_at,
            len(self.reconciled.kept),
            len(self.reconciled.created),
        )
        if self.reconciled.undeclared:
            log.warning(
                "kept with their data but not declared by the template (renamed or removed; delete them with the "
                "AWS CLI, or start with --fresh): %s",
                ", ".join(self.reconciled.undeclared),
            )

    def _every(self, seconds: float, action: Any, name: str) -> None:
        def loop() -> None:
            while not self._stop_background.wait(seconds):
                action()

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._background.append(thread)

    # --- contracts -> alarms -------------------------------------------------------------------

    def sync_contracts(self) -> ContractSync:
        """Bring the alarms and dashboards in line with the contracts in the data bucket: when they
        changed, re-synthesize the template with them and reconcile (alarms still declared keep their
        state). A contract that does not parse is refused (named in the result), never half-used."""
        with self._contracts_lock:
            s3 = self.deployment.client("s3")
            bucket = self.data_bucket
            listed = {
                obj["Key"]: obj["ETag"]
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=CONTRACTS_PREFIX)
                for obj in page.get("Contents", [])
                if obj["Key"].endswith(".json")
            }
            if listed == self._contracts_seen:
                return ContractSync(self._contract_names(), [], [], {}, [])
            directory = self.workdir / "synth-contracts"
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            refused: dict[str, str] = {}
            for key in sorted(listed):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
                try:
                    contract = parse_contract(body, source=key)
                except ContractError as error:
                    refused[key] = str(error)
                    log.warning("contract %s refused, no alarms for it: %s", key, error)
                    continue
                (directory / f"{contract.name}.json").write_text(contract.canonical_json())
            self._contracts_seen = listed
            fingerprint = _fingerprint(directory)
            if fingerprint == self._contracts_fingerprint:
                return ContractSync(self._contract_names(), [], [], refused, [])
            if (
                not self._contracts_fingerprint
                and self.template_body is None
                and fingerprint == self._initial_fingerprint
            ):
                # the start-up template was synthesized from exactly these contracts
                self._contracts_fingerprint = fingerprint
                self._synthesized_with = directory
                return ContractSync(self._contract_names(), [], [], refused, [])
            if self.template_body is not None:  # a given template: nothing to re-synthesize
                self._contracts_fingerprint = fingerprint
                return ContractSync(self._contract_names(), [], [], refused, [])
            started = time.perf_counter()
            new = Template(self._synthesize(directory))
            self._contracts_fingerprint = fingerprint
            self._synthesized_with = directory
            result = self._adopt(new, refused)
            log.info(
                "contracts changed (%s): template re-synthesized in %.1f s; alarms added %s, removed %s",
                ", ".join(result.contracts),
                time.perf_counter() - started,
                result.alarms_added or "none",
                result.alarms_removed or "none",
            )
            return result

    def _adopt(self, new: Template, refused: dict[str, str]) -> ContractSync:
        """Take the re-synthesized template's alarms and dashboards; anything else it changes is
        reported (it needs a restart, as a deployed stack needs `cdk deploy`)."""
        old = self.deployment.template

        def others(template: Template) -> dict[str, str]:
            return {
                lid: json.dumps(r.properties, sort_keys=True, default=str)
                for lid, r in template.resources.items()
                if r.type not in MONITORING_TYPES
            }

        before, after = others(old), others(new)
        restart_needed = sorted(lid for lid in before.keys() | after.keys() if before.get(lid) != after.get(lid))
        if restart_needed:
            log.warning("the new contracts change more than alarms (%s): restart local mode to apply", restart_needed)
        retract = self.deployment.monitoring_names()
        self.deployment.replace_template(new)
        (self.workdir / "template.json").write_text(json.dumps(new.body, indent=1))
        self.deployment.declare_monitoring(retract=retract)
        assert self.endpoints is not None
        local_origin = self.endpoints.api_url.rsplit("/", 1)[0]
        for origin in self.deployment.execute_api_origins():
            self.alarms.rewrite_descriptions(origin, local_origin)
        added, removed = self.alarms.reload()
        self.alarms.evaluate_all()
        return ContractSync(self._contract_names(), added, removed, refused, restart_needed)

    def _contracts_to_synthesize(self) -> Path:
        """The runtime's contracts plus those a restored data bucket holds (the runtime's win on a name
        clash, as they are published over them), so a restart synthesizes once."""
        bucket = self.restored.data_bucket if self.restored else ""
        if not bucket:
            return self.contracts_dir
        directory = self.workdir / "synth-contracts"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        s3 = boto3.client("s3")  # the environment points at the stand-in by now
        documents: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=CONTRACTS_PREFIX):
            for obj in page.get("Contents", []):
                documents[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        for path in contract_files(self.contracts_dir):
            documents[path.name] = path.read_text()
        for source, text in documents.items():
            try:
                contract = parse_contract(text, source=source)
            except ContractError:
                continue  # sync_contracts names it as refused
            (directory / f"{contract.name}.json").write_text(contract.canonical_json())
        return directory

    def _contract_names(self) -> list[str]:
        directory = self._synthesized_with or self.contracts_dir
        return sorted(path.stem for path in contract_files(directory))

    def _sync_quietly(self) -> None:
        try:
            self.sync_contracts()
        except Exception:  # a synthesis failure is logged; the next round tries again
            log.warning("contract synchronisation failed", exc_info=True)

    # --- parts ------------------------------------------------------------------------------

    def publish_contracts(self) -> list[str]:
        """Register the repository's contracts in the data bucket, validated first."""
        bucket = self.data_bucket
        s3 = self.deployment.client("s3")
        published = []
        for path in contract_files(self.contracts_dir):
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
        # every request passes the gate, so a state snapshot never sees one half applied
        self._moto._server.app = self._gate.wrap(self._moto._server.app)
        host, port = self._moto._server.server_address[:2]
        endpoint = f"http://{host}:{port}"
        # moto's backends live in the process, not in the server: a runtime started after another one
        # in the same process (tests) would find its resources; every stand-in starts empty
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))  # noqa: S310 - loopback
        return endpoint

    def _synthesize(self, contracts_dir: Path | None = None) -> dict[str, Any]:
        """The app's template, with the contracts in `contracts_dir` (default: the runtime's)."""
        import sys

        if str(REPO_ROOT) not in sys.path:  # the CDK app lives beside src/, not in the installed packages
            sys.path.insert(0, str(REPO_ROOT))
        from infra.synth import synthesize_template

        contracts = contracts_dir or self._initial_contracts
        context = LOCAL_SYNTH_CONTEXT | {CONTRACTS_DIR_CONTEXT: str(contracts)}
        self._synthesized_with = contracts
        # a cold synthesis costs 10-15 s (jsii starts Node): the same inputs give the same template
        cache = self.workdir / "template-cache"
        cached = cache / f"{_synthesis_key(context, contracts)}.json"
        if cached.is_file():
            log.info("template from %s: the app, its context and its contracts are unchanged", cached.name)
            return dict(json.loads(cached.read_text()))
        template = synthesize_template(self.workdir / "cdk.out", context=context)
        cache.mkdir(parents=True, exist_ok=True)
        for older in sorted(cache.glob("*.json"), key=lambda path: path.stat().st_mtime)[: -(TEMPLATES_CACHED - 1)]:
            older.unlink(missing_ok=True)
        cached.write_text(json.dumps(template))
        return template

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
                    elif parts == ["contracts", "sync"]:
                        body, status = asdict(runtime.sync_contracts()), 200
                    elif parts == ["state", "save"]:
                        body, status = {"saved": runtime.save(), "directory": str(runtime.state.directory)}, 200
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


def _synthesis_key(context: dict[str, Any], contracts: Path) -> str:
    """A digest of everything the synthesized template depends on: the app's sources (infra, functions,
    the shared packages, layer pins), cdk.json and its context, the contracts, and the CDK library's version."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    digest.update(json.dumps(context, sort_keys=True, default=str).encode())
    digest.update(_fingerprint(contracts).encode())
    digest.update(version("aws-cdk-lib").encode())
    files = [REPO_ROOT / name for name in ("cdk.json", "cdk.context.json", "pyproject.toml", "package-lock.json")]
    for folder in SYNTHESIS_INPUTS:
        files += [
            path
            for path in (REPO_ROOT / folder).rglob("*")
            if path.is_file()
            and path.suffix in {".py", ".txt", ".json", ".toml", ".in", ".cfg"}
            and "__pycache__" not in path.parts
            and not path.is_relative_to(REPO_ROOT / "layers" / "build")
        ]
    for path in sorted(files):
        if path.is_file():
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _fingerprint(directory: Path) -> str:
    """One digest of every contract in a directory (name and canonical content)."""
    digest = hashlib.sha256()
    for path in contract_files(directory):
        try:
            canonical = parse_contract(path.read_text(), source=path.name).canonical_json()
        except ContractError:
            continue
        digest.update(path.stem.encode() + b"\0" + canonical.encode() + b"\0")
    return digest.hexdigest()


def _rewritten(value: Any, origins: list[str], local_origin: str) -> Any:
    if isinstance(value, str):
        for origin in origins:
            value = value.replace(origin, local_origin)
    return value


def _quiet_stand_in_logs() -> None:
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)
