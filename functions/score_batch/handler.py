"""S3 ObjectCreated under batch/ of the data bucket, or a `BatchPartRequested` event it sent itself
-> a batch file scored with one verified model version (mlops.batch.service): predictions and
rejects under predictions/<model>/<job id>/, a summary, `BatchScored` on the bus, row metrics.

Repeated deliveries are safe without Powertools idempotency: the batch ledger records each job and
each part with conditional writes, so a part already done is skipped, not scored again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.batch_ledger_dynamodb import DynamoBatchLedger
from mlops.adapters.cloudwatch import PowertoolsMetricsSink
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.s3_ranged import open_ranged
from mlops.adapters.served_versions_dynamodb import DynamoServedVersions
from mlops.batch.plan import Part
from mlops.batch.service import BatchService, BatchUpload
from mlops.events import BatchPartRequested, DetailType
from mlops.settings import BatchSettings

SERVICE = "score_batch"
settings = BatchSettings.from_env()
logger = Logger(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"mlops"})
tracer = Tracer(service=SERVICE)
service = BatchService(
    store=S3ObjectStore(),
    versions=DynamoServedVersions(settings.registry_table),
    ledger=DynamoBatchLedger(settings.batch_ledger_table),
    publisher=EventBridgePublisher(settings.event_bus_name),
    metrics=PowertoolsMetricsSink(),
    open_seekable=open_ranged,
    part_bytes=settings.part_bytes,
    batch_rows=settings.batch_rows,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("detail-type") == DetailType.BATCH_PART_REQUESTED:
        request = BatchPartRequested.model_validate(event["detail"])
        outcome = service.score_part(request.job_id, Part.from_dict(request.part))
        logger.info("batch part", outcome=outcome.action, job_id=outcome.job_id, parts=outcome.parts)
        return {"results": [outcome.as_dict()]}
    if "Records" not in event:  # S3 sends a test event when the notification is configured
        logger.info("ignoring an event without records")
        return {"results": []}
    results = []
    for record in S3Event(event).records:
        item = record.s3.get_object
        upload = BatchUpload(record.s3.bucket.name, unquote_plus(item.key), item.version_id, item.get("size"))
        outcome = service.submit(upload)
        logger.info("batch file", outcome=outcome.action, job_id=outcome.job_id, reason=outcome.reason)
        results.append(outcome.as_dict())
    return {"results": results}
