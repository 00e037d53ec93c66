"""control_canary: a model's canary alarm entering ALARM (CloudWatch's state change on the default
bus) rolls its canary back; the scheduled bake check promotes a canary that answered its share for
its declared minutes without alarms, through the registry's promotion gates. Both audited
(mlops.registry.canary_control); the actor is the alarm or the check."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.alarm_states import CloudWatchAlarmStates
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.sns import SnsNotifier
from mlops.registry.canary_control import check_bakes, roll_back_on_alarm
from mlops.registry.ports import NoNotifier
from mlops.registry.service import Lifecycle
from mlops.settings import CanarySettings

settings = CanarySettings.from_env()
logger = Logger()
tracer = Tracer()
registry = DynamoRegistry(settings.registry_table)
lifecycle = Lifecycle(
    registry,
    EventBridgePublisher(settings.event_bus_name),
    S3ObjectStore(),
    SnsNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else NoNotifier(),
)
alarms = CloudWatchAlarmStates()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rolled_back = roll_back_on_alarm(lifecycle, event, prefix=settings.alarm_name_prefix)
    if rolled_back is not None:
        logger.info("canary alarm", **asdict(rolled_back))
        return {"outcomes": [asdict(rolled_back)]}
    if event.get("detail-type") == "CloudWatch Alarm State Change":  # another alarm, or leaving ALARM
        return {"outcomes": []}
    outcomes = check_bakes(lifecycle, registry, alarms, prefix=settings.alarm_name_prefix, now=datetime.now(UTC))
    for outcome in outcomes:
        logger.info("canary bake check", **asdict(outcome))
    return {"outcomes": [asdict(outcome) for outcome in outcomes]}
