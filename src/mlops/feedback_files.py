"""Label files dropped under `feedback/<model>/` of the data bucket (CSV, CSV.gz or Parquet; columns
`prediction_id` and `label`, or `value` for a regression; other columns are ignored): the dataset
gate's streaming readers (`mlops.validation.readers`), THE label rules (`mlops.feedback.LabelRules`)
row by row, label objects out (`mlops.feedback.write_labels`).

Files are judged row by row, not all or nothing (a file cannot be half-resent the way a request is
retried): good rows are written, bad rows are counted by reason and listed by data row number (1 =
the first row under the header) in a JSON report (`reports/<model>/feedback/<file id>.json`), with
their prediction id but never the label (it is the sender's data). A file that cannot be read (bad
format, a missing column, limits, no such model) is moved to `quarantine/_feedback/` with its report:
nothing is lost, and the file stays where it was when it could be read. The rules' clock is the
upload time, so a retried delivery judges every row as the first did.

Memory stays flat: accepted labels are buffered up to `flush_labels`, then written (one object per
prediction minute per flush). Repeats within a flush are absorbed by `merge_labels` (counted in the
report); repeats across flushes, files and the API are absorbed the same way when labels are read.
A file that fails part way may leave the objects of earlier flushes; a fixed file sent again only
adds duplicates, which the first-received rule absorbs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, BinaryIO

import pyarrow as pa

from mlops.contract import DataChecks, parse_contract
from mlops.errors import ContractError, ModelNotFoundError, NotFoundError
from mlops.feedback import LabelProblem, LabelRules, ProductionContracts, write_labels
from mlops.labels import LabelBatch, merge_labels
from mlops.layout import (
    FEEDBACK_PREFIX,
    UNASSIGNED_MODEL,
    feedback_key_problem,
    feedback_quarantine_key,
    feedback_report_key,
    model_of_feedback_key,
)
from mlops.ports import ObjectStore
from mlops.validation.decisions import dataset_id
from mlops.validation.readers import DatasetFormat, ReadResult, format_of, read_csv, read_parquet
from mlops.validation.service import SeekableOpener, UploadedObject, csv_block_bytes

logger = logging.getLogger(__name__)

PREDICTION_ID_COLUMN = "prediction_id"
REPORT_FORMAT = "mlops-feedback-report/1"
FLUSH_LABELS = 50_000  # accepted labels held before they are written (memory stays flat)
MAX_REPORTED_ROWS = 1_000  # refused rows listed in a report; the counts cover all of them
# Every reason a row can be refused, in words: the report lists rows by reason, never their labels.
REASONS = {
    LabelProblem.MALFORMED_ID.value: "prediction_id is not an id predict issued (32 lowercase hex characters)",
    LabelProblem.FUTURE.value: "prediction_id says the prediction was answered after the file was uploaded",
    LabelProblem.PAST_HORIZON.value: "the prediction is older than the contract's monitoring.feedback.horizon_hours",
    LabelProblem.MISSING.value: "the label cell is empty",
    LabelProblem.WRONG_TYPE.value: "the cell is not a label of the model's kind (a class, or a finite number)",
    LabelProblem.UNKNOWN_CLASS.value: "the label is not one of the contract's classes",
    LabelProblem.NOT_FINITE.value: "the value is not a finite number",
}


class FileOutcome(StrEnum):
    ACCEPTED = "accepted"  # every row written
    PARTLY_ACCEPTED = "partly_accepted"  # good rows written, bad rows reported
    REFUSED = "refused"  # read to the end, no row acceptable (the report says why)
    QUARANTINED = "quarantined"  # could not be read: moved to quarantine/_feedback/ with its report
    MISSING = "missing"  # the version is gone (quarantined by an earlier delivery, or deleted)


@dataclass
class _Limits:
    """The `contract` the dataset readers look at: only its `data` limits (size, rows, format)."""

    data: DataChecks


@dataclass
class LabelFileChecker:
    """Fed record batches by the dataset readers (it has the `DatasetChecker` surface they use):
    judges each row, buffers accepted labels and hands them to `write` every `flush_labels`."""

    rules: LabelRules
    limits: DataChecks
    received_at: float  # the upload time: the rules' clock and every label's `received_at`
    write: Callable[[LabelBatch], int]  # writes a batch's label objects; returns how many
    source: str
    flush_labels: int = FLUSH_LABELS
    rows: int = 0
    names: list[str] = field(default_factory=list)
    refused_by_reason: dict[str, int] = field(default_factory=dict)
    refused_rows: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    label_objects: int = 0
    _ids: list[str] = field(default_factory=list)
    _truths: list[str | float] = field(default_factory=list)

    @property
    def contract(self) -> _Limits:
        return _Limits(self.limits)

    @property
    def wanted(self) -> list[str]:
        return [PREDICTION_ID_COLUMN, self.rules.field]

    @property
    def missing_columns(self) -> list[str]:
        return [name for name in self.wanted if name not in self.names]

    @property
    def too_many_columns(self) -> bool:
        return len(self.names) > self.limits.max_columns

    @property
    def too_many_rows(self) -> bool:
        return self.rows > self.limits.max_rows

    @property
    def read_columns(self) -> list[str]:
        return [name for name in self.wanted if name in self.names]

    @property
    def categorical_columns(self) -> list[str]:
        return []  # read as stored: the rule wants text or numbers, not dictionary indices

    @property
    def refused(self) -> int:
        return sum(self.refused_by_reason.values())

    def set_columns(self, names: list[str]) -> None:
        self.names = list(names)

    def count_rows(self, rows: int) -> None:
        self.rows += rows

    def check_batch(self, batch: pa.RecordBatch) -> None:
        if self.missing_columns:  # the readers report it as the file's error, with the rows read
            raise ValueError(self.missing_message())
        ids = _text(batch.column(PREDICTION_ID_COLUMN)).to_pylist()
        truths = self._truths_of(batch.column(self.rules.field))
        problem, name, now = self.rules.problem, self.rules.field, self.received_at
        before = self.rows
        for offset, (prediction_id, truth) in enumerate(zip(ids, truths, strict=True)):
            found = problem(prediction_id, name, truth, now)
            if found is not None:
                self._refuse(before + offset + 1, prediction_id, found[0])
                continue
            self._ids.append(prediction_id)
            self._truths.append(self.rules.stored(truth))
            if len(self._ids) >= self.flush_labels:
                self.flush()
        self.rows += len(ids)

    def _truths_of(self, column: pa.Array) -> list[Any]:
        if self.rules.classes is None and (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            return column.to_pylist()
        return [self.rules.truth_of_text(text) for text in _text(column).to_pylist()]

    def _refuse(self, row: int, prediction_id: object, reason: LabelProblem) -> None:
        self.refused_by_reason[reason.value] = self.refused_by_reason.get(reason.value, 0) + 1
        if len(self.refused_rows) < MAX_REPORTED_ROWS:
            shown = prediction_id[:40] if isinstance(prediction_id, str) else None
            self.refused_rows.append({"row": row, "prediction_id": shown, "reason": reason.value})

    def flush(self) -> None:
        if not self._ids:
            return
        merged = merge_labels([LabelBatch(self._ids, self._truths, [self.received_at] * len(self._ids), self.source)])
        self.duplicates += merged.duplicates
        self.conflicts += merged.conflicts
        unique = list(merged.labels)
        batch = LabelBatch(unique, list(merged.labels.values()), [self.received_at] * len(unique), self.source)
        self.label_objects += self.write(batch)
        self.accepted += len(unique)
        self._ids, self._truths = [], []

    def missing_message(self) -> str:
        kind = "classifier: label" if self.rules.classes is not None else "regression: value"
        return (
            f"the file has no column {', '.join(self.missing_columns)} (columns prediction_id and, for a "
            f"{kind}, are needed)"
        )


def _text(column: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())
    return column


@dataclass(frozen=True)
class FeedbackFileResult:
    outcome: FileOutcome
    model: str | None
    bucket: str
    key: str
    version_id: str | None
    report_key: str | None = None
    quarantine_key: str | None = None
    rows: int = 0
    accepted: int = 0
    refused: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value}


class LabelFileIngestor:
    """One label file version in: judged, written, reported (and quarantined when unreadable).
    Raises when S3 or the registry fails (the caller retries); bad files never raise."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        data_bucket: str,
        artifact_bucket: str,
        contracts: ProductionContracts,
        batch_rows: int = 16_384,
        open_seekable: SeekableOpener | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        flush_labels: int = FLUSH_LABELS,
    ) -> None:
        self.store = store
        self.data_bucket = data_bucket
        self.artifact_bucket = artifact_bucket
        self.contracts = contracts
        self.batch_rows = batch_rows
        self.open_seekable = open_seekable or (lambda bucket, key, version: store.open(bucket, key, version))
        self.clock = clock
        self.flush_labels = flush_labels

    def ingest(self, upload: UploadedObject) -> FeedbackFileResult:
        started = time.perf_counter()
        model = model_of_feedback_key(upload.key)
        try:
            info = self.store.head(upload.bucket, upload.key, upload.version_id)
        except NotFoundError:
            logger.info("label file version gone (quarantined or deleted): %s", upload.key)
            return FeedbackFileResult(FileOutcome.MISSING, model, upload.bucket, upload.key, upload.version_id)
        version_id = upload.version_id or info.version_id
        file_id = dataset_id(upload.key, version_id)
        received = (info.last_modified or self.clock()).astimezone(UTC)
        report: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "bucket": upload.bucket,
            "key": upload.key,
            "version_id": version_id,
            "model": model,
            "received_at": received.isoformat(),
            "size": info.size,
        }

        def refuse(error: str) -> FeedbackFileResult:
            return self._quarantine(upload, version_id, model or UNASSIGNED_MODEL, file_id, report, error)

        if not upload.key.startswith(FEEDBACK_PREFIX) or (problem := feedback_key_problem(upload.key)):
            return refuse(problem or f"the key is not under {FEEDBACK_PREFIX}")
        assert model is not None
        try:
            version = self.contracts.production(model)
        except ModelNotFoundError:
            return refuse(f"no model named {model!r} is registered")
        if version is None:
            return refuse(f"{model} has no production version: it has answered no prediction to label")
        rules = LabelRules.from_contract(version.contract)
        try:
            limits = parse_contract(version.contract, source=f"{model} v{version.version}").data
        except ContractError:
            limits = DataChecks()  # the rules read what they need; the limits fall back to their defaults
        if info.size > limits.max_object_bytes:
            return refuse(f"the file is {info.size} bytes, over the contract's data.max_object_bytes")
        report["horizon_hours"] = rules.horizon_hours
        written_at = self.clock()
        checker = LabelFileChecker(
            rules=rules,
            limits=limits,
            received_at=received.timestamp(),
            write=lambda batch: len(write_labels(self.store, self.artifact_bucket, model, batch, written_at)),
            source=upload.key,
            flush_labels=self.flush_labels,
        )
        result = self._read(upload, version_id, info.size, checker)
        error = result.error or (checker.missing_message() if checker.missing_columns else None)
        report |= _counts(checker)
        if error is not None:
            report["label_objects_before_the_error"] = checker.label_objects
            return refuse(error)
        checker.flush()
        report |= _counts(checker)
        outcome = (
            FileOutcome.ACCEPTED
            if not checker.refused
            else FileOutcome.PARTLY_ACCEPTED
            if checker.accepted
            else FileOutcome.REFUSED
        )
        report["outcome"] = outcome.value
        report["seconds"] = round(time.perf_counter() - started, 3)
        key = self._write_report(model, file_id, report)
        logger.info("label file %s: %s rows, %s accepted", outcome.value, checker.rows, checker.accepted)
        return FeedbackFileResult(
            outcome,
            model,
            upload.bucket,
            upload.key,
            version_id,
            key,
            None,
            checker.rows,
            checker.accepted,
            checker.refused,
        )

    def _read(self, upload: UploadedObject, version_id: str | None, size: int, checker: LabelFileChecker) -> ReadResult:
        kind = format_of(upload.key)
        body: BinaryIO = self.store.open(upload.bucket, upload.key, version_id)
        try:
            if kind is DatasetFormat.PARQUET:
                seekable = self.open_seekable(upload.bucket, upload.key, version_id)
                return read_parquet(body, seekable, checker, batch_rows=self.batch_rows)  # type: ignore[arg-type]
            return read_csv(
                body,
                checker,  # type: ignore[arg-type]
                compressed=kind is DatasetFormat.CSV_GZ,
                block_bytes=csv_block_bytes(self.batch_rows),
                object_size=size,
            )
        finally:
            body.close()

    def _quarantine(
        self,
        upload: UploadedObject,
        version_id: str | None,
        model: str,
        file_id: str,
        report: dict[str, Any],
        error: str,
    ) -> FeedbackFileResult:
        """Report first (the reasons travel with the file), then move the exact version."""
        target = feedback_quarantine_key(upload.key)
        report |= {"outcome": FileOutcome.QUARANTINED.value, "error": error, "quarantine_key": target}
        key = self._write_report(model, file_id, report)
        self.store.move(upload.bucket, upload.key, version_id, target)
        logger.warning("label file quarantined: %s", error)
        return FeedbackFileResult(
            FileOutcome.QUARANTINED,
            model,
            upload.bucket,
            upload.key,
            version_id,
            key,
            target,
            int(report.get("rows", 0)),
            int(report.get("accepted", 0)),
            int(report.get("refused", 0)),
        )

    def _write_report(self, model: str, file_id: str, report: dict[str, Any]) -> str:
        key = feedback_report_key(model, file_id)
        self.store.put_bytes(self.data_bucket, key, json.dumps(report, indent=1).encode(), "application/json")
        return key


def _counts(checker: LabelFileChecker) -> dict[str, Any]:
    return {
        "rows": checker.rows,
        "accepted": checker.accepted,
        "refused": checker.refused,
        "absorbed": {"duplicates": checker.duplicates, "conflicts": checker.conflicts},
        "label_objects": checker.label_objects,
        "refused_by_reason": dict(sorted(checker.refused_by_reason.items())),
        "reasons": {reason: REASONS[reason] for reason in sorted(checker.refused_by_reason)},
        "refused_rows": checker.refused_rows,
        "refused_rows_listed": f"the first {MAX_REPORTED_ROWS} at most",
    }
