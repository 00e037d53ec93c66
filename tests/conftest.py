"""Shared fixtures: a real moto server on loopback and the AWS environment pointing at it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mlops.adapters.aws import reset_clients
from tests.support.resources import TestResources, create_resources

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MLOps")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server in server mode on an ephemeral loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address[:2]  # type: ignore[attr-defined]
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point every boto3 client at the moto server, with throwaway credentials, and reset its state."""
    import urllib.request

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    reset_clients()
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"))
    yield moto_endpoint
    reset_clients()


@pytest.fixture
def stack(aws: str, monkeypatch: pytest.MonkeyPatch) -> TestResources:
    """The stack's data resources on the moto server, named in the environment as the functions read them."""
    names = create_resources()
    for name, value in names.env().items():
        monkeypatch.setenv(name, value)
    return names
