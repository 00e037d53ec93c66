"""train_model: a `DatasetValidated` event -> ONNX artifact + baseline -> `ModelTrained` (or `TrainingRejected`),
and the dataset's ledger entry says which (trained, training_rejected; training_failed on an error).

Also imports models built elsewhere: an S3 ObjectCreated under `models/<model>/incoming/` of the data
bucket -> checks, holdout score -> `ModelTrained` (origin "imported") or `ModelImportRejected`
(mlops.imports). This image already holds what scoring must share with training.

A dataset past this function's budget (mlops.training.capacity) is handed to the managed engine: a
state machine runs a SageMaker training job on this same image (job.py), once per dataset version.

What no code here can catch (out of memory, timeout) reaches record_training_failure through the
function's on-failure destination once Lambda's retries are spent."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.stepfunctions import StepFunctionsStarter
from mlops.adapters.validation_notifier import SnsSummaryNotifier
from mlops.errors import BadRequestError
from mlops.events import DatasetValidated, ModelImportRejected, TrainedOn, TrainingRejected
from mlops.imports.drops import ImportDrop, drops_from_s3_event, is_s3_event
from mlops.imports.service import import_model
from mlops.settings import TrainSettings
from mlops.training.engine import ManagedEngine
from mlops.training.service import parse_dataset_validated, reject_malformed, train_from_event
from mlops.training.traffic import TrafficWindow

settings = TrainSettings.from_env()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
# One training per exact dataset version and contract; EventBridge retries for up to a day.
idempotency = IdempotencyConfig(
    event_key_jmespath="[dataset.bucket, dataset.key, dataset.version_id, contract_digest]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=7 * 24 * 3600,
)
# One import per exact object version dropped (S3 notifications are at least once).
import_idempotency = IdempotencyConfig(
    event_key_jmespath="[bucket, key, version_id]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=7 * 24 * 3600,
)
persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)
# its own layer: Powertools configures a persistence layer once, with the first function's key
import_persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)
ledger = DynamoDatasetLedger(settings.ledger_table)
registry = DynamoRegistry(settings.registry_table)  # read only: the champion scored on the candidate's holdout
# both graphs on recent labelled traffic too (TRAFFIC_WINDOW_HOURS=0 turns it off)
traffic = TrafficWindow.from_settings(settings)
notifier = SnsSummaryNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else None
engine = (
    ManagedEngine(
        StepFunctionsStarter(settings.training_state_machine_arn), min_rows=settings.managed_training_min_rows
    )
    if settings.training_state_machine_arn
    else None
)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    import_idempotency.register_lambda_context(context)
    if is_s3_event(event):
        try:
            drops = drops_from_s3_event(event)
        except BadRequestError as error:
            logger.warning("event rejected", extra={"reason": str(error)})
            return {"status": "Malformed", "reason": str(error)}
        return {"imports": [import_drop(drop=vars(drop)) for drop in drops]}
    envelope = event if isinstance(event, dict) else {}
    try:
        detail = parse_dataset_validated(envelope.get("detail-type"), envelope.get("detail"))
    except BadRequestError as error:
        # permanent: answered once (logged, and TrainingRejected when it can name model and dataset), never retried
        return _reject_malformed(envelope, str(error))
    return train(detail=detail.model_dump(mode="json"))


@idempotent_function(data_keyword_argument="detail", config=idempotency, persistence_store=persistence)
def train(detail: dict[str, Any]) -> dict[str, Any]:
    event = DatasetValidated.model_validate(detail)
    logger.append_keys(model_name=event.model_name, dataset_key=event.dataset.key)
    context = idempotency.lambda_context
    memory_mb = int(context.memory_limit_in_mb) if context else 0
    here = TrainedOn(
        engine="lambda",
        compute=f"{memory_mb} MB",
        memory_mb=memory_mb,
        job_id=context.aws_request_id if context else "",
    )
    outcome = train_from_event(
        event,
        store=S3ObjectStore(),
        publisher=EventBridgePublisher(settings.event_bus_name),
        data_bucket=settings.data_bucket,
        artifact_bucket=settings.artifact_bucket,
        ledger=ledger,
        notifier=notifier,
        registry=registry,
        traffic=traffic,
        engine=engine,
        trained_on=here,
    )
    metrics.add_dimension(name="model", value=event.model_name)
    if outcome.handed_off is not None:
        handed = outcome.handed_off
        metrics.add_metric(name="TrainingHandedOff", unit=MetricUnit.Count, value=1)
        logger.info(
            "training handed off",
            extra={"engine": handed.engine, "job_name": handed.job_name, "new": handed.new, "reason": handed.reason},
        )
        return {"status": outcome.detail_type, "engine": handed.engine, "job_name": handed.job_name}
    assert outcome.detail is not None  # trained or rejected
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=outcome.seconds)
    if isinstance(outcome.detail, TrainingRejected):
        metrics.add_metric(name="TrainingRejected", unit=MetricUnit.Count, value=1)
        logger.warning("training rejected", extra={"reason": outcome.detail.reason})
    elif outcome.model is not None:
        metrics.add_metric(name="ModelsTrained", unit=MetricUnit.Count, value=1)
        _emit_holdout_metric(event.model_name, outcome.model.metric_name, outcome.model.metric_value)
        logger.info("model trained", extra={"sha256": outcome.model.sha256, "metrics": outcome.model.metrics})
    return {"status": outcome.detail_type, "detail": outcome.detail.model_dump(mode="json")}


@idempotent_function(data_keyword_argument="drop", config=import_idempotency, persistence_store=import_persistence)
def import_drop(drop: dict[str, Any]) -> dict[str, Any]:
    logger.append_keys(import_key=drop["key"])
    outcome = import_model(
        ImportDrop(**drop),
        store=S3ObjectStore(),
        publisher=EventBridgePublisher(settings.event_bus_name),
        ledger=ledger,
        data_bucket=settings.data_bucket,
        artifact_bucket=settings.artifact_bucket,
        notifier=notifier,
        max_bytes=settings.max_import_bytes,
    )
    metrics.add_dimension(name="model", value=outcome.detail.model_name)
    metrics.add_metric(name="ModelsImported" if outcome.imported else "ImportsRejected", unit=MetricUnit.Count, value=1)
    if isinstance(outcome.detail, ModelImportRejected):
        logger.warning("import rejected", extra={"problems": outcome.detail.problems, "report": outcome.report_key})
    else:
        logger.info(
            "model imported", extra={"sha256": outcome.detail.artifact_sha256, "metrics": outcome.detail.metrics}
        )
    return {
        "status": outcome.detail_type,
        "report_key": outcome.report_key,
        "detail": outcome.detail.model_dump(mode="json"),
    }


def _reject_malformed(envelope: dict[str, Any], reason: str) -> dict[str, Any]:
    publisher = EventBridgePublisher(settings.event_bus_name)
    rejected = reject_malformed(envelope.get("detail-type"), envelope.get("detail"), reason, publisher=publisher)
    metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
    logger.warning(
        "event rejected",
        extra={
            "reason": reason,
            "event_id": envelope.get("id"),
            "detail_type": envelope.get("detail-type"),
            "model_name": rejected.model_name if rejected else None,
            "published": rejected is not None,
        },
    )
    return {"status": "Malformed", "reason": reason, "published": rejected is not None}


def _emit_holdout_metric(model_name: str, metric_name: str, value: float) -> None:
    # its own EMF line: dimensions {model, metric} apply to this value only
    dimensions = {"model": model_name, "metric": metric_name}
    with single_metric(name="HoldoutMetric", unit=MetricUnit.NoUnit, value=value, default_dimensions=dimensions):
        pass
