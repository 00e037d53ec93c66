"""The graceful-shutdown external extension against a fake Lambda Extensions API on loopback.

Lambda sends SIGTERM to predict's runtime (which flushes the capture buffers) only while an
external extension is registered; this runs the shipped executable as Lambda would (its own
process, AWS_LAMBDA_RUNTIME_API in the environment) and checks the protocol it speaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.layers import LAYERS

EXTENSION_LAYER = LAYERS["shutdown-extension"]
IDENTIFIER = "b3a4e2d0-0000-4000-8000-000000000001"


@dataclass
class FakeExtensionsApi:
    """Records what the extension sends; `/event/next` blocks until `shutdown` is set."""

    register_status: int = 200
    registrations: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    polls: list[dict[str, str]] = field(default_factory=list)
    polled: threading.Event = field(default_factory=threading.Event)
    shutdown: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"


def _handler(api: FakeExtensionsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Lambda's API

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            document = json.loads(self.rfile.read(length) or b"null")
            api.registrations.append((dict(self.headers), document))
            if self.path != "/2020-01-01/extension/register" or api.register_status != 200:
                self._answer(api.register_status if api.register_status != 200 else 404, {"errorType": "Refused"})
                return
            self._answer(
                200,
                {"functionName": "predict", "functionVersion": "$LATEST", "handler": "handler.lambda_handler"},
                {"Lambda-Extension-Identifier": IDENTIFIER},
            )

        def do_GET(self) -> None:
            if self.path != "/2020-01-01/extension/event/next":
                self._answer(404, {"errorType": "NotFound"})
                return
            api.polls.append(dict(self.headers))
            api.polled.set()
            api.shutdown.wait(timeout=30)
            self._answer(200, {"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": 1_700_000_002_000})

    return Handler


@pytest.fixture
def extensions_api() -> Iterator[FakeExtensionsApi]:
    api = FakeExtensionsApi()
    api.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    yield api
    api.shutdown.set()
    api.server.shutdown()
    api.server.server_close()


def start_extension(api: FakeExtensionsApi) -> subprocess.Popen[str]:
    """Exec the shipped file itself (its shebang and executable bit), as Lambda does at init."""
    env = {"PATH": os.environ["PATH"], "AWS_LAMBDA_RUNTIME_API": api.address}
    return subprocess.Popen(
        [str(EXTENSION_LAYER.extension_source)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_shutdown_extension_registers_for_shutdown_waits_and_exits_on_it(extensions_api: FakeExtensionsApi) -> None:
    process = start_extension(extensions_api)
    try:
        # WHEN Lambda starts it THEN it registers for SHUTDOWN only, under its file name, and polls next
        assert extensions_api.polled.wait(timeout=20), process.stderr.read() if process.poll() is not None else ""
        [(headers, document)] = extensions_api.registrations
        assert document == {"events": ["SHUTDOWN"]}
        assert headers["Lambda-Extension-Name"] == EXTENSION_LAYER.extension == "graceful-shutdown"
        assert extensions_api.polls[0]["Lambda-Extension-Identifier"] == IDENTIFIER
        # it waits there (an extension that returns early would end the environment)
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.5)
        # WHEN the environment shuts down THEN it exits cleanly
        extensions_api.shutdown.set()
        assert process.wait(timeout=20) == 0
        assert "shutdown (spindown)" in process.stdout.read()
    finally:
        process.kill()
        process.wait()


def test_shutdown_extension_exits_with_an_error_when_registration_is_refused(
    extensions_api: FakeExtensionsApi,
) -> None:
    extensions_api.register_status = 403
    process = start_extension(extensions_api)
    try:
        assert process.wait(timeout=20) == 1
        assert "registration failed with HTTP 403" in process.stderr.read()
        assert extensions_api.polls == []
    finally:
        process.kill()
        process.wait()
