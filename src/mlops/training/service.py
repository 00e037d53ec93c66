"""The train_model stage: from a `DatasetValidated` event to a stored artifact and a `ModelTrained`
event, or a `TrainingRejected` event saying why not. Talks to AWS only through the ports."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from pydantic import ValidationError

from mlops.contract import Contract, parse_contract
from mlops.errors import BadRequestError, ContractError, DatasetError, NotFoundError, TrainingRejectedError
from mlops.events import DatasetRef, DatasetValidated, DetailType, ModelTrained, TrainedOn, TrainingRejected
from mlops.layout import (
    DATASETS_PREFIX,
    artifact_key,
    baseline_key,
    contract_key,
    dataset_key_problem,
    model_of_dataset_key,
)
from mlops.ports import EventPublisher, ObjectStore
from mlops.training.capacity import fits_memory, plan_dataset, refusal
from mlops.training.champion import ProductionVersions, same_data_scores
from mlops.training.dataset import read_dataset
from mlops.training.engine import (
    ENGINE,
    HandOff,
    ManagedEngine,
    execution_input,
    hand_off_problem,
    job_name,
    why_managed,
)
from mlops.training.outcome import record_hand_off, record_training_failure, record_training_outcome
from mlops.training.traffic import TrafficWindow
from mlops.training.trainer import TrainedModel, train_model
from mlops.validation.ledger import DatasetLedger, DatasetState, Notifier

logger = logging.getLogger(__name__)

ONNX_CONTENT_TYPE = "application/octet-stream"
TRAIN_ACTOR = "train_model"
MAX_ERROR_CHARS = 500


HANDED_OFF = "TrainingHandedOff"  # an outcome of train_model, not an event: the engine announces the result


@dataclass(frozen=True)
class TrainingOutcome:
    detail_type: str  # DetailType.MODEL_TRAINED, DetailType.TRAINING_REJECTED or HANDED_OFF
    detail: ModelTrained | TrainingRejected | None  # None when handed off
    seconds: float
    model: TrainedModel | None = None
    handed_off: HandOff | None = None

    @property
    def trained(self) -> bool:
        return isinstance(self.detail, ModelTrained)


def parse_dataset_validated(detail_type: object, detail: object) -> DatasetValidated:
    """The detail of a `DatasetValidated` event as EventBridge delivered it.

    Raises BadRequestError naming the detail type or each field that does not parse: a permanent
    problem, which no retry fixes.
    """
    if detail_type != DetailType.DATASET_VALIDATED:
        raise BadRequestError(f"train_model handles {DetailType.DATASET_VALIDATED} events, got {detail_type!r}")
    try:
        return DatasetValidated.model_validate(detail)
    except ValidationError as error:
        raise BadRequestError(f"{DetailType.DATASET_VALIDATED} detail does not parse: {_describe(error)}") from None


def reject_malformed(
    detail_type: object, detail: object, reason: str, *, publisher: EventPublisher
) -> TrainingRejected | None:
    """Publish `TrainingRejected` for a `DatasetValidated` detail that does not parse, when its model
    name and dataset can still be read (so whoever uploaded it hears why); None, publishing nothing,
    when they cannot or the event is of another type. Raises only when publishing fails."""
    if detail_type != DetailType.DATASET_VALIDATED or not isinstance(detail, dict):
        return None
    try:
        rejected = TrainingRejected.model_validate(
            {"model_name": detail.get("model_name"), "dataset": detail.get("dataset"), "reason": reason}
        )
    except ValidationError:
        return None
    publisher.publish(DetailType.TRAINING_REJECTED, rejected)
    return rejected


def _describe(error: ValidationError) -> str:
    # locations and messages only: the input values may be large or not the sender's to log
    return "; ".join(f"{'.'.join(str(part) for part in e['loc']) or 'detail'}: {e['msg']}" for e in error.errors())


def train_from_event(
    event: DatasetValidated,
    *,
    store: ObjectStore,
    publisher: EventPublisher,
    data_bucket: str,
    artifact_bucket: str,
    ledger: DatasetLedger | None = None,
    notifier: Notifier | None = None,
    memory_mb: int | None = None,
    registry: ProductionVersions | None = None,
    traffic: TrafficWindow | None = None,
    engine: ManagedEngine | None = None,
    trained_on: TrainedOn | None = None,
) -> TrainingOutcome:
    """Train on exactly the dataset version the event names, store the artifact and baseline, and
    publish `ModelTrained`; or publish `TrainingRejected` when the inputs cannot make a model. The
    dataset's ledger entry records the outcome: trained, training_rejected or training_failed.

    Permanent problems (a dataset outside `datasets/<model_name>/` of the data bucket, contract
    changed or missing, dataset changed or missing, too big for training's memory (`memory_mb`,
    default the deployed size), unreadable data, a model that does not convert or agree) are
    rejections, not errors: retrying cannot fix them.
    Raises on anything else (S3, EventBridge, a bug) after recording training_failed with the error's
    type and message and announcing `TrainingFailed`; a retry that succeeds moves the entry on.

    With an `engine`, a dataset past Lambda's budget (or at its `min_rows`) is handed to it instead
    (started once per dataset version, noted in the ledger); one past the engine's memory too is
    rejected. `trained_on` (where this runs) is completed with the time taken and kept in the lineage.
    """
    started = time.monotonic()
    try:
        return _train(
            event,
            store,
            publisher,
            data_bucket,
            artifact_bucket,
            ledger,
            notifier,
            memory_mb,
            registry,
            traffic,
            started,
            engine,
            trained_on,
        )
    except Exception as error:
        if ledger is not None:
            reason = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
            try:
                record_training_failure(
                    ledger,
                    event.model_name,
                    event.dataset,
                    reason,
                    actor=TRAIN_ACTOR,
                    publisher=publisher,
                    notifier=notifier,
                )
            except Exception:  # the original error is the one to report; the failure path records it again
                logger.exception("could not record the training failure of %s", event.dataset.key)
        raise


def _train(
    event: DatasetValidated,
    store: ObjectStore,
    publisher: EventPublisher,
    data_bucket: str,
    artifact_bucket: str,
    ledger: DatasetLedger | None,
    notifier: Notifier | None,
    memory_mb: int | None,
    registry: ProductionVersions | None,
    traffic: TrafficWindow | None,
    started: float,
    engine: ManagedEngine | None,
    trained_on: TrainedOn | None,
) -> TrainingOutcome:
    try:
        _check_dataset_location(event, data_bucket)
        contract = _load_contract(store, data_bucket, event)
        if engine is not None:
            plan = plan_dataset(event.dataset.rows, event.dataset.size_bytes, contract, lambda_memory_mb=memory_mb)
            problem = refusal(plan)  # past the engine too
            if problem is not None:
                raise TrainingRejectedError(f"dataset s3://{event.dataset.bucket}/{event.dataset.key}: {problem}")
            reason = why_managed(event.dataset.rows, None if plan.fits_lambda else plan.reason, engine)
            if reason is not None:
                handed = hand_off(event, engine, ledger, reason)
                return TrainingOutcome(HANDED_OFF, None, time.monotonic() - started, handed_off=handed)
        else:
            check_budget(event.dataset, contract, memory_mb)
        # the object's bytes are let go once read: training holds only the frame
        frame = read_dataset(load_dataset_version(store, event.dataset), event.dataset.key, contract)
        model = train_model(frame, contract)
    except (TrainingRejectedError, DatasetError, ContractError, NotFoundError) as error:
        rejected = TrainingRejected(model_name=event.model_name, dataset=event.dataset, reason=str(error))
        publisher.publish(DetailType.TRAINING_REJECTED, rejected)
        if ledger is not None:
            record_training_outcome(
                ledger,
                event.model_name,
                event.dataset,
                DatasetState.TRAINING_REJECTED,
                actor=TRAIN_ACTOR,
                reason=rejected.reason,
            )
        if notifier is not None:
            notifier.notify(
                f"Training rejected: {event.model_name}",
                f"Training on s3://{event.dataset.bucket}/{event.dataset.key} was rejected: {rejected.reason}\n",
            )
        return TrainingOutcome(DetailType.TRAINING_REJECTED, rejected, time.monotonic() - started)

    same_data = same_data_scores(registry, store, model, contract, traffic)
    key = artifact_key(contract.name, model.sha256)
    baseline = baseline_key(contract.name, model.sha256)
    # Baseline first: once the artifact exists, everything that refers to it can be read.
    store.put_bytes(artifact_bucket, baseline, model.profile.model_dump_json().encode(), "application/json")
    store.put_bytes(artifact_bucket, key, model.onnx_bytes, ONNX_CONTENT_TYPE)
    trained = ModelTrained(
        model_name=contract.name,
        artifact_bucket=artifact_bucket,
        artifact_key=key,
        artifact_sha256=model.sha256,
        artifact_bytes=len(model.onnx_bytes),
        baseline_key=baseline,
        metric_name=contract.metric.name,
        metrics=model.metrics,
        dataset=event.dataset,
        contract=contract.model_dump(mode="json"),
        contract_digest=contract.digest,
        seed=model.seed,
        params=model.params,
        library_versions=model.library_versions,
        training_rows=model.training_rows,
        holdout_rows=model.holdout_rows,
        onnx_max_abs_diff=model.onnx_max_abs_diff,
        same_data=same_data,
        trained_on=(
            trained_on.model_copy(update={"seconds": round(time.monotonic() - started, 3)}) if trained_on else None
        ),
    )
    if ledger is not None:  # before the event: register_model finds the dataset trained
        record_training_outcome(
            ledger,
            event.model_name,
            event.dataset,
            DatasetState.TRAINED,
            actor=TRAIN_ACTOR,
            reason=f"model {model.sha256[:12]}: {contract.metric.name} {model.metric_value:.4f} on the holdout",
            artifact_sha256=model.sha256,
        )
    publisher.publish(DetailType.MODEL_TRAINED, trained)
    return TrainingOutcome(DetailType.MODEL_TRAINED, trained, time.monotonic() - started, model)


def check_budget(dataset: DatasetRef, contract: Contract, memory_mb: int | None) -> None:
    """Refuse, before loading a byte, a dataset training cannot take (validation's rows count): one
    that fits neither train_model nor the managed engine (capacity.refusal), or one the memory it
    would train in here (`memory_mb`, default train_model's) cannot hold."""
    plan = plan_dataset(dataset.rows, dataset.size_bytes, contract, lambda_memory_mb=memory_mb)
    reason = refusal(plan) or (None if fits_memory(plan) else plan.reason)
    if reason is not None:
        raise TrainingRejectedError(f"dataset s3://{dataset.bucket}/{dataset.key}: {reason}")


def hand_off(event: DatasetValidated, engine: ManagedEngine, ledger: DatasetLedger | None, reason: str) -> HandOff:
    """Start the managed engine's run for this dataset version (a duplicate event starts nothing) and
    note it on the ledger entry. Raises TrainingRejectedError when the engine cannot take the dataset."""
    problem = hand_off_problem(event)
    if problem is not None:
        raise TrainingRejectedError(f"dataset s3://{event.dataset.bucket}/{event.dataset.key}: {problem}")
    name = job_name(event)
    started = engine.starter.start(name, execution_input(event, name))
    if ledger is not None:
        note = f"handed off to {ENGINE} ({engine.instance_type}, job {name}): {reason}"
        record_hand_off(ledger, event.model_name, event.dataset, note, actor=TRAIN_ACTOR)
    return HandOff(ENGINE, name, started.execution_id, started.new, reason)


def _check_dataset_location(event: DatasetValidated, data_bucket: str) -> None:
    """Train only on what validation accepted: an object under `datasets/<model_name>/` of the data
    bucket. The event's word is not enough (a quarantined or another model's file must not train)."""
    ref = event.dataset
    where = f"s3://{ref.bucket}/{ref.key}"
    if ref.bucket != data_bucket:
        raise TrainingRejectedError(f"dataset {where} is not in the data bucket {data_bucket!r}")
    expected = f"{DATASETS_PREFIX}{event.model_name}/"
    problem = dataset_key_problem(ref.key)  # the same rule validation applied
    if problem is not None:
        raise TrainingRejectedError(f"dataset {where} is not under {expected} of model {event.model_name!r}: {problem}")
    if model_of_dataset_key(ref.key) != event.model_name:
        raise TrainingRejectedError(f"dataset {where} is not under {expected} of model {event.model_name!r}")


def _load_contract(store: ObjectStore, data_bucket: str, event: DatasetValidated) -> Contract:
    key = contract_key(event.model_name)
    try:
        document = store.get_bytes(data_bucket, key)
    except NotFoundError:
        raise TrainingRejectedError(f"no contract for model {event.model_name!r} at s3://{data_bucket}/{key}") from None
    contract = parse_contract(document, source=key)
    if contract.name != event.model_name:
        raise TrainingRejectedError(f"contract {key} names model {contract.name!r}, the event {event.model_name!r}")
    if contract.digest != event.contract_digest:
        raise TrainingRejectedError(
            f"contract {key} changed since the dataset was validated "
            f"(digest {contract.digest[:12]}, validated against {event.contract_digest[:12]}); "
            "upload the dataset again to validate it against the current contract"
        )
    return contract


def load_dataset_version(store: ObjectStore, ref: DatasetRef) -> bytes:
    """The exact dataset version validation read. Raises TrainingRejectedError when it is gone or changed."""
    where = f"s3://{ref.bucket}/{ref.key} (version {ref.version_id or 'null'})"
    try:
        data = store.get_bytes(ref.bucket, ref.key, ref.version_id)
    except NotFoundError:
        raise TrainingRejectedError(f"dataset {where} no longer exists") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.sha256:
        raise TrainingRejectedError(
            f"dataset {where} changed since validation: SHA-256 {digest[:12]}, validated {ref.sha256[:12]} "
            f"({len(data)} bytes now, {ref.size_bytes} validated)"
        )
    return data
