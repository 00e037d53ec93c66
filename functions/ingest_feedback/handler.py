"""S3 ObjectCreated under feedback/ of the data bucket -> each label file version judged row by row
against its model's production contract (mlops.feedback_files): good rows written as label objects
under labels/ of the artifact bucket, a report under reports/<model>/feedback/, an unreadable file
moved to quarantine/_feedback/. A repeated delivery of the same object version does no work again
(Powertools idempotency, as validate_dataset)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.s3_ranged import open_ranged
from mlops.adapters.served_versions_dynamodb import DynamoServedVersions
from mlops.feedback_files import FeedbackFileResult, LabelFileIngestor
from mlops.settings import FeedbackFileSettings
from mlops.validation.service import UploadedObject

SERVICE = "ingest_feedback"
settings = FeedbackFileSettings.from_env()
logger = Logger(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"mlops"})
tracer = Tracer(service=SERVICE)
idempotency = IdempotencyConfig()
ingestor = LabelFileIngestor(
    store=S3ObjectStore(),
    data_bucket=settings.data_bucket,
    artifact_bucket=settings.artifact_bucket,
    contracts=DynamoServedVersions(settings.registry_table),
    batch_rows=settings.batch_rows,
    open_seekable=open_ranged,
)


@idempotent_function(
    data_keyword_argument="version",
    config=idempotency,
    persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
)
def ingest_version(upload: UploadedObject, version: dict[str, Any]) -> dict[str, Any]:
    result = ingestor.ingest(upload)
    _count(result)  # here, not in the handler, so a replayed duplicate is not counted twice
    return result.as_dict()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    if "Records" not in event:  # S3 sends a test event when the notification is configured
        logger.info("ignoring an event without records")
        return {"results": []}
    results = []
    for record in S3Event(event).records:
        item = record.s3.get_object
        upload = UploadedObject(
            bucket=record.s3.bucket.name,
            key=unquote_plus(item.key),
            version_id=item.version_id,
            size=item.get("size"),
            etag=item.etag or None,
            uploader=record.get("userIdentity", {}).get("principalId"),
            uploaded_at=record.get("eventTime"),
        )
        results.append(ingest_version(upload, version=upload.idempotency_payload()))
    return {"results": results}


def _count(result: FeedbackFileResult) -> None:
    with single_metric(
        name="LabelFileRows", unit=MetricUnit.Count, value=result.rows, default_dimensions={"service": SERVICE}
    ) as metric:
        metric.add_dimension("model", result.model or "unknown")
        metric.add_dimension("outcome", result.outcome.value)
        metric.add_metadata("accepted", result.accepted)
        metric.add_metadata("refused", result.refused)
