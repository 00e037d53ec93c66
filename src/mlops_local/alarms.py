"""Metrics from the functions' EMF lines, and the template's alarms evaluated with CloudWatch's rules.

The stand-in never evaluates alarms and matches dimensions as a subset; CloudWatch matches the
exact dimension set. So local mode keeps its own datapoints (also forwarded to the stand-in for
clients to read) and evaluates each alarm here: statistic per period, the last
`EvaluationPeriods` periods, `DatapointsToAlarm` of them breaching, missing data treated as the
alarm declares. A state change is published to the alarm's SNS actions in CloudWatch's format.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_local.deployment import LocalDeployment

log = logging.getLogger("mlops_local")

Dimensions = frozenset[tuple[str, str]]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class Datapoint:
    namespace: str
    name: str
    dimensions: Dimensions
    value: float
    timestamp: float  # epoch seconds
    unit: str = "None"


@dataclass(frozen=True)
class AlarmSpec:
    logical_id: str
    name: str
    namespace: str
    metric_name: str
    dimensions: Dimensions
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str
    alarm_actions: tuple[str, ...]
    ok_actions: tuple[str, ...]
    insufficient_data_actions: tuple[str, ...]
    description: str | None = None
    arn: str = ""


@dataclass(frozen=True)
class StateChange:
    alarm: str
    old: str
    new: str
    reason: str
    at: datetime


class MetricStore:
    def __init__(self) -> None:
        self.points: list[Datapoint] = []
        self._lock = threading.Lock()

    def add_emf(self, document: dict[str, Any]) -> list[Datapoint]:
        """Datapoints of one EMF document (every metric, every declared dimension set)."""
        meta = document["_aws"]
        timestamp = float(meta.get("Timestamp", time.time() * 1000)) / 1000
        added = []
        for directive in meta["CloudWatchMetrics"]:
            for dimension_set in directive.get("Dimensions", [[]]):
                dimensions = frozenset((key, str(document[key])) for key in dimension_set)
                for metric in directive["Metrics"]:
                    raw = document.get(metric["Name"])
                    for value in raw if isinstance(raw, list) else [raw]:
                        if isinstance(value, int | float):
                            added.append(
                                Datapoint(
                                    directive["Namespace"],
                                    metric["Name"],
                                    dimensions,
                                    float(value),
                                    timestamp,
                                    metric.get("Unit", "None"),
                                )
                            )
        with self._lock:
            self.points.extend(added)
        return added

    def values(self, namespace: str, name: str, dimensions: Dimensions, start: float, end: float) -> list[float]:
        with self._lock:
            return [
                p.value
                for p in self.points
                if p.namespace == namespace
                and p.name == name
                and p.dimensions == dimensions
                and start <= p.timestamp < end
            ]


def statistic(values: list[float], name: str) -> float:
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
    raise ValueError(f"statistic {name} is not emulated")


def evaluate(spec: AlarmSpec, store: MetricStore, now: float, current: str) -> tuple[str, str]:
    """The alarm's state at `now` and a reason, following CloudWatch's evaluation rules."""
    # periods aligned to the period boundary; the newest one is the period containing `now`
    newest_start = math.floor(now / spec.period) * spec.period
    outcomes: list[bool | None] = []  # True breaching, False ok, None missing
    for i in range(spec.evaluation_periods):
        start = newest_start - i * spec.period
        values = store.values(spec.namespace, spec.metric_name, spec.dimensions, start, start + spec.period)
        outcomes.append(
            _COMPARE[spec.comparison](statistic(values, spec.statistic), spec.threshold) if values else None
        )
    present = [o for o in outcomes if o is not None]
    treat = spec.treat_missing_data
    if not present:
        if treat == "breaching":
            return "ALARM", f"no datapoints in {spec.evaluation_periods} period(s), treated as breaching"
        if treat == "notBreaching":
            return "OK", f"no datapoints in {spec.evaluation_periods} period(s), treated as not breaching"
        if treat == "ignore":
            return current, "no datapoints; state kept (missing data ignored)"
        return "INSUFFICIENT_DATA", f"no datapoints in {spec.evaluation_periods} period(s)"
    filled = [o if o is not None else (treat == "breaching") for o in outcomes]
    breaching = sum(1 for o in (filled if treat in {"breaching", "notBreaching"} else present) if o)
    if breaching >= spec.datapoints_to_alarm:
        return "ALARM", (
            f"Threshold Crossed: {breaching} out of the last {spec.evaluation_periods} datapoints "
            f"were {spec.comparison} {spec.threshold}"
        )
    return (
        "OK",
        f"{breaching} of the last {spec.evaluation_periods} datapoints breached (needs {spec.datapoints_to_alarm})",
    )


def alarm_specs(deployment: LocalDeployment) -> list[AlarmSpec]:
    specs = []
    for resource in deployment.template.of_type("AWS::CloudWatch::Alarm"):
        props = deployment.resolve(resource.properties)
        if "MetricName" not in props:
            raise ValueError(f"alarm {resource.logical_id}: only single-metric alarms are emulated")
        evaluation_periods = int(props["EvaluationPeriods"])
        enabled = props.get("ActionsEnabled", True)
        specs.append(
            AlarmSpec(
                logical_id=resource.logical_id,
                name=deployment.names[resource.logical_id],
                namespace=props["Namespace"],
                metric_name=props["MetricName"],
                dimensions=frozenset((d["Name"], str(d["Value"])) for d in props.get("Dimensions", [])),
                statistic=props.get("Statistic", "Average"),
                period=int(props["Period"]),
                evaluation_periods=evaluation_periods,
                datapoints_to_alarm=int(props.get("DatapointsToAlarm", evaluation_periods)),
                threshold=float(props["Threshold"]),
                comparison=props["ComparisonOperator"],
                treat_missing_data=props.get("TreatMissingData", "missing"),
                alarm_actions=tuple(props.get("AlarmActions", []) if enabled else []),
                ok_actions=tuple(props.get("OKActions", []) if enabled else []),
                insufficient_data_actions=tuple(props.get("InsufficientDataActions", []) if enabled else []),
                description=props.get("AlarmDescription"),
                arn=deployment.resolve({"Fn::GetAtt": [resource.logical_id, "Arn"]}),
            )
        )
    return specs


class AlarmEvaluator:
    def __init__(self, deployment: LocalDeployment, store: MetricStore, log_dir: Path) -> None:
        self.deployment = deployment
        self.store = store
        self.specs = alarm_specs(deployment)
        self.states = {spec.name: "INSUFFICIENT_DATA" for spec in self.specs}
        self.changes: list[StateChange] = []
        self.notifications_log = log_dir / "notifications.log"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record_emf(self, document: dict[str, Any]) -> None:
        points = self.store.add_emf(document)
        self._forward(points)
        self.evaluate_all()

    def evaluate_all(self, now: float | None = None) -> list[StateChange]:
        now = time.time() if now is None else now
        changes = []
        with self._lock:
            for spec in self.specs:
                old = self.states[spec.name]
                new, reason = evaluate(spec, self.store, now, old)
                if new != old:
                    self.states[spec.name] = new
                    change = StateChange(spec.name, old, new, reason, datetime.fromtimestamp(now, UTC))
                    self.changes.append(change)
                    changes.append(change)
                    self._notify(spec, change)
        return changes

    def start(self, every_seconds: float = 10.0) -> None:
        def loop() -> None:
            while not self._stop.wait(every_seconds):
                self.evaluate_all()

        self._thread = threading.Thread(target=loop, name="alarm-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _notify(self, spec: AlarmSpec, change: StateChange) -> None:
        cloudwatch = self.deployment.client("cloudwatch")
        cloudwatch.set_alarm_state(AlarmName=spec.name, StateValue=change.new, StateReason=change.reason[:1000])
        actions = {
            "ALARM": spec.alarm_actions,
            "OK": spec.ok_actions,
            "INSUFFICIENT_DATA": spec.insufficient_data_actions,
        }
        message = {
            "AlarmName": spec.name,
            "AlarmDescription": spec.description,
            "AWSAccountId": self.deployment.account,
            "AlarmConfigurationUpdatedTimestamp": None,
            "NewStateValue": change.new,
            "NewStateReason": change.reason,
            "StateChangeTime": change.at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{change.at.microsecond // 1000:03d}+0000",
            "Region": self.deployment.region,
            "AlarmArn": spec.arn,
            "OldStateValue": change.old,
            "OKActions": list(spec.ok_actions),
            "AlarmActions": list(spec.alarm_actions),
            "InsufficientDataActions": list(spec.insufficient_data_actions),
            "Trigger": {
                "MetricName": spec.metric_name,
                "Namespace": spec.namespace,
                "Statistic": spec.statistic.upper(),
                "Dimensions": [{"name": k, "value": v} for k, v in sorted(spec.dimensions)],
                "Period": spec.period,
                "EvaluationPeriods": spec.evaluation_periods,
                "DatapointsToAlarm": spec.datapoints_to_alarm,
                "StatisticType": "Statistic",
                "Unit": None,
                "ComparisonOperator": spec.comparison,
                "Threshold": spec.threshold,
                "TreatMissingData": spec.treat_missing_data,
            },
        }
        sns = self.deployment.client("sns")
        for topic_arn in actions[change.new]:
            sns.publish(
                TopicArn=topic_arn,
                Subject=f'{change.new}: "{spec.name}" in {self.deployment.region}'[:100],
                Message=json.dumps(message),
            )
        line = f"{change.at:%H:%M:%S} ALARM {spec.name}: {change.old} -> {change.new} ({change.reason}); notified {list(actions[change.new])}"
        with self.notifications_log.open("a") as notifications:
            notifications.write(line + "\n")
        log.warning("%s", line)

    def _forward(self, points: list[Datapoint]) -> None:
        """Mirror datapoints to the stand-in so ordinary clients can read the metrics."""
        cloudwatch = self.deployment.client("cloudwatch")
        for point in points:
            try:
                cloudwatch.put_metric_data(
                    Namespace=point.namespace,
                    MetricData=[
                        {
                            "MetricName": point.name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(point.dimensions)],
                            "Value": point.value,
                            "Timestamp": datetime.fromtimestamp(point.timestamp, UTC),
                        }
                    ],
                )
            except Exception:  # mirroring is a convenience; evaluation uses the local store
                log.debug("could not mirror %s", point.name, exc_info=True)
