"""Sampled inference traffic, buffered in memory and written to S3 in JSONL batches.

Why a buffer: one S3 PUT per request would cost ~10-50 ms and a request per prediction. Instead
each warm container keeps the sampled records (the contract's feature values, never the request's
other fields, and the outputs) per model and writes one
object under `captures/<model>/...` when the model's buffer holds `max_records` or its oldest
record is older than `max_age_seconds`. The rules are checked after each request (Lambda freezes
the process between invocations, so there is no timer), and `flush()` writes everything, for
shutdown hooks (`flush_on_shutdown`).

Trade-off: records buffered in a container that dies without a shutdown signal (crash, timeout,
an environment recycled without a registered extension) are lost, and an idle container holds
its last records until its next request or its shutdown. They are monitoring samples, not a
ledger: drift statistics tolerate a few missing records, while a per-request PUT would tax
every prediction. The request that triggers a flush pays the PUT.
"""

from __future__ import annotations

import atexit
import json
import logging
import random
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlops.layout import capture_key
from mlops.ports import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    first_at: float
    # (epoch seconds, version, feature names, their values, prediction): serialised only at flush
    # time. Only the contract's feature values are kept, never the request record itself: a
    # client's extra fields (ids, an 8 MB note) must not stay in memory until the flush.
    rows: list[tuple[float, int, tuple[str, ...], tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class FlushResult:
    model: str
    key: str | None
    records: int  # rows written (or lost, when `error` is set)
    error: str | None = None
    skipped: int = 0  # rows JSON cannot carry (a non-finite number): left out, never the whole batch


class CaptureBuffer:
    """Per-model buffers of sampled (input, output) pairs, flushed to `bucket` by count or age."""

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
        return sum(len(p.rows) for p in self._pending.values())

    def add(
        self,
        model: str,
        version: int,
        features: Sequence[str],
        records: Sequence[dict[str, Any]],
        predictions: Sequence[dict[str, Any]],
        sample_rate: float,
    ) -> int:
        """Keep each record's `features` values with probability `sample_rate`; returns how many were kept."""
        if sample_rate <= 0:
            return 0
        now = self._clock()
        pending = self._pending.get(model)
        if pending is None:
            pending = self._pending[model] = _Pending(now)
        elif not pending.rows:
            pending.first_at = now
        rows = pending.rows
        before = len(rows)
        names = tuple(features)
        if sample_rate >= 1:
            rows.extend(
                (now, version, names, tuple(map(record.get, names)), prediction)
                for record, prediction in zip(records, predictions, strict=True)
            )
        else:
            draw = self._random
            rows.extend(
                (now, version, names, tuple(map(record.get, names)), prediction)
                for record, prediction in zip(records, predictions, strict=True)
                if draw() < sample_rate
            )
        return len(rows) - before

    def due(self) -> list[str]:
        """Models whose buffer is full or whose oldest record is older than max_age_seconds."""
        if not self._pending:
            return []
        now = self._clock()
        return [
            model
            for model, pending in self._pending.items()
            if pending.rows
            and (len(pending.rows) >= self.max_records or now - pending.first_at >= self.max_age_seconds)
        ]

    def flush_due(self) -> list[FlushResult]:
        """Flush the buffers that are due (call after each request). Never raises."""
        return [self._flush_model(model) for model in self.due()]

    def flush(self) -> list[FlushResult]:
        """Flush every non-empty buffer (shutdown). Never raises."""
        return [self._flush_model(model) for model, pending in list(self._pending.items()) if pending.rows]

    def _flush_model(self, model: str) -> FlushResult:
        pending = self._pending.pop(model)
        lines, skipped = _jsonl(pending)
        if skipped:
            log.warning("%d %s capture records cannot be serialised as JSON; skipped", skipped, model)
        if not lines:
            return FlushResult(model, None, 0, skipped=skipped)
        at = datetime.fromtimestamp(self._clock(), UTC)
        key = capture_key(model, at, self._batch_id())
        body = ("\n".join(lines) + "\n").encode()
        try:
            self._store.put_bytes(self.bucket, key, body, content_type="application/x-ndjson")
        except Exception as error:  # capture must never fail a prediction
            log.warning("capture flush of %d %s records failed; dropped", len(lines), model, exc_info=True)
            return FlushResult(model, None, len(lines), error=f"{type(error).__name__}: {error}", skipped=skipped)
        return FlushResult(model, key, len(lines), skipped=skipped)


def _jsonl(pending: _Pending) -> tuple[list[str], int]:
    """One JSON line per row, and how many rows could not be serialised (one bad row drops only itself)."""
    lines = []
    skipped = 0
    for at, version, names, values, prediction in pending.rows:
        try:
            lines.append(
                json.dumps(
                    {
                        "at": datetime.fromtimestamp(at, UTC).isoformat(),
                        "version": version,
                        "input": dict(zip(names, values, strict=True)),
                        "output": prediction,
                    },
                    separators=(",", ":"),
                    allow_nan=False,
                )
            )
        except (ValueError, TypeError, RecursionError):  # NaN/inf, a value json cannot encode, a cycle
            skipped += 1
    return lines, skipped


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
