"""Bus rule `ModelTrained` -> verify the artifact's bytes, register the version, promote it when the
policy says so, announce `ModelRegistered` / `ModelPromoted` (and a promotion to the alarm topic).

Duplicate deliveries are absorbed twice over: Powertools idempotency keyed on the artifact, and
the registry's `ARTIFACT#<sha256>` claim (a second registration returns the existing version).
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

from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.sns import SnsNotifier
from mlops.events import ModelTrained
from mlops.registry.ports import NoNotifier, Notifier
from mlops.registry.service import register_trained_model
from mlops.settings import RegisterSettings

SERVICE = "register_model"
settings = RegisterSettings.from_env()
logger = Logger(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"mlops"})
tracer = Tracer(service=SERVICE)
registry = DynamoRegistry(settings.registry_table)
store = S3ObjectStore()
publisher = EventBridgePublisher(settings.event_bus_name)
notifier: Notifier = SnsNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else NoNotifier()
# the same artifact of the same model is one registration, whatever event id carried it
idempotency = IdempotencyConfig(event_key_jmespath="[model_name, artifact_sha256]")


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
    logger.info("registered", model=trained.model_name, version=result.version.version, decision=result.decision)
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
