"""AWS clients, created lazily and cached per process (warm invocations reuse connections).

Plain botocore clients: the adapters only call service operations, never boto3's additions (S3
transfer methods, resources), and a botocore session skips boto3's own set-up (its session and
the S3 transfer injection), measured ~10 ms of the predict function's cold start.

The session's model loader is botocore's, minus two costs measured on predict's cold start
(2026-12-02, dev machine: the DynamoDB and S3 clients 120 -> 68 ms): botocore walks all ~450
service directories it ships to check a service's name before loading its model, and decodes the
model files (~3.5 MB of JSON for those two clients) into OrderedDicts, about 1.5x slower than
into dicts, which keep their order anyway. tests/unit/test_aws_clients.py checks that the models
loaded are botocore's own.

`AWS_ENDPOINT_URL` (read by botocore itself) points every client at the local stand-in in local
mode; nothing here knows which world it runs in.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.loaders import JSONFileLoader, Loader, instance_cache

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=60,
    tcp_keepalive=True,
)

# One session for every client: botocore's loader caches the endpoint and partition data per
# session, so a second client costs a fraction of the first. Creating a session or a client is
# not thread-safe in botocore (using a client is), hence the lock.
_lock = threading.Lock()
_session: botocore.session.Session | None = None
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is not None:
        return found
    global _session
    with _lock:
        found = _clients.get(service)
        if found is None:
            if _session is None:
                _session = create_session()
            found = _clients[service] = _session.create_client(service, config=_CONFIG)
        return found


def create_session() -> botocore.session.Session:
    """A botocore session whose model loader is `_ModelLoader` (search paths as botocore sets them)."""
    session = botocore.session.get_session()
    data_path = session.get_config_variable("data_path")
    extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)] if data_path else None
    session.register_component("data_loader", _ModelLoader(extra_search_paths=extra))
    return session


class _DictJSONFileLoader(JSONFileLoader):
    def _load_file(self, full_path: str, open_method: Any) -> Any:
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as file:
            return json.loads(file.read().decode("utf-8"))


class _ModelLoader(Loader):
    FILE_LOADER_CLASS = _DictJSONFileLoader

    @instance_cache
    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        """botocore's, looking only in the service's own directory for its latest version."""
        if api_version is not None:
            return super().load_service_model(service_name, type_name, api_version)
        try:
            api_version = self.determine_latest_version(service_name, type_name)
        except DataNotFoundError:  # botocore's path raises UnknownServiceError naming the known services
            return super().load_service_model(service_name, type_name)
        model = self.load_data(os.path.join(service_name, api_version, type_name))
        self._extras_processor.process(model, self._find_extras(service_name, type_name, api_version))
        return model


def reset_clients() -> None:
    """Forget the session and its clients: tests and the local runtime change endpoints between runs,
    and an environment restored from a SnapStart snapshot must not share the snapshot's connections
    or credentials with the other restored copies. (The session's loader is not kept either:
    botocore changes the data it loaded in place, e.g. the partitions, so a loader is per session.)"""
    global _session
    with _lock:
        _clients.clear()
        _session = None
