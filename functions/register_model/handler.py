"""Bus rule `ModelTrained` -> verify the artifact's bytes, register the version, promote it when the
policy says so, announce `ModelRegistered` / `ModelPromoted` (and a promotion to the alarm topic).

Duplicate deliveries are absorbed twice over: Powertools idempotency keyed on the artifact and its
dataset, and the registry's `ARTIFACT#<sha256>` claim (a second registration returns the existing
version). The dataset's ledger entry records the outcome: "registered as vN", or "identical to vN,
no new version" when a retraining reproduced a registered artifact.
Announcements are at-least-once: an invocation that failed after the registry write (say, the
bus refused the event) left no idempotency record, so its retry runs again and announces again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.sns import SnsNotifier
from mlops.events import ModelTrained
from mlops.registry.ports import NoNotifier, Notifier
from mlops.registry.service import register_trained_model
from mlops.settings import RegisterSettings
from mlops.training.outcome import record_registration

SERVICE = "register_model"
settings = RegisterSettings.from_env()
logger = Logger(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"mlops"})
tracer = Tracer(service=SERVICE)
registry = DynamoRegistry(settings.registry_table)
ledger = DynamoDatasetLedger(settings.ledger_table)
store = S3ObjectStore()
publisher = EventBridgePublisher(settings.event_bus_name)
notifier: Notifier = SnsNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else NoNotifier()
# the same artifact of the same model trained on the same dataset version is one registration,
# whatever event id carried it; another dataset training to an identical artifact runs (the registry's
# claim makes no new version) so that its ledger entry says "identical to vN"
idempotency = IdempotencyConfig(
    event_key_jmespath="[model_name, artifact_sha256, dataset.bucket, dataset.key, dataset.version_id, dataset.sha256]"
)


@idempotent_function(
    data_keyword_argument="detail",
    config=idempotency,
    persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
)
def register(detail: dict[str, Any], *, actor: str, request_id: str) -> dict[str, Any]:
    trained = ModelTrained.model_validate(detail)
    result = register_trained_model(
        trained,
        registry=registry,
        store=store,
        publisher=publisher,
        artifact_bucket=settings.artifact_bucket,
        actor=actor,
        request_id=request_id,
        notifier=notifier,
    )
    # counted here, not in the handler, so a replayed duplicate is not counted twice
    if result.created:
        _count("ModelsRegistered", trained.model_name)
    if result.promoted:
        _count("ModelsPromoted", trained.model_name)
    # the dataset's ledger entry says what its training came to: a new version, or identical to one;
    # an imported model was only scored on that dataset, which its training outcome must not mention
    outcome = "imported: dataset ledger untouched"
    if trained.imported is None:
        outcome, _ = record_registration(
            ledger,
            trained.model_name,
            trained.dataset,
            version=result.version.version,
            version_dataset=result.version.lineage.get("dataset"),
            created=result.created,
            artifact_sha256=trained.artifact_sha256,
            actor=SERVICE,
            status=result.version.status.value,
        )
    logger.info(
        "registered" if result.created else "identical model, no new version",
        model=trained.model_name,
        version=result.version.version,
        new_version=result.created,
        outcome=outcome,
        decision=result.decision,
    )
    return result.model_dump(mode="json", include={"created", "promoted", "decision", "previous_production"}) | {
        "model_name": trained.model_name,
        "version": result.version.version,
        "status": result.version.status.value,
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    try:
        ModelTrained.model_validate(event.get("detail"))
    except ValidationError as error:
        # permanent: logged once and answered, never retried into the dead-letter queue
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'detail'}: {e['msg']}" for e in error.errors())
        logger.warning(
            "event rejected",
            extra={"reason": reason, "event_id": event.get("id"), "detail_type": event.get("detail-type")},
        )
        return {"status": "Malformed", "reason": f"ModelTrained detail does not parse: {reason}"}
    return register(
        detail=event["detail"], actor=context.invoked_function_arn, request_id=event.get("id", context.aws_request_id)
    )


def _count(name: str, model: str) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=1, default_dimensions={"service": SERVICE}) as metric:
        metric.add_dimension("model", model)
