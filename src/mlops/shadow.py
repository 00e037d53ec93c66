"""Shadow scoring (issue 13 item 3): a challenger scores the requests production answered, off the
response path. A scheduled function reads the production model's capture objects (mlops.captures)
after the last one it read, scores each row the production version answered with the shadow
version (loaded and digest-checked like predict's), and accumulates agreement statistics in
`monitoring/<model>/shadow-state.json` of the artifact bucket; the compare answer shows them
(mlops.registry.service.compare_versions). Predict never sees the shadow: its latency cannot grow.

Statistics restart when the shadow or the production version changes (they describe one pair).
Classification: label agreement, mean and max of the largest per-class probability difference;
regression: mean difference (shadow - production), mean absolute and max absolute difference, RMS.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from mlops.captures import PROBABILITY_PREFIX, CaptureBatch, decode_batch
from mlops.errors import RecordError
from mlops.layout import MONITORING_PREFIX, capture_flushed_at, captures_prefix, captures_time_key
from mlops.ports import MetricsSink, ObjectStore

SHADOW_STATE_NAME = "shadow-state.json"
LOOKBACK_SECONDS = 300.0
SHADOW_FAILURES_METRIC = "ShadowFailures"

log = logging.getLogger(__name__)


def shadow_state_key(model: str) -> str:
    return f"{MONITORING_PREFIX}{model}/{SHADOW_STATE_NAME}"


class ScoringModel(Protocol):
    """What scoring needs of a loaded version (mlops.inference.model.LoadedModel)."""

    version: int
    classes: tuple[str, ...]

    @property
    def classification(self) -> bool: ...
    @property
    def validator(self) -> Any: ...
    def predict_columns(self, columns: Any) -> list[dict[str, Any]]: ...


@dataclass
class ShadowAgreement:
    """Agreement of `shadow_version` with `production_version` on the requests production answered."""

    production_version: int
    shadow_version: int
    rows: int = 0  # rows both scored
    unscored: int = 0  # rows the shadow's contract refused (a changed feature rule)
    objects: int = 0  # capture objects read
    # capture objects read within LOOKBACK_SECONDS of the newest one's flush time: an object that lands
    # late, or in the same second as one already read, is listed again and read once
    recent_keys: list[str] = field(default_factory=list)
    updated_at: str = ""
    classification: bool | None = None  # None until a row was scored
    # classification
    label_agreements: int = 0
    probability_diff_sum: float = 0.0
    probability_diff_max: float = 0.0
    # regression
    diff_sum: float = 0.0
    abs_diff_sum: float = 0.0
    squared_diff_sum: float = 0.0
    abs_diff_max: float = 0.0
    summary: dict[str, float | None] = field(default_factory=dict)

    def summarize(self) -> None:
        rows = self.rows or None
        if self.classification is None:
            self.summary = {}
        elif self.classification:
            self.summary = {
                "label_agreement": self.label_agreements / rows if rows else None,
                "mean_probability_difference": self.probability_diff_sum / rows if rows else None,
                "max_probability_difference": self.probability_diff_max if rows else None,
            }
        else:
            self.summary = {
                "mean_difference": self.diff_sum / rows if rows else None,
                "mean_absolute_difference": self.abs_diff_sum / rows if rows else None,
                "max_absolute_difference": self.abs_diff_max if rows else None,
                "rms_difference": math.sqrt(self.squared_diff_sum / rows) if rows else None,
            }

    def add(self, batch: CaptureBatch, shadow: ScoringModel) -> None:
        """Score the rows of `batch` production's version answered and add their agreement."""
        rows = [i for i, version in enumerate(batch.versions) if version == self.production_version]
        if not rows:
            return
        records = [{name: values[i] for name, values in batch.inputs.items()} for i in rows]
        scored, answers = _score(shadow, records)
        self.unscored += len(rows) - len(scored)
        self.classification = shadow.classification
        labels = batch.outputs.get("label") or [None] * len(batch)
        for position, answer in zip(scored, answers, strict=True):
            row = rows[position]
            self.rows += 1
            if shadow.classification:
                self.label_agreements += int(answer["label"] == labels[row])
                difference = max(
                    abs(probability - _number(batch.outputs.get(f"{PROBABILITY_PREFIX}{name}"), row))
                    for name, probability in answer["probabilities"].items()
                )
                self.probability_diff_sum += difference
                self.probability_diff_max = max(self.probability_diff_max, difference)
            else:
                difference = float(answer["value"]) - float(batch.outputs["value"][row])  # type: ignore[arg-type]
                self.diff_sum += difference
                self.abs_diff_sum += abs(difference)
                self.squared_diff_sum += difference * difference
                self.abs_diff_max = max(self.abs_diff_max, abs(difference))


def _number(column: list[object] | None, row: int) -> float:
    value = column[row] if column is not None else None
    return float(value) if isinstance(value, int | float) else 0.0


def _score(shadow: ScoringModel, records: list[dict[str, Any]]) -> tuple[list[int], list[dict[str, Any]]]:
    """(positions scored, answers): the whole batch at once, else row by row past refused records."""
    try:
        return list(range(len(records))), shadow.predict_columns(shadow.validator.validate(records))
    except RecordError:
        pass
    positions, answers = [], []
    for position, record in enumerate(records):
        try:
            [answer] = shadow.predict_columns(shadow.validator.validate([record]))
        except RecordError:
            continue
        positions.append(position)
        answers.append(answer)
    return positions, answers


def read_agreement(store: ObjectStore, bucket: str, model: str) -> ShadowAgreement | None:
    """The stored statistics of `model`'s shadow, or None when there are none (or unreadable)."""
    try:
        document = json.loads(store.get_bytes(bucket, shadow_state_key(model)))
        return ShadowAgreement(**document)
    except Exception:
        return None


def score_shadow(
    model: str,
    production_version: int,
    shadow_version: int,
    *,
    store: ObjectStore,
    bucket: str,
    load: Callable[[], ScoringModel],
    max_objects: int = 200,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ShadowAgreement:
    """Read the captures not read yet (at most `max_objects`, oldest first), score them with the
    shadow, store and return the statistics. The shadow is loaded only when there is work."""
    state = read_agreement(store, bucket, model)
    if state is None or (state.production_version, state.shadow_version) != (production_version, shadow_version):
        state = ShadowAgreement(production_version, shadow_version)
    shadow: ScoringModel | None = None
    seen = set(state.recent_keys)
    times = [t for t in map(capture_flushed_at, state.recent_keys) if t is not None]
    start = captures_time_key(model, max(times) - timedelta(seconds=LOOKBACK_SECONDS)) if times else None
    for info in store.list(bucket, captures_prefix(model), start_after=start):
        if info.key in seen or capture_flushed_at(info.key) is None:
            continue
        if shadow is None:
            shadow = load()
        state.add(decode_batch(store.get_bytes(bucket, info.key)), shadow)
        state.objects += 1
        seen.add(info.key)
        max_objects -= 1
        if max_objects <= 0:
            break
    flushed = {key: capture_flushed_at(key) for key in seen}
    newest = max((t for t in flushed.values() if t is not None), default=None)
    state.recent_keys = sorted(
        key for key, at in flushed.items() if newest and at and at >= newest - timedelta(seconds=LOOKBACK_SECONDS)
    )
    state.updated_at = now().isoformat()
    state.summarize()
    store.put_bytes(bucket, shadow_state_key(model), json.dumps(asdict(state)).encode(), "application/json")
    return state


class ShadowedModel(Protocol):
    """What the run needs of a registry model (mlops.registry.models.ModelRecord)."""

    name: str
    production_version: int | None
    shadow_version: int | None


@dataclass
class ShadowRun:
    scored: list[tuple[str, ShadowAgreement]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def score_shadows(
    models: Iterable[ShadowedModel],
    *,
    store: ObjectStore,
    bucket: str,
    load: Callable[[str, int], ScoringModel],
    metrics: MetricsSink,
    max_objects: int = 200,
) -> ShadowRun:
    """Score every model that has a shadow and a production version. Each model is isolated: one whose
    shadow fails (a missing artifact, an unreadable capture) is logged and counted in ShadowFailures
    with its model dimension, and the others are still scored."""
    run = ShadowRun()
    for model in models:
        if model.shadow_version is None or model.production_version is None:
            continue
        name, shadow_version = model.name, model.shadow_version
        try:
            agreement = score_shadow(
                name,
                model.production_version,
                shadow_version,
                store=store,
                bucket=bucket,
                load=partial(load, name, shadow_version),
                max_objects=max_objects,
            )
        except Exception as error:  # one model's failure must not stop the others
            log.warning(
                "shadow scoring failed",
                extra={"model": name, "shadow_version": shadow_version, "error_type": type(error).__name__},
            )
            metrics.add(SHADOW_FAILURES_METRIC, 1, "Count", {"model": name})
            run.failed.append(name)
            continue
        run.scored.append((name, agreement))
    return run
