"""Scheduled (EventBridge): score each production model's captured traffic against its training
baseline, publish DriftScore/DriftWindowRows per model and write a drift report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.cloudwatch import PowertoolsMetricsSink
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.drift.monitor import detect_drift
from mlops.errors import MlopsError
from mlops.settings import DriftSettings

settings = DriftSettings.from_env()
logger = Logger()
tracer = Tracer()
registry = DynamoRegistry(settings.registry_table)
store = S3ObjectStore()
metrics = PowertoolsMetricsSink()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    reports, failures = detect_drift(
        registry,
        store,
        settings.artifact_bucket,
        metrics,
        now=datetime.now(UTC),
        settle_seconds=settings.settle_seconds,
    )
    for report in reports:
        logger.info(
            "drift checked",
            model=report.model_name,
            version=report.version,
            status=report.status.value,
            window_rows=report.window_rows,
            drift_score=report.drift_score,
            drifted=report.drifted,
        )
    if failures:
        # after the other models were checked: fail the invocation so the Errors alarm sees it
        raise MlopsError(f"drift check failed for {sorted(failures)}: {failures}")
    return {"models": {r.model_name: r.status.value for r in reports}}
