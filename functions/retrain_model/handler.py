"""retrain_model: a model's drift or live-quality alarm entering ALARM (default bus), the contract's
retraining schedule, or an approver's `RetrainingRequested` -> gates -> the training set under
datasets/<model>/retrain-*.parquet of the data bucket, which validate_dataset, train_model and
register_model then judge like any upload (mlops.retraining). Every trigger, skip and start is an
audit event of the model; so is a refusal of its training set by the dataset gate or training
(`mlops.retraining.outcomes`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.retraining.outcomes import record_refusal, refusal_of
from mlops.retraining.service import retrain
from mlops.retraining.triggers import parse_trigger
from mlops.settings import RetrainSettings

settings = RetrainSettings.from_env()
logger = Logger()
tracer = Tracer()
registry = DynamoRegistry(settings.registry_table)
ledger = DynamoDatasetLedger(settings.ledger_table)
store = S3ObjectStore()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    refusal = refusal_of(event)
    if refusal is not None:
        audited = record_refusal(registry, refusal)
        logger.info("retraining refused", model=refusal.model, stage=refusal.stage, dataset_key=refusal.dataset_key)
        return {"model": refusal.model, "refused": refusal.stage, "audit_seq": audited.seq}
    trigger = parse_trigger(event, alarm_prefix=settings.alarm_name_prefix, now=now)
    if trigger is None:
        logger.info("not a retraining trigger", detail_type=event.get("detail-type"))
        return {"started": False, "reason": "not a retraining trigger"}
    outcome = retrain(
        trigger,
        registry=registry,
        ledger=ledger,
        store=store,
        data_bucket=settings.data_bucket,
        artifact_bucket=settings.artifact_bucket,
        now=now,
    )
    logger.info(
        "retraining started" if outcome.started else "retraining skipped",
        model=outcome.model,
        trigger=outcome.trigger,
        gate=outcome.gate,
        reason=outcome.reason,
        dataset_key=outcome.dataset_key,
    )
    return {
        "model": outcome.model,
        "trigger": outcome.trigger,
        "started": outcome.started,
        "reason": outcome.reason,
        "dataset_key": outcome.dataset_key,
    }
