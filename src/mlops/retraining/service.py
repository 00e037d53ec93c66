"""One retraining trigger, end to end up to the dataset gate.

trigger -> audit (retrain_requested; the models API audits an approver's own request) -> gates
(mlops.retraining.gates) -> training set = the last accepted dataset + labelled traffic answered
since it was uploaded (mlops.training.traffic's bounded read; labels by `merge_labels`) -> a Parquet
file under `datasets/<model>/retrain-...` -> audit (retrain_started, or retrain_skipped with the
gate's reason). From there validate_dataset, train_model and register_model treat it as any
upload: the same gate, training and promotion policy, and their own audit events.

A redelivered trigger (same id) resumes its own retraining: the started event names its file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from mlops.contract import Contract, ProblemType, parse_contract
from mlops.errors import ModelNotFoundError, NotFoundError
from mlops.layout import contract_key, retrain_dataset_key
from mlops.ports import ObjectStore
from mlops.registry.records import AuditAction, AuditEvent
from mlops.retraining.gates import Gate, before_reading, enough_labels
from mlops.retraining.ports import RetrainingRegistry
from mlops.retraining.triggers import RetrainTrigger, TriggerKind
from mlops.training.dataset import read_dataset
from mlops.training.traffic import TrafficWindow, recent_labelled_traffic
from mlops.validation.ledger import LedgerEntry

SYSTEM_ACTORS = (TriggerKind.ALARM, TriggerKind.SCHEDULE)  # audited here; an approver by the models API


class AcceptedDatasets(Protocol):
    def last_accepted(self, model_name: str) -> LedgerEntry | None: ...


@dataclass(frozen=True)
class RetrainingOutcome:
    model: str
    trigger: str  # alarm, schedule, approver
    started: bool
    reason: str
    gate: str = ""  # the gate that refused, when skipped
    dataset_key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def retrain(
    trigger: RetrainTrigger,
    *,
    registry: RetrainingRegistry,
    ledger: AcceptedDatasets,
    store: ObjectStore,
    data_bucket: str,
    artifact_bucket: str,
    now: datetime | None = None,
) -> RetrainingOutcome:
    """Decide on `trigger` and, when the gates pass, write the training set under datasets/."""
    now = now or datetime.now(UTC)
    name = trigger.model
    if trigger.kind in SYSTEM_ACTORS:
        registry.record_retraining(
            name,
            AuditAction.RETRAIN_REQUESTED,
            {"trigger": trigger.kind.value, "trigger_id": trigger.trigger_id},
            actor=trigger.actor,
            reason=trigger.reason,
            idempotency_key=f"retrain-requested#{trigger.trigger_id}",
        )
    events = _retraining_events(registry, name)
    resumed = next((e for e in events if e.after.get("trigger_id") == trigger.trigger_id), None)
    if resumed is not None and resumed.after.get("dataset_key"):
        # a redelivery: the file is the one the first delivery chose (written again only if missing)
        contract = _contract(store, data_bucket, name)
        key = str(resumed.after["dataset_key"])
        if not _exists(store, data_bucket, key):
            entry = ledger.last_accepted(name)
            if entry is None:
                raise NotFoundError(f"the accepted dataset of {name} vanished; cannot resume {key}")
            frame, _ = _training_set(store, contract, entry, artifact_bucket, now)
            _write(store, data_bucket, key, frame)
        return RetrainingOutcome(name, trigger.kind.value, True, "resumed", dataset_key=key, details=resumed.after)

    def skip(gate: Gate, details: dict[str, Any] | None = None) -> RetrainingOutcome:
        recorded = {
            "trigger": trigger.kind.value,
            "trigger_id": trigger.trigger_id,
            "gate": gate.gate,
            **(details or {}),
        }
        registry.record_retraining(
            name,
            AuditAction.RETRAIN_SKIPPED,
            recorded,
            actor=trigger.actor,
            reason=gate.reason,
            idempotency_key=f"retrain-skipped#{trigger.trigger_id}",
        )
        return RetrainingOutcome(name, trigger.kind.value, False, gate.reason, gate=gate.gate, details=recorded)

    try:
        production = registry.get_model(name).production_version
    except ModelNotFoundError:
        production = None
    last_started = max((e.at for e in events if e.action == AuditAction.RETRAIN_STARTED), default=None)
    contract = _contract(store, data_bucket, name)
    gate = before_reading(
        trigger, contract.retraining, production_version=production, last_started=last_started, now=now
    )
    if not gate.passed:
        return skip(gate)
    entry = ledger.last_accepted(name)
    if entry is None or entry.contract_digest != contract.digest:
        why = (
            "no accepted dataset"
            if entry is None
            else f"the last accepted dataset {entry.dataset_id} predates the contract"
        )
        return skip(Gate(False, f"{why}: nothing to add the labelled traffic to", "no_dataset"))
    frame, counts = _training_set(store, contract, entry, artifact_bucket, now)
    labels = enough_labels(trigger, contract.retraining, new_labelled_rows=counts["traffic_rows"])
    if not labels.passed:
        return skip(labels, counts)
    key = retrain_dataset_key(name, now, trigger.trigger_id)
    details = {
        "trigger": trigger.kind.value,
        "trigger_id": trigger.trigger_id,
        "dataset_key": key,
        "base_dataset": entry.dataset_id,
        "gates": f"{gate.reason}; {labels.reason}",
        **counts,
    }
    started = registry.record_retraining(
        name,
        AuditAction.RETRAIN_STARTED,
        details,
        actor=trigger.actor,
        reason=trigger.reason,
        idempotency_key=f"retrain-started#{trigger.trigger_id}",
    )
    _write(store, data_bucket, key, frame)
    return RetrainingOutcome(name, trigger.kind.value, True, labels.reason, dataset_key=key, details=started.after)


def _retraining_events(registry: RetrainingRegistry, name: str) -> list[AuditEvent]:
    try:
        events = registry.audit_events(name)
    except ModelNotFoundError:
        return []
    retraining = {AuditAction.RETRAIN_STARTED.value, AuditAction.RETRAIN_SKIPPED.value}
    return [e for e in events if e.action in retraining]


def _contract(store: ObjectStore, data_bucket: str, name: str) -> Contract:
    key = contract_key(name)
    return parse_contract(store.get_bytes(data_bucket, key), source=key)


def _exists(store: ObjectStore, bucket: str, key: str) -> bool:
    try:
        store.head(bucket, key)
    except NotFoundError:
        return False
    return True


def _since(entry: LedgerEntry) -> datetime:
    stamp = datetime.fromisoformat((entry.uploaded_at or entry.decided_at).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _training_set(
    store: ObjectStore, contract: Contract, entry: LedgerEntry, artifact_bucket: str, now: datetime
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The last accepted dataset (its exact version) plus labelled traffic answered since it was
    uploaded, within `retraining.window_hours`, in the contract's columns."""
    rules = contract.retraining
    base = read_dataset(store.get_bytes(entry.bucket, entry.key, entry.version_id), entry.key, contract)
    hours = min(rules.window_hours, max((now - _since(entry)).total_seconds() / 3600, 0.0))
    window = TrafficWindow(artifact_bucket, hours=hours, min_rows=1, max_rows=rules.max_traffic_rows)
    traffic = recent_labelled_traffic(store, contract.name, contract.target.name, window, now=now)
    added = _in_contract_columns(traffic.frame, contract, base)
    frame = pd.concat([base, added], ignore_index=True) if len(added) else base
    counts = {
        "base_rows": len(base),
        "traffic_rows": len(added),
        "labels_read": traffic.labels_read,
        "unmatched_labels": traffic.unmatched,
        "traffic_window_hours": round(hours, 3),
    }
    return frame, counts


def _in_contract_columns(traffic: pd.DataFrame, contract: Contract, base: pd.DataFrame) -> pd.DataFrame:
    """Captured features and merged labels with the dataset's columns and types (a feature a capture
    lacks is null; the dataset gate judges every row as it would an upload's)."""
    frame = pd.DataFrame(index=pd.RangeIndex(len(traffic)))
    for column in contract.columns:
        values = traffic[column] if column in traffic.columns else pd.Series([None] * len(traffic))
        frame[column] = values.to_numpy()
    target = contract.target.name
    if contract.problem_type is ProblemType.CLASSIFICATION:
        frame[target] = frame[target].map(lambda v: None if v is None else str(v))
    for column in contract.columns:
        if base[column].dtype.kind == "f":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        else:
            frame[column] = frame[column].astype(object)
    return frame


def _write(store: ObjectStore, bucket: str, key: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    for column in frame.columns:  # categoricals as plain text, like an uploaded file
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(object)
    frame.to_parquet(buffer, index=False)
    store.put_bytes(bucket, key, buffer.getvalue(), content_type="application/vnd.apache.parquet")
