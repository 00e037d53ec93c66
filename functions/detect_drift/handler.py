"""Scheduled (EventBridge): each production model's captured traffic since its last run, in bounded
chunks, judged against its training baseline (mlops.drift.monitor); results and report pages under
monitoring/, drift and data-quality metrics per model, a notice when a window drifted."""

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
from mlops.adapters.validation_notifier import SnsSummaryNotifier
from mlops.drift.monitor import DriftLimits, detect_drift
from mlops.errors import MlopsError
from mlops.settings import DriftSettings

RESERVE_SECONDS = 20.0  # left at the end of an invocation: the last chunk's state write, logs, metrics

settings = DriftSettings.from_env()
logger = Logger()
tracer = Tracer()
registry = DynamoRegistry(settings.registry_table)
store = S3ObjectStore()
metrics = PowertoolsMetricsSink()
notifier = SnsSummaryNotifier(settings.notice_topic_arn) if settings.notice_topic_arn else None
limits = DriftLimits(settle_seconds=settings.settle_seconds, max_window_rows=settings.max_window_rows)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    run = detect_drift(
        registry,
        store,
        settings.artifact_bucket,
        metrics,
        now=datetime.now(UTC),
        limits=limits,
        deadline=time.monotonic() + context.get_remaining_time_in_millis() / 1000 - RESERVE_SECONDS,
        notifier=notifier,
        report_base_url=settings.report_base_url,
    )
    for model in run.models:
        result = model.results[-1] if model.results else None
        logger.info(
            "drift checked",
            model=model.model,
            version=model.version,
            status=model.status,
            captures_read=model.captures_read,
            window_rows=model.rows,
            late_captures=model.late_captures,
            drift_detected=result.drift_detected if result else None,
            data_quality_alarm=result.data_quality.alarm if result else None,
        )
    if run.failures:
        # after the other models were checked: fail the invocation so the Errors alarm sees it
        raise MlopsError(f"drift check failed for {sorted(run.failures)}: {run.failures}")
    return {"models": {model.model: model.status for model in run.models}}
