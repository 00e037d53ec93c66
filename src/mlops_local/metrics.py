"""Local mode's metric datapoints: what its functions, API and queues publish, kept per series
(namespace, name, exact dimension set) in time order, and CloudWatch's statistics over them."""

from __future__ import annotations

import bisect
import math
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_local.alarm_rules import NotEmulatedError

Dimensions = frozenset[tuple[str, str]]
SeriesKey = tuple[str, str, Dimensions]
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
# CloudWatch metric -> the SQS queue attribute it reports
SQS_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}


@dataclass(frozen=True)
class Datapoint:
    namespace: str
    name: str
    dimensions: Dimensions
    value: float
    timestamp: float  # epoch seconds
    unit: str = "None"

    @property
    def key(self) -> SeriesKey:
        return (self.namespace, self.name, self.dimensions)


def dimensions_of(pairs: Iterable[dict[str, Any]]) -> Dimensions:
    return frozenset((d["Name"], str(d["Value"])) for d in pairs)


# --- datapoints of what local mode runs ------------------------------------------------------


def lambda_datapoints(function_name: str, ok: bool, duration_ms: float, at: float) -> list[Datapoint]:
    """What Lambda publishes for one invocation (FunctionName dimension)."""
    dims = frozenset({("FunctionName", function_name)})
    return [
        Datapoint("AWS/Lambda", "Invocations", dims, 1.0, at, "Count"),
        Datapoint("AWS/Lambda", "Errors", dims, 0.0 if ok else 1.0, at, "Count"),
        Datapoint("AWS/Lambda", "Throttles", dims, 0.0, at, "Count"),
        Datapoint("AWS/Lambda", "Duration", dims, duration_ms, at, "Milliseconds"),
    ]


@dataclass(frozen=True)
class ApiRequest:
    """One request the local API answered (resource: the route template, None when no route matched)."""

    api_name: str
    stage: str
    method: str
    resource: str | None
    status: int
    latency_ms: float
    integration_ms: float | None
    at: float


def api_datapoints(request: ApiRequest, *, detailed: bool) -> list[Datapoint]:
    """What API Gateway publishes for one request: per stage, and per method with detailed metrics."""
    sets = [frozenset({("ApiName", request.api_name), ("Stage", request.stage)})]
    if detailed and request.resource is not None:
        sets.append(sets[0] | {("Method", request.method), ("Resource", request.resource)})
    points = []
    for dims in sets:
        values = [
            ("Count", 1.0, "Count"),
            ("4XXError", float(400 <= request.status < 500), "Count"),
            ("5XXError", float(request.status >= 500), "Count"),
            ("Latency", request.latency_ms, "Milliseconds"),
        ]
        if request.integration_ms is not None:
            values.append(("IntegrationLatency", request.integration_ms, "Milliseconds"))
        points += [Datapoint("AWS/ApiGateway", name, dims, value, request.at, unit) for name, value, unit in values]
    return points


# --- the store -----------------------------------------------------------------------------


class MetricStore:
    """Datapoints by series (namespace, name, exact dimension set), each kept in time order."""

    def __init__(self) -> None:
        self.points: list[Datapoint] = []  # every datapoint in arrival order, for readers
        self._series: dict[SeriesKey, tuple[list[float], list[float]]] = {}
        self._lock = threading.Lock()

    def add(self, points: Iterable[Datapoint]) -> list[Datapoint]:
        added = list(points)
        with self._lock:
            for point in added:
                times, values = self._series.setdefault(point.key, ([], []))
                index = bisect.bisect_right(times, point.timestamp)
                times.insert(index, point.timestamp)
                values.insert(index, point.value)
            self.points.extend(added)
        return added

    def add_emf(self, document: dict[str, Any]) -> list[Datapoint]:
        """Datapoints of one EMF document (every metric, every declared dimension set)."""
        meta = document["_aws"]
        timestamp = float(meta.get("Timestamp", time.time() * 1000)) / 1000
        found = []
        for directive in meta["CloudWatchMetrics"]:
            for dimension_set in directive.get("Dimensions", [[]]):
                dimensions = frozenset((key, str(document[key])) for key in dimension_set)
                for metric in directive["Metrics"]:
                    raw = document.get(metric["Name"])
                    for value in raw if isinstance(raw, list) else [raw]:
                        if isinstance(value, int | float):
                            found.append(
                                Datapoint(
                                    directive["Namespace"],
                                    metric["Name"],
                                    dimensions,
                                    float(value),
                                    timestamp,
                                    metric.get("Unit", "None"),
                                )
                            )
        return self.add(found)

    def values(self, namespace: str, name: str, dimensions: Dimensions, start: float, end: float) -> list[float]:
        with self._lock:
            series = self._series.get((namespace, name, dimensions))
            if series is None:
                return []
            times, values = series
            return values[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]


def statistic(values: Sequence[float], name: str) -> float:
    if name == "Maximum":
        return max(values)
    if name == "Minimum":
        return min(values)
    if name == "Sum":
        return sum(values)
    if name == "SampleCount":
        return float(len(values))
    if name == "Average":
        return sum(values) / len(values)
    found = PERCENTILE.match(name)
    if found:  # nearest rank over the raw values (CloudWatch approximates; exact here)
        ordered = sorted(values)
        rank = max(1, math.ceil(float(found.group(1)) / 100 * len(ordered)))
        return ordered[rank - 1]
    raise NotEmulatedError(f"statistic {name} is not emulated")


def check_statistic(name: str) -> None:
    if name not in {"Maximum", "Minimum", "Sum", "SampleCount", "Average"} and not PERCENTILE.match(name):
        raise NotEmulatedError(f"statistic {name} is not emulated")
