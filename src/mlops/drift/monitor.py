"""Scheduled drift detection: captured traffic since the last run vs the training baseline.

Per model with a production version:
1. read `monitoring/<model>/state.json` (the last capture key processed; absent on a first run);
2. list the capture objects after that key, oldest first (keys sort by time), leaving out those
   written in the last `settle_seconds`: a batch stamped earlier but still being written by a
   slow container would otherwise be skipped for good once a later key has been processed;
3. keep the rows captured from the production version, bin each feature with the baseline's edges
   and categories (`artifact.baseline_key`), compute the PSI per feature and of the predictions;
4. fewer rows than `contract.monitoring.min_window_rows` -> status `insufficient_data`: no score
   is published (no false alarm on a quiet hour) and the state does not move, so the rows count
   towards the next window; otherwise publish `DriftScore` (the max feature PSI) and
   `DriftWindowRows` with the dimension `model`, and move the state past the window;
5. write a JSON report `monitoring/<model>/reports/<timestamp>.json` either way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from mlops.contract import Contract, ProblemType, parse_contract
from mlops.drift.psi import column_psi
from mlops.errors import NotFoundError
from mlops.layout import captures_prefix
from mlops.ports import MetricsSink, ObjectStore
from mlops.profile import BaselineProfile, CategoricalProfile
from mlops.registry.records import ModelRecord, ModelVersion

log = logging.getLogger(__name__)

MONITORING_PREFIX = "monitoring/"
DRIFT_SCORE = "DriftScore"
DRIFT_WINDOW_ROWS = "DriftWindowRows"
DEFAULT_SETTLE_SECONDS = 120.0
DEFAULT_MAX_OBJECTS = 2_000


def state_key(model: str) -> str:
    return f"{MONITORING_PREFIX}{model}/state.json"


def drift_report_key(model: str, at: datetime) -> str:
    return f"{MONITORING_PREFIX}{model}/reports/{at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.json"


class DriftRegistry(Protocol):
    def list_models(self) -> list[ModelRecord]: ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...


class DriftStatus(StrEnum):
    SCORED = "scored"
    INSUFFICIENT_DATA = "insufficient_data"


class DriftState(BaseModel):
    model_config = ConfigDict(frozen=True)

    last_key: str | None = None
    updated_at: datetime | None = None


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    version: int
    status: DriftStatus
    generated_at: datetime
    window_rows: int
    min_window_rows: int
    other_version_rows: int  # captured from earlier versions: not compared with this baseline
    unreadable_rows: int
    captures: int  # capture objects read
    first_key: str | None
    last_key: str | None
    threshold: float
    drift_score: float | None  # max PSI over the features
    drifted: bool
    features: dict[str, float]  # PSI per feature
    prediction_psi: float | None


@dataclass(frozen=True)
class _Window:
    keys: list[str]
    rows: list[dict[str, Any]]
    other_version_rows: int
    unreadable_rows: int
    truncated: bool  # more objects are waiting than one run reads


def detect_drift(
    registry: DriftRegistry,
    store: ObjectStore,
    bucket: str,
    metrics: MetricsSink,
    *,
    now: datetime,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    max_objects: int = DEFAULT_MAX_OBJECTS,
) -> tuple[list[DriftReport], dict[str, str]]:
    """Check every model with a production version; returns the reports and the models that failed
    (name -> error), having carried on with the others."""
    reports: list[DriftReport] = []
    failures: dict[str, str] = {}
    for record in registry.list_models():
        if record.production_version is None:
            continue
        try:
            version = registry.get_version(record.name, record.production_version)
            report = check_model(
                version, store, bucket, metrics, now=now, settle_seconds=settle_seconds, max_objects=max_objects
            )
        except Exception as error:  # one broken model must not hide the others' drift
            log.exception("drift check of %s failed", record.name)
            failures[record.name] = f"{type(error).__name__}: {error}"
            continue
        reports.append(report)
    return reports, failures


def check_model(
    version: ModelVersion,
    store: ObjectStore,
    bucket: str,
    metrics: MetricsSink,
    *,
    now: datetime,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    max_objects: int = DEFAULT_MAX_OBJECTS,
) -> DriftReport:
    """Score one model's new captures, publish the metrics, write report and state."""
    name = version.model_name
    contract = parse_contract(version.contract, source=f"{name} v{version.version} contract")
    state = _read_state(store, bucket, name)
    window = _read_window(
        store,
        bucket,
        name,
        version.version,
        state.last_key,
        cutoff=now - timedelta(seconds=settle_seconds),
        max_objects=max_objects,
    )
    threshold = contract.monitoring.psi_alarm_threshold
    enough = len(window.rows) >= contract.monitoring.min_window_rows
    features: dict[str, float] = {}
    prediction_psi: float | None = None
    if enough:
        baseline = BaselineProfile.model_validate_json(
            store.get_bytes(version.artifact.bucket, version.artifact.baseline_key)
        )
        features, prediction_psi = score_window(contract, baseline, window.rows)
    score = max(features.values()) if features else None
    report = DriftReport(
        model_name=name,
        version=version.version,
        status=DriftStatus.SCORED if enough else DriftStatus.INSUFFICIENT_DATA,
        generated_at=now,
        window_rows=len(window.rows),
        min_window_rows=contract.monitoring.min_window_rows,
        other_version_rows=window.other_version_rows,
        unreadable_rows=window.unreadable_rows,
        captures=len(window.keys),
        first_key=window.keys[0] if window.keys else None,
        last_key=window.keys[-1] if window.keys else None,
        threshold=threshold,
        drift_score=score,
        drifted=score is not None and score > threshold,
        features=features,
        prediction_psi=prediction_psi,
    )
    if report.status is DriftStatus.SCORED:
        dimensions = {"model": name}
        metrics.add(DRIFT_SCORE, float(score or 0.0), "None", dimensions)
        metrics.add(DRIFT_WINDOW_ROWS, float(report.window_rows), "Count", dimensions)
    store.put_bytes(bucket, drift_report_key(name, now), report.model_dump_json(indent=2).encode(), "application/json")
    # Move past the window once it has been scored (or when a backlog must not pin us in place).
    if window.keys and (report.status is DriftStatus.SCORED or window.truncated):
        state = DriftState(last_key=window.keys[-1], updated_at=now)
        store.put_bytes(bucket, state_key(name), state.model_dump_json().encode(), "application/json")
    return report


def score_window(
    contract: Contract, baseline: BaselineProfile, rows: list[dict[str, Any]]
) -> tuple[dict[str, float], float | None]:
    """PSI per feature (contract order) and of the predictions, for a non-empty window."""
    features: dict[str, float] = {}
    for feature in contract.features:
        profile = baseline.features.get(feature.name)
        if profile is None:
            continue
        values = [row["input"].get(feature.name) for row in rows]
        features[feature.name] = round(column_psi(profile, values), 6)
    predictions = [_prediction_value(contract, baseline, row["output"]) for row in rows]
    prediction_psi = round(column_psi(baseline.prediction, predictions), 6)
    return features, prediction_psi


def _prediction_value(contract: Contract, baseline: BaselineProfile, output: dict[str, Any]) -> object:
    """What the baseline profiled of the predictions: the label (multiclass), the probability of the
    positive class (binary: the contract's second class, as training profiles it) or the value."""
    if contract.problem_type is ProblemType.REGRESSION:
        return output.get("value")
    if isinstance(baseline.prediction, CategoricalProfile):
        return output.get("label")
    classes = contract.target.classes or ()
    positive = classes[1] if len(classes) == 2 else None
    probabilities = output.get("probabilities") or {}
    return probabilities.get(positive) if positive is not None else None


def _read_state(store: ObjectStore, bucket: str, model: str) -> DriftState:
    try:
        return DriftState.model_validate_json(store.get_bytes(bucket, state_key(model)))
    except NotFoundError:
        return DriftState()  # first run: every capture so far


def _read_window(
    store: ObjectStore,
    bucket: str,
    model: str,
    version: int,
    after: str | None,
    *,
    cutoff: datetime,
    max_objects: int,
) -> _Window:
    keys: list[str] = []
    rows: list[dict[str, Any]] = []
    other = unreadable = 0
    truncated = False
    for info in store.list(bucket, captures_prefix(model), start_after=after):
        written = _written_at(info.key)
        if written is not None and written > cutoff:
            break  # keys sort by time: everything after this one is newer still
        if len(keys) >= max_objects:
            truncated = True
            break
        keys.append(info.key)
        if written is None:
            continue  # not a capture batch
        for row in _rows(store.get_bytes(bucket, info.key)):
            if row is None:
                unreadable += 1
            elif row.get("version") == version:
                rows.append(row)
            else:
                other += 1
    return _Window(keys, rows, other, unreadable, truncated)


def _rows(data: bytes) -> Iterable[dict[str, Any] | None]:
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            yield None
            continue
        valid = isinstance(row, dict) and isinstance(row.get("input"), dict) and isinstance(row.get("output"), dict)
        yield row if valid else None


def _written_at(key: str) -> datetime | None:
    """The flush time in a capture key (`.../<yyyymmddThhmmss>-<id>.jsonl`), None for other objects."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(".jsonl"):
        return None
    try:
        return datetime.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
