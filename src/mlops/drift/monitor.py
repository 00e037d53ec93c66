"""Scheduled drift detection at any traffic: each model's captures since its last run, in bounded
chunks, into a running window of counts (`WindowSketch`), judged against the training baseline.

Per model with a production version, on its own (one model's backlog or failure never stops
another's; each gets a fair share of the invocation's remaining time):
1. read `monitoring/<model>/state.json`: the progress marker (the last capture key read in key
   order: keys sort by flush time), the keys read inside the look-back, and the window so far;
2. list the capture keys from the look-back below the marker up to `settle_seconds` ago; read, at
   most `chunk_objects` objects at a time (a small pool of GETs), the new keys after the marker and
   any key inside the look-back not read yet (it landed late), add each object to the window and
   persist window and marker after every chunk, so a backlog advances every run and nothing is
   read twice;
3. a key that lands later than the look-back (inside the look-back below it, where keys are still
   remembered) is counted in `CapturesLate` and the next result, never read into a later window;
4. once caught up, a window holding `min_window_rows` rows of the production version is judged
   (`mlops.drift.decisions.evaluate`), stored with its HTML page at
   `monitoring/<model>/reports/<id>.json|.html`, published as metrics and, when it drifted or
   raised a data-quality alarm, announced; a window reaching `max_window_rows` is judged even
   while behind. A smaller window keeps accumulating (its result is stored, nothing is alarmed).

Memory is flat in the number of rows: a window is counts over the baseline's bins, and at most
`read_threads * 2` fetched objects (and one decoded) are held at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mlops.captures import CaptureBatch, decode_batch
from mlops.contract import Contract, parse_contract
from mlops.drift import metrics as names
from mlops.drift.decisions import evaluate
from mlops.drift.notice import drift_notice, needs_notice
from mlops.drift.report import render_html
from mlops.drift.result import DriftResult, DriftStatus
from mlops.drift.sketch import WindowSketch
from mlops.errors import NotFoundError
from mlops.layout import (
    MONITORING_PREFIX,
    capture_flushed_at,
    captures_prefix,
    captures_time_key,
    drift_page_key,
    drift_report_id,
    drift_result_key,
)
from mlops.ports import MetricsSink, ObjectStore
from mlops.profile import BaselineProfile
from mlops.registry.records import ModelRecord, ModelVersion

log = logging.getLogger(__name__)

STATE_SCHEMA_VERSION = 2


def state_key(model: str) -> str:
    return f"{MONITORING_PREFIX}{model}/state.json"


def drift_report_key(model: str, at: datetime) -> str:
    """Where the result of a run at `at` is stored (its page: `drift_page_key`, mlops.layout)."""
    return drift_result_key(model, drift_report_id(at))


class DriftRegistry(Protocol):
    def list_models(self) -> list[ModelRecord]: ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...


class DriftNotifier(Protocol):
    def notify(self, subject: str, message: str) -> None: ...


@dataclass(frozen=True)
class DriftLimits:
    """How a run reads captures. `settle_seconds` comes from DriftSettings (its one home)."""

    settle_seconds: float  # captures flushed more recently wait for the next run
    lookback_seconds: float = 900.0  # below the marker, keys are re-listed this far back
    chunk_objects: int = 200  # capture objects read between two state writes
    read_threads: int = 8
    max_window_rows: int = 10_000_000  # a window this big is judged even while a backlog remains
    min_chunk_seconds: float = 0.0  # a model's first chunk runs unless the run has less than this left


class DriftState(BaseModel):
    """`monitoring/<model>/state.json`: where a model's drift run stands."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = STATE_SCHEMA_VERSION
    marker: str | None = None  # the last capture key read in key order (None: none yet)
    # keys read that are at or after `tracked_from` (a capture time key: every key flushed at or after
    # that second sorts after it); below it nothing is listed any more
    tracked_from: str | None = None
    read_keys: list[str] = Field(default_factory=list)
    version: int | None = None  # the version the window counts
    window: dict[str, Any] | None = None  # WindowSketch.to_json()
    late_captures: int = 0  # keys landed beyond the look-back since the window began (counted, not read)
    late_captures_read: int = 0  # keys landed late inside the look-back since the window began (read)
    unjudged_captures: int = 0  # objects added to the window since its last judgement
    updated_at: datetime | None = None
    last_key: str | None = None  # schema 1 (before the look-back): its marker


@dataclass
class ModelRun:
    """What one run did for one model."""

    model: str
    version: int
    status: str  # scored | insufficient_data | behind (a backlog remains) | failed
    captures_read: int = 0
    rows: int = 0  # rows of the window so far (or of the last judged window)
    late_captures: int = 0  # found this run beyond the look-back
    results: list[DriftResult] = field(default_factory=list)
    error: str | None = None


@dataclass
class DriftRun:
    models: list[ModelRun]

    @property
    def failures(self) -> dict[str, str]:
        return {run.model: str(run.error) for run in self.models if run.error is not None}


def detect_drift(
    registry: DriftRegistry,
    store: ObjectStore,
    bucket: str,
    metrics: MetricsSink,
    *,
    now: datetime,
    limits: DriftLimits,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    notifier: DriftNotifier | None = None,
    report_base_url: str = "",
) -> DriftRun:
    """Check every model with a production version, each on its own: a model that fails is
    reported (`DriftCheckFailures`) after the others were checked. `deadline` is a `clock()` time
    the run must end by; each model gets an equal share of what is left when its turn comes."""
    records = [record for record in registry.list_models() if record.production_version is not None]
    runs = []
    for index, record in enumerate(records):
        until = None if deadline is None else clock() + (deadline - clock()) / (len(records) - index)
        checker = _ModelCheck(
            store, bucket, metrics, now=now, limits=limits, clock=clock, notifier=notifier, base_url=report_base_url
        )
        version_number = int(record.production_version or 0)
        try:
            version = registry.get_version(record.name, version_number)
            run = checker.run(version, until=until, deadline=deadline)
        except Exception as error:  # one broken model must not hide the others' drift
            log.exception("drift check of %s failed", record.name)
            run = ModelRun(record.name, version_number, "failed", error=f"{type(error).__name__}: {error}")
        dimensions = {"model": record.name}
        metrics.add(names.DRIFT_CHECK_FAILURES, 1.0 if run.error else 0.0, "Count", dimensions)
        metrics.add(names.CAPTURES_LATE, float(run.late_captures), "Count", dimensions)
        runs.append(run)
    return DriftRun(runs)


class _ModelCheck:
    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        metrics: MetricsSink,
        *,
        now: datetime,
        limits: DriftLimits,
        clock: Callable[[], float],
        notifier: DriftNotifier | None,
        base_url: str,
    ) -> None:
        self.store = store
        self.bucket = bucket
        self.metrics = metrics
        self.now = now
        self.limits = limits
        self.clock = clock
        self.notifier = notifier
        self.base_url = base_url

    def run(self, version: ModelVersion, *, until: float | None, deadline: float | None) -> ModelRun:
        name = version.model_name
        contract = parse_contract(version.contract, source=f"{name} v{version.version} contract")
        baseline = BaselineProfile.model_validate_json(
            self.store.get_bytes(version.artifact.bucket, version.artifact.baseline_key)
        )
        progress = _Progress.load(self.store, self.bucket, name, contract, baseline, version.version, self.limits)
        run = ModelRun(name, version.version, DriftStatus.INSUFFICIENT_DATA.value)
        pending = progress.pending(
            self.store, self.bucket, cutoff=self.now - timedelta(seconds=self.limits.settle_seconds)
        )
        caught_up = False
        first = True
        while True:
            out_of_time = deadline is not None and self.clock() >= deadline - self.limits.min_chunk_seconds
            if not first and until is not None and self.clock() >= until:
                out_of_time = True
            chunk = _take(pending, 1 if out_of_time else self.limits.chunk_objects)
            if not chunk or out_of_time:  # one key looked at: whether anything is left to read
                caught_up = not chunk
                break
            first = False
            for key, batch in _read(self.store, self.bucket, chunk, self.limits.read_threads):
                progress.sketch.add(batch)
                progress.mark_read(key)
            run.captures_read += len(chunk)
            progress.unjudged += len(chunk)
            if progress.sketch.rows >= self.limits.max_window_rows:
                run.results.append(self._judge(contract, baseline, progress, run))
            progress.save(self.store, self.bucket, self.now)
        run.late_captures = progress.late_this_run
        # judged when something came in since the last judgement (in this run or one that failed
        # before judging); nothing new: the stored result still says it all
        if caught_up and progress.unjudged:
            run.results.append(self._judge(contract, baseline, progress, run))
        progress.save(self.store, self.bucket, self.now)
        if run.results and run.results[-1].status is DriftStatus.SCORED:
            run.status = DriftStatus.SCORED.value
        elif not caught_up:
            run.status = "behind"
        run.rows = run.results[-1].window.rows if run.results else progress.sketch.rows
        return run

    def _judge(self, contract: Contract, baseline: BaselineProfile, progress: _Progress, run: ModelRun) -> DriftResult:
        """Judge the window, store, publish and announce the result; a scored window starts afresh,
        an insufficient one keeps accumulating."""
        at = self.now + timedelta(microseconds=len(run.results))  # one id per result, in order
        result = evaluate(contract, baseline, progress.sketch, generated_at=at)
        progress.unjudged = 0
        result = result.model_copy(
            update={
                "window": result.window.model_copy(
                    update={
                        "late_captures": progress.state_late,
                        "late_captures_read": progress.state_late_read,
                    }
                ),
                "report_key": drift_page_key(contract.name, drift_report_id(at)),
            }
        )
        self._store_result(result, at)
        self._publish(result)
        if needs_notice(result) and self.notifier is not None:
            self._announce(result, at)
        if result.status is DriftStatus.SCORED:
            progress.start_window()
        return result

    def _store_result(self, result: DriftResult, at: datetime) -> None:
        name = result.model_name
        self.store.put_bytes(
            self.bucket,
            drift_page_key(name, drift_report_id(at)),
            render_html(result).encode(),
            "text/html; charset=utf-8",
        )
        self.store.put_bytes(
            self.bucket, drift_report_key(name, at), result.model_dump_json(indent=2).encode(), "application/json"
        )

    def _publish(self, result: DriftResult) -> None:
        dimensions = {"model": result.model_name}
        add = self.metrics.add
        add(names.DATA_QUALITY_ISSUES, float(len(result.data_quality.issues)), "Count", dimensions)
        if result.status is not DriftStatus.SCORED:
            return  # too few rows to judge: no drift signal, so no false alarm on a quiet hour
        add(names.DRIFT_DETECTED, 1.0 if result.drift_detected else 0.0, "Count", dimensions)
        if result.dataset is not None:
            add(names.DRIFTED_FEATURE_SHARE, result.dataset.share, "None", dimensions)
        if result.prediction is not None:
            add(names.PREDICTION_DRIFT, 1.0 if result.prediction.drifted else 0.0, "Count", dimensions)
        if result.drift_score is not None:
            add(names.DRIFT_SCORE, result.drift_score, "None", dimensions)
        add(names.DRIFT_WINDOW_ROWS, float(result.window.rows), "Count", dimensions)

    def _announce(self, result: DriftResult, at: datetime) -> None:
        link = None
        if self.base_url:
            report_id = drift_report_id(at)
            link = f"{self.base_url.rstrip('/')}/models/{result.model_name}/drift/{report_id}?format=html"
        subject, body = drift_notice(result, report_link=link)
        assert self.notifier is not None
        try:
            self.notifier.notify(subject, body)
        except Exception:  # the result is stored and the metrics alarm; a lost notice must not fail the run
            log.exception("drift notice for %s could not be sent", result.model_name)


class _Progress:
    """A model's state while a run reads its captures."""

    def __init__(
        self,
        model: str,
        state: DriftState,
        sketch: WindowSketch,
        contract: Contract,
        baseline: BaselineProfile,
        version: int,
        limits: DriftLimits,
    ) -> None:
        self.model = model
        self.marker = state.marker
        self.first_marker = state.marker  # keys at or below it that are read now landed late
        self.tracked_from = state.tracked_from
        self.read_keys = set(state.read_keys)
        self.sketch = sketch
        self.contract = contract
        self.baseline = baseline
        self.version = version
        self.limits = limits
        self.state_late = state.late_captures
        self.state_late_read = state.late_captures_read
        self.unjudged = state.unjudged_captures
        self.late_this_run = 0

    @classmethod
    def load(
        cls,
        store: ObjectStore,
        bucket: str,
        model: str,
        contract: Contract,
        baseline: BaselineProfile,
        version: int,
        limits: DriftLimits,
    ) -> _Progress:
        try:
            state = DriftState.model_validate_json(store.get_bytes(bucket, state_key(model)))
        except NotFoundError:
            state = DriftState()  # first run: every capture so far
        if state.marker is None and state.last_key:
            # the earlier state knew only its marker: nothing below it is listed again
            flushed = capture_flushed_at(state.last_key)
            tracked = captures_time_key(model, flushed) if flushed else state.last_key
            state = DriftState(marker=state.last_key, tracked_from=tracked, read_keys=[state.last_key])
        sketch = None
        if state.window is not None and state.version == version:
            try:
                sketch = WindowSketch.from_json(state.window, contract, baseline)
            except (ValueError, KeyError, TypeError):
                log.warning("the stored %s window does not fit v%d's baseline; a new window starts", model, version)
        progress = cls(
            model, state, sketch or WindowSketch.empty(contract, baseline, version), contract, baseline, version, limits
        )
        if sketch is None:
            if state.window is not None:
                log.info("%s: production is v%d now; the window of v%s is dropped", model, version, state.version)
            progress.state_late = progress.state_late_read = progress.unjudged = 0
        return progress

    def _below_marker(self, lookbacks: int) -> str | None:
        """The capture time key `lookbacks` look-backs below the marker (None: no marker yet)."""
        flushed = capture_flushed_at(self.marker) if self.marker else None
        if flushed is None:
            return None
        return captures_time_key(self.model, flushed - timedelta(seconds=lookbacks * self.limits.lookback_seconds))

    def pending(self, store: ObjectStore, bucket: str, *, cutoff: datetime) -> Iterator[str]:
        """The keys to read, in key order: late ones inside the look-back, then the new ones up to
        `cutoff`. Counts the keys that landed below the look-back (in `late_this_run`)."""
        # keys read are remembered down to two look-backs below the marker: an unread one in the
        # upper look-back landed late and is read; one in the lower look-back landed later than that
        floor = self._below_marker(1)
        start = max(filter(None, (self._below_marker(2), self.tracked_from)), default=None)
        marker = self.marker
        for info in store.list(bucket, captures_prefix(self.model), start_after=start):
            key = info.key
            flushed = capture_flushed_at(key)
            if flushed is None:
                continue  # not a capture object
            if marker is not None and key <= marker:
                if key in self.read_keys:
                    continue
                if floor is not None and key < floor:
                    # landed after the look-back had passed it: its window is closed
                    log.warning("capture %s landed later than the look-back; counted, not read", key)
                    self.late_this_run += 1
                    self.state_late += 1
                    self.read_keys.add(key)
                    continue
                yield key  # landed late, inside the look-back: read now
            elif flushed > cutoff:
                return  # keys sort by flush time: everything after this one is newer still
            else:
                yield key

    def mark_read(self, key: str) -> None:
        if self.first_marker is not None and key <= self.first_marker:
            self.state_late_read += 1
        self.read_keys.add(key)
        if self.marker is None or key > self.marker:
            self.marker = key

    def start_window(self) -> None:
        self.sketch = WindowSketch.empty(self.contract, self.baseline, self.version)
        self.state_late = self.state_late_read = 0

    def save(self, store: ObjectStore, bucket: str, now: datetime) -> None:
        bound = max(filter(None, (self._below_marker(2), self.tracked_from)), default=None)
        if bound is not None:
            self.tracked_from = bound
            self.read_keys = {key for key in self.read_keys if key >= bound}
        state = DriftState(
            marker=self.marker,
            tracked_from=self.tracked_from,
            read_keys=sorted(self.read_keys),
            version=self.version,
            window=self.sketch.to_json(),
            late_captures=self.state_late,
            late_captures_read=self.state_late_read,
            unjudged_captures=self.unjudged,
            updated_at=now,
        )
        store.put_bytes(bucket, state_key(self.model), state.model_dump_json().encode(), "application/json")


def _take(keys: Iterator[str], count: int) -> list[str]:
    chunk = []
    for key in keys:
        chunk.append(key)
        if len(chunk) >= count:
            break
    return chunk


def _read(store: ObjectStore, bucket: str, keys: list[str], threads: int) -> Iterator[tuple[str, CaptureBatch]]:
    """(key, decoded batch) in key order, fetched by a small pool; at most `threads * 2` objects
    are in memory at once."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        waiting: deque[tuple[str, Future[bytes]]] = deque()
        remaining = iter(keys)
        for key in remaining:
            waiting.append((key, pool.submit(store.get_bytes, bucket, key)))
            if len(waiting) >= threads * 2:
                break
        while waiting:
            key, future = waiting.popleft()
            data = future.result()
            next_key = next(remaining, None)
            if next_key is not None:
                waiting.append((next_key, pool.submit(store.get_bytes, bucket, next_key)))
            yield key, decode_batch(data)
            del data
