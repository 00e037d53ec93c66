"""Scheduled (EventBridge): each production model's new labels joined to its captured predictions
(mlops.quality.monitor); live quality per version stored under monitoring/<model>/quality/, scores
and join counts published per model for the quality alarm."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.cloudwatch import PowertoolsMetricsSink
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.errors import MlopsError
from mlops.quality.join import JoinLimits
from mlops.quality.monitor import evaluate_quality
from mlops.settings import QualitySettings

RESERVE_SECONDS = 20.0  # left at the end of an invocation: the last model's writes, logs, metrics

settings = QualitySettings.from_env()
logger = Logger()
tracer = Tracer()
registry = DynamoRegistry(settings.registry_table)
store = S3ObjectStore()
metrics = PowertoolsMetricsSink()
limits = JoinLimits(
    settle_seconds=settings.settle_seconds,
    capture_lag_seconds=settings.capture_lag_seconds,
    lookback_seconds=settings.lookback_seconds,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    run = evaluate_quality(
        registry,
        store,
        settings.artifact_bucket,
        metrics,
        now=datetime.now(UTC),
        limits=limits,
        deadline=time.monotonic() + context.get_remaining_time_in_millis() / 1000 - RESERVE_SECONDS,
    )
    for model in run.models:
        result = model.result
        logger.info(
            "live quality checked",
            model=model.model,
            version=model.version,
            status=model.status,
            labels_joined=result.run.joined if result else None,
            labels_unmatched=result.run.unmatched if result else None,
            below=result.verdict.below if result and result.verdict else None,
        )
    if run.failures:
        # after the other models were evaluated: fail the invocation so the Errors alarm sees it
        raise MlopsError(f"live quality failed for {sorted(run.failures)}: {run.failures}")
    return {"models": {model.model: model.status for model in run.models}}
