"""Per-variant serving statistics while a canary runs: requests, errors, latency and the output
mean of the champion and the canary, summed in memory per request (~1 us) and published as one
EMF document per model and variant every `flush_seconds` (the canary alarms compare them).

The output mean is what the output-shift alarm compares: for classification the share of answers
labelled with the model's last class (the positive class of a binary model), for regression the
mean predicted value. Nothing is recorded while no canary runs: the warm path pays nothing then.
Stdlib only (predict's cold-start path).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# metric names (infra/constructs/alarms.py builds the canary alarms from these)
VARIANT_REQUESTS = "VariantRequests"
VARIANT_ERRORS = "VariantErrors"
VARIANT_LATENCY_MS = "VariantLatencyMs"  # the period's average handler-side latency of the variant
VARIANT_OUTPUT_MEAN = "VariantOutputMean"
VARIANT_DIMENSION = "variant"


@dataclass
class VariantWindow:
    """What one variant of one model answered since the last flush."""

    model: str
    variant: str
    version: int
    requests: int = 0
    errors: int = 0
    latency_seconds: float = 0.0
    outputs: int = 0
    output_sum: float = 0.0

    def metrics(self) -> dict[str, tuple[float, str]]:
        """Metric name -> (value, unit); latency and output only when something was answered."""
        values: dict[str, tuple[float, str]] = {
            VARIANT_REQUESTS: (self.requests, "Count"),
            VARIANT_ERRORS: (self.errors, "Count"),
        }
        answered = self.requests - self.errors
        if answered > 0:
            values[VARIANT_LATENCY_MS] = (1000 * self.latency_seconds / answered, "Milliseconds")
        if self.outputs:
            values[VARIANT_OUTPUT_MEAN] = (self.output_sum / self.outputs, "None")
        return values


def output_values(predictions: list[dict], positive_label: str | None) -> tuple[int, float]:
    """(count, sum) of the answers' output: 1 per answer labelled `positive_label` (classification),
    else each answer's value (regression)."""
    if positive_label is not None:
        return len(predictions), float(sum(1 for p in predictions if p.get("label") == positive_label))
    return len(predictions), float(sum(p["value"] for p in predictions))


class VariantMetrics:
    """Accumulates per (model, variant) and hands out the windows that are due."""

    def __init__(self, flush_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._windows: dict[tuple[str, str], VariantWindow] = {}
        self._retired: list[VariantWindow] = []  # windows of a version the variant no longer runs
        self._opened_at: float | None = None

    def record(
        self,
        model: str,
        variant: str,
        version: int,
        *,
        seconds: float,
        error: bool = False,
        outputs: tuple[int, float] = (0, 0.0),
    ) -> None:
        window = self._windows.get((model, variant))
        if window is None or window.version != version:
            if window is not None and window.requests:
                self._retired.append(window)
            window = self._windows[(model, variant)] = VariantWindow(model, variant, version)
        if self._opened_at is None:
            self._opened_at = self._clock()
        window.requests += 1
        if error:
            window.errors += 1
            return
        window.latency_seconds += seconds
        window.outputs += outputs[0]
        window.output_sum += outputs[1]

    def due(self) -> list[VariantWindow]:
        """The windows to publish when `flush_seconds` have passed since the first record (else [])."""
        if self._opened_at is None or self._clock() - self._opened_at < self.flush_seconds:
            return []
        return self.flush()

    def flush(self) -> list[VariantWindow]:
        windows = [*self._retired, *(w for w in self._windows.values() if w.requests)]
        self._windows, self._retired, self._opened_at = {}, [], None
        return windows
