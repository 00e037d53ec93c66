"""Runs the template's Lambda functions from the source tree, each in worker processes of its own.

Each function's workers (mlops_local.workers) get exactly the environment the template gives it
(resolved to local resources) and keep their module state between invocations, like Lambda
containers; a function runs as many invocations at once as its reserved concurrency allows, capped
by `max_workers` so a small machine stays usable. Everything a handler prints is routed to its
invocation: EMF metric lines go to the metric store, the rest to the function's log.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_local.deployment import LocalDeployment
from mlops_local.handlers import REPO_ROOT
from mlops_local.template import TemplateError
from mlops_local.workers import DEFAULT_MAX_WORKERS, FunctionPool, LambdaContext, WorkerSpec

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "FunctionRunner",
    "Invocation",
    "LambdaContext",
    "LocalFunction",
    "discover_functions",
]

log = logging.getLogger("mlops_local")

SOURCE_METADATA_KEY = "mlops:source"
# CDK's own helper functions whose work local mode does natively.
CDK_INTERNAL_FUNCTIONS = ("BucketNotificationsHandler",)


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    name: str
    source_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    reserved_concurrency: int | None = None  # None: unreserved (the account's pool)

    @property
    def short_name(self) -> str:
        return self.source_dir.name


@dataclass(frozen=True)
class Invocation:
    function: str
    trigger: str
    started: float
    duration_ms: float
    ok: bool
    error: str = ""
    result: Any = None


def discover_functions(deployment: LocalDeployment) -> dict[str, LocalFunction]:
    """The template's functions with their handler source and resolved environment."""
    functions: dict[str, LocalFunction] = {}
    for resource in deployment.template.of_type("AWS::Lambda::Function"):
        source = resource.metadata.get(SOURCE_METADATA_KEY)
        if source is None:
            if resource.logical_id.startswith(CDK_INTERNAL_FUNCTIONS):
                continue
            raise TemplateError(
                f"function {resource.logical_id} has no '{SOURCE_METADATA_KEY}' metadata: local mode cannot find its code"
            )
        props = deployment.resolve(resource.properties)
        handler = props.get("Handler") or "handler.lambda_handler"
        source_dir = (REPO_ROOT / source).resolve()
        if not (source_dir / "handler.py").is_file():
            raise TemplateError(f"function {resource.logical_id}: {source}/handler.py does not exist")
        functions[resource.logical_id] = LocalFunction(
            logical_id=resource.logical_id,
            name=deployment.names[resource.logical_id],
            source_dir=source_dir,
            handler=handler,
            environment={k: str(v) for k, v in (props.get("Environment", {}).get("Variables", {}) or {}).items()},
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            reserved_concurrency=int(reserved) if (reserved := props.get("ReservedConcurrentExecutions")) else None,
        )
    return functions


class FunctionRunner:
    def __init__(
        self,
        deployment: LocalDeployment,
        functions: dict[str, LocalFunction],
        *,
        log_dir: Path,
        on_metric_line: Callable[[dict[str, Any]], None],
        on_invocation: Callable[[Invocation], None] | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        background_nice: int = 0,
    ) -> None:
        """`max_workers`: the most workers one function gets, whatever its reserved concurrency;
        `background_nice`: niceness added to the workers of functions marked `background` (their
        long asynchronous work then yields the CPU to the serving path)."""
        self.deployment = deployment
        self.functions = functions
        self.log_dir = log_dir
        self.on_metric_line = on_metric_line
        self.on_invocation = on_invocation
        self.max_workers = max(1, max_workers)
        self.background_nice = background_nice
        self.background: set[str] = set()
        self.history: list[Invocation] = []
        # the workers' environment: the runtime's (credentials and endpoint of the stand-in) as it is now
        self._base_environment = dict(os.environ)
        self._pools: dict[str, FunctionPool] = {}
        self._pools_lock = threading.Lock()
        self._record_lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)
        self._invocations_log = (log_dir / "invocations.log").open("a", buffering=1)

    def close(self) -> None:
        """Stop every worker."""
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        self._invocations_log.close()

    def rewrite_environment(self, old: str, new: str) -> None:
        """Replace `old` by `new` in every function's variables (a deployed URL served locally elsewhere)."""
        for function in self.functions.values():
            for name, value in function.environment.items():
                if old in value:
                    function.environment[name] = value.replace(old, new)

    def by_name(self, short_name: str) -> LocalFunction:
        for function in self.functions.values():
            if short_name in (function.short_name, function.logical_id, function.name):
                return function
        raise KeyError(f"no function {short_name!r}; known: {sorted(f.short_name for f in self.functions.values())}")

    def workers_of(self, logical_id: str) -> int:
        """How many workers the function may have at once."""
        reserved = self.functions[logical_id].reserved_concurrency
        return min(reserved or self.max_workers, self.max_workers)

    def invoke(self, logical_id: str, event: dict[str, Any], trigger: str) -> Invocation:
        """Run one invocation in one of the function's workers; returns when it has an outcome."""
        function = self.functions[logical_id]
        started = time.time()
        outcome = self._pool(function).invoke(json.dumps(event), str(uuid.uuid4()))
        invocation = Invocation(
            function.short_name,
            trigger,
            started,
            outcome.duration_ms,
            outcome.ok,
            error=outcome.error,
            result=outcome.result,
        )
        self._route_output(function, outcome.output)
        self._record(invocation)
        return invocation

    def _pool(self, function: LocalFunction) -> FunctionPool:
        spec = WorkerSpec(
            function_name=function.name,
            function_arn=self.deployment.function_arn(function.logical_id),
            source_dir=str(function.source_dir),
            handler=function.handler,
            environment=tuple(sorted({**self._base_environment, **function.environment}.items())),
            timeout_seconds=function.timeout_seconds,
            memory_mb=function.memory_mb,
            nice=self.background_nice if function.logical_id in self.background else 0,
        )
        with self._pools_lock:
            pool = self._pools.get(function.logical_id)
            if pool is not None and pool.spec == spec:
                return pool
            # a new definition (its environment changed): new containers, as a Lambda update makes
            if pool is not None:
                pool.close()
            pool = self._pools[function.logical_id] = FunctionPool(spec, self.workers_of(function.logical_id))
            return pool

    def _route_output(self, function: LocalFunction, output: str) -> None:
        if not output:
            return
        with self._record_lock, (self.log_dir / f"{function.short_name}.log").open("a") as function_log:
            for line in output.splitlines():
                metric = _emf(line)
                if metric is not None:
                    self.on_metric_line(metric)
                function_log.write(line + "\n")

    def _record(self, invocation: Invocation) -> None:
        outcome = "ok" if invocation.ok else f"ERROR {invocation.error}"
        line = f"{time.strftime('%H:%M:%S', time.localtime(invocation.started))} {invocation.function:<18} {invocation.trigger:<40} {invocation.duration_ms:9.1f} ms  {outcome}"
        with self._record_lock:
            self.history.append(invocation)
            self._invocations_log.write(line + "\n")
        log.info("invoke %s", line)
        if self.on_invocation:
            self.on_invocation(invocation)


def _emf(line: str) -> dict[str, Any] | None:
    if '"_aws"' not in line:
        return None
    try:
        document = json.loads(line)
    except json.JSONDecodeError:
        return None
    if isinstance(document, dict) and "CloudWatchMetrics" in document.get("_aws", {}):
        return document
    return None
