"""Training's outcome in the dataset ledger: every accepted dataset ends trained, registered,
training_rejected or training_failed, never "accepted" forever.

Light on purpose (pydantic only): register_model and record_training_failure import it, and their
layers ship no numpy. The allowed moves are the ledger's (`mlops.validation.ledger.TRANSITIONS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from mlops.errors import BadRequestError, ConflictError
from mlops.events import DatasetRef, DatasetValidated, DetailType, TrainingFailed
from mlops.ports import EventPublisher
from mlops.validation.decisions import dataset_id
from mlops.validation.ledger import DatasetLedger, DatasetState, LedgerChange, LedgerEntry, Notifier, can_move

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 1_000


def dataset_id_of(dataset: DatasetRef) -> str:
    """The ledger id of the dataset version an event names (computed when an older event lacks it)."""
    return dataset.dataset_id or dataset_id(dataset.key, dataset.version_id)


def record_training_outcome(
    ledger: DatasetLedger,
    model_name: str,
    dataset: DatasetRef,
    state: DatasetState,
    *,
    actor: str,
    reason: str,
    model_version: int | None = None,
    artifact_sha256: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> LedgerEntry | None:
    """Move the dataset's ledger entry to `state`; returns the entry as stored after it.

    Safe to repeat: an entry already in `state` is returned unchanged. A move the ledger does not
    allow (a late failure report for a registered dataset) or one lost to a concurrent writer
    leaves the stored entry as it is, and is logged. None when the ledger has no such dataset.
    """
    the_id = dataset_id_of(dataset)
    entry = ledger.get(model_name, the_id)
    for _attempt in range(2):  # once more after losing a race: the winner may have been a step before us
        if entry is None:
            logger.warning("no ledger entry for dataset %s of %s; %s not recorded", the_id, model_name, state.value)
            return None
        if entry.state is state:
            return entry
        if not can_move(entry.state, state):
            logger.warning("dataset %s is %s; %s not recorded: %s", the_id, entry.state.value, state.value, reason)
            return entry
        change = LedgerChange(at=clock().isoformat(), state=state, actor=actor, reason=reason[:MAX_REASON_CHARS])
        try:
            return ledger.transition(entry, change, model_version=model_version, artifact_sha256=artifact_sha256)
        except ConflictError:
            entry = ledger.get(model_name, the_id)
    logger.warning("dataset %s moved concurrently; %s not recorded", the_id, state.value)
    return entry


def record_training_failure(
    ledger: DatasetLedger,
    model_name: str,
    dataset: DatasetRef,
    reason: str,
    *,
    actor: str,
    publisher: EventPublisher,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> LedgerEntry | None:
    """Record `training_failed` with `reason`, then announce it (`TrainingFailed`, and the notifier)
    when the ledger moved: a repeated report of the same failure announces nothing new."""
    before = ledger.get(model_name, dataset_id_of(dataset))
    entry = record_training_outcome(
        ledger, model_name, dataset, DatasetState.TRAINING_FAILED, actor=actor, reason=reason, clock=clock
    )
    moved = entry is not None and entry.state is DatasetState.TRAINING_FAILED and entry != before
    if moved or entry is None:  # no ledger entry: the announcement is the only record left
        publisher.publish(
            DetailType.TRAINING_FAILED, TrainingFailed(model_name=model_name, dataset=dataset, reason=reason)
        )
        if notifier is not None:
            notifier.notify(
                f"Training failed: {model_name}",
                f"Training on s3://{dataset.bucket}/{dataset.key} (version {dataset.version_id or 'null'}, "
                f"dataset {dataset_id_of(dataset)}) failed: {reason}\n",
            )
    return entry


@dataclass(frozen=True)
class FailedTraining:
    """A train_model invocation Lambda gave up on, read from its on-failure destination record."""

    model_name: str
    dataset: DatasetRef
    reason: str


def failed_training(record: object) -> FailedTraining:
    """Read the on-failure destination record of an asynchronous train_model invocation.

    The record carries the original EventBridge event (`requestPayload`), why Lambda gave up
    (`requestContext.condition`: RetriesExhausted or EventAgeExceeded, and the attempts made) and
    the last error (`responsePayload`: e.g. Runtime.OutOfMemory, or "Task timed out").
    Raises BadRequestError when the record names no DatasetValidated dataset.
    """
    if not isinstance(record, dict):
        raise BadRequestError("a destination record is a JSON object")
    payload = record.get("requestPayload")
    detail = payload.get("detail") if isinstance(payload, dict) else None
    try:
        event = DatasetValidated.model_validate(detail)
    except ValidationError as error:
        fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'detail'}: {e['msg']}" for e in error.errors())
        raise BadRequestError(f"the record's requestPayload is no DatasetValidated event: {fields}") from None
    return FailedTraining(event.model_name, event.dataset, destination_failure_reason(record))


def destination_failure_reason(record: dict[str, object]) -> str:
    """Why Lambda gave up on an asynchronous invocation, from its on-failure destination record:
    the condition, the attempts made and the last error."""
    context = record.get("requestContext")
    context = context if isinstance(context, dict) else {}
    response = record.get("responsePayload")
    condition = str(context.get("condition") or "Failed")
    attempts = context.get("approximateInvokeCount")
    reason = condition + (f" after {attempts} attempts" if attempts else "")
    if isinstance(response, dict):
        error_type, message = response.get("errorType"), response.get("errorMessage")
        reason += ": " + ": ".join(str(part) for part in (error_type, message) if part)
    elif response:
        reason += f": {response}"
    return reason[:MAX_REASON_CHARS]


def registration_outcome(dataset: DatasetRef, version: int, version_dataset: object, created: bool) -> str:
    """What registering a dataset's model came to, in words: a new version, or identical to one.

    `version_dataset` is the registered version's lineage dataset: a retry of this dataset's own
    registration finds the version it created (not a new one, but not "identical to" either).
    """
    ours = isinstance(version_dataset, dict) and (
        version_dataset.get("sha256"),
        version_dataset.get("key"),
        version_dataset.get("version_id"),
    ) == (dataset.sha256, dataset.key, dataset.version_id)
    if created or ours:
        return f"registered as v{version}"
    return f"identical to v{version}, no new version"


def record_registration(
    ledger: DatasetLedger,
    model_name: str,
    dataset: DatasetRef,
    *,
    version: int,
    version_dataset: object,
    created: bool,
    artifact_sha256: str,
    actor: str,
    status: str = "",
) -> tuple[str, LedgerEntry | None]:
    """Record `registered` with the version (new or identical) on the dataset's ledger entry;
    returns the outcome in words and the entry."""
    outcome = registration_outcome(dataset, version, version_dataset, created)
    reason = f"{outcome} ({status})" if status and outcome.startswith("registered") else outcome
    entry = record_training_outcome(
        ledger,
        model_name,
        dataset,
        DatasetState.REGISTERED,
        actor=actor,
        reason=reason,
        model_version=version,
        artifact_sha256=artifact_sha256,
    )
    return reason, entry


def record_hand_off(
    ledger: DatasetLedger,
    model_name: str,
    dataset: DatasetRef,
    note: str,
    *,
    actor: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> LedgerEntry | None:
    """Note on an accepted dataset's ledger entry that training was handed to the managed engine
    (the state stays accepted until the engine's outcome). Safe to repeat: the same note is written once."""
    entry = ledger.get(model_name, dataset_id_of(dataset))
    if entry is None or entry.state is not DatasetState.ACCEPTED:
        logger.warning("dataset %s of %s is not accepted; hand-off not noted", dataset_id_of(dataset), model_name)
        return entry
    if entry.history and entry.history[-1].reason == note:
        return entry
    change = LedgerChange(
        at=clock().isoformat(), state=DatasetState.ACCEPTED, actor=actor, reason=note[:MAX_REASON_CHARS]
    )
    try:
        return ledger.transition(entry, change)
    except ConflictError:  # the engine's outcome got there first: nothing left to note
        return ledger.get(model_name, dataset_id_of(dataset))
