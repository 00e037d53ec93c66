"""The import stage: an ONNX file dropped under `models/<model>/incoming/` -> checked against the
contract, scored on the holdout the suite holds, stored like a trained model -> `ModelTrained`
(origin "imported"), so register_model applies the same integrity check, promotion policy,
approval and audit. Or `ModelImportRejected` with a report naming each problem; nothing registered.

Runs in train_model (the training image): it has onnxruntime, pandas, pyarrow and the split,
metrics and profile code this must share with training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import onnxruntime

from mlops.contract import Contract, parse_contract
from mlops.errors import ContractError, DatasetError, NotFoundError, TrainingRejectedError
from mlops.events import DetailType, ImportSource, ModelImportRejected, ModelTrained
from mlops.imports.drops import MAX_IMPORT_BYTES, ImportDrop
from mlops.imports.graph import GraphRejectedError, check_graph, size_problem, with_suite_metadata
from mlops.imports.requests import ticket_of
from mlops.imports.scoring import ScoredImport, score_graph
from mlops.layout import artifact_key, baseline_key, contract_key, import_id, import_report_key, model_of_incoming_key
from mlops.ports import EventPublisher, ObjectStore
from mlops.training.dataset import read_dataset
from mlops.training.service import ONNX_CONTENT_TYPE, check_budget, load_dataset_version
from mlops.validation.ledger import DatasetLedger, LedgerEntry, Notifier

logger = logging.getLogger(__name__)

ORIGIN_IMPORTED = "imported"


class ImportRejectedError(Exception):
    """Internal: the import stops here with these problems (reported, announced, never raised out)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ImportOutcome:
    detail_type: str  # DetailType.MODEL_TRAINED or DetailType.MODEL_IMPORT_REJECTED
    detail: ModelTrained | ModelImportRejected
    report_key: str | None
    seconds: float

    @property
    def imported(self) -> bool:
        return isinstance(self.detail, ModelTrained)


def import_model(
    drop: ImportDrop,
    *,
    store: ObjectStore,
    publisher: EventPublisher,
    ledger: DatasetLedger,
    data_bucket: str,
    artifact_bucket: str,
    notifier: Notifier | None = None,
    max_bytes: int = MAX_IMPORT_BYTES,
    memory_mb: int | None = None,
) -> ImportOutcome:
    """Import one dropped file. Permanent problems (a key outside `models/<model>/incoming/` of the data
    bucket, too large, not ONNX, inputs or outputs that do not match the contract, wrong classes, no
    accepted dataset to score on, a graph onnxruntime cannot run) end as `ModelImportRejected` and a
    report; raises only on anything else (S3, EventBridge, a bug), which a retry may fix."""
    started = time.monotonic()
    model_name = model_of_incoming_key(drop.key)
    source = ImportSource.unread(drop)
    report = import_report_key(model_name, import_id(drop.key, drop.version_id)) if model_name else None
    try:
        if model_name is None or drop.bucket != data_bucket:
            raise ImportRejectedError(
                [
                    f"s3://{drop.bucket}/{drop.key} is not an import drop models/<model>/incoming/<file>.onnx "
                    f"of the data bucket {data_bucket!r}"
                ]
            )
        source, data = _read_source(store, drop, source, max_bytes)
        contract = _load_contract(store, data_bucket, model_name)
        graph = check_graph(data, contract, max_bytes=max_bytes)
        entry = _holdout_dataset(ledger, contract)
        dataset = entry.dataset_ref()
        check_budget(dataset, contract, memory_mb)
        frame = read_dataset(load_dataset_version(store, dataset), dataset.key, contract)
        stored = with_suite_metadata(graph, contract, source.sha256 or "")
        scored = score_graph(stored, graph, frame, contract)
    except (ImportRejectedError, GraphRejectedError, TrainingRejectedError, DatasetError, ContractError) as error:
        problems = list(getattr(error, "problems", None) or [str(error)])
        return _reject(model_name, source, problems, report, store, publisher, notifier, data_bucket, started)

    sha256 = hashlib.sha256(stored).hexdigest()
    key, baseline = artifact_key(contract.name, sha256), baseline_key(contract.name, sha256)
    # as training does: baseline first, so once the artifact exists everything it refers to can be read
    store.put_bytes(artifact_bucket, baseline, scored.profile.model_dump_json().encode(), "application/json")
    store.put_bytes(artifact_bucket, key, stored, ONNX_CONTENT_TYPE)
    trained = ModelTrained(
        model_name=contract.name,
        artifact_bucket=artifact_bucket,
        artifact_key=key,
        artifact_sha256=sha256,
        artifact_bytes=len(stored),
        baseline_key=baseline,
        metric_name=contract.metric.name,
        metrics=scored.metrics,
        dataset=dataset,
        contract=contract.model_dump(mode="json"),
        contract_digest=contract.digest,
        seed=contract.training.seed,
        params={},  # built elsewhere: the suite knows no hyperparameters it could vouch for
        library_versions={"producer": graph.producer, "onnxruntime": onnxruntime.__version__},
        training_rows=scored.training_rows,
        holdout_rows=scored.holdout_rows,
        onnx_max_abs_diff=0.0,  # the graph is what is scored and served: there is no second model to differ from
        origin=ORIGIN_IMPORTED,
        imported=source,
    )
    if report is not None:
        _write_report(store, data_bucket, report, source, "imported", [], scored, sha256)
    publisher.publish(DetailType.MODEL_TRAINED, trained)
    return ImportOutcome(DetailType.MODEL_TRAINED, trained, report, time.monotonic() - started)


def _read_source(
    store: ObjectStore, drop: ImportDrop, source: ImportSource, max_bytes: int
) -> tuple[ImportSource, bytes]:
    where = f"s3://{drop.bucket}/{drop.key} (version {drop.version_id or 'null'})"
    try:
        info = store.head(drop.bucket, drop.key, drop.version_id)
    except NotFoundError:
        raise ImportRejectedError([f"{where} no longer exists"]) from None
    # an upload URL the models API signed names the approver who asked; otherwise the uploader
    ticket = ticket_of(store, drop.bucket, drop.key)
    importer = ticket.importer if ticket is not None else (drop.uploaded_by or "unknown")
    reason = ticket.reason if ticket is not None else ""
    source = source.model_copy(update={"size_bytes": info.size, "importer": importer, "reason": reason})
    if info.size > max_bytes:  # refused before a byte is read
        raise ImportRejectedError([size_problem(info.size, max_bytes)])
    try:
        data = store.get_bytes(drop.bucket, drop.key, drop.version_id)
    except NotFoundError:
        raise ImportRejectedError([f"{where} no longer exists"]) from None
    return source.model_copy(update={"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}), data


def _load_contract(store: ObjectStore, data_bucket: str, model_name: str) -> Contract:
    key = contract_key(model_name)
    try:
        document = store.get_bytes(data_bucket, key)
    except NotFoundError:
        raise ImportRejectedError([f"no contract for model {model_name!r} at s3://{data_bucket}/{key}"]) from None
    contract = parse_contract(document, source=key)
    if contract.name != model_name:
        raise ImportRejectedError([f"contract {key} names model {contract.name!r}, the drop {model_name!r}"])
    return contract


def _holdout_dataset(ledger: DatasetLedger, contract: Contract) -> LedgerEntry:
    """The last dataset validation accepted for the model, validated against the current contract."""
    entry = ledger.last_accepted(contract.name)
    if entry is None:
        raise ImportRejectedError(
            [f"model {contract.name!r} has no accepted dataset to score the import on; upload one under datasets/"]
        )
    if entry.contract_digest != contract.digest:
        raise ImportRejectedError(
            [
                f"the last accepted dataset {entry.dataset_id} was validated against another contract "
                f"(digest {(entry.contract_digest or 'none')[:12]}, now {contract.digest[:12]}); upload a dataset "
                "under the current contract first"
            ]
        )
    if entry.sha256 is None or entry.rows is None:
        raise ImportRejectedError([f"the last accepted dataset {entry.dataset_id} was never read"])
    return entry


def _reject(
    model_name: str | None,
    source: ImportSource,
    problems: list[str],
    report: str | None,
    store: ObjectStore,
    publisher: EventPublisher,
    notifier: Notifier | None,
    data_bucket: str,
    started: float,
) -> ImportOutcome:
    name = model_name or "_unassigned"
    if report is not None:
        _write_report(store, data_bucket, report, source, "rejected", problems, None, None)
    rejected = ModelImportRejected(model_name=name, source=source, report_key=report, problems=problems)
    publisher.publish(DetailType.MODEL_IMPORT_REJECTED, rejected)
    if notifier is not None:
        listed = "".join(f"- {p}\n" for p in problems)
        notifier.notify(
            f"Model import rejected: {name}",
            f"The import of s3://{source.bucket}/{source.key} by {source.importer} was rejected:\n{listed}",
        )
    return ImportOutcome(DetailType.MODEL_IMPORT_REJECTED, rejected, report, time.monotonic() - started)


def _write_report(
    store: ObjectStore,
    bucket: str,
    key: str,
    source: ImportSource,
    outcome: str,
    problems: list[str],
    scored: ScoredImport | None,
    artifact_sha256: str | None,
) -> None:
    document = {
        "outcome": outcome,
        "decided_at": datetime.now(UTC).isoformat(),
        "source": source.model_dump(mode="json"),
        "problems": problems,
        "metrics": scored.metrics if scored else None,
        "holdout_rows": scored.holdout_rows if scored else None,
        "artifact_sha256": artifact_sha256,
    }
    store.put_bytes(bucket, key, json.dumps(document, indent=2).encode(), "application/json")
