"""S3 ObjectCreated under datasets/ -> validate each object version against its contract and its
reference (the production model), record its state in the ledger (accepted, held, quarantined)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.s3_ranged import open_ranged
from mlops.adapters.validation_notifier import SnsSummaryNotifier
from mlops.settings import ValidateSettings
from mlops.validation import DatasetValidator, Disposition, UploadedObject
from mlops.validation.reference import ReferenceLoader

SERVICE = "validate_dataset"
settings = ValidateSettings.from_env()
logger = Logger(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"mlops"})
tracer = Tracer(service=SERVICE)
idempotency = IdempotencyConfig()
store = S3ObjectStore()
ledger = DynamoDatasetLedger(settings.ledger_table)
validator = DatasetValidator(
    store=store,
    publisher=EventBridgePublisher(settings.event_bus_name),
    data_bucket=settings.data_bucket,
    batch_rows=settings.batch_rows,
    open_seekable=open_ranged,
    ledger=ledger,
    references=ReferenceLoader(
        registry=DynamoRegistry(settings.registry_table),
        artifacts=store,
        ledger=ledger,
        reports=store,
        data_bucket=settings.data_bucket,
    ),
    notifier=SnsSummaryNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else None,
)
_METRIC_OF = {
    Disposition.VALIDATED: "DatasetsValidated",
    Disposition.QUARANTINED: "DatasetsQuarantined",
    Disposition.HELD: "DatasetsHeld",
    Disposition.MISSING: "DatasetsMissing",
}


@idempotent_function(
    data_keyword_argument="version",
    config=idempotency,
    persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
)
def validate_version(upload: UploadedObject, version: dict[str, Any]) -> dict[str, Any]:
    outcome = validator.validate(upload)
    # counted here, not in the handler, so a replayed duplicate is not counted twice
    if outcome.disposition in _METRIC_OF:
        _count(_METRIC_OF[outcome.disposition], 1, outcome.model_name, MetricUnit.Count)
    if outcome.disposition is Disposition.VALIDATED and outcome.rows is not None:
        _count("DatasetRows", outcome.rows, outcome.model_name, MetricUnit.Count)
    return outcome.as_dict()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    if "Records" not in event:  # S3 sends a test event when the notification is configured
        logger.info("ignoring an event without records", extra={"event": event})
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
        results.append(validate_version(upload, version=upload.idempotency_payload()))
    return {"results": results}


def _count(name: str, value: float, model: str | None, unit: MetricUnit) -> None:
    with single_metric(name=name, unit=unit, value=value, default_dimensions={"service": SERVICE}) as metric:
        metric.add_dimension("model", model or "unknown")
