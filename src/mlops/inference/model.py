"""Production models, verified and loaded once per warm container.

`load_model` fetches an artifact, checks its SHA-256 against the registry's digest BEFORE handing
the bytes to onnxruntime (a mismatch raises IntegrityError and nothing is loaded), then checks
that the graph's inputs are the contract's features. `ModelCache` keeps loaded models keyed by
(name, version) and re-reads the registry's production pointer at most every `refresh_seconds`,
so a promotion or a rollback reaches warm containers without a redeploy; a version that fails to
load is retried with backoff while the last good one answers, and a version the registry has not
confirmed for `stale_seconds` is no longer served. A request may pin a version or a named alias:
each pin is a pointer of its own, refreshed the same way (an alias move is followed within
`refresh_seconds`), and while a canary is set a declared share of the production requests is
answered by it (chosen at random per request: `choose`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from math import isfinite
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from mlops.contract_rules import FeatureType, is_valid_model_name
from mlops.errors import (
    ConflictError,
    IntegrityError,
    MlopsError,
    ModelNotFoundError,
    ModelUnavailableError,
    NotFoundError,
    PredictionError,
)
from mlops.inference.records import Columns, RecordValidator
from mlops.inference.served import LoadableVersion, ServingContract
from mlops.ports import ObjectStore
from mlops.training.onnx_io import META_CLASSES, OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_VALUE

log = logging.getLogger(__name__)

# onnx tensor type -> numpy dtype of the feed; anything else is not something a contract can feed
_FEED_DTYPES: dict[str, Any] = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(string)": object}


class ProductionRegistry(Protocol):
    """The registry reads serving needs. `production` may carry a `canary` (mlops.inference.served)."""

    def production(self, name: str) -> LoadableVersion | None: ...
    def pinned(self, name: str, version: int) -> LoadableVersion: ...
    def aliased(self, name: str, alias: str) -> LoadableVersion: ...


# which variant answered a request (predict's metrics carry it as the `variant` dimension)
CHAMPION = "champion"
CANARY = "canary"
PINNED = "pinned"


@dataclass(frozen=True)
class LoadedModel:
    """One verified model version, ready to answer."""

    name: str
    version: int
    contract: ServingContract
    session: ort.InferenceSession
    validator: RecordValidator
    classes: tuple[str, ...]  # probability column order (classification)
    capture_sample_rate: float
    _feed: tuple[tuple[str, Any], ...] = field(repr=False)
    _output_names: list[str] = field(repr=False)
    _buffers: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)

    @property
    def classification(self) -> bool:
        return self.contract.classification

    def feed(self, columns: Columns) -> dict[str, np.ndarray]:
        """ONNX feed arrays, [N, 1] per graph input, in the dtype the graph declares.

        The arrays are this thread's, refilled in place while the batch size stays the same, so they
        are valid until the thread's next call: onnxruntime runs a one-record batch ~5 us faster on
        arrays it ran before than on new ones (measured on the churn model, a ~40 us run)."""
        buffers = self._buffers
        rows = len(columns)
        if getattr(buffers, "rows", -1) != rows:
            buffers.arrays = [np.empty((rows, 1), dtype=dtype) for _, dtype in self._feed]
            buffers.feed = {name: array for (name, _), array in zip(self._feed, buffers.arrays, strict=True)}
            buffers.rows = rows
        for array, values in zip(buffers.arrays, columns.values, strict=True):
            array[:, 0] = values
        return buffers.feed

    def predict_columns(self, columns: Columns) -> list[dict[str, Any]]:
        """Run the graph on a validated batch; one answer per record, in order.

        Raises PredictionError when the model answers NaN or +-inf for a record (JSON cannot carry it).
        """
        outputs = self.session.run(self._output_names, self.feed(columns))
        if not self.classification:
            values = outputs[0].reshape(-1).tolist()
            # one sum is finite iff every term is (a float64 overflow only sends us to the exact scan)
            if not isfinite(sum(values)):
                _check_finite(self, values)
            return [{"value": value} for value in values]
        classes = self.classes
        probabilities = outputs[1].tolist()
        if not isfinite(sum(map(sum, probabilities))):
            _check_finite(self, [sum(row) for row in probabilities])
        return [
            {
                "label": label if type(label) is str else str(label),
                "probabilities": dict(zip(classes, row, strict=True)),
            }
            for label, row in zip(outputs[0].tolist(), probabilities, strict=True)
        ]

    def outputs(self, columns: Columns) -> list[np.ndarray]:
        """The graph's raw outputs for a validated batch: [label, probabilities] or [value] (batch
        scoring reads the arrays whole; `predict_columns` turns them into one answer per record)."""
        return self.session.run(self._output_names, self.feed(columns))  # type: ignore[no-any-return]

    def predict(self, records: Any) -> list[dict[str, Any]]:
        """Validate then predict (RecordError/BadRequestError for bad input)."""
        return self.predict_columns(self.validator.validate(records))


def _check_finite(model: LoadedModel, values: list[float]) -> None:
    """Raise PredictionError naming the first record whose answer is not finite."""
    for index, value in enumerate(values):
        if not isfinite(value):
            log.warning("%s v%s produced %s for records[%d]", model.name, model.version, value, index)
            raise PredictionError(f"the model produced a non-finite value for records[{index}]")


def verify_artifact(data: bytes, version: LoadableVersion) -> None:
    """Raise IntegrityError unless `data` is exactly the artifact the registry recorded."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != version.artifact.sha256 or len(data) != version.artifact.size_bytes:
        raise IntegrityError(
            f"artifact of {version.model_name} v{version.version} (s3://{version.artifact.bucket}/"
            f"{version.artifact.key}) does not match its registered digest; refusing to load it"
        )


def load_model(
    version: LoadableVersion,
    store: ObjectStore,
    *,
    max_records: int = 1_000,
    session_options: ort.SessionOptions | None = None,
) -> LoadedModel:
    """Fetch, verify (before loading) and load one model version. Raises IntegrityError."""
    try:
        data = store.get_bytes(version.artifact.bucket, version.artifact.key)
    except NotFoundError:
        raise IntegrityError(
            f"artifact of {version.model_name} v{version.version} is missing: s3://{version.artifact.bucket}/"
            f"{version.artifact.key}"
        ) from None
    verify_artifact(data, version)
    contract = ServingContract.from_document(
        version.contract, source=f"{version.model_name} v{version.version} contract"
    )
    try:
        session = ort.InferenceSession(data, session_options or default_session_options(), providers=_PROVIDERS)
    except Exception as error:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise IntegrityError(f"{version.model_name} v{version.version}: onnxruntime cannot load it ({error})") from None
    feed = _feed_plan(session, contract, version)
    # the validator reads records by column name
    float64_inputs = {
        rule.name for rule, (_, dtype) in zip(contract.features, feed, strict=True) if dtype is np.float64
    }
    return LoadedModel(
        name=version.model_name,
        version=version.version,
        contract=contract,
        session=session,
        validator=RecordValidator(contract, max_records, float64_inputs=float64_inputs),
        classes=_classes(session, contract),
        capture_sample_rate=contract.capture_sample_rate,
        _feed=feed,
        _output_names=_output_names(session, contract, version),
    )


def default_session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    # one request at a time per Lambda container: thread pools only add wake-up latency
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


_PROVIDERS = ["CPUExecutionProvider"]


def _feed_plan(
    session: ort.InferenceSession, contract: ServingContract, version: LoadableVersion
) -> tuple[tuple[str, Any], ...]:
    """(graph input name, dtype) per feature, in contract order."""
    inputs = {item.name: item.type for item in session.get_inputs()}
    wanted = [feature.input_name for feature in contract.features]
    if set(inputs) != set(wanted):
        raise IntegrityError(
            f"{version.model_name} v{version.version}: graph inputs {sorted(inputs)} are not the contract's "
            f"features' inputs {sorted(wanted)}"
        )
    plan = []
    for feature, name in zip(contract.features, wanted, strict=True):
        dtype = _FEED_DTYPES.get(inputs[name])
        is_text = feature.type is FeatureType.CATEGORICAL
        if dtype is None or (dtype is object) != is_text:
            raise IntegrityError(
                f"{version.model_name} v{version.version}: input {name} ({feature.name!r}) is {inputs[name]}, "
                f"which a {feature.type.value} feature cannot feed"
            )
        plan.append((name, dtype))
    return tuple(plan)


def _output_names(session: ort.InferenceSession, contract: ServingContract, version: LoadableVersion) -> list[str]:
    names = [item.name for item in session.get_outputs()]
    wanted = [OUTPUT_LABEL, OUTPUT_PROBABILITIES] if contract.classification else [OUTPUT_VALUE]
    if not set(wanted) <= set(names):
        raise IntegrityError(f"{version.model_name} v{version.version}: outputs {names} lack {wanted}")
    return wanted


def _classes(session: ort.InferenceSession, contract: ServingContract) -> tuple[str, ...]:
    declared = session.get_modelmeta().custom_metadata_map.get(META_CLASSES)
    if declared:
        return tuple(str(c) for c in json.loads(declared))
    return contract.classes


@dataclass(frozen=True)
class ModelLoadFailure:
    """A production version this container could not load (reported once per attempt)."""

    model: str
    version: int  # the registry's production version
    serving_version: int | None  # what the container answers instead; None: 503
    error: str  # "<ErrorType>: <message>"
    failures: int  # consecutive failed attempts at this version
    retry_in_seconds: float


@dataclass(frozen=True)
class RegistryUnreachable:
    """A production-pointer lookup failed (reported once per lookup)."""

    model: str
    serving_version: int | None  # the cached version still answered; None when refused or none cached
    unconfirmed_seconds: float | None  # since the registry last confirmed the pointer; None: never
    refused: bool  # True: requests get 503 (past the stale limit, or nothing cached)


CacheEvent = ModelLoadFailure | RegistryUnreachable


@dataclass(frozen=True)
class _Refusal:
    """An error `get` raises from memory; built anew on every request (one message, no growing traceback)."""

    kind: type[MlopsError]
    message: str

    def error(self) -> MlopsError:
        return self.kind(self.message)


def _unknown_model(name: str) -> _Refusal:
    return _Refusal(ModelNotFoundError, f"no model named {name!r}")


def _no_production_version(name: str) -> _Refusal:
    return _Refusal(ModelNotFoundError, f"model {name!r} has no production version")


@dataclass(frozen=True)
class _FailedLoad:
    version: int
    failures: int
    retry_at: float
    refusal: _Refusal  # the answer while there is nothing to fall back on


@dataclass
class _Pointer:
    recheck_at: float  # `get` answers from memory until then, and asks the registry after
    confirmed_at: float  # the last time the registry answered
    model: LoadedModel | None  # the answer; None: raise `refusal`
    refusal: _Refusal | None = None
    last_good: int | None = None  # the version last served, resumed from memory after an outage
    failed: _FailedLoad | None = None  # the production version that failed to load, and when to retry
    variant: str | None = None  # PINNED for a pin; production: CHAMPION while a canary runs, else None
    canary: LoadedModel | None = None  # production pointers only: the challenger, verified and loaded
    canary_share: float = 0.0


def _pin_key(name: str, version: int | None, alias: str | None) -> str:
    """The pointer key of a pinned request (model names have neither '@' nor '#')."""
    return f"{name}@{version}" if version is not None else f"{name}#{alias}"


def _name_of(key: str) -> str:
    return key.partition("@")[0].partition("#")[0]


class ModelCache:
    """Production models per name, loaded once per container and refreshed on a timer.

    `get(name)` answers from memory until the pointer's recheck time (at most `refresh_seconds`);
    then it asks the registry once, loading a new version if the pointer moved (a rollback to a
    version still in memory is instant).

    Degraded modes, each reported through `drain_events`:
    - a new production version that fails to load (digest, graph, S3 error) is retried with
      exponential backoff (`load_retry_seconds` doubling up to `load_retry_max_seconds`) while the
      last good version keeps answering; with nothing to fall back on, 503 until a retry succeeds;
    - while the registry is unreachable the cached version keeps answering for `stale_seconds`
      after the registry last confirmed it, then 503 (ModelUnavailableError): it may have been
      rolled back for a reason this container cannot learn.
    Raises ModelNotFoundError (404) when the model is unknown or has no production version.
    """

    def __init__(
        self,
        registry: ProductionRegistry,
        store: ObjectStore,
        *,
        refresh_seconds: float = 30.0,
        stale_seconds: float = 300.0,
        load_retry_seconds: float = 5.0,
        load_retry_max_seconds: float = 300.0,
        max_records: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
        loader: Callable[[LoadableVersion], LoadedModel] | None = None,
        versions_per_model: int = 2,
        max_names: int = 1_024,
        max_pins: int = 8,
        random_share: Callable[[], float] = random.random,
    ) -> None:
        self._registry = registry
        self._store = store
        self.refresh_seconds = refresh_seconds
        self.stale_seconds = stale_seconds
        self.load_retry_seconds = load_retry_seconds
        self.load_retry_max_seconds = load_retry_max_seconds
        self._clock = clock
        self._loader = loader or (lambda version: load_model(version, store, max_records=max_records))
        self._versions_per_model = versions_per_model
        self._max_names = max_names
        self._max_pins = max_pins  # pinned versions and aliases held at once (each can hold a model)
        self._random = random_share
        self._pointers: dict[str, _Pointer] = {}
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self._events: list[CacheEvent] = []
        self._lock = threading.Lock()

    def get(self, name: str) -> LoadedModel:
        """The production version (the champion, whatever the canary)."""
        pointer = self._pointers.get(name)
        if pointer is not None and self._clock() < pointer.recheck_at:
            if pointer.model is not None:
                return pointer.model
            raise pointer.refusal.error()  # type: ignore[union-attr]  # model None <=> refusal set
        with self._lock:
            return self._refresh(name, name, pointer, lambda: self._registry.production(name))

    def choose(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> tuple[LoadedModel, str | None]:
        """The model that answers a request and its variant: the pinned version or alias's version
        (`pinned`), else the canary for its share of the requests (`canary`) and production for the
        rest (`champion`); production alone while no canary runs (None). Raises as `get`; a pin of an unknown version or alias is NotFoundError (404),
        of a rejected or archived version ConflictError (409)."""
        key = name if version is None and alias is None else _pin_key(name, version, alias)
        pointer = self._pointers.get(key)
        if pointer is None or self._clock() >= pointer.recheck_at:
            with self._lock:
                self._refresh(key, name, pointer, self._lookup(name, version, alias))
            pointer = self._pointers[key]
        model = pointer.model
        if model is None:
            raise pointer.refusal.error()  # type: ignore[union-attr]  # model None <=> refusal set
        if pointer.canary is not None:
            return (pointer.canary, CANARY) if self._random() < pointer.canary_share else (model, CHAMPION)
        return model, pointer.variant

    def _lookup(self, name: str, version: int | None, alias: str | None) -> Callable[[], LoadableVersion | None]:
        if version is not None:
            return lambda: self._registry.pinned(name, version)
        if alias is not None:
            return lambda: self._registry.aliased(name, alias)
        return lambda: self._registry.production(name)

    def forget_production_pointers(self) -> None:
        """Ask the registry again at the next request for every model (after a SnapStart restore).

        The pointers' times come from the snapshot's monotonic clock and their answers may be hours
        old. Loaded models stay: a version still in production is served without fetching it again.
        """
        with self._lock:
            self._pointers.clear()

    def loaded_versions(self) -> list[tuple[str, int]]:
        return sorted(self._models)

    def drain_events(self) -> list[CacheEvent]:
        """The load failures and registry outages since the last call (call after each request)."""
        if not self._events:  # the warm path: no lock
            return []
        with self._lock:
            events, self._events = self._events, []
        return events

    def _refresh(
        self, key: str, name: str, pointer: _Pointer | None, lookup: Callable[[], LoadableVersion | None]
    ) -> LoadedModel:
        """Ask the registry for what `key` (production, or a pin of `name`) serves; refuse or load."""
        now = self._clock()
        if not is_valid_model_name(name):
            raise _unknown_model(name).error()
        try:
            production = lookup()
        except NotFoundError as error:
            return self._refuse(key, now, _unknown_model(name) if key == name else _Refusal(type(error), str(error)))
        except ConflictError as error:  # a pin of a version that no longer serves
            return self._refuse(key, now, _Refusal(type(error), str(error)))
        except MlopsError:
            raise
        except Exception:
            log.warning("registry lookup for %s failed", key, exc_info=True)
            return self._unconfirmed(key, name, pointer, now)
        if production is None:
            return self._refuse(key, now, _no_production_version(name))
        return self._serve(key, name, pointer, production, now)

    def _refuse(self, key: str, now: float, refusal: _Refusal) -> LoadedModel:
        self._remember(key, _Pointer(now + self.refresh_seconds, now, None, refusal))
        raise refusal.error()

    def _serve(
        self, key: str, name: str, pointer: _Pointer | None, production: LoadableVersion, now: float
    ) -> LoadedModel:
        model = self._models.get((name, production.version))
        if model is None:
            failed = pointer.failed if pointer is not None else None
            if failed is None or failed.version != production.version or now >= failed.retry_at:
                try:
                    model = self._loader(production)
                except Exception as error:
                    failed = self._load_failed(name, pointer, production, now, error)
            if model is None:
                return self._fall_back(key, name, pointer, now, failed)  # type: ignore[arg-type]
            self._models[(name, production.version)] = model
            self._evict_old_versions(name, keep=production.version)
        fresh = _Pointer(
            self._recheck_at(now, now),
            now,
            model,
            last_good=production.version,
            variant=None if key == name else PINNED,
        )
        canary = getattr(production, "canary", None)
        if canary is not None and key == name:
            fresh.canary = self._canary(name, canary.version, model)
            fresh.canary_share = canary.share if fresh.canary is not None else 0.0
        self._remember(key, fresh)
        return model

    def _canary(self, name: str, version: LoadableVersion, champion: LoadedModel) -> LoadedModel | None:
        """The canary's model, verified and loaded like production; None (the champion answers all
        requests) when it cannot be loaded: reported as a load failure, retried at the next refresh."""
        model = self._models.get((name, version.version))
        if model is not None:
            return model
        try:
            model = self._loader(version)
        except Exception as error:
            log.warning("cannot load canary %s v%s; the champion answers", name, version.version, exc_info=True)
            self._events.append(
                ModelLoadFailure(
                    name, version.version, champion.version, f"{type(error).__name__}: {error}", 1, self.refresh_seconds
                )
            )
            return None
        self._models[(name, version.version)] = model
        return model

    def _load_failed(
        self, name: str, pointer: _Pointer | None, production: LoadableVersion, now: float, error: Exception
    ) -> _FailedLoad:
        previous = pointer.failed if pointer is not None else None
        failures = previous.failures + 1 if previous is not None and previous.version == production.version else 1
        # 2**30 caps the exponent far beyond any sane maximum, before the float could overflow
        delay = min(self.load_retry_seconds * 2 ** min(failures - 1, 30), self.load_retry_max_seconds)
        if isinstance(error, MlopsError):
            refusal = _Refusal(type(error), str(error))
        else:  # an S3 or runtime error: its text may be long or internal, its type is enough for a client
            refusal = _Refusal(
                ModelUnavailableError,
                f"model {name!r} v{production.version} cannot be loaded ({type(error).__name__}); "
                "the function retries with backoff",
            )
        fallback = self._last_good(name, pointer)
        serving = fallback.version if fallback is not None else None
        log.warning(
            "cannot load %s v%s (attempt %d, retry in %.0f s); serving %s",
            name,
            production.version,
            failures,
            delay,
            f"v{serving}" if serving is not None else "nothing (503)",
            exc_info=not isinstance(error, MlopsError),
        )
        self._events.append(
            ModelLoadFailure(name, production.version, serving, f"{type(error).__name__}: {error}", failures, delay)
        )
        return _FailedLoad(production.version, failures, now + delay, refusal)

    def _fall_back(self, key: str, name: str, pointer: _Pointer | None, now: float, failed: _FailedLoad) -> LoadedModel:
        """Answer with the last good version while `failed` waits for its retry; 503 without one."""
        fallback = self._last_good(name, pointer)
        if fallback is None:
            self._remember(key, _Pointer(now + self.refresh_seconds, now, None, failed.refusal, failed=failed))
            raise failed.refusal.error()
        variant = None if key == name else PINNED
        self._remember(
            key,
            _Pointer(
                self._recheck_at(now, now), now, fallback, last_good=fallback.version, failed=failed, variant=variant
            ),
        )
        return fallback

    def _unconfirmed(self, key: str, name: str, pointer: _Pointer | None, now: float) -> LoadedModel:
        """The registry cannot be reached: the cached version within the stale limit, else 503."""
        cached = self._last_good(name, pointer)
        if pointer is None or cached is None:
            self._events.append(RegistryUnreachable(name, None, None, refused=True))
            refusal = _Refusal(
                ModelUnavailableError,
                f"the registry is unreachable; cannot find the production version of model {name!r}",
            )
            self._remember(key, _Pointer(now + self.refresh_seconds, now, None, refusal))
            raise refusal.error()
        unconfirmed = now - pointer.confirmed_at
        if unconfirmed >= self.stale_seconds:
            self._events.append(RegistryUnreachable(name, None, unconfirmed, refused=True))
            refusal = _Refusal(
                ModelUnavailableError,
                f"cannot confirm the production version of model {name!r}: the registry has been unreachable "
                f"for {unconfirmed:.0f} s (limit {self.stale_seconds:.0f} s)",
            )
            pointer.recheck_at, pointer.model, pointer.refusal = now + self.refresh_seconds, None, refusal
            raise refusal.error()
        self._events.append(RegistryUnreachable(name, cached.version, unconfirmed, refused=False))
        pointer.recheck_at = self._recheck_at(now, pointer.confirmed_at)
        pointer.model, pointer.refusal = cached, None
        return cached

    def _recheck_at(self, now: float, confirmed_at: float) -> float:
        # never answer from memory past the stale limit
        return min(now + self.refresh_seconds, confirmed_at + self.stale_seconds)

    def _last_good(self, name: str, pointer: _Pointer | None) -> LoadedModel | None:
        if pointer is None or pointer.last_good is None:
            return None
        return self._models.get((name, pointer.last_good))

    def _remember(self, key: str, pointer: _Pointer) -> None:
        if key not in self._pointers and len(self._pointers) >= self._max_names:
            # bound memory against requests for many unknown names: forget the negative entries
            for stale in [n for n, p in self._pointers.items() if p.model is None and p.last_good is None]:
                del self._pointers[stale]
        if key not in self._pointers and _name_of(key) != key:
            pins = [k for k in self._pointers if _name_of(k) != k]
            for oldest in pins[: max(len(pins) - self._max_pins + 1, 0)]:  # bound the models pins hold
                del self._pointers[oldest]
        self._pointers[key] = pointer

    def _evict_old_versions(self, name: str, keep: int) -> None:
        """Keep what any pointer of `name` serves (production, canary, pins, last good) and at most
        `versions_per_model` versions in all."""
        in_use = {keep}
        for key, pointer in self._pointers.items():
            if _name_of(key) == name:
                in_use.update(m.version for m in (pointer.model, pointer.canary) if m is not None)
                if pointer.last_good is not None:
                    in_use.add(pointer.last_good)
        spare = max(self._versions_per_model - len(in_use), 0)
        versions = sorted((v for n, v in self._models if n == name and v not in in_use), reverse=True)
        for version in versions[spare:]:
            del self._models[(name, version)]
