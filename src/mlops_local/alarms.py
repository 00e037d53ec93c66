"""The template's alarms evaluated with CloudWatch's rules on local mode's datapoints
(mlops_local.metrics; expressions and rules in mlops_local.alarm_rules).

The stand-in never evaluates alarms and matches dimensions as a subset; CloudWatch matches the
exact dimension set. So local mode keeps its own datapoints (also mirrored to the stand-in for
clients to read) and evaluates each alarm here:

- metric alarms: a statistic (Sum, Average, Minimum, Maximum, SampleCount, pNN) per period over
  the last `EvaluationPeriods` periods, `DatapointsToAlarm` of them breaching, missing data
  treated as the alarm declares; metric-math alarms compute their expression per period from
  their metric queries (arithmetic, comparisons, AND/OR/NOT, IF, FILL, ABS);
- composite alarms: `AlarmRule` (ALARM/OK/INSUFFICIENT_DATA of named alarms, TRUE/FALSE, AND/OR/NOT,
  parentheses), re-evaluated after their children change: ALARM when the rule holds, else OK.

Datapoints come from what local mode knows: EMF lines (custom metrics), each invocation
(AWS/Lambda Invocations, Errors, Throttles (always 0: nothing throttles locally), Duration), each
API request (AWS/ApiGateway Count, 4XXError, 5XXError, Latency, IntegrationLatency per stage, and
per method when the stage enables detailed metrics) and queue depths sampled at each evaluation
(AWS/SQS ApproximateNumberOfMessages*). An alarm whose expression local mode cannot compute stays
INSUFFICIENT_DATA, with the reason in its state; it never stops the runtime. A state change is
published to the alarm's SNS actions in CloudWatch's format.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_local.alarm_rules import NotEmulatedError, Value, parse_math, parse_rule
from mlops_local.deployment import LocalDeployment
from mlops_local.metrics import (
    PERCENTILE,
    SQS_ATTRIBUTES,
    Datapoint,
    Dimensions,
    MetricStore,
    SeriesKey,
    check_statistic,
    dimensions_of,
    statistic,
)

log = logging.getLogger("mlops_local")

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


# --- alarm specifications -----------------------------------------------------------------------


@dataclass(frozen=True)
class MetricStat:
    namespace: str
    metric_name: str
    dimensions: Dimensions
    statistic: str
    period: int


@dataclass(frozen=True)
class MetricQuery:
    id: str
    stat: MetricStat | None
    expression: str | None
    return_data: bool
    label: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


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
    queries: tuple[MetricQuery, ...] = ()  # a metric-math alarm; empty for a single-metric one
    low_sample_count: str = ""  # EvaluateLowSampleCountPercentile
    problem: str = ""  # why local mode cannot evaluate it

    def series(self) -> set[SeriesKey]:
        if self.queries:
            return {(q.stat.namespace, q.stat.metric_name, q.stat.dimensions) for q in self.queries if q.stat}
        return {(self.namespace, self.metric_name, self.dimensions)}


@dataclass(frozen=True)
class CompositeSpec:
    logical_id: str
    name: str
    arn: str
    rule_text: str
    children: tuple[str, ...]  # alarm names, in rule order
    alarm_actions: tuple[str, ...]
    ok_actions: tuple[str, ...]
    insufficient_data_actions: tuple[str, ...]
    description: str | None = None
    rule: Callable[[dict[str, str]], bool] | None = field(default=None, compare=False)
    problem: str = ""


@dataclass(frozen=True)
class StateChange:
    alarm: str
    old: str
    new: str
    reason: str
    at: datetime


def _actions(props: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    enabled = props.get("ActionsEnabled", True) not in (False, "false", "False")
    return {
        key: tuple(props.get(key, []) if enabled else [])
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions")
    }


def _query(raw: dict[str, Any], alarm_period: int | None) -> MetricQuery:
    stat = None
    if "MetricStat" in raw:
        metric_stat = raw["MetricStat"]
        metric = metric_stat["Metric"]
        check_statistic(metric_stat["Stat"])
        stat = MetricStat(
            metric["Namespace"],
            metric["MetricName"],
            dimensions_of(metric.get("Dimensions", [])),
            metric_stat["Stat"],
            int(metric_stat.get("Period", alarm_period or 60)),
        )
    elif "Expression" not in raw:
        raise NotEmulatedError(f"query {raw.get('Id')} has neither MetricStat nor Expression")
    return MetricQuery(raw["Id"], stat, raw.get("Expression"), bool(raw.get("ReturnData", True)), raw.get("Label"), raw)


def alarm_specs(deployment: LocalDeployment) -> list[AlarmSpec]:
    specs = []
    for resource in deployment.template.of_type("AWS::CloudWatch::Alarm"):
        props = deployment.resolve(resource.properties)
        evaluation_periods = int(props["EvaluationPeriods"])
        actions = _actions(props)
        common = {
            "logical_id": resource.logical_id,
            "name": deployment.names[resource.logical_id],
            "evaluation_periods": evaluation_periods,
            "datapoints_to_alarm": int(props.get("DatapointsToAlarm", evaluation_periods)),
            "threshold": float(props.get("Threshold", 0)),
            "comparison": props["ComparisonOperator"],
            "treat_missing_data": props.get("TreatMissingData", "missing"),
            "alarm_actions": actions["AlarmActions"],
            "ok_actions": actions["OKActions"],
            "insufficient_data_actions": actions["InsufficientDataActions"],
            "description": props.get("AlarmDescription"),
            "arn": deployment.resolve({"Fn::GetAtt": [resource.logical_id, "Arn"]}),
            "low_sample_count": props.get("EvaluateLowSampleCountPercentile", ""),
        }
        try:
            specs.append(_metric_alarm(props, common))
        except (NotEmulatedError, KeyError, TypeError, ValueError) as error:
            reason = f"not evaluated locally: {error}"
            log.warning("alarm %s: %s", common["name"], reason)
            specs.append(
                AlarmSpec(
                    namespace="",
                    metric_name=str(props.get("MetricName", "")),
                    dimensions=frozenset(),
                    statistic="",
                    period=int(props.get("Period", 60)),
                    problem=reason,
                    **common,
                )
            )
    return specs


def _metric_alarm(props: dict[str, Any], common: dict[str, Any]) -> AlarmSpec:
    if "ThresholdMetricId" in props:
        raise NotEmulatedError("anomaly-detection bands (ThresholdMetricId) are not emulated")
    if "Metrics" in props:
        queries = tuple(_query(raw, props.get("Period")) for raw in props["Metrics"])
        returned = [q for q in queries if q.return_data]
        if len(returned) != 1:
            raise NotEmulatedError("a metric-math alarm returns exactly one query")
        ids = {q.id for q in queries}
        for query in queries:
            if query.expression is not None:
                unknown = parse_math(query.expression)[1] - ids
                if unknown:
                    raise NotEmulatedError(f"expression {query.expression!r} reads unknown ids {sorted(unknown)}")
        period = returned[0].stat.period if returned[0].stat else int(returned[0].raw.get("Period") or 0)
        period = period or max(q.stat.period for q in queries if q.stat)
        return AlarmSpec(
            namespace="", metric_name="", dimensions=frozenset(), statistic="", period=period, queries=queries, **common
        )
    name = props.get("ExtendedStatistic") or props.get("Statistic", "Average")
    check_statistic(name)
    return AlarmSpec(
        namespace=props["Namespace"],
        metric_name=props["MetricName"],
        dimensions=dimensions_of(props.get("Dimensions", [])),
        statistic=name,
        period=int(props["Period"]),
        **common,
    )


def composite_specs(deployment: LocalDeployment, alarms: Sequence[AlarmSpec]) -> list[CompositeSpec]:
    resources = list(deployment.template.of_type("AWS::CloudWatch::CompositeAlarm"))
    arns = {spec.arn: spec.name for spec in alarms}
    for resource in resources:
        arns[deployment.resolve({"Fn::GetAtt": [resource.logical_id, "Arn"]})] = deployment.names[resource.logical_id]
    known = set(arns.values())
    specs = []
    for resource in resources:
        props = deployment.resolve(resource.properties)
        actions = _actions(props)
        name = deployment.names[resource.logical_id]
        rule_text = str(props["AlarmRule"])
        common = {
            "logical_id": resource.logical_id,
            "name": name,
            "arn": deployment.resolve({"Fn::GetAtt": [resource.logical_id, "Arn"]}),
            "rule_text": rule_text,
            "alarm_actions": actions["AlarmActions"],
            "ok_actions": actions["OKActions"],
            "insufficient_data_actions": actions["InsufficientDataActions"],
            "description": props.get("AlarmDescription"),
        }
        try:
            predicate, referenced = parse_rule(rule_text)
            children = [arns.get(child, child) for child in referenced]
            unknown = sorted(set(children) - known)
            if unknown:
                raise NotEmulatedError(f"the rule names alarms the template does not declare: {unknown}")
            by_reference = dict(zip(referenced, children, strict=True))
            specs.append(
                CompositeSpec(
                    children=tuple(dict.fromkeys(children)),
                    rule=lambda states, p=predicate, m=by_reference: p({ref: states[n] for ref, n in m.items()}),
                    **common,
                )
            )
        except NotEmulatedError as error:
            log.warning("composite alarm %s: not evaluated locally: %s", name, error)
            specs.append(CompositeSpec(children=(), problem=f"not evaluated locally: {error}", **common))
    return specs


# --- evaluation ----------------------------------------------------------------------------------


def _period_value(spec: AlarmSpec, store: MetricStore, start: float) -> tuple[Value, bool]:
    """The alarm's value for the period starting at `start`, and whether the period had too few
    samples for its percentile (EvaluateLowSampleCountPercentile=ignore)."""
    end = start + spec.period
    if not spec.queries:
        values = store.values(spec.namespace, spec.metric_name, spec.dimensions, start, end)
        if not values:
            return None, False
        percentile = PERCENTILE.match(spec.statistic)
        if percentile and spec.low_sample_count == "ignore":
            needed = 10 / (1 - float(percentile.group(1)) / 100)
            if len(values) < needed:
                return None, True
        return statistic(values, spec.statistic), False
    env: dict[str, Value] = {}
    for query in spec.queries:
        if query.stat is not None:
            stat = query.stat
            values = store.values(stat.namespace, stat.metric_name, stat.dimensions, start, start + stat.period)
            env[query.id] = statistic(values, stat.statistic) if values else None
    pending = [q for q in spec.queries if q.expression is not None]
    for _ in range(len(pending)):  # expressions may read each other; resolve in dependency order
        for query in list(pending):
            expression, reads = parse_math(query.expression or "")
            if reads <= set(env):
                env[query.id] = expression(env)
                pending.remove(query)
    returned = next(q for q in spec.queries if q.return_data)
    return env.get(returned.id), False


def evaluate(spec: AlarmSpec, store: MetricStore, now: float, current: str) -> tuple[str, str]:
    """The alarm's state at `now` and a reason, following CloudWatch's evaluation rules."""
    if spec.problem:
        return "INSUFFICIENT_DATA", spec.problem
    # periods aligned to the period boundary; the newest one is the period containing `now`
    newest_start = math.floor(now / spec.period) * spec.period
    outcomes: list[bool | None] = []  # True breaching, False ok, None missing
    values: list[Value] = []
    low_samples = 0
    for i in range(spec.evaluation_periods):
        value, too_few = _period_value(spec, store, newest_start - i * spec.period)
        low_samples += too_few
        values.append(value)
        outcomes.append(_COMPARE[spec.comparison](value, spec.threshold) if value is not None else None)
    present = [o for o in outcomes if o is not None]
    treat = spec.treat_missing_data
    if not present:
        if low_samples:
            return current, "too few samples for the percentile; state kept (EvaluateLowSampleCountPercentile=ignore)"
        if treat == "breaching":
            return "ALARM", f"no datapoints in {spec.evaluation_periods} period(s), treated as breaching"
        if treat == "notBreaching":
            return "OK", f"no datapoints in {spec.evaluation_periods} period(s), treated as not breaching"
        if treat == "ignore":
            return current, "no datapoints; state kept (missing data ignored)"
        return "INSUFFICIENT_DATA", f"no datapoints in {spec.evaluation_periods} period(s)"
    filled = [o if o is not None else (treat == "breaching") for o in outcomes]
    breaching = sum(1 for o in (filled if treat in {"breaching", "notBreaching"} else present) if o)
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
    if breaching >= spec.datapoints_to_alarm:
        return "ALARM", (
            f"Threshold Crossed: {breaching} out of the last {spec.evaluation_periods} datapoints [{shown}] "
            f"were {spec.comparison} {spec.threshold:g}"
        )
    return (
        "OK",
        f"{breaching} of the last {spec.evaluation_periods} datapoints [{shown}] breached (needs "
        f"{spec.datapoints_to_alarm})",
    )


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


class AlarmEvaluator:
    def __init__(
        self,
        deployment: LocalDeployment,
        store: MetricStore,
        log_dir: Path,
        *,
        kept_states: dict[str, str] | None = None,
    ) -> None:
        """`kept_states`: alarm states saved by an earlier run (by alarm name), kept where still declared."""
        self.deployment = deployment
        self.store = store
        self.states: dict[str, str] = {}
        self.changed_at: dict[str, datetime] = {}
        self.changes: list[StateChange] = []
        self.notifications_log = log_dir / "notifications.log"
        self._unmirrored: list[Datapoint] = []
        self._rewrites: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # saved states wait for their alarms: a contract's alarms may be declared only after a re-synthesis
        self._kept_states = dict(kept_states or {})
        self.reload()

    def reload(self) -> tuple[list[str], list[str]]:
        """Read the alarms from the deployment's (possibly new) template: alarms still declared keep
        their state, new ones start INSUFFICIENT_DATA and are evaluated. Returns (added, removed)."""
        with self._lock:
            specs = alarm_specs(self.deployment)
            composites = composite_specs(self.deployment, specs)
            started = datetime.now(UTC)
            names = [s.name for s in specs] + [c.name for c in composites]
            previous = self._kept_states | self.states
            added = [name for name in names if name not in self.states]
            removed = [name for name in self.states if name not in names]
            self.specs, self.composites = specs, composites
            self.states = {name: previous.get(name, "INSUFFICIENT_DATA") for name in names}
            self.changed_at = {name: self.changed_at.get(name, started) for name in names}
            self._by_series = {}
            for spec in self.specs:
                for key in spec.series():
                    self._by_series.setdefault(key, []).append(spec)
            self._arn_of = {s.name: s.arn for s in self.specs} | {c.name: c.arn for c in self.composites}
        return added, removed

    def rewrite_descriptions(self, old: str, new: str) -> None:
        """Notifications write `new` for `old` in descriptions (a deployed URL served locally elsewhere)."""
        self._rewrites.append((old, new))

    # --- datapoints in ---------------------------------------------------------------------------

    def record_emf(self, document: dict[str, Any]) -> None:
        self.record(self.store.add_emf(document), stored=True)

    def record(self, points: Sequence[Datapoint], *, stored: bool = False) -> list[StateChange]:
        """Store `points` (unless already stored) and evaluate the alarms that read their series."""
        if not stored:
            self.store.add(points)
        keys = {point.key for point in points}
        affected = {id(spec): spec for key in keys for spec in self._by_series.get(key, [])}
        with self._lock:
            self._unmirrored.extend(points)
        return self._evaluate(list(affected.values()), time.time()) if affected else []

    def sample_queues(self, now: float) -> list[Datapoint]:
        """Queue depths the alarms read (AWS/SQS, QueueName dimension), sampled from the stand-in now."""
        wanted = {
            key
            for key in self._by_series
            if key[0] == "AWS/SQS" and key[1] in SQS_ATTRIBUTES and {k for k, _ in key[2]} == {"QueueName"}
        }
        points = []
        sqs = self.deployment.client("sqs") if wanted else None
        for namespace, metric, dims in wanted:
            queue = dict(dims)["QueueName"]
            try:
                attributes = sqs.get_queue_attributes(  # type: ignore[union-attr]
                    QueueUrl=f"{self.deployment.endpoint}/{self.deployment.account}/{queue}",
                    AttributeNames=[SQS_ATTRIBUTES[metric]],
                )["Attributes"]
            except Exception:  # a queue the stand-in does not hold publishes nothing, as in AWS
                log.debug("cannot sample queue %s", queue, exc_info=True)
                continue
            points.append(Datapoint(namespace, metric, dims, float(attributes[SQS_ATTRIBUTES[metric]]), now, "Count"))
        return self.store.add(points)

    # --- evaluation ------------------------------------------------------------------------------

    def evaluate_all(self, now: float | None = None) -> list[StateChange]:
        now = time.time() if now is None else now
        self.sample_queues(now)
        changes = self._evaluate(self.specs, now)
        self._mirror()
        return changes

    def _evaluate(self, specs: Sequence[AlarmSpec], now: float) -> list[StateChange]:
        at = datetime.fromtimestamp(now, UTC)
        changes = []
        with self._lock:
            changed_children = []
            for spec in specs:
                old = self.states[spec.name]
                try:
                    new, reason = evaluate(spec, self.store, now, old)
                except Exception as error:  # never let one alarm stop the runtime
                    log.warning("alarm %s: evaluation failed", spec.name, exc_info=True)
                    new, reason = "INSUFFICIENT_DATA", f"not evaluated locally: {type(error).__name__}: {error}"
                if new != old:
                    changes.append(self._change(spec.name, old, new, reason, at))
                    self._notify_metric_alarm(spec, changes[-1])
                    changed_children.append(spec.name)
            changes += self._evaluate_composites(changed_children, at)
        return changes

    def _evaluate_composites(self, changed: list[str], at: datetime) -> list[StateChange]:
        """Composites whose children changed (and any composite never evaluated), until nothing moves."""
        changes = []
        for _ in range(len(self.composites) + 1):
            moved = []
            for composite in self.composites:
                old = self.states[composite.name]
                if old != "INSUFFICIENT_DATA" and not set(changed) & set(composite.children):
                    continue
                if composite.rule is None:
                    continue  # not evaluated locally: stays INSUFFICIENT_DATA (its problem is logged)
                new = "ALARM" if composite.rule(self.states) else "OK"
                if new == old:
                    continue
                triggering = [c for c in composite.children if c in changed] or list(composite.children)
                trigger = max(triggering, key=lambda name: self.changed_at[name])
                reason = (
                    f"{self._arn_of[trigger]} transitioned to {self.states[trigger]} at "
                    f"{self.changed_at[trigger]:%A %d %B, %Y %H:%M:%S} UTC"
                )
                change = self._change(composite.name, old, new, reason, at)
                changes.append(change)
                self._notify_composite(composite, change, triggering)
                moved.append(composite.name)
            if not moved:
                break
            changed = moved
        return changes

    def _change(self, name: str, old: str, new: str, reason: str, at: datetime) -> StateChange:
        self.states[name] = new
        self.changed_at[name] = at
        change = StateChange(name, old, new, reason, at)
        self.changes.append(change)
        return change

    def start(self, every_seconds: float = 10.0) -> None:
        def loop() -> None:
            while not self._stop.wait(every_seconds):
                try:
                    self.evaluate_all()
                except Exception:  # the stand-in may be stopping; the next round tries again
                    log.warning("alarm evaluation round failed", exc_info=True)

        self._thread = threading.Thread(target=loop, name="alarm-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # --- notifications ---------------------------------------------------------------------------

    def _base_message(self, name: str, arn: str, description: str | None, change: StateChange) -> dict[str, Any]:
        for old, new in self._rewrites:
            description = description.replace(old, new) if description else description
        return {
            "AlarmName": name,
            "AlarmDescription": description,
            "AWSAccountId": self.deployment.account,
            "AlarmConfigurationUpdatedTimestamp": None,
            "NewStateValue": change.new,
            "NewStateReason": change.reason,
            "StateChangeTime": _timestamp(change.at),
            "Region": self.deployment.region,
            "AlarmArn": arn,
            "OldStateValue": change.old,
        }

    def _notify_metric_alarm(self, spec: AlarmSpec, change: StateChange) -> None:
        message = self._base_message(spec.name, spec.arn, spec.description, change) | {
            "OKActions": list(spec.ok_actions),
            "AlarmActions": list(spec.alarm_actions),
            "InsufficientDataActions": list(spec.insufficient_data_actions),
            "Trigger": _trigger(spec),
        }
        self._publish(spec.name, change, message, spec.alarm_actions, spec.ok_actions, spec.insufficient_data_actions)

    def _notify_composite(self, composite: CompositeSpec, change: StateChange, triggering: list[str]) -> None:
        message = self._base_message(composite.name, composite.arn, composite.description, change) | {
            "OKActions": list(composite.ok_actions),
            "AlarmActions": list(composite.alarm_actions),
            "InsufficientDataActions": list(composite.insufficient_data_actions),
            "AlarmRule": composite.rule_text,
            "TriggeringChildren": [
                {
                    "Arn": self._arn_of[child],
                    "State": {"Value": self.states[child], "Timestamp": _timestamp(self.changed_at[child])},
                }
                for child in triggering
            ],
        }
        self._publish(
            composite.name,
            change,
            message,
            composite.alarm_actions,
            composite.ok_actions,
            composite.insufficient_data_actions,
        )

    def _publish(
        self,
        name: str,
        change: StateChange,
        message: dict[str, Any],
        alarm_actions: tuple[str, ...],
        ok_actions: tuple[str, ...],
        insufficient_data_actions: tuple[str, ...],
    ) -> None:
        targets = {"ALARM": alarm_actions, "OK": ok_actions, "INSUFFICIENT_DATA": insufficient_data_actions}[change.new]
        try:
            self.deployment.client("cloudwatch").set_alarm_state(
                AlarmName=name, StateValue=change.new, StateReason=change.reason[:1000]
            )
        except Exception:  # the listing on the stand-in is a convenience
            log.debug("could not mirror the state of %s", name, exc_info=True)
        self._put_state_change_event(name, message.get("AlarmArn", ""), message.get("AlarmDescription"), change)
        sns = self.deployment.client("sns") if targets else None
        for topic_arn in targets:
            try:
                sns.publish(  # type: ignore[union-attr]
                    TopicArn=topic_arn,
                    Subject=f'{change.new}: "{name}" in {self.deployment.region}'[:100],
                    Message=json.dumps(message),
                )
            except Exception:
                log.warning("could not publish %s's state change to %s", name, topic_arn, exc_info=True)
        line = (
            f"{change.at:%H:%M:%S} ALARM {name}: {change.old} -> {change.new} ({change.reason}); "
            f"notified {list(targets)}"
        )
        with self.notifications_log.open("a") as notifications:
            notifications.write(line + "\n")
        # on the console only what an operator would be paged about; every change is in the log file
        log.log(logging.WARNING if "ALARM" in (change.old, change.new) else logging.INFO, "%s", line)

    def _put_state_change_event(self, name: str, arn: str, description: str | None, change: StateChange) -> None:
        """CloudWatch puts every alarm state change on the account's default bus (whatever the alarm's
        actions); rules there start work on an alarm (retrain_model on a model's drift or quality alarm)."""
        detail = {
            "alarmName": name,
            "state": {"value": change.new, "reason": change.reason[:1000], "timestamp": _timestamp(change.at)},
            "previousState": {"value": change.old},
            "configuration": {"description": description},
        }
        try:
            self.deployment.client("events").put_events(
                Entries=[
                    {
                        "Source": "aws.cloudwatch",
                        "DetailType": "CloudWatch Alarm State Change",
                        "Resources": [arn] if arn else [],
                        "Detail": json.dumps(detail),
                        "Time": change.at,
                    }
                ]
            )
        except Exception:
            log.warning("could not put %s's state change on the default bus", name, exc_info=True)

    def _mirror(self) -> None:
        """Mirror datapoints to the stand-in (batched) so ordinary clients can read the metrics."""
        with self._lock:
            points, self._unmirrored = self._unmirrored, []
        cloudwatch = self.deployment.client("cloudwatch") if points else None
        by_namespace: dict[str, list[Datapoint]] = {}
        for point in points:
            by_namespace.setdefault(point.namespace, []).append(point)
        for namespace, found in by_namespace.items():
            for start in range(0, len(found), 500):
                try:
                    cloudwatch.put_metric_data(  # type: ignore[union-attr]
                        Namespace=namespace,
                        MetricData=[
                            {
                                "MetricName": point.name,
                                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(point.dimensions)],
                                "Value": point.value,
                                "Timestamp": datetime.fromtimestamp(point.timestamp, UTC),
                            }
                            for point in found[start : start + 500]
                        ],
                    )
                except Exception:  # mirroring is a convenience; evaluation uses the local store
                    log.debug("could not mirror %d datapoints of %s", len(found), namespace, exc_info=True)


def _trigger(spec: AlarmSpec) -> dict[str, Any]:
    common = {
        "Period": spec.period,
        "EvaluationPeriods": spec.evaluation_periods,
        "DatapointsToAlarm": spec.datapoints_to_alarm,
        "ComparisonOperator": spec.comparison,
        "Threshold": spec.threshold,
        "TreatMissingData": spec.treat_missing_data,
        "EvaluateLowSampleCountPercentile": spec.low_sample_count,
    }
    if spec.queries:
        return {
            "Metrics": [
                {
                    key: value
                    for key, value in {
                        "Id": q.id,
                        "Expression": q.expression,
                        "Label": q.label,
                        "ReturnData": q.return_data,
                        "MetricStat": {
                            "Metric": {
                                "Dimensions": [{"value": v, "name": k} for k, v in sorted(q.stat.dimensions)],
                                "MetricName": q.stat.metric_name,
                                "Namespace": q.stat.namespace,
                            },
                            "Period": q.stat.period,
                            "Stat": q.stat.statistic,
                        }
                        if q.stat
                        else None,
                    }.items()
                    if value is not None
                }
                for q in spec.queries
            ],
            **common,
        }
    extended = bool(PERCENTILE.match(spec.statistic))
    return {
        "MetricName": spec.metric_name,
        "Namespace": spec.namespace,
        "StatisticType": "ExtendedStatistic" if extended else "Statistic",
        **({"ExtendedStatistic": spec.statistic} if extended else {"Statistic": spec.statistic.upper()}),
        "Unit": None,
        "Dimensions": [{"value": v, "name": k} for k, v in sorted(spec.dimensions)],
        **common,
    }
