"""train_model's on-failure destination -> the dataset's ledger entry says `training_failed`, with
why Lambda gave up (out of memory, timeout, retries spent, event too old), `TrainingFailed` on the
bus and a notice on the alarm topic.

This is the path for what no code in train_model can catch: Lambda invokes this function
asynchronously with the destination record once train_model's retries are spent. Recording is
idempotent (a dataset already training_failed is left alone), so a duplicate delivery is harmless;
a record naming no dataset is logged and answered, never retried. A record of an import drop (an
S3 event: mlops.imports) is announced as `ModelImportRejected` instead; it has no ledger entry.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.validation_notifier import SnsSummaryNotifier
from mlops.errors import BadRequestError
from mlops.events import DetailType
from mlops.imports.failures import failed_imports
from mlops.settings import TrainingFailureSettings
from mlops.training.outcome import failed_training, record_training_failure

SERVICE = "record_training_failure"
ACTOR = "train_model (on-failure destination)"
settings = TrainingFailureSettings.from_env()
logger = Logger(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"mlops"})
tracer = Tracer(service=SERVICE)
ledger = DynamoDatasetLedger(settings.ledger_table)
publisher = EventBridgePublisher(settings.event_bus_name)
notifier = SnsSummaryNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else None


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        imports = failed_imports(event)
    except BadRequestError as error:
        logger.warning("destination record rejected", extra={"reason": str(error)})
        return {"status": "Malformed", "reason": str(error)}
    if imports:  # an import drop, not a DatasetValidated event: no dataset ledger entry to move
        for rejected in imports:
            publisher.publish(DetailType.MODEL_IMPORT_REJECTED, rejected)
            if notifier is not None:
                notifier.notify(
                    f"Model import failed: {rejected.model_name}",
                    f"The import of s3://{rejected.source.bucket}/{rejected.source.key} failed: {rejected.problems[0]}\n",
                )
            logger.warning("import failed", extra={"key": rejected.source.key, "problems": rejected.problems})
        return {"status": "ImportFailed", "imports": [r.source.key for r in imports]}
    try:
        failure = failed_training(event)
    except BadRequestError as error:
        logger.warning("destination record rejected", extra={"reason": str(error)})
        return {"status": "Malformed", "reason": str(error)}
    entry = record_training_failure(
        ledger, failure.model_name, failure.dataset, failure.reason, actor=ACTOR, publisher=publisher, notifier=notifier
    )
    with single_metric(
        name="TrainingFailures", unit=MetricUnit.Count, value=1, default_dimensions={"service": SERVICE}
    ) as metric:
        metric.add_dimension("model", failure.model_name)
    state = entry.state.value if entry is not None else None
    logger.warning(
        "training failed",
        extra={
            "model_name": failure.model_name,
            "dataset_key": failure.dataset.key,
            "reason": failure.reason,
            "state": state,
        },
    )
    return {"status": "Recorded", "model_name": failure.model_name, "state": state, "reason": failure.reason}
