"""Wires the template's triggers to the handlers, using the stand-in's own delivery and matching.

- S3 notifications (`Custom::S3BucketNotifications`): the same filters are set on the bucket with
  an SQS queue as destination, so the stand-in decides which keys match and shapes the event.
- Bus rules with an `EventPattern`: the rule is created on the stand-in's bus with an SQS target,
  so the stand-in matches the pattern.
- Rules with a `ScheduleExpression`: a timer, and `fire()` on demand.
A handler failure is retried like an asynchronous Lambda invoke (two retries), then the event
goes to the target's dead-letter queue if the template declares one, else to the failed-events
log: never dropped silently.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from mlops_local.deployment import LocalDeployment
from mlops_local.functions import FunctionRunner
from mlops_local.template import TemplateError

log = logging.getLogger("mlops_local")

ASYNC_ATTEMPTS = 3  # Lambda's asynchronous invoke: the first try and two retries
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Subscription:
    """One queue the runtime drains into one function."""

    name: str
    queue_url: str
    function_id: str
    dead_letter_arn: str | None = None
    max_attempts: int = ASYNC_ATTEMPTS


@dataclass(frozen=True)
class Schedule:
    rule_id: str
    rule_name: str
    expression: str
    interval_seconds: float | None
    function_ids: tuple[str, ...]
    # a target's constant `Input` (EventBridge then sends it instead of the scheduled event), by position
    inputs: tuple[dict[str, Any] | None, ...] = ()


class TriggerWiring:
    def __init__(self, deployment: LocalDeployment, runner: FunctionRunner, log_dir: Path) -> None:
        self.deployment = deployment
        self.runner = runner
        self.failed_log = log_dir / "failed-events.log"
        self.subscriptions: list[Subscription] = []
        self.schedules: dict[str, Schedule] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sqs = deployment.client("sqs")

    # --- wiring -----------------------------------------------------------------------------

    def wire(self) -> None:
        for resource in self.deployment.template.of_type("Custom::S3BucketNotifications"):
            self._wire_bucket_notifications(resource.logical_id, self.deployment.resolve(resource.properties))
        for resource in self.deployment.template.of_type("AWS::Events::Rule"):
            props = self.deployment.resolve(resource.properties)
            if props.get("State", "ENABLED") != "ENABLED":
                continue
            if "ScheduleExpression" in props:
                self._wire_schedule(resource.logical_id, props)
            elif "EventPattern" in props:
                self._wire_rule(resource.logical_id, props)

    def _function_of(self, arn: str, where: str) -> str:
        logical_id = self.deployment.logical_id_of_arn(arn)
        if logical_id is None or logical_id not in self.runner.functions:
            raise TemplateError(f"{where} targets {arn}, which is not a function local mode runs")
        return logical_id

    def _queue(self, name: str) -> tuple[str, str]:
        url = self._sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "900"})["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def _wire_bucket_notifications(self, logical_id: str, props: dict[str, Any]) -> None:
        bucket = props["BucketName"]
        config = props.get("NotificationConfiguration", {})
        unsupported = sorted(set(config) - {"LambdaFunctionConfigurations", "EventBridgeConfiguration"})
        if unsupported:
            raise TemplateError(
                f"{logical_id}: local mode wires only Lambda and EventBridge notifications, not {unsupported}"
            )
        queue_configs = []
        for index, lambda_config in enumerate(config.get("LambdaFunctionConfigurations", [])):
            function_id = self._function_of(lambda_config["LambdaFunctionArn"], logical_id)
            url, arn = self._queue(f"local-s3-{logical_id}-{index}"[:80])
            queue_configs.append(
                {"QueueArn": arn, "Events": lambda_config["Events"], "Filter": lambda_config.get("Filter", {})}
            )
            self.subscriptions.append(Subscription(f"s3:{bucket}", url, function_id))
        notifications: dict[str, Any] = {"QueueConfigurations": queue_configs}
        if "EventBridgeConfiguration" in config:  # the stand-in sends the bucket's events to its default bus
            notifications["EventBridgeConfiguration"] = {}
        self.deployment.client("s3").put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=notifications
        )

    def _wire_rule(self, logical_id: str, props: dict[str, Any]) -> None:
        events = self.deployment.client("events")
        bus = props.get("EventBusName", "default")
        rule_name = self.deployment.names[logical_id]
        pattern = props["EventPattern"]
        events.put_rule(
            Name=rule_name,
            EventBusName=bus,
            EventPattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
            State="ENABLED",
        )
        targets = []
        for index, target in enumerate(props.get("Targets", [])):
            if "Input" in target or "InputPath" in target or "InputTransformer" in target:
                raise TemplateError(f"{logical_id}: input transformation of targets is not emulated")
            function_id = self._function_of(target["Arn"], logical_id)
            url, arn = self._queue(f"local-rule-{logical_id}-{index}"[:80])
            targets.append({"Id": f"local{index}", "Arn": arn})
            retry = target.get("RetryPolicy", {})
            self.subscriptions.append(
                Subscription(
                    f"rule:{rule_name}",
                    url,
                    function_id,
                    dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
                    max_attempts=1 + int(retry.get("MaximumRetryAttempts", ASYNC_ATTEMPTS - 1)),
                )
            )
        if targets:
            events.put_targets(Rule=rule_name, EventBusName=bus, Targets=targets)

    def _wire_schedule(self, logical_id: str, props: dict[str, Any]) -> None:
        expression = props["ScheduleExpression"]
        match = _RATE.match(expression)
        interval = int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")] if match else None
        targets = props.get("Targets", [])
        if any("InputPath" in t or "InputTransformer" in t for t in targets):
            raise TemplateError(f"{logical_id}: input transformation of targets is not emulated")
        function_ids = tuple(self._function_of(t["Arn"], logical_id) for t in targets)
        inputs = tuple(json.loads(t["Input"]) if "Input" in t else None for t in targets)
        rule_name = self.deployment.names[logical_id]
        self.schedules[logical_id] = Schedule(logical_id, rule_name, expression, interval, function_ids, inputs)

    # --- running ----------------------------------------------------------------------------

    def start(self, *, timers: bool = True) -> None:
        """Drain every subscription; run schedules on their timers unless `timers` is False."""
        for subscription in self.subscriptions:
            self._spawn(self._drain_forever, subscription, name=f"drain-{subscription.name}")
        for schedule in self.schedules.values():
            if timers and schedule.interval_seconds:
                self._spawn(self._tick_forever, schedule, name=f"schedule-{schedule.rule_name}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: Any, arg: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=(arg,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _drain_forever(self, subscription: Subscription) -> None:
        while not self._stop.is_set():
            try:
                self.drain(subscription, wait_seconds=1)
            except Exception:  # keep the loop alive; the message stays in the queue
                log.exception("draining %s failed", subscription.name)
                time.sleep(1)

    def drain(self, subscription: Subscription, wait_seconds: int = 0) -> int:
        """Deliver what is waiting in one subscription's queue; returns how many events ran."""
        response = self._sqs.receive_message(
            QueueUrl=subscription.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        delivered = 0
        for message in response.get("Messages", []):
            event = json.loads(message["Body"])
            if event.get("Event") == "s3:TestEvent":
                self._sqs.delete_message(QueueUrl=subscription.queue_url, ReceiptHandle=message["ReceiptHandle"])
                continue
            if subscription.name.startswith("s3:"):
                event = self._complete_s3_event(event)
            else:
                # EventBridge always sends the account; the stand-in omits it
                event.setdefault("account", self.deployment.account)
            self.deliver(subscription, event)
            self._sqs.delete_message(QueueUrl=subscription.queue_url, ReceiptHandle=message["ReceiptHandle"])
            delivered += 1
        return delivered

    def deliver(self, subscription: Subscription, event: dict[str, Any]) -> bool:
        for attempt in range(1, subscription.max_attempts + 1):
            invocation = self.runner.invoke(subscription.function_id, event, f"{subscription.name} (try {attempt})")
            if invocation.ok:
                return True
        self._dead_letter(subscription, event, invocation.error)
        return False

    def fire(self, rule: str) -> list[bool]:
        """Run a scheduled rule now (by logical id or physical name)."""
        schedule = next(
            (s for s in self.schedules.values() if rule in (s.rule_id, s.rule_name) or s.rule_id.startswith(rule)),
            None,
        )
        if schedule is None:
            raise KeyError(f"no scheduled rule {rule!r}; known: {sorted(self.schedules)}")
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.deployment.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.deployment.region,
            "resources": [
                f"arn:aws:events:{self.deployment.region}:{self.deployment.account}:rule/{schedule.rule_name}"
            ],
            "detail": {},
        }
        # an EventBridge target is invoked asynchronously: retried, then kept, like any other event
        inputs = schedule.inputs or (None,) * len(schedule.function_ids)
        return [
            self.deliver(Subscription(f"schedule:{schedule.rule_name}", "", function_id), given or event)
            for function_id, given in zip(schedule.function_ids, inputs, strict=True)
        ]

    def _tick_forever(self, schedule: Schedule) -> None:
        assert schedule.interval_seconds
        while not self._stop.wait(schedule.interval_seconds):
            self.fire(schedule.rule_id)

    def _complete_s3_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Add what S3 sends and the stand-in omits: the object's version id and the uploader."""
        s3 = self.deployment.client("s3")
        for record in event.get("Records", []):
            obj = record.get("s3", {}).get("object", {})
            record.setdefault("userIdentity", {"principalId": "local-user"})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            if "versionId" not in obj:
                try:
                    head = s3.head_object(Bucket=record["s3"]["bucket"]["name"], Key=unquote_plus(obj["key"]))
                    if head.get("VersionId"):
                        obj["versionId"] = head["VersionId"]
                except Exception:  # the object may already be gone; the handler reports that
                    log.debug("no version id for %s", obj.get("key"))
        return event

    def _dead_letter(self, subscription: Subscription, event: dict[str, Any], error: str) -> None:
        if subscription.dead_letter_arn:
            queue_name = subscription.dead_letter_arn.rsplit(":", 1)[-1]
            url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
            where = f"dead-letter queue {queue_name}"
        else:
            where = str(self.failed_log)
        with self.failed_log.open("a") as failed:
            failed.write(json.dumps({"subscription": subscription.name, "error": error, "event": event}) + "\n")
        log.error(
            "%s: gave up after %d attempts (%s); event kept in %s",
            subscription.name,
            subscription.max_attempts,
            error,
            where,
        )
