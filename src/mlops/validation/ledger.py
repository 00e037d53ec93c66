"""The dataset ledger: exactly one state per dataset version, queryable, with its audit history.

Stored on its own table (adapters/dataset_ledger_dynamodb.py): `pk=MODEL#<model>`,
`sk=DATASET#<dataset id>`; `gsi1pk=DATASETS#<model>#<state>`, `gsi1sk=<decided at>#<dataset id>` so
"held datasets of a model" and "last accepted dataset of a model" are one Query each.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from mlops.errors import ConflictError
from mlops.events import DatasetRef


class DatasetState(StrEnum):
    """The one state a dataset version is in (the ledger's `state`)."""

    ACCEPTED = "accepted"  # DatasetValidated published: training starts
    QUARANTINED = "quarantined"  # moved under quarantine/, never trained on
    HELD = "held"  # statistical checks failed, schema sound: waits for a reviewer
    # what training made of an accepted dataset
    TRAINED = "trained"  # train_model stored a model and published ModelTrained
    REGISTERED = "registered"  # register_model: a new version, or identical to one (model_version says which)
    TRAINING_REJECTED = "training_rejected"  # the data cannot make a model, or does not fit training's memory
    TRAINING_FAILED = "training_failed"  # crashed, ran out of memory or time, or waited too long to run


# The only moves a dataset's state can make (the adapters apply them with a conditional write).
TRANSITIONS: dict[DatasetState, frozenset[DatasetState]] = {
    DatasetState.HELD: frozenset({DatasetState.ACCEPTED, DatasetState.QUARANTINED}),  # a review
    # accepted -> accepted: a hand-off to the managed engine is noted (training continues there)
    DatasetState.ACCEPTED: frozenset(
        {DatasetState.ACCEPTED, DatasetState.TRAINED, DatasetState.TRAINING_REJECTED, DatasetState.TRAINING_FAILED}
    ),
    # a trained model whose announcement never got out (every retry failed) ends as a failure
    DatasetState.TRAINED: frozenset({DatasetState.REGISTERED, DatasetState.TRAINING_FAILED}),
    # a redriven event that trains after all
    DatasetState.TRAINING_FAILED: frozenset({DatasetState.TRAINED, DatasetState.TRAINING_REJECTED}),
    DatasetState.REGISTERED: frozenset(),
    DatasetState.TRAINING_REJECTED: frozenset(),
    DatasetState.QUARANTINED: frozenset(),
}
# States of a dataset validation accepted, whatever training made of it (a reference candidate).
VALIDATED_STATES = (
    DatasetState.ACCEPTED,
    DatasetState.TRAINED,
    DatasetState.REGISTERED,
    DatasetState.TRAINING_REJECTED,
    DatasetState.TRAINING_FAILED,
)


def can_move(current: DatasetState, target: DatasetState) -> bool:
    return target in TRANSITIONS[current]


class LedgerChange(BaseModel):
    """One audited change of state (the validator's decision, or a reviewer's)."""

    model_config = ConfigDict(frozen=True)

    at: str
    state: DatasetState
    actor: str
    reason: str = ""


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    dataset_id: str
    state: DatasetState
    bucket: str
    key: str
    version_id: str | None = None
    sha256: str | None = None
    size_bytes: int
    rows: int | None = None
    uploader: str | None = None
    uploaded_at: str | None = None
    contract_digest: str | None = None
    report_key: str
    summary_key: str | None = None
    quarantine_key: str | None = None
    reasons: list[str] = Field(default_factory=list)
    decided_at: str
    history: list[LedgerChange] = Field(default_factory=list)
    # training's outcome: the registry version this dataset's model is (new or identical)
    model_version: int | None = None
    artifact_sha256: str | None = None

    def dataset_ref(self) -> DatasetRef:
        """The exact object version, with provenance (for DatasetValidated). Needs sha256 and rows."""
        if self.sha256 is None or self.rows is None:
            raise ValueError(f"dataset {self.dataset_id} was never read; it cannot be trained on")
        return DatasetRef(
            bucket=self.bucket,
            key=self.key,
            version_id=self.version_id,
            sha256=self.sha256,
            size_bytes=self.size_bytes,
            rows=self.rows,
            uploader=self.uploader,
            uploaded_at=self.uploaded_at,
            dataset_id=self.dataset_id,
        )


def moved(
    entry: LedgerEntry,
    change: LedgerChange,
    *,
    quarantine_key: str | None = None,
    model_version: int | None = None,
    artifact_sha256: str | None = None,
) -> LedgerEntry:
    """`entry` after `change`, with the given outcome fields (the others kept). Every ledger builds
    a move with it. Raises ConflictError when TRANSITIONS does not allow the move."""
    if not can_move(entry.state, change.state):
        raise ConflictError(
            f"dataset {entry.dataset_id} of {entry.model_name} cannot move from {entry.state.value} "
            f"to {change.state.value}"
        )
    return entry.model_copy(
        update={
            "state": change.state,
            "decided_at": change.at,
            "history": [*entry.history, change],
            "quarantine_key": quarantine_key or entry.quarantine_key,
            "model_version": model_version if model_version is not None else entry.model_version,
            "artifact_sha256": artifact_sha256 or entry.artifact_sha256,
        }
    )


class DatasetLedger(Protocol):
    def get(self, model_name: str, dataset_id: str) -> LedgerEntry | None: ...

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        """Create the entry unless one exists; returns the stored entry (the first decision wins)."""
        ...

    def transition(
        self,
        entry: LedgerEntry,
        change: LedgerChange,
        *,
        quarantine_key: str | None = None,
        model_version: int | None = None,
        artifact_sha256: str | None = None,
    ) -> LedgerEntry:
        """Move `entry` from its current state to `change.state`, only if it is still in that state
        (setting the given training outcome fields).

        Raises ConflictError when the stored state moved meanwhile.
        """
        ...

    def last_accepted(self, model_name: str) -> LedgerEntry | None: ...

    def by_state(self, model_name: str, state: DatasetState) -> list[LedgerEntry]:
        """Entries of a model in one state, newest decision first."""
        ...


class Notifier(Protocol):
    def notify(self, subject: str, message: str) -> None: ...
