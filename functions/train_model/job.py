"""The managed engine's entry point: `python job.py` in train_model's image, run by a SageMaker
training job that the training state machine starts when a dataset is past Lambda's budget.

Thin on purpose: the same training service as the Lambda handler (mlops.training.service), on the
dataset its ledger entry names (MODEL_NAME, DATASET_ID from the state machine), with the same
events, ledger states, notices and metrics; the lineage records the engine, instance and job.
Exit status 0: trained or rejected (both recorded and announced); 1: failed (training_failed is
recorded here when possible, and again by the state machine's failure path, which also covers what
this process cannot catch: out of memory, the stopping condition, an image that does not start).
"""

from __future__ import annotations

import logging
import sys

from mlops.adapters.cloudwatch import CloudWatchMetricsSink
from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.validation_notifier import SnsSummaryNotifier
from mlops.events import DatasetValidated, TrainedOn, TrainingRejected
from mlops.settings import TrainJobSettings
from mlops.training.capacity import MANAGED_ENGINE_MEMORY_MB
from mlops.training.engine import ENGINE
from mlops.training.service import TrainingOutcome, train_from_event
from mlops.training.traffic import TrafficWindow

logger = logging.getLogger("train_model.job")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = TrainJobSettings.from_env()
    ledger = DynamoDatasetLedger(settings.ledger_table)
    entry = ledger.get(settings.model_name, settings.dataset_id)
    if entry is None:
        logger.error("no ledger entry %s of %s: nothing to train", settings.dataset_id, settings.model_name)
        return 1
    event = DatasetValidated(
        model_name=entry.model_name,
        dataset=entry.dataset_ref(),
        contract_digest=entry.contract_digest or "",
        report_key=entry.report_key,
    )
    traffic = TrafficWindow.from_settings(settings)
    here = TrainedOn(
        engine=ENGINE, compute=settings.instance_type, memory_mb=MANAGED_ENGINE_MEMORY_MB, job_id=settings.job_name
    )
    try:
        outcome = train_from_event(
            event,
            store=S3ObjectStore(),
            publisher=EventBridgePublisher(settings.event_bus_name),
            data_bucket=settings.data_bucket,
            artifact_bucket=settings.artifact_bucket,
            ledger=ledger,
            notifier=SnsSummaryNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else None,
            memory_mb=MANAGED_ENGINE_MEMORY_MB,
            registry=DynamoRegistry(settings.registry_table),
            traffic=traffic,
            trained_on=here,
        )
    except Exception:
        logger.exception("training %s of %s failed", settings.dataset_id, settings.model_name)
        return 1
    _report(outcome, event.model_name, CloudWatchMetricsSink(service=settings.service_name))
    return 0


def _report(outcome: TrainingOutcome, model_name: str, metrics: CloudWatchMetricsSink) -> None:
    """The metrics train_model's handler emits, with the same names and dimensions."""
    by_model = {"model": model_name}
    metrics.add("TrainingSeconds", outcome.seconds, "Seconds", by_model)
    if isinstance(outcome.detail, TrainingRejected):
        metrics.add("TrainingRejected", 1, "Count", by_model)
        logger.warning("training rejected: %s", outcome.detail.reason)
    elif outcome.model is not None:
        metrics.add("ModelsTrained", 1, "Count", by_model)
        metrics.add(
            "HoldoutMetric", outcome.model.metric_value, "None", {**by_model, "metric": outcome.model.metric_name}
        )
        logger.info("model trained: %s", outcome.model.sha256)


if __name__ == "__main__":
    sys.exit(main())
