"""A person's decision on a held dataset: approve (train on it) or reject (quarantine it).

The ledger moves first (a conditional write: of two concurrent reviewers exactly one wins, the
other gets ConflictError), then the side effects run. Repeating the same decision after a
failure re-runs the side effects, which are safe to repeat; a different decision on a dataset
already decided is a ConflictError.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from mlops.contract import is_valid_model_name
from mlops.errors import BadRequestError, ConflictError, NotFoundError
from mlops.layout import dataset_key_problem, model_of_dataset_key, quarantine_key
from mlops.ports import EventPublisher, ObjectStore
from mlops.validation.decisions import is_valid_dataset_id, publish_validated, quarantine
from mlops.validation.ledger import DatasetLedger, DatasetState, LedgerChange, LedgerEntry, Notifier

MAX_REASON_CHARS = 1_000


class ReviewDecision(StrEnum):
    APPROVE = "approve"  # held -> accepted: DatasetValidated, training starts
    REJECT = "reject"  # held -> quarantined: moved under quarantine/


_TARGET = {ReviewDecision.APPROVE: DatasetState.ACCEPTED, ReviewDecision.REJECT: DatasetState.QUARANTINED}


class ReviewRequest(BaseModel):
    """A reviewer's decision on a held dataset (the models API's request body)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # documented as an enum, checked by review_held_dataset (400 naming the choices, not a 422)
    decision: str = Field(
        description="approve (train on it) or reject (quarantine it)",
        max_length=32,
        json_schema_extra={"enum": [d.value for d in ReviewDecision]},
    )
    reason: str = Field(
        default="", description="why (required; recorded in the ledger's history)", max_length=MAX_REASON_CHARS
    )


def datasets_in_state(ledger: DatasetLedger, model: str, state: DatasetState) -> list[LedgerEntry]:
    """A model's datasets in `state`, newest decision first; raises BadRequestError for a bad name."""
    return ledger.by_state(_require_model(model), state)


def _require_model(model: str) -> str:
    if not is_valid_model_name(model):
        raise BadRequestError(f"{model!r} is not a valid model name (lowercase letters, digits and '-', 1-63 chars)")
    return model


def _require_dataset_id(dataset_id: str) -> str:
    if not is_valid_dataset_id(dataset_id):
        raise BadRequestError(f"{dataset_id!r} is not a dataset id (<file name>-<16 hex>, no '/' or '#')")
    return dataset_id


def _require_trainable_key(entry: LedgerEntry) -> None:
    """Approve only what training will read (an entry held before the key rule may break it)."""
    problem = dataset_key_problem(entry.key)
    if problem is None and model_of_dataset_key(entry.key) != entry.model_name:
        problem = f"the key is not under datasets/{entry.model_name}/"
    if problem is not None:
        raise ConflictError(f"dataset {entry.dataset_id} cannot be trained on ({problem}); reject it instead")


def review_held_dataset(
    ledger: DatasetLedger,
    store: ObjectStore,
    publisher: EventPublisher,
    model: str,
    dataset_id: str,
    decision: ReviewDecision | str,
    actor: str,
    reason: str,
    *,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    audit: Callable[[ReviewDecision, LedgerEntry], None] | None = None,
) -> LedgerEntry:
    """Apply a reviewer's decision to a held dataset; returns the ledger entry after it.

    `audit` records the decision in the model's audit trail once the ledger moved (again on a
    retry: the registry keeps one event per reviewer and decision).
    Raises NotFoundError (no such dataset), BadRequestError (malformed model name or dataset id,
    unknown decision, no actor or reason), ConflictError (the dataset is not held, or another
    reviewer decided differently).
    """
    _require_model(model)
    _require_dataset_id(dataset_id)
    try:
        decision = ReviewDecision(decision)
    except ValueError:
        raise BadRequestError(f"decision must be one of {[d.value for d in ReviewDecision]}") from None
    if not actor.strip():
        raise BadRequestError("a review needs the reviewer's identity")
    if not reason.strip():
        raise BadRequestError("a review needs a reason")
    entry = ledger.get(model, dataset_id)
    if entry is None:
        raise NotFoundError(f"model {model!r} has no dataset {dataset_id!r}")
    target = _TARGET[decision]
    if target is DatasetState.ACCEPTED:
        _require_trainable_key(entry)
    if entry.state is DatasetState.HELD:
        change = LedgerChange(at=clock().isoformat(), state=target, actor=actor, reason=reason[:MAX_REASON_CHARS])
        the_quarantine_key = quarantine_key(entry.key) if target is DatasetState.QUARANTINED else None
        entry = ledger.transition(entry, change, quarantine_key=the_quarantine_key)
    elif not (entry.state is target and entry.history and entry.history[-1].actor == actor):
        raise ConflictError(f"dataset {dataset_id} is {entry.state.value}, not held")
    # the same reviewer repeating the same decision: redo the side effects (a retry)
    if audit is not None:
        audit(decision, entry)
    if target is DatasetState.ACCEPTED:
        publish_validated(publisher, entry)
    else:
        quarantine(store, publisher, entry)
        if notifier is not None:
            notifier.notify(
                f"Held dataset rejected: {model}"[:100],
                f"{actor} rejected {entry.key} ({dataset_id}): {reason}\nmoved to {entry.quarantine_key}\n",
            )
    return entry
