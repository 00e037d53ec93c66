"""What local mode keeps across restarts, in `.local/state/`.

The AWS stand-in's data lives in moto's in-process backends. Rebuilding it through the API would
change every S3 version id (the registry and the dataset ledger point at version ids), so the
backends of the persisted services are saved as they are, with pickle. Pickle is acceptable here
only because the file is local mode's own: written and read by the same user's process, in a
directory only that user can read (0700/0600), never taken from anyone else. Pickled backends do
not survive a moto (or Python) upgrade: the manifest records both versions and a different one is
refused with `--fresh` as the fix, never half-loaded.

Kept: S3 (buckets, every object version, bucket settings), DynamoDB (tables with keys, GSIs, TTL,
items), SQS (queues and their waiting messages: S3 events not yet delivered survive), SNS (topics
and subscriptions), API Gateway (usage plans, API keys and their memberships: keys issued or
revoked through the models API stay so; it is the one record of which keys are valid); the local
secret access key and the template's API key values; alarm states and the last day's metric
datapoints. Not kept: EventBridge rules and the stand-in's alarm and dashboard
declarations (recreated from the template at each start), in-flight invocations.
"""

from __future__ import annotations

import copyreg
import io
import json
import logging
import os
import pickle
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_local.metrics import Datapoint

log = logging.getLogger("mlops_local")

STATE_FORMAT = 1
# (moto service, the backend's region key): S3 is one backend per partition
PERSISTED_SERVICES: tuple[tuple[str, str], ...] = (
    ("s3", "aws"),
    ("dynamodb", ""),
    ("sqs", ""),
    ("sns", ""),
    ("apigateway", ""),
)
METRICS_KEPT_SECONDS = 24 * 3600
SNAPSHOT_PREFIX = "snapshot-"


class StateError(Exception):
    """A saved state local mode refuses to load (another moto or Python, unreadable, incompatible)."""


@dataclass
class Secrets:
    """What clients hold on to: the local secret access key and the API key values by logical id."""

    secret_access_key: str
    api_keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SavedState:
    saved_at: str
    resources: dict[str, dict[str, str]]  # logical id -> {"type", "name"}
    alarm_states: dict[str, str]
    datapoints: list[Datapoint]
    data_bucket: str = ""  # where its contracts are, read before the first synthesis


def runtime_versions() -> dict[str, str]:
    import moto

    return {"moto": moto.__version__, "python": f"{sys.version_info.major}.{sys.version_info.minor}"}


class RequestGate:
    """Readers-writer gate around the stand-in's request handling: requests share it; a snapshot
    holds it alone, so it never sees a request half applied. Writer first: a waiting snapshot stops
    new requests from entering, then waits for the running ones (SQS long polls included)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._writer = False
        self.changes = 0  # requests that may have changed persisted data (a periodic save skips when none)

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def gated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            with self._condition:
                while self._writer:
                    self._condition.wait()
                self._active += 1
                if _may_change_persisted_data(environ):
                    self.changes += 1
            try:
                # materialised inside the gate: moto builds whole bodies, this makes sure of it
                return list(app(environ, start_response))
            finally:
                with self._condition:
                    self._active -= 1
                    self._condition.notify_all()

        return gated

    @contextmanager
    def exclusive(self, timeout: float) -> Iterator[None]:
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._writer:
                if not self._condition.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError("another snapshot holds the stand-in")
            self._writer = True
            try:
                while self._active:
                    if not self._condition.wait(max(0.0, deadline - time.monotonic())):
                        raise TimeoutError(f"{self._active} requests still running")
            except TimeoutError:
                self._writer = False
                self._condition.notify_all()
                raise
        try:
            yield
        finally:
            with self._condition:
                self._writer = False
                self._condition.notify_all()


_SIGNED_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_READS = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "Receive", "Head")


def _may_change_persisted_data(environ: dict[str, Any]) -> bool:
    """False for reads and for services not persisted (the signature's scope names the service);
    True when unsure (unsigned, form-encoded actions)."""
    if environ.get("REQUEST_METHOD") in {"GET", "HEAD", "OPTIONS"}:
        return False
    signed = _SIGNED_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if signed and signed.group(1) not in {service for service, _ in PERSISTED_SERVICES}:
        return False
    operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
    return not operation.startswith(_READS)


class LocalState:
    """The state directory: `secrets.json`, and `manifest.json` naming the current `snapshot-<ns>/`
    (one `<service>.pickle` per kept service, `metrics.json`)."""

    def __init__(self, directory: Path, *, account: str, region: str) -> None:
        self.directory = directory
        self.account = account
        self.region = region
        self._save_lock = threading.Lock()
        self._owner: Any = None  # the open lock file while this process uses the state

    def acquire(self) -> None:
        """Claim the state for this process: two local modes saving one state would overwrite each other."""
        import fcntl

        self.directory.parent.mkdir(parents=True, exist_ok=True)
        handle = (self.directory.parent / "state.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StateError(
                f"{self.directory} is in use by another local mode (pid {holder}); stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._owner = handle

    def release(self) -> None:
        if self._owner is not None:
            self._owner.close()  # closing drops the lock
            self._owner = None

    @property
    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"

    @property
    def secrets_path(self) -> Path:
        return self.directory / "secrets.json"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def discard(self) -> bool:
        """Delete the saved state; True when there was one."""
        existed = self.directory.exists()
        shutil.rmtree(self.directory, ignore_errors=True)
        return existed

    # --- secrets ------------------------------------------------------------------------------

    def load_secrets(self) -> Secrets | None:
        if not self.secrets_path.is_file():
            return None
        raw = json.loads(self.secrets_path.read_text())
        return Secrets(raw["secret_access_key"], dict(raw.get("api_keys", {})))

    def save_secrets(self, secrets: Secrets) -> None:
        self._ensure_directory()
        _write_private(self.secrets_path, json.dumps(asdict(secrets), indent=2).encode())

    # --- backends -----------------------------------------------------------------------------

    def check_compatible(self) -> dict[str, Any]:
        """The manifest, when this moto and Python can load the state; else StateError naming the fix."""
        self._check_private()
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as error:
            raise StateError(f"{self.manifest_path} is unreadable ({error}); `--fresh` starts over") from error
        if manifest.get("format") != STATE_FORMAT:
            raise StateError(
                f"{self.directory} holds state format {manifest.get('format')}, this local mode reads "
                f"{STATE_FORMAT}: start with `mlops local up --fresh` (discards it)"
            )
        saved, running = manifest.get("versions", {}), runtime_versions()
        if saved != running:
            raise StateError(
                f"{self.directory} was saved by moto {saved.get('moto')} on Python {saved.get('python')}; "
                f"this is moto {running['moto']} on Python {running['python']}, which cannot load it safely. "
                "Start with `mlops local up --fresh` (discards the saved data), or reinstall "
                f"moto {saved.get('moto')} to get it back"
            )
        return dict(manifest)

    def restore(self) -> SavedState | None:
        """Install the saved backends into the (just reset) stand-in; None when nothing was saved."""
        if not self.exists():
            return None
        manifest = self.check_compatible()
        from moto.backends import get_backend

        snapshot = self.directory / str(manifest.get("snapshot", ""))
        for service, region in PERSISTED_SERVICES:
            path = snapshot / f"{service}.pickle"
            if not path.is_file():
                continue
            backend = pickle.loads(path.read_bytes())  # noqa: S301 - our own file (module docstring)
            get_backend(service)[self.account][region or self.region] = backend  # type: ignore[index]
            if service == "s3":
                _register_bucket_names(backend, self.account)
        points = [_datapoint(raw) for raw in _read_json(snapshot / "metrics.json", [])]
        return SavedState(
            saved_at=str(manifest.get("saved_at")),
            resources=dict(manifest.get("resources", {})),
            alarm_states=dict(manifest.get("alarm_states", {})),
            datapoints=points,
            data_bucket=str(manifest.get("data_bucket", "")),
        )

    def save(
        self,
        gate: RequestGate,
        *,
        resources: dict[str, dict[str, str]],
        alarm_states: dict[str, str],
        datapoints: list[Datapoint],
        data_bucket: str = "",
        timeout: float = 30.0,
    ) -> dict[str, int]:
        """Write the persisted backends (one consistent snapshot) into a new snapshot directory, then the
        manifest naming it, then drop older snapshots; returns bytes per file. Until the manifest is
        replaced (atomically) it names the previous snapshot, so a crash mid-save keeps that one whole."""
        from moto.backends import get_backend

        with self._save_lock:
            self._ensure_directory()
            with gate.exclusive(timeout):
                blobs = {
                    service: _dumps(get_backend(service)[self.account][region or self.region])  # type: ignore[index]
                    for service, region in PERSISTED_SERVICES
                }
            snapshot = f"{SNAPSHOT_PREFIX}{time.time_ns()}"
            (self.directory / snapshot).mkdir(mode=0o700)
            sizes = {}
            for service, blob in blobs.items():
                _write_private(self.directory / snapshot / f"{service}.pickle", blob)
                sizes[service] = len(blob)
            now = time.time()
            kept = [
                asdict(p) | {"dimensions": sorted(p.dimensions)}
                for p in datapoints
                if p.timestamp > now - METRICS_KEPT_SECONDS
            ]
            metrics = json.dumps(kept).encode()
            _write_private(self.directory / snapshot / "metrics.json", metrics)
            sizes["metrics"] = len(metrics)
            manifest = {
                "format": STATE_FORMAT,
                "versions": runtime_versions(),
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "resources": resources,
                "alarm_states": alarm_states,
                "data_bucket": data_bucket,
                "snapshot": snapshot,
            }
            _write_private(self.manifest_path, json.dumps(manifest, indent=1).encode())
            for older in self.directory.glob(f"{SNAPSHOT_PREFIX}*"):
                if older.name != snapshot:
                    shutil.rmtree(older, ignore_errors=True)
            return sizes

    def _check_private(self) -> None:
        """Unpickling runs code: only files this user owns and nobody else can write are loaded."""
        for path in [self.directory, *self.directory.rglob("*")]:
            info = path.stat()
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                raise StateError(
                    f"{path} is not private to this user (owner {info.st_uid}, mode {info.st_mode & 0o777:o}); "
                    "local mode loads only its own state: fix the ownership/permissions, or start with `--fresh`"
                )

    def _ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)


# --- pickling moto's backends ---------------------------------------------------------------------


def _dumps(backend: Any) -> bytes:
    """Pickle a moto backend: locks are recreated empty on load, S3's versioned key store keeps every
    version (its `items()` yields only the latest, which plain pickling would keep)."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict
    from moto.s3.utils import _VersionedKeyStore

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    table = copyreg.dispatch_table.copy()
    table[threading.Condition] = lambda _: (threading.Condition, ())
    table[type(threading.RLock())] = lambda _: (threading.RLock, ())
    table[type(threading.Lock())] = lambda _: (threading.Lock, ())
    table[_VersionedKeyStore] = lambda store: (
        _versioned_key_store,
        ({key: dict.__getitem__(store, key) for key in dict.keys(store)},),
    )
    # an item's attributes: rebuilt in one update, not one size-checked __setitem__ per attribute (10x faster)
    table[LimitedSizeDict] = lambda attributes: (LimitedSizeDict, (dict(attributes),))
    pickler.dispatch_table = table  # type: ignore[assignment]
    pickler.dump(backend)
    return buffer.getvalue()


def _versioned_key_store(versions: dict[str, list[Any]]) -> Any:
    from moto.s3.utils import _VersionedKeyStore

    store = _VersionedKeyStore()
    for key, keys in versions.items():
        dict.__setitem__(store, key, keys)
    return store


def _register_bucket_names(backend: Any, account: str) -> None:
    """moto keeps a process-wide bucket name -> account map beside the backends (reset clears it)."""
    from moto.s3.models import s3_backends

    for name in backend.buckets:
        s3_backends.bucket_accounts[name] = (backend.partition, account)


def _datapoint(raw: dict[str, Any]) -> Datapoint:
    return Datapoint(
        raw["namespace"],
        raw["name"],
        frozenset((str(k), str(v)) for k, v in raw["dimensions"]),
        float(raw["value"]),
        float(raw["timestamp"]),
        str(raw.get("unit", "None")),
    )


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def _write_private(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
