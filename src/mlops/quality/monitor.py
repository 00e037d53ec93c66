"""Scheduled live quality: each model's new labels joined to its captured predictions
(`mlops.quality.join`), counted into hourly sketches per version (`mlops.quality.sketch`), and
the production version judged over the contract's window.

Per model with a production version, on its own (one model's failure never stops another's):
1. read `monitoring/<model>/quality-state.json`: the label progress and, per version, a sketch
   per hour of prediction time (kept while a label may still arrive for it: the feedback horizon,
   or the window if longer; so a late label updates its past hour, and the state stays bounded);
2. join the new labels, add each joined row to its version's hour;
3. write the state, then the result (`monitoring/<model>/quality/<id>.json`): the window is the
   merge of the hours since `now - window_hours`; with `min_labels` production rows it is judged
   against the contract's metric threshold (`at_least` / `at_most`) and the version's holdout score (`judge`);
4. publish the scores and the run's join counts as metrics.

Time: a model may use the invocation's time but `reserve_seconds` for each model after it; a join
still running at its limit fails that model alone (nothing saved: the next run reads the same
labels again). Measured (scripts/bench_quality.py): ~11 s and ~100 MB per 1M labelled rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mlops.contract import Contract, Metric, parse_contract, positive_class
from mlops.errors import NotFoundError
from mlops.layout import drift_report_id, quality_result_key, quality_state_key
from mlops.ports import MetricsSink, ObjectStore
from mlops.profile_schema import BaselineProfile, NumericProfile
from mlops.quality import metrics as names
from mlops.quality.join import CaptureJoin, JoinCounts, JoinedRows, JoinLimits, LabelProgress, LabelScan
from mlops.quality.result import QualityResult, QualityStatus, QualityVerdict, RunCounts, VersionQuality
from mlops.quality.sketch import AUC_BINS, LabelledRows, QualitySketch, label_drift
from mlops.registry.records import ModelRecord, ModelVersion

log = logging.getLogger(__name__)

STATE_SCHEMA_VERSION = 1
HOUR_FORMAT = "%Y%m%dT%H"
# error metrics: the margin is a share of the holdout value (their scale is the target's)
_RELATIVE_MARGIN = frozenset({"log_loss", "rmse", "mae"})


class QualityRegistry(Protocol):
    def list_models(self) -> list[ModelRecord]: ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...


class QualityState(BaseModel):
    """`monitoring/<model>/quality-state.json`."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = STATE_SCHEMA_VERSION
    labels: LabelProgress = LabelProgress()
    # version -> hour of prediction time (YYYYMMDDTHH) -> QualitySketch.to_json()
    hours: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass
class ModelQualityRun:
    model: str
    version: int
    status: str  # scored | insufficient_data | failed
    result: QualityResult | None = None
    error: str | None = None


@dataclass
class QualityRun:
    models: list[ModelQualityRun] = field(default_factory=list)

    @property
    def failures(self) -> dict[str, str]:
        return {run.model: str(run.error) for run in self.models if run.error is not None}


def judge(metric: Metric, live: float, holdout: float | None, margin: float) -> tuple[bool, bool]:
    """(below the contract's minimum, worse than the holdout score by more than the margin).
    The margin is absolute for scores, a share of the holdout value for errors (log_loss, rmse, mae)."""
    below_minimum = not metric.meets_threshold(live)
    if holdout is None:
        return below_minimum, False
    allowed = margin * abs(holdout) if metric.name in _RELATIVE_MARGIN else margin
    below_holdout = live < holdout - allowed if metric.higher_is_better else live > holdout + allowed
    return below_minimum, below_holdout


def evaluate_quality(
    registry: QualityRegistry,
    store: ObjectStore,
    bucket: str,
    metrics: MetricsSink,
    *,
    now: datetime,
    limits: JoinLimits,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    reserve_seconds: float = 30.0,
) -> QualityRun:
    """Every model with a production version, each on its own; a failure is reported
    (`QualityCheckFailures`, and in the run) after the others were evaluated. `deadline` is a
    `clock()` time the run must end by: a model may use what is left but `reserve_seconds` for each
    model after it, so one model's backlog cannot starve the others (it fails, `OutOfTimeError`)."""
    run = QualityRun()
    records = [record for record in registry.list_models() if record.production_version is not None]
    for index, record in enumerate(records):
        version_number = int(record.production_version or 0)
        until = None if deadline is None else deadline - reserve_seconds * (len(records) - index - 1)
        try:
            production = registry.get_version(record.name, version_number)
            model_run = _ModelQuality(
                registry,
                store,
                bucket,
                production,
                now=now,
                limits=limits,
                out_of_time=(lambda until=until: until is not None and clock() >= until),
            ).run()
            _publish(metrics, model_run.result)
        except Exception as error:  # one broken model must not hide the others' quality
            log.exception("live quality of %s failed", record.name)
            model_run = ModelQualityRun(record.name, version_number, "failed", error=f"{type(error).__name__}: {error}")
        metrics.add(names.QUALITY_CHECK_FAILURES, 1.0 if model_run.error else 0.0, "Count", {"model": record.name})
        run.models.append(model_run)
    return run


class _Version:
    """One version's contract, baseline target and holdout, loaded once per run."""

    def __init__(self, version: ModelVersion, store: ObjectStore) -> None:
        self.record = version
        self.contract: Contract = parse_contract(version.contract, source=f"{version.model_name} v{version.version}")
        try:
            baseline = BaselineProfile.model_validate_json(
                store.get_bytes(version.artifact.bucket, version.artifact.baseline_key)
            )
            self.target = baseline.target
        except NotFoundError:
            self.target = None
        self.edges = self.target.edges if isinstance(self.target, NumericProfile) else None

    def sketch(self, document: dict[str, Any] | None = None) -> QualitySketch:
        if document is None:
            return QualitySketch(self.contract, self.edges)
        return QualitySketch.from_json(document, self.contract, self.edges)


class _ModelQuality:
    def __init__(
        self,
        registry: QualityRegistry,
        store: ObjectStore,
        bucket: str,
        production: ModelVersion,
        *,
        now: datetime,
        limits: JoinLimits,
        out_of_time: Callable[[], bool],
    ) -> None:
        self.registry, self.store, self.bucket = registry, store, bucket
        self.out_of_time = out_of_time
        self.name = production.model_name
        self.now, self.limits = now, limits
        self.production = _Version(production, store)
        self.versions: dict[int, _Version | None] = {production.version: self.production}
        self.hours: dict[int, dict[str, QualitySketch]] = {}
        self.other_version_rows = 0

    def _version(self, number: int) -> _Version | None:
        if number not in self.versions:
            try:
                self.versions[number] = _Version(self.registry.get_version(self.name, number), self.store)
            except NotFoundError:
                log.warning("%s v%d answered captured predictions but is not in the registry", self.name, number)
                self.versions[number] = None
        return self.versions[number]

    def run(self) -> ModelQualityRun:
        contract = self.production.contract
        settings = contract.monitoring.live_quality
        horizon = timedelta(hours=contract.monitoring.feedback.horizon_hours)
        state = self._load()
        counts = JoinCounts()
        scan = LabelScan(
            self.store,
            self.bucket,
            self.name,
            state.labels,
            now=self.now,
            horizon=horizon,
            limits=self.limits,
            counts=counts,
        )
        CaptureJoin(
            self.store,
            self.bucket,
            self.name,
            limits=self.limits,
            counts=counts,
            sink=self._add,
            out_of_time=self.out_of_time,
        ).run(scan.minutes())
        keep_from = self.now - max(horizon, timedelta(hours=settings.window_hours)) - timedelta(hours=1)
        hours = {
            str(version): {
                hour: sketch.to_json() for hour, sketch in sorted(by_hour.items()) if _hour(hour) >= keep_from
            }
            for version, by_hour in sorted(self.hours.items())
        }
        new_state = QualityState(
            labels=scan.progress(), hours={v: h for v, h in hours.items() if h}, updated_at=self.now
        )
        self.store.put_bytes(
            self.bucket, quality_state_key(self.name), new_state.model_dump_json().encode(), "application/json"
        )
        result = self._result(counts)
        self.store.put_bytes(
            self.bucket,
            quality_result_key(self.name, drift_report_id(self.now)),
            result.model_dump_json(indent=2).encode(),
            "application/json",
        )
        return ModelQualityRun(self.name, self.production.record.version, result.status.value, result)

    def _load(self) -> QualityState:
        try:
            state = QualityState.model_validate_json(self.store.get_bytes(self.bucket, quality_state_key(self.name)))
        except NotFoundError:
            return QualityState()
        for version_text, by_hour in state.hours.items():
            version = self._version(int(version_text))
            if version is None:
                continue
            try:
                self.hours[int(version_text)] = {hour: version.sketch(document) for hour, document in by_hour.items()}
            except (ValueError, KeyError, TypeError):
                log.warning(
                    "%s v%s: stored quality sketches do not fit its contract; they start afresh",
                    self.name,
                    version_text,
                )
        return state

    def _add(self, rows: JoinedRows) -> None:
        """Each joined row into its version's hour of prediction time."""
        groups: dict[tuple[int, int], list[int]] = {}
        for row, (version, second) in enumerate(zip(rows.versions, rows.answered, strict=True)):
            groups.setdefault((version, second - second % 3600), []).append(row)  # ints: no per-row strftime
        for (number, hour_start), picked in groups.items():
            hour = datetime.fromtimestamp(hour_start, tz=UTC).strftime(HOUR_FORMAT)
            if number != self.production.record.version:
                self.other_version_rows += len(picked)
            version = self._version(number)
            if version is None:
                continue
            by_hour = self.hours.setdefault(number, {})
            sketch = by_hour.get(hour) or by_hour.setdefault(hour, version.sketch())
            if len(picked) == len(rows):  # the usual case: one version, one hour per capture object
                sketch.add(LabelledRows(rows.labels, rows.outputs))
                continue
            sketch.add(
                LabelledRows(
                    [rows.labels[r] for r in picked],
                    {name: [column[r] for r in picked] for name, column in rows.outputs.items()},
                )
            )

    def _window(self, number: int, start: datetime) -> VersionQuality | None:
        version = self.versions.get(number)
        by_hour = self.hours.get(number)
        if version is None or not by_hour:
            return None
        merged = version.sketch()
        for hour, sketch in by_hour.items():
            if _hour(hour) + timedelta(hours=1) > start:  # the hour overlaps the window
                merged.merge(sketch)
        if merged.rows == 0 and merged.unusable == 0:
            return None
        psi = label_drift(merged, version.target)
        threshold = version.contract.monitoring.psi_alarm_threshold
        return VersionQuality(
            version=number,
            labelled_rows=merged.rows,
            unusable_rows=merged.unusable,
            metrics=merged.metrics(),
            holdout=dict(version.record.metrics),
            label_counts=merged.label_counts(),
            label_drift_psi=psi,
            label_drifted=psi is not None and psi > threshold,
        )

    def _result(self, counts: JoinCounts) -> QualityResult:
        contract = self.production.contract
        settings = contract.monitoring.live_quality
        start = self.now - timedelta(hours=settings.window_hours)
        number = self.production.record.version
        production = self._window(number, start)
        status = QualityStatus.INSUFFICIENT_DATA
        verdict = None
        live = production.metrics.get(contract.metric.name) if production else None
        if production is not None and production.labelled_rows >= settings.min_labels and live is not None:
            status = QualityStatus.SCORED
            holdout = production.holdout.get(contract.metric.name)
            below_minimum, below_holdout = judge(contract.metric, live, holdout, settings.margin)
            verdict = QualityVerdict(
                metric=contract.metric.name,
                higher_is_better=contract.metric.higher_is_better,
                live=live,
                holdout=holdout,
                minimum=contract.metric.threshold,
                margin=settings.margin,
                below_minimum=below_minimum,
                below_holdout=below_holdout,
            )
        others = [window for v in sorted(self.hours) if v != number and (window := self._window(v, start)) is not None]
        positive = positive_class(contract)
        return QualityResult(
            model_name=self.name,
            version=number,
            generated_at=self.now,
            status=status,
            window_hours=settings.window_hours,
            window_start=start,
            min_labels=settings.min_labels,
            f1_averaging=f"binary, positive class {positive!r}" if positive is not None else "macro",
            auc_bins=AUC_BINS,
            production=production,
            verdict=verdict,
            other_versions=others,
            label_drift_threshold=contract.monitoring.psi_alarm_threshold,
            run=RunCounts(
                label_objects_read=counts.label_objects_read,
                late_label_objects=counts.late_label_objects,
                labels=counts.labels,
                duplicates=counts.duplicates,
                conflicts=counts.conflicts,
                joined=counts.joined,
                unmatched=counts.unmatched,
                other_version=self.other_version_rows,
                capture_objects_read=counts.capture_objects_read,
            ),
        )


def _hour(text: str) -> datetime:
    return datetime.strptime(text, HOUR_FORMAT).replace(tzinfo=UTC)


def _publish(metrics: MetricsSink, result: QualityResult | None) -> None:
    if result is None:
        return
    dimensions = {"model": result.model_name}
    add = metrics.add
    add(names.LABELS_JOINED, float(result.run.joined), "Count", dimensions)
    add(names.LABELS_UNMATCHED, float(result.run.unmatched), "Count", dimensions)
    add(names.LABELS_OTHER_VERSION, float(result.run.other_version), "Count", dimensions)
    add(names.LABELS_CONFLICTING, float(result.run.conflicts), "Count", dimensions)
    production = result.production
    add(names.LABELLED_ROWS, float(production.labelled_rows if production else 0), "Count", dimensions)
    if result.verdict is None or production is None:
        return  # too few labels to judge: no quality signal, so no false alarm on a quiet day
    for score, metric_name in names.SCORE_METRICS.items():
        if score in production.metrics:
            add(metric_name, production.metrics[score], "None", dimensions)
    if production.label_drift_psi is not None:
        add(names.LABEL_DRIFT, production.label_drift_psi, "None", dimensions)
    add(names.QUALITY_BELOW_MINIMUM, 1.0 if result.verdict.below else 0.0, "Count", dimensions)
