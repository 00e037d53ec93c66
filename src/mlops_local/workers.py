"""Worker processes that run one function each, the way Lambda runs a function in its containers.

A worker is started (lazily) for one function: it takes that function's environment, imports its
handler once (the cold start) and then serves invocations one at a time, warm, until it is
stopped. A function gets as many workers as it may run concurrently. Invocations cross the process
boundary as JSON, as Lambda's are: the event in, the result or the error (type, message,
traceback) out, with everything the handler printed. A worker that overruns the function's timeout
is killed and the invocation reported as timed out, as Lambda reports it.

Workers come from a fork server: a clean process started once, before any of the runtime's
threads matter, so forking from it is safe where forking the runtime (moto's server, the API's
threads) is not, and a worker starts without paying for a whole new interpreter.

This module is imported by the workers: it imports nothing of the runtime (moto, boto3).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Workers per function when its reserved concurrency does not say fewer: on a 2-core machine more
# workers only queue for the same cores and each holds its own copy of the function's imports.
DEFAULT_MAX_WORKERS = 2
# Lambda's init phase is limited to 10 s; a shared 2-core machine that starts several workers at once
# (training imports scikit-learn) can need longer, so local mode allows this much before giving up.
INIT_TIMEOUT_SECONDS = 120.0
# time for a finished invocation's answer to cross the pipe before the timeout counts as overrun
ANSWER_GRACE_SECONDS = 0.5
_context: Any = None
_context_lock = threading.Lock()


def _mp_context() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            # third-party imports every worker needs, made once in the fork server instead of in each worker;
            # not this project's packages: Python 3.11's fork server preloads with the interpreter's default
            # sys.path (not the runtime's), so it could import another checkout's copy that the workers inherit
            context.set_forkserver_preload(["boto3", "aws_lambda_powertools"])
            _context = context
        return _context


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


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to become one function's container."""

    function_name: str
    function_arn: str
    source_dir: str
    handler: str
    environment: tuple[tuple[str, str], ...]  # the whole process environment, sorted
    timeout_seconds: int
    memory_mb: int
    nice: int = 0  # added to the worker's niceness (lower CPU priority); 0 as in Lambda


@dataclass(frozen=True)
class Outcome:
    ok: bool
    duration_ms: float
    result: Any = None
    error: str = ""  # "<type>: <message>", as Lambda's errorType and errorMessage
    traceback: str = ""
    output: str = ""  # what the function printed (its log lines, EMF metrics)


class WorkerGone(Exception):
    """The worker process died or overran: it cannot serve again."""


class Worker:
    """One worker process for one function; serves one invocation at a time."""

    def __init__(self, spec: WorkerSpec) -> None:
        context = _mp_context()
        self.spec = spec
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, spec), name=f"lambda-{spec.function_name}", daemon=True
        )
        self.process.start()
        child.close()

    def initialise(self) -> Outcome:
        """Wait for the cold start (the handler's import); a failed one is the first invocation's error."""
        started = time.perf_counter()
        answer = self._answer(INIT_TIMEOUT_SECONDS, f"Init timed out after {INIT_TIMEOUT_SECONDS:.0f} seconds")
        return _outcome(answer, started)

    def invoke(self, event_json: str, request_id: str) -> Outcome:
        started = time.perf_counter()
        try:
            self._conn.send(("invoke", event_json, request_id))
        except (OSError, ValueError) as error:
            self.kill()
            raise WorkerGone(f"worker of {self.spec.function_name} is gone: {error}") from error
        timeout = self.spec.timeout_seconds
        answer = self._answer(timeout + ANSWER_GRACE_SECONDS, f"Task timed out after {timeout:.2f} seconds")
        return _outcome(answer, started)

    def _answer(self, seconds: float, overrun: str) -> tuple[Any, ...]:
        if not self._conn.poll(seconds):
            self.kill()
            return ("gone", "Sandbox.Timedout", overrun, "", "")
        try:
            return tuple(self._conn.recv())
        except (EOFError, OSError):
            self.process.join(timeout=5)
            code = self.process.exitcode
            self.kill()
            return ("gone", "Runtime.ExitError", f"the worker exited (code {code}) during the invocation", "", "")

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self._conn.close()


def _outcome(answer: tuple[Any, ...], started: float) -> Outcome:
    ms = (time.perf_counter() - started) * 1000
    kind = answer[0]
    if kind == "ok":
        return Outcome(True, ms, result=json.loads(answer[1]), output=answer[2])
    if kind == "ready":
        return Outcome(True, ms, output=answer[1])
    _, error_type, message, trace, output = answer
    outcome = Outcome(False, ms, error=f"{error_type}: {message}", traceback=trace, output=output)
    if kind == "gone":
        raise _Overrun(outcome)
    return outcome


class _Overrun(Exception):
    """The worker was killed (timeout) or died: the outcome to report, and the worker to drop."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


class FunctionPool:
    """Up to `size` warm workers of one function: started when needed, reused, replaced when one dies."""

    def __init__(self, spec: WorkerSpec, size: int) -> None:
        self.spec = spec
        self.size = max(1, size)
        self._idle: list[Worker] = []
        self._live = 0
        self._closed = False
        self._changed = threading.Condition()
        self.cold_starts = 0

    def invoke(self, event_json: str, request_id: str) -> Outcome:
        """Run one invocation on a free worker (waiting for one when all `size` are busy)."""
        worker, init = self._acquire()
        if init is not None and not init.ok:
            self._retire(worker)
            return init
        healthy = True
        try:
            outcome = worker.invoke(event_json, request_id)
        except _Overrun as overrun:
            healthy = False
            outcome = overrun.outcome
        except WorkerGone as gone:
            healthy = False
            outcome = Outcome(False, 0.0, error=f"Runtime.ExitError: {gone}")
        if init is not None:  # the cold start's output belongs to its first invocation
            outcome = Outcome(
                outcome.ok,
                outcome.duration_ms,
                outcome.result,
                outcome.error,
                outcome.traceback,
                init.output + outcome.output,
            )
        if healthy:
            self._release(worker)
        else:
            self._retire(worker)
        return outcome

    def _acquire(self) -> tuple[Worker, Outcome | None]:
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError(f"the workers of {self.spec.function_name} are stopped")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker, None
                    self._live -= 1
                    worker.kill()
                if self._live < self.size:
                    self._live += 1
                    break
                self._changed.wait()
        try:
            worker = Worker(self.spec)
            self.cold_starts += 1
            try:
                init = worker.initialise()
            except _Overrun as overrun:
                init = overrun.outcome
        except BaseException:
            with self._changed:
                self._live -= 1
                self._changed.notify()
            raise
        return worker, init

    def _release(self, worker: Worker) -> None:
        with self._changed:
            if self._closed:
                self._live -= 1
                worker.kill()
            else:
                self._idle.append(worker)
            self._changed.notify()

    def _retire(self, worker: Worker) -> None:
        worker.kill()
        with self._changed:
            self._live -= 1
            self._changed.notify()

    def close(self) -> None:
        """Stop the idle workers now; busy ones stop when their invocation ends."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._changed.notify_all()
        for worker in idle:
            worker.kill()


# --- inside the worker process ----------------------------------------------------------------


class _Capture(io.TextIOBase):
    """The worker's stdout and stderr: collected per invocation and sent back with its answer."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text


def serve(conn: Connection, spec: WorkerSpec) -> None:
    """The worker's main loop: become the function, import its handler, answer invocations."""
    os.environ.clear()
    os.environ.update(dict(spec.environment))
    if spec.nice:
        os.nice(spec.nice)
    capture = _Capture()
    sys.stdout = sys.stderr = capture  # Powertools' Logger binds sys.stdout when the handler creates it
    try:
        from mlops_local.handlers import load_handler_module

        module = load_handler_module(Path(spec.source_dir))
        entry = getattr(module, spec.handler.rsplit(".", 1)[-1])
    except BaseException as error:  # Lambda reports an init failure as the invocation's error
        conn.send(_failure(error, capture))
        return
    conn.send(("ready", capture.take()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the runtime is gone
        _, event_json, request_id = message
        context = LambdaContext(
            spec.function_name, spec.memory_mb, spec.function_arn, spec.timeout_seconds, aws_request_id=request_id
        )
        try:
            result = entry(json.loads(event_json), context)
            answer: tuple[Any, ...] = ("ok", json.dumps(result), capture.take())
        except Exception as error:  # a handler failure is an outcome, reported like Lambda does
            answer = _failure(error, capture)
        except SystemExit as error:
            conn.send(_failure(error, capture))
            return
        try:
            conn.send(answer)
        except (OSError, ValueError):
            return


def _failure(error: BaseException, capture: _Capture) -> tuple[str, str, str, str, str]:
    trace = "".join(traceback.format_exception(error))
    capture.write(trace)
    return ("error", type(error).__name__, str(error), trace, capture.take())
