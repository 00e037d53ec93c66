"""Sampled inference traffic and refused records, buffered in memory and written to S3 as columns.

Why a buffer: one S3 PUT per request would cost ~10-50 ms and a request per prediction. Instead
each warm container keeps the sampled records (the contract's feature values, never the request's
other fields, the outputs and each answer's prediction id) per model, counts the records predict
refused per field and reason (never their values), and writes one columnar capture object
(`mlops.captures.encode_batch`) under `captures/<model>/...` when the model's buffer holds
`max_records` rows or its oldest entry is older than `max_age_seconds`. A model with only refused
records is flushed too, so drift reports data quality on a model nobody can use. The rules are
checked after each request (Lambda freezes the process between invocations, so there is no
timer), and `flush()` writes everything, for shutdown hooks (`flush_on_shutdown`).

`add` keeps one tuple per row and the answers as they were sent; the columns are built at flush
time, paid once per object by the request that triggers it (with the PUT), not by every request.

Trade-off: records buffered in a container that dies without a shutdown signal (crash, timeout,
an environment recycled without a registered extension) are lost, and an idle container holds
its last records until its next request or its shutdown. They are monitoring samples, not a
ledger: drift statistics tolerate a few missing records, while a per-request PUT would tax
every prediction.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlops.captures import (
    NO_PREDICTION_ID,
    PROBABILITY_PREFIX,
    CaptureBatch,
    Rejected,
    encode_batch,
    flatten_output,
)
from mlops.layout import capture_key
from mlops.ports import ObjectStore

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"


# The sampled rows of one request: (epoch seconds, version, feature names, one tuple of feature
# values per row, the answers as sent). Only the contract's feature values, never the request record
# itself: a client's extra fields (ids, an 8 MB note) must not stay in memory until the flush. A
# plain tuple: this is on every request's path.
_Request = tuple[float, int, tuple[str, ...], list[tuple[Any, ...]], Sequence[dict[str, Any]]]


@dataclass
class _Pending:
    first_at: float
    rows: int = 0
    requests: list[_Request] = field(default_factory=list)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)


@dataclass(frozen=True)
class FlushResult:
    model: str
    key: str | None
    records: int  # rows written (or lost, when `error` is set)
    error: str | None = None
    skipped: int = 0  # rows JSON cannot carry (a non-finite number): left out, never the whole batch
    rejected: int = 0  # refused records counted in the object (or lost with it)


class CaptureBuffer:
    """Per-model buffers of sampled (input, output) pairs and rejection counts, flushed to `bucket`
    by count or age."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        *,
        max_records: int = 500,
        max_age_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        random_source: Callable[[], float] = random.random,
        batch_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        self.bucket = bucket
        self.max_records = max_records
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._random = random_source
        self._batch_id = batch_id
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return sum(p.rows for p in self._pending.values())

    def _buffer(self, model: str, now: float) -> _Pending:
        pending = self._pending.get(model)
        if pending is None:
            pending = self._pending[model] = _Pending(now)
        elif not pending.rows and not pending.rejected:
            pending.first_at = now
        return pending

    def add(
        self,
        model: str,
        version: int,
        features: Sequence[str],
        records: Sequence[dict[str, Any]],
        answers: Sequence[dict[str, Any]],
        sample_rate: float,
    ) -> int:
        """Keep each record's `features` values and its answer (with its `prediction_id`) with
        probability `sample_rate`; returns how many were kept."""
        if sample_rate <= 0:
            return 0
        now = self._clock()
        names = tuple(features)
        if sample_rate >= 1:
            values = [tuple(map(record.get, names)) for record in records]
            kept = answers  # the answers as sent (the caller does not change them afterwards)
            if len(values) != len(kept):
                raise ValueError("one answer per record")
        else:
            draw = self._random
            chosen = [
                (tuple(map(record.get, names)), answer)
                for record, answer in zip(records, answers, strict=True)
                if draw() < sample_rate
            ]
            values = [value for value, _ in chosen]
            kept = [answer for _, answer in chosen]
        if not values:
            return 0
        pending = self._buffer(model, now)
        pending.requests.append((now, version, names, values, kept))
        pending.rows += len(values)
        return len(values)

    def reject(self, model: str, field_name: str, reason: str, count: int = 1) -> None:
        """Count `count` records predict refused for `field_name` and `reason` (no values kept)."""
        self._buffer(model, self._clock()).rejected[(field_name, reason)] += count

    def due(self) -> list[str]:
        """Models whose buffer is full or whose oldest entry is older than max_age_seconds."""
        if not self._pending:
            return []
        now = self._clock()
        return [
            model
            for model, pending in self._pending.items()
            if (pending.rows or pending.rejected)
            and (pending.rows >= self.max_records or now - pending.first_at >= self.max_age_seconds)
        ]

    def flush_due(self) -> list[FlushResult]:
        """Flush the buffers that are due (call after each request). Never raises."""
        return [self._flush_model(model) for model in self.due()]

    def flush(self) -> list[FlushResult]:
        """Flush every non-empty buffer (shutdown). Never raises."""
        return [
            self._flush_model(model)
            for model, pending in list(self._pending.items())
            if pending.rows or pending.rejected
        ]

    def _flush_model(self, model: str) -> FlushResult:
        pending = self._pending.pop(model)
        rejected = sum(pending.rejected.values())
        try:
            data, skipped = encode_batch(_batch(pending))
        except Exception as error:  # capture must never fail a prediction
            log.warning("capture of %d %s rows cannot be encoded; dropped", pending.rows, model, exc_info=True)
            return FlushResult(model, None, pending.rows, error=f"{type(error).__name__}: {error}", rejected=rejected)
        if skipped:
            log.warning("%d %s capture records cannot be serialised as JSON; skipped", skipped, model)
        written = pending.rows - skipped
        if not written and not rejected:
            return FlushResult(model, None, 0, skipped=skipped)
        key = capture_key(model, datetime.fromtimestamp(self._clock(), UTC), self._batch_id())
        try:
            self._store.put_bytes(self.bucket, key, data, content_type=CONTENT_TYPE)
        except Exception as error:  # capture must never fail a prediction
            log.warning("capture flush of %d %s records failed; dropped", written, model, exc_info=True)
            return FlushResult(
                model, None, written, error=f"{type(error).__name__}: {error}", skipped=skipped, rejected=rejected
            )
        return FlushResult(model, key, written, skipped=skipped, rejected=rejected)


def _batch(pending: _Pending) -> CaptureBatch:
    """The buffered rows as columns; a feature or output a row's version lacks is None there."""
    at: list[float] = []
    versions: list[int] = []
    answers: list[dict[str, Any]] = []
    inputs: dict[str, list[Any]] = {}
    done = 0
    # consecutive requests of one version (the usual case) are transposed in one go
    for (version, features), group in itertools.groupby(pending.requests, key=lambda r: (r[1], r[2])):
        values: list[tuple[Any, ...]] = []
        for when, _, _, rows, sent in group:
            at.extend([round(when, 3)] * len(rows))
            values.extend(rows)
            answers.extend(sent)
        versions.extend([version] * len(values))
        for name, column in zip(features, zip(*values, strict=True), strict=True):
            _column(inputs, name, done).extend(column)
        done += len(values)
        for column in inputs.values():
            column.extend([None] * (done - len(column)))
    ids = [answer.get("prediction_id") or NO_PREDICTION_ID for answer in answers]
    rejected = [Rejected(name, reason, count) for (name, reason), count in sorted(pending.rejected.items())]
    return CaptureBatch(at, versions, ids, inputs, _outputs(answers), rejected)


def _outputs(answers: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The answers' output columns (`flatten_output`): column by column when every answer has the
    shape of the first (one model's answers), else row by row."""
    first = answers[0] if answers else {}
    probabilities = first.get("probabilities")
    classes = probabilities.keys() if isinstance(probabilities, dict) else None
    if all(answer.keys() == first.keys() for answer in answers) and (
        classes is None or all(answer["probabilities"].keys() == classes for answer in answers)
    ):
        columns: dict[str, list[Any]] = {}
        for name in first:
            if name == "probabilities" and classes is not None:
                for label in classes:
                    columns[f"{PROBABILITY_PREFIX}{label}"] = [answer[name][label] for answer in answers]
            elif name != "prediction_id":
                columns[name] = [answer[name] for answer in answers]
        return columns
    columns = {}
    for row, answer in enumerate(answers):
        for name, value in flatten_output(answer):
            _column(columns, name, row).append(value)
    for column in columns.values():
        column.extend([None] * (len(answers) - len(column)))
    return columns


def _column(columns: dict[str, list[Any]], name: str, row: int) -> list[Any]:
    """Column `name`, padded with None up to `row` (a column first seen at a later row)."""
    column = columns.get(name)
    if column is None:
        column = columns[name] = []
    if len(column) < row:
        column.extend([None] * (row - len(column)))
    return column


def flush_on_shutdown(flush: Callable[[], object]) -> None:
    """Flush at interpreter exit and on SIGTERM (which Lambda sends before shutting an
    environment down only when an external extension is registered: predict ships
    `layers/extensions/graceful-shutdown` for that), then defer to the previous handler."""
    atexit.register(flush)
    try:
        previous = signal.getsignal(signal.SIGTERM)

        def _on_sigterm(signum: int, frame: Any) -> None:
            try:
                flush()
            finally:
                if callable(previous):
                    previous(signum, frame)
                elif previous == signal.SIG_DFL:
                    raise SystemExit(0)

        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (some test runners): atexit still applies
        pass
