"""Runs the template's Lambda functions in-process from the source tree.

Each function gets exactly the environment the template gives it (resolved to local resources)
while it runs. Invocations are serialised: the environment is process-wide, and one machine's
demo needs no more. Everything a handler prints is routed to its invocation: EMF metric lines
go to the metric store, the rest to the function's log.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from mlops_local.deployment import LocalDeployment
from mlops_local.handlers import REPO_ROOT, load_handler_module
from mlops_local.template import TemplateError

log = logging.getLogger("mlops_local")

SOURCE_METADATA_KEY = "mlops:source"
# CDK's own helper functions whose work local mode does natively.
CDK_INTERNAL_FUNCTIONS = ("BucketNotificationsHandler",)
SHARED_PACKAGE_LOGGER = "mlops"  # the domain package's logger (copy_config_to_registered_loggers)


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    name: str
    source_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int

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


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _RoutingStream(io.TextIOBase):
    """sys.stdout replacement: lines printed by the invoking thread go to the invocation."""

    def __init__(self, original: TextIO) -> None:
        self.original = original
        self.capture: tuple[int, list[str]] | None = None

    def write(self, text: str) -> int:
        capture = self.capture
        if capture and capture[0] == threading.get_ident():
            capture[1].append(text)
        else:
            self.original.write(text)
        return len(text)

    def flush(self) -> None:
        self.original.flush()


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
    ) -> None:
        self.deployment = deployment
        self.functions = functions
        self.log_dir = log_dir
        self.on_metric_line = on_metric_line
        self.on_invocation = on_invocation
        self.history: list[Invocation] = []
        self._lock = threading.RLock()
        self._modules: dict[str, ModuleType] = {}
        self._logging: dict[str, _LoggingState] = {}
        # registered now so that every snapshot holds it: each handler's import points it at its own Logger
        logging.getLogger(SHARED_PACKAGE_LOGGER)
        self._stream = _RoutingStream(sys.stdout)
        log_dir.mkdir(parents=True, exist_ok=True)
        self._invocations_log = (log_dir / "invocations.log").open("a", buffering=1)

    def close(self) -> None:
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

    def invoke(self, logical_id: str, event: dict[str, Any], trigger: str) -> Invocation:
        function = self.functions[logical_id]
        lines: list[str] = []
        with self._lock, self._environment(function.environment):
            context = LambdaContext(
                function.name, function.memory_mb, self.deployment.function_arn(logical_id), function.timeout_seconds
            )
            started = time.time()
            clock = time.perf_counter()
            # route prints to this invocation, whoever replaced sys.stdout meanwhile (pytest does)
            previous = sys.stdout
            if previous is not self._stream:
                self._stream.original = previous
            sys.stdout = self._stream  # type: ignore[assignment]
            self._stream.capture = (threading.get_ident(), lines)
            _isolate_powertools_metrics()
            outside = _LoggingState.capture()
            configured = None
            try:
                module = self._module(function)
                configured = self._logging[function.logical_id]
                configured.apply()
                entry = getattr(module, function.handler.rsplit(".", 1)[-1])
                result = entry(event, context)
                invocation = Invocation(
                    function.short_name, trigger, started, (time.perf_counter() - clock) * 1000, True, result=result
                )
            except Exception as error:  # a handler failure is an outcome, reported like Lambda does
                traceback.print_exc(file=_LineSink(lines))
                invocation = Invocation(
                    function.short_name,
                    trigger,
                    started,
                    (time.perf_counter() - clock) * 1000,
                    False,
                    error=f"{type(error).__name__}: {error}",
                )
            finally:
                if configured is not None:
                    outside.apply(only=configured.loggers)
                self._stream.capture = None
                sys.stdout = previous
        self._route_output(function, "".join(lines))
        self._record(invocation)
        return invocation

    def _module(self, function: LocalFunction) -> ModuleType:
        module = self._modules.get(function.logical_id)
        if module is None:
            # imported once per "container", under the function's own environment
            before = _LoggingState.capture()
            module = load_handler_module(function.source_dir)
            self._modules[function.logical_id] = module
            self._logging[function.logical_id] = _LoggingState.capture().changed_since(before)
        return module

    @contextmanager
    def _environment(self, variables: dict[str, str]) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(variables)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _route_output(self, function: LocalFunction, output: str) -> None:
        with (self.log_dir / f"{function.short_name}.log").open("a") as function_log:
            for line in output.splitlines():
                metric = _emf(line)
                if metric is not None:
                    self.on_metric_line(metric)
                function_log.write(line + "\n")

    def _record(self, invocation: Invocation) -> None:
        self.history.append(invocation)
        outcome = "ok" if invocation.ok else f"ERROR {invocation.error}"
        line = f"{time.strftime('%H:%M:%S', time.localtime(invocation.started))} {invocation.function:<18} {invocation.trigger:<40} {invocation.duration_ms:9.1f} ms  {outcome}"
        self._invocations_log.write(line + "\n")
        log.info("invoke %s", line)
        if self.on_invocation:
            self.on_invocation(invocation)


def _isolate_powertools_metrics() -> None:
    """Each Lambda container is its own process; here all handlers share one. Powertools keeps
    pending metrics and dimensions at class level, so drop what another handler left unflushed."""
    from aws_lambda_powertools.metrics import Metrics

    for shared in (Metrics._metrics, Metrics._dimensions, Metrics._metadata):
        shared.clear()


@dataclass(frozen=True)
class _LoggingState:
    """Handlers, level and propagation of top-level loggers. Each handler's import points the shared
    ones (`mlops`, via Powertools' copy_config_to_registered_loggers) at its own Logger; in one
    process the last import would win, so what a function's import changed is re-applied around its
    invocations, and those loggers are restored to the runtime's state after them."""

    loggers: dict[str, tuple[list[logging.Handler], int, bool]]

    @classmethod
    def capture(cls) -> _LoggingState:
        state = {}
        for name, found in list(logging.root.manager.loggerDict.items()):
            if "." in name:
                continue
            if isinstance(found, logging.Logger):
                state[name] = (list(found.handlers), found.level, found.propagate)
            else:  # a placeholder: a logger nobody configured yet
                state[name] = ([], logging.NOTSET, True)
        return cls(state)

    def changed_since(self, before: _LoggingState) -> _LoggingState:
        return _LoggingState({name: state for name, state in self.loggers.items() if before.loggers.get(name) != state})

    def apply(self, only: Collection[str] | None = None) -> None:
        for name, (handlers, level, propagate) in self.loggers.items():
            if only is not None and name not in only:
                continue
            target = logging.getLogger(name)
            target.handlers = list(handlers)
            target.setLevel(level)
            target.propagate = propagate


class _LineSink(io.StringIO):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)


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
