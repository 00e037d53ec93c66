"""Production models, verified and loaded once per warm container.

`load_model` fetches an artifact, checks its SHA-256 against the registry's digest BEFORE handing
the bytes to onnxruntime (a mismatch raises IntegrityError and nothing is loaded), then checks
that the graph's inputs are the contract's features. `ModelCache` keeps loaded models keyed by
(name, version) and re-reads the registry's production pointer at most every `refresh_seconds`,
so a promotion or a rollback reaches warm containers without a redeploy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from math import isfinite
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from mlops.contract_rules import FeatureType, is_valid_model_name
from mlops.errors import IntegrityError, MlopsError, ModelNotFoundError, NotFoundError, PredictionError
from mlops.inference.records import Columns, RecordValidator
from mlops.inference.served import LoadableVersion, ServingContract
from mlops.ports import ObjectStore
from mlops.training.onnx_io import META_CLASSES, OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_VALUE

log = logging.getLogger(__name__)

# onnx tensor type -> numpy dtype of the feed; anything else is not something a contract can feed
_FEED_DTYPES: dict[str, Any] = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(string)": object}


class ProductionRegistry(Protocol):
    def production(self, name: str) -> LoadableVersion | None: ...


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

    @property
    def classification(self) -> bool:
        return self.contract.classification

    def feed(self, columns: Columns) -> dict[str, np.ndarray]:
        """ONNX feed arrays, [N, 1] per graph input, in the dtype the graph declares."""
        feed = {}
        for (name, dtype), values in zip(self._feed, columns.values, strict=True):
            feed[name] = np.array(values, dtype=dtype).reshape(-1, 1)
        return feed

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
    float64_inputs = {name for name, dtype in feed if dtype is np.float64}
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
    inputs = {item.name: item.type for item in session.get_inputs()}
    if set(inputs) != set(contract.feature_names):
        raise IntegrityError(
            f"{version.model_name} v{version.version}: graph inputs {sorted(inputs)} are not the contract's "
            f"features {sorted(contract.feature_names)}"
        )
    plan = []
    for feature in contract.features:
        dtype = _FEED_DTYPES.get(inputs[feature.name])
        is_text = feature.type is FeatureType.CATEGORICAL
        if dtype is None or (dtype is object) != is_text:
            raise IntegrityError(
                f"{version.model_name} v{version.version}: input {feature.name} is {inputs[feature.name]}, "
                f"which a {feature.type.value} feature cannot feed"
            )
        plan.append((feature.name, dtype))
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


@dataclass
class _Pointer:
    version: int | None  # None: no production version (cached too, so unknown names stay cheap)
    checked_at: float


class ModelCache:
    """Production models per name, loaded once per container and refreshed on a timer.

    `get(name)` answers from memory while the cached production pointer is younger than
    `refresh_seconds`; after that it asks the registry once, loading a new version if the pointer
    moved (a rollback to a version still in memory is instant). If the registry cannot be reached
    the container keeps serving the version it has. Raises ModelNotFoundError (404) when the model
    is unknown or has no production version, IntegrityError (503) for a tampered artifact.
    """

    def __init__(
        self,
        registry: ProductionRegistry,
        store: ObjectStore,
        *,
        refresh_seconds: float = 30.0,
        max_records: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
        loader: Callable[[LoadableVersion], LoadedModel] | None = None,
        versions_per_model: int = 2,
        max_names: int = 1_024,
    ) -> None:
        self._registry = registry
        self._store = store
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._loader = loader or (lambda version: load_model(version, store, max_records=max_records))
        self._versions_per_model = versions_per_model
        self._max_names = max_names
        self._pointers: dict[str, _Pointer] = {}
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> LoadedModel:
        pointer = self._pointers.get(name)
        if pointer is not None and self._clock() - pointer.checked_at < self.refresh_seconds:
            if pointer.version is None:
                raise ModelNotFoundError(f"model {name!r} has no production version")
            return self._models[(name, pointer.version)]
        with self._lock:
            return self._refresh(name, pointer)

    def loaded_versions(self) -> list[tuple[str, int]]:
        return sorted(self._models)

    def _refresh(self, name: str, pointer: _Pointer | None) -> LoadedModel:
        now = self._clock()
        if not is_valid_model_name(name):
            raise ModelNotFoundError(f"no model named {name!r}")
        try:
            production = self._registry.production(name)
        except NotFoundError:
            self._remember(name, _Pointer(None, now))
            raise ModelNotFoundError(f"no model named {name!r}") from None
        except MlopsError:
            raise
        except Exception:
            if pointer is None or pointer.version is None:
                raise
            # the registry is unreachable: keep serving what this container verified earlier
            log.warning("registry lookup for %s failed; serving cached v%s", name, pointer.version, exc_info=True)
            pointer.checked_at = now
            return self._models[(name, pointer.version)]
        if production is None:
            self._remember(name, _Pointer(None, now))
            raise ModelNotFoundError(f"model {name!r} has no production version")
        key = (name, production.version)
        model = self._models.get(key)
        if model is None:
            model = self._loader(production)  # IntegrityError propagates: nothing is cached
            self._models[key] = model
            self._evict_old_versions(name, keep=production.version)
        self._remember(name, _Pointer(production.version, now))
        return model

    def _remember(self, name: str, pointer: _Pointer) -> None:
        if name not in self._pointers and len(self._pointers) >= self._max_names:
            # bound memory against requests for many unknown names: forget the negative entries
            for stale in [n for n, p in self._pointers.items() if p.version is None]:
                del self._pointers[stale]
        self._pointers[name] = pointer

    def _evict_old_versions(self, name: str, keep: int) -> None:
        versions = sorted((v for n, v in self._models if n == name and v != keep), reverse=True)
        for version in versions[self._versions_per_model - 1 :]:
            del self._models[(name, version)]
