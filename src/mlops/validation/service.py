"""Validate one uploaded dataset object version against its model's contract, then route it.

Every dataset version ends in exactly one state, recorded in the ledger:
  accepted:    report -> DatasetValidated (training starts) -> ledger
  held:        report -> DatasetHeld -> SNS notification -> ledger (a reviewer decides, see review.py)
  quarantined: report -> DatasetQuarantined -> SNS notification -> move to quarantine/ -> ledger
Held means the schema is sound but a statistical check (shift, range, duplicates, label flips)
failed; any other failed check quarantines. The ledger entry is written last: it is the "done"
marker. A failure before it raises, the caller (Lambda) retries, and the retry redoes the same
deterministic work (same report key, same content). When the retry finds the version gone (it was
moved to quarantine/ before the notice or the ledger write failed), the report already written
holds the decision: the retry replays that decision's side effects (each safe to repeat) and
records it. A delivery of a version the ledger already decided does nothing. The validator reads cells as text or numbers only, never evaluates them,
and writes only under reports/ and quarantine/ (which do not trigger it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any, BinaryIO

from mlops.contract import Contract, parse_contract
from mlops.errors import ContractError, NotFoundError
from mlops.events import DatasetHeld, DetailType
from mlops.layout import (
    DATASETS_PREFIX,
    UNASSIGNED_MODEL,
    contract_key,
    dataset_key_problem,
    model_of_dataset_key,
    quarantine_key,
    report_key,
    summary_key,
)
from mlops.ports import EventPublisher, ObjectInfo, ObjectStore
from mlops.training.capacity import TRAINING_MEMORY_MB, capacity_rows, plan_dataset, refusal
from mlops.validation.checks import DatasetChecker
from mlops.validation.decisions import dataset_id, publish_validated, quarantine
from mlops.validation.labelflip import label_flip_check
from mlops.validation.ledger import DatasetLedger, LedgerChange, LedgerEntry, Notifier
from mlops.validation.readers import DatasetFormat, ReadResult, format_of, read_csv, read_parquet
from mlops.validation.reference import Reference, ReferenceLoader
from mlops.validation.report import (
    STATISTICAL_CHECKS,
    CheckName,
    CheckResult,
    DatasetInfo,
    DatasetProfile,
    DatasetState,
    Outcome,
    ValidationReport,
    failed_reasons,
    summary_text,
)
from mlops.validation.stats import StatsCollector

logger = logging.getLogger(__name__)

# CSV blocks are sized in bytes; this turns the batch size in rows into a block size.
ASSUMED_CSV_ROW_BYTES = 128
_MIN_BLOCK_BYTES = 1024 * 1024
_MAX_BLOCK_BYTES = 64 * 1024 * 1024

# (bucket, key, version id) -> a seekable, read-only file over that object version (for Parquet)
SeekableOpener = Callable[[str, str, str | None], BinaryIO]


@dataclass(frozen=True)
class UploadedObject:
    """One object version named by an S3 ObjectCreated notification (key already unquoted)."""

    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None
    etag: str | None = None
    uploader: str | None = None
    uploaded_at: str | None = None  # the S3 event's eventTime

    def idempotency_payload(self) -> dict[str, str | None]:
        """What makes two deliveries the same: the exact object version (etag if unversioned)."""
        payload: dict[str, str | None] = {"bucket": self.bucket, "key": self.key, "version_id": self.version_id}
        if not self.version_id or self.version_id == "null":
            payload["etag"] = self.etag
        return payload


class Disposition(StrEnum):
    VALIDATED = "validated"  # accepted: DatasetValidated published
    QUARANTINED = "quarantined"
    HELD = "held"  # waits for a reviewer
    MISSING = "missing"  # the version no longer exists (deleted, or quarantined by an earlier delivery)
    SKIPPED = "skipped"  # not under datasets/: the notification filter should not have sent it


@dataclass(frozen=True)
class ValidationOutcome:
    disposition: Disposition
    model_name: str | None
    bucket: str
    key: str
    version_id: str | None
    report_key: str | None = None
    quarantine_key: str | None = None
    rows: int | None = None
    reasons: list[str] = field(default_factory=list)
    dataset_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "disposition": self.disposition.value}


def csv_block_bytes(batch_rows: int) -> int:
    return max(_MIN_BLOCK_BYTES, min(_MAX_BLOCK_BYTES, batch_rows * ASSUMED_CSV_ROW_BYTES))


_STATE_DISPOSITION = {
    DatasetState.ACCEPTED: Disposition.VALIDATED,
    DatasetState.HELD: Disposition.HELD,
    DatasetState.QUARANTINED: Disposition.QUARANTINED,
}
VALIDATOR_ACTOR = "validate_dataset"
_OUTCOME_STATE = {  # reports written before the ledger existed carry only the outcome
    Outcome.PASSED: DatasetState.ACCEPTED,
    Outcome.HELD: DatasetState.HELD,
    Outcome.FAILED: DatasetState.QUARANTINED,
}
_STATE_OUTCOME = {state: outcome for outcome, state in _OUTCOME_STATE.items()}


class DatasetValidator:
    """Validates uploads and routes them (report, event, notification, quarantine, ledger).

    `store` reads and writes the data bucket; `open_seekable` opens a Parquet object for random
    access (default: `store.open`, fine for in-memory stores whose streams can seek). `ledger`,
    `references` and `notifier` are optional so the schema checks work alone (unit tests, tools).
    `training_memory_mb` is what train_model has: a dataset it cannot load is quarantined here.
    """

    def __init__(
        self,
        *,
        store: ObjectStore,
        publisher: EventPublisher,
        data_bucket: str,
        batch_rows: int = 16_384,
        open_seekable: SeekableOpener | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ledger: DatasetLedger | None = None,
        references: ReferenceLoader | None = None,
        notifier: Notifier | None = None,
        training_memory_mb: int = TRAINING_MEMORY_MB,
    ) -> None:
        self.store = store
        self.training_memory_mb = training_memory_mb
        self.publisher = publisher
        self.data_bucket = data_bucket
        self.batch_rows = batch_rows
        self.open_seekable = open_seekable or (lambda bucket, key, version: store.open(bucket, key, version))
        self.clock = clock
        self.ledger = ledger
        self.references = references
        self.notifier = notifier

    def validate(self, upload: UploadedObject) -> ValidationOutcome:
        """Validate one object version and route it.

        Raises when the report cannot be written, the event cannot be published or the object
        cannot be moved (the caller retries); a bad dataset or contract is never an exception.
        """
        started = time.perf_counter()
        timings: dict[str, float] = {}
        if not upload.key.startswith(DATASETS_PREFIX):
            logger.warning("skipping a key outside %s: s3://%s/%s", DATASETS_PREFIX, upload.bucket, upload.key)
            return ValidationOutcome(Disposition.SKIPPED, None, upload.bucket, upload.key, upload.version_id)

        # a key that breaks the dataset-key rule is reported under UNASSIGNED_MODEL, never under
        # the model it claims (its '..' may point anywhere)
        model_name = model_of_dataset_key(upload.key) or UNASSIGNED_MODEL
        try:
            info = self.store.head(upload.bucket, upload.key, upload.version_id)
        except NotFoundError:
            return self._gone(upload, model_name)
        timings["head"] = _ms_since(started)
        version_id = upload.version_id or info.version_id
        if self.ledger is not None:
            decided = self.ledger.get(model_name, dataset_id(upload.key, version_id))
            if decided is not None:
                logger.info("dataset %s already %s", decided.dataset_id, decided.state.value)
                return _outcome_of(decided)
        run = _Run(upload=upload, info=info, version_id=version_id, model_name=model_name, timings=timings)

        layout_problem = dataset_key_problem(upload.key)
        if layout_problem is not None:
            run.checks.append(CheckResult(name=CheckName.KEY_LAYOUT, passed=False, details=layout_problem))
            return self._finish(run, started)
        run.checks.append(CheckResult(name=CheckName.KEY_LAYOUT, passed=True, details=f"model {model_name}"))
        run.format = format_of(upload.key)

        contract_started = time.perf_counter()
        contract = self._contract(run)
        timings["contract"] = _ms_since(contract_started)
        if contract is None:
            return self._finish(run, started)

        provenance = _provenance_check(upload.uploader, contract)
        run.checks.append(provenance)
        size_check = _size_check(info.size, contract)
        run.checks.append(size_check)
        if not size_check.passed or not provenance.passed:
            return self._finish(run, started)

        if self.references is not None:
            reference_started = time.perf_counter()
            run.reference = self.references.load(model_name)
            timings["reference"] = _ms_since(reference_started)

        read_started = time.perf_counter()
        try:
            self._read(run, contract)
        except NotFoundError:
            return self._gone(upload, model_name)
        timings["read"] = _ms_since(read_started)
        return self._finish(run, started)

    # -- steps -------------------------------------------------------------------------------

    def _contract(self, run: _Run) -> Contract | None:
        run.contract_key = contract_key(run.model_name)
        location = f"s3://{self.data_bucket}/{run.contract_key}"
        try:
            document = self.store.get_bytes(self.data_bucket, run.contract_key)
        except NotFoundError:
            run.checks.append(
                CheckResult(
                    name=CheckName.CONTRACT,
                    passed=False,
                    details=f"no contract for model {run.model_name!r} at {location}",
                )
            )
            return None
        try:
            contract = parse_contract(document, source=location)
        except (ContractError, UnicodeDecodeError) as error:
            run.checks.append(CheckResult(name=CheckName.CONTRACT, passed=False, details=f"invalid contract: {error}"))
            return None
        if contract.name != run.model_name:
            details = f"{location} declares model {contract.name!r}, not {run.model_name!r}"
            run.checks.append(CheckResult(name=CheckName.CONTRACT, passed=False, details=details))
            return None
        run.contract_digest = contract.digest
        run.checks.append(CheckResult(name=CheckName.CONTRACT, passed=True, details=f"sha256 {contract.digest}"))
        return contract

    def _read(self, run: _Run, contract: Contract) -> None:
        reference = run.reference
        stats = StatsCollector(contract, reference.profile if reference else None, seed=contract.training.seed)
        checker = DatasetChecker(contract, stats)
        upload = run.upload
        body = self.store.open(upload.bucket, upload.key, run.version_id)
        try:
            if run.format is DatasetFormat.PARQUET:
                seekable = self.open_seekable(upload.bucket, upload.key, run.version_id)
                try:
                    result = read_parquet(body, seekable, checker, batch_rows=self.batch_rows)
                finally:
                    seekable.close()
            else:
                result = read_csv(
                    body,
                    checker,
                    compressed=run.format is DatasetFormat.CSV_GZ,
                    block_bytes=csv_block_bytes(self.batch_rows),
                    object_size=run.info.size,
                )
        finally:
            body.close()
        run.read = result
        run.rows = checker.rows if result.complete else None
        format_ok = result.failed_check is not CheckName.FORMAT or result.complete
        described = f"{run.format}" + (f" ({result.described})" if result.described else "")
        run.checks.append(
            CheckResult(
                name=CheckName.FORMAT,
                passed=format_ok,
                details=f"bytes match {described}" if format_ok else str(result.error),
            )
        )
        if result.failed_check is CheckName.LIMITS and not checker.too_many_columns:
            run.checks.append(CheckResult(name=CheckName.LIMITS, passed=False, details=str(result.error)))
        elif format_ok and result.failed_check is CheckName.READABLE:
            run.checks.append(
                CheckResult(
                    name=CheckName.READABLE,
                    passed=result.complete,
                    details=f"read as {run.format}"
                    if result.complete
                    else f"not readable as {run.format}: {result.error}",
                )
            )
        run.checks.extend(checker.results(complete=result.complete))
        if result.complete:
            run.checks.append(_training_capacity_check(checker.rows, contract, run.info.size, self.training_memory_mb))
        if not result.complete or any(not c.passed for c in run.checks):
            return  # statistics only for a dataset whose schema is sound
        statistics_started = time.perf_counter()
        run.checks.append(
            CheckResult(
                name=CheckName.REFERENCE,
                passed=True,
                details=f"compared with {reference.description}"
                if reference is not None and reference.profile is not None
                else "no reference yet (no production model, no accepted dataset): shift and range checks skipped",
            )
        )
        run.checks.extend(stats.results())
        if reference is not None and reference.model is not None and stats.sample is not None:
            run.checks.append(label_flip_check(reference.model, stats.sample, contract))
        run.profile = stats.profile(checker.observed())
        run.timings["statistics"] = _ms_since(statistics_started)

    def _finish(self, run: _Run, started: float) -> ValidationOutcome:
        upload = run.upload
        the_id = dataset_id(upload.key, run.version_id)
        failed = [c for c in run.checks if not c.passed]
        sound = run.rows is not None and run.contract_digest is not None
        if not sound or any(c.name not in STATISTICAL_CHECKS for c in failed):
            state = DatasetState.QUARANTINED
        elif failed:
            state = DatasetState.HELD
        else:
            state = DatasetState.ACCEPTED
        the_report_key = report_key(run.model_name, the_id)
        the_summary_key = summary_key(run.model_name, the_id)
        the_quarantine_key = quarantine_key(upload.key) if state is DatasetState.QUARANTINED else None
        reasons = failed_reasons(run.checks)
        run.timings["total"] = _ms_since(started)
        now = self.clock().isoformat()
        report = ValidationReport(
            dataset_id=the_id,
            model_name=run.model_name,
            dataset=DatasetInfo(
                bucket=upload.bucket,
                key=upload.key,
                version_id=run.version_id,
                etag=upload.etag,
                size_bytes=run.info.size,
                format=run.format.value if run.format else None,
                sha256=run.read.sha256 if run.read else None,
                rows=run.rows,
                uploader=upload.uploader,
                uploaded_at=upload.uploaded_at
                or (run.info.last_modified.isoformat() if run.info.last_modified else None),
            ),
            contract_key=run.contract_key,
            contract_digest=run.contract_digest,
            outcome=_STATE_OUTCOME[state],
            checks=run.checks,
            reasons=reasons,
            quarantine_key=the_quarantine_key,
            validated_at=now,
            timings_ms=run.timings,
            state=state,
            summary_key=the_summary_key,
            reference=run.reference.description if run.reference and run.reference.profile else None,
            profile=run.profile if state is not DatasetState.QUARANTINED else None,
        )
        self.store.put_bytes(
            self.data_bucket, the_report_key, report.model_dump_json(indent=2).encode(), content_type="application/json"
        )
        summary = summary_text(report)
        self.store.put_bytes(self.data_bucket, the_summary_key, summary.encode(), content_type="text/plain")
        return self._route_and_record(entry_of_report(report, the_report_key), summary)

    def _route_and_record(self, entry: LedgerEntry, summary: str) -> ValidationOutcome:
        """Carry out a decision (event, notice, move; each safe to repeat), then record it: last."""
        where = f"s3://{entry.bucket}/{entry.key}"
        if entry.state is DatasetState.ACCEPTED:
            publish_validated(self.publisher, entry)
            logger.info("dataset accepted: %s (%s rows)", where, entry.rows)
        elif entry.state is DatasetState.HELD:
            held = DatasetHeld(
                model_name=entry.model_name,
                dataset_id=entry.dataset_id,
                dataset=entry.dataset_ref(),
                report_key=entry.report_key,
                reasons=entry.reasons,
            )
            self.publisher.publish(DetailType.DATASET_HELD, held)
            self._notify(f"Dataset held for review: {entry.model_name}", summary)
            logger.warning("dataset held: %s: %s", where, "; ".join(entry.reasons))
        else:
            quarantine(self.store, self.publisher, entry)
            self._notify(f"Dataset quarantined: {entry.model_name}", summary)
            logger.warning("dataset quarantined: %s: %s", where, "; ".join(entry.reasons))
        if self.ledger is not None:
            entry = self.ledger.record(entry)
        return _outcome_of(entry)

    def _notify(self, subject: str, message: str) -> None:
        if self.notifier is not None:
            self.notifier.notify(subject[:100], message)

    def _gone(self, upload: UploadedObject, model_name: str) -> ValidationOutcome:
        """The version is gone: deleted by the uploader, or routed (moved to quarantine/) by an
        earlier delivery. If that delivery failed before the ledger write, finish its decision."""
        the_id = dataset_id(upload.key, upload.version_id)
        if self.ledger is not None:
            decided = self.ledger.get(model_name, the_id)
            if decided is not None:
                logger.info("dataset %s already %s", decided.dataset_id, decided.state.value)
                return _outcome_of(decided)
        the_report_key = report_key(model_name, the_id)
        try:
            report = ValidationReport.model_validate_json(self.store.get_bytes(self.data_bucket, the_report_key))
        except (NotFoundError, ValueError):  # no report, or one that does not parse (pydantic: ValueError)
            report = None
        if report is None:
            logger.warning(
                "dataset version no longer exists: s3://%s/%s (%s)", upload.bucket, upload.key, upload.version_id
            )
            return ValidationOutcome(Disposition.MISSING, model_name, upload.bucket, upload.key, upload.version_id)
        if self.ledger is None:
            logger.info("dataset version already handled (%s): %s", report.outcome.value, the_report_key)
            return ValidationOutcome(
                disposition=Disposition.MISSING,
                model_name=model_name,
                bucket=upload.bucket,
                key=upload.key,
                version_id=upload.version_id,
                report_key=the_report_key,
                quarantine_key=report.quarantine_key,
            )
        logger.warning("dataset %s was decided but not recorded: finishing it from %s", the_id, the_report_key)
        return self._route_and_record(entry_of_report(report, the_report_key), summary_text(report))


def entry_of_report(report: ValidationReport, the_report_key: str) -> LedgerEntry:
    """The ledger entry of a validator's decision: everything it needs is in the report."""
    state = report.state or _OUTCOME_STATE[report.outcome]
    info = report.dataset
    reason = "; ".join(report.reasons)[:1000]
    return LedgerEntry(
        model_name=report.model_name,
        dataset_id=report.dataset_id,
        state=state,
        bucket=info.bucket,
        key=info.key,
        version_id=info.version_id,
        sha256=info.sha256,
        size_bytes=info.size_bytes,
        rows=info.rows,
        uploader=info.uploader,
        uploaded_at=info.uploaded_at,
        contract_digest=report.contract_digest,
        report_key=the_report_key,
        summary_key=report.summary_key,
        quarantine_key=report.quarantine_key,
        reasons=list(report.reasons),
        decided_at=report.validated_at,
        history=[LedgerChange(at=report.validated_at, state=state, actor=VALIDATOR_ACTOR, reason=reason)],
    )


def _outcome_of(entry: LedgerEntry) -> ValidationOutcome:
    return ValidationOutcome(
        disposition=_STATE_DISPOSITION[entry.state],
        model_name=entry.model_name,
        bucket=entry.bucket,
        key=entry.key,
        version_id=entry.version_id,
        report_key=entry.report_key,
        quarantine_key=entry.quarantine_key,
        rows=entry.rows,
        reasons=list(entry.reasons),
        dataset_id=entry.dataset_id,
    )


@dataclass
class _Run:
    """What one validation has learned so far."""

    upload: UploadedObject
    info: ObjectInfo
    version_id: str | None
    model_name: str
    timings: dict[str, float]
    checks: list[CheckResult] = field(default_factory=list)
    format: DatasetFormat | None = None
    contract_key: str | None = None
    contract_digest: str | None = None
    read: ReadResult | None = None
    rows: int | None = None
    reference: Reference | None = None
    profile: DatasetProfile | None = None


def _provenance_check(uploader: str | None, contract: Contract) -> CheckResult:
    allowed = contract.data.allowed_uploaders
    who = uploader or "an unknown principal"
    if allowed is None:
        return CheckResult(name=CheckName.PROVENANCE, passed=True, details=f"uploaded by {who} (any uploader allowed)")
    if uploader is not None and any(fnmatchcase(uploader, pattern) for pattern in allowed):
        return CheckResult(name=CheckName.PROVENANCE, passed=True, details=f"uploaded by {who}, an allowed uploader")
    return CheckResult(
        name=CheckName.PROVENANCE,
        passed=False,
        details=f"uploaded by {who}, not one of the contract's allowed_uploaders {list(allowed)}",
    )


def _size_check(size: int, contract: Contract) -> CheckResult:
    limit = contract.data.max_object_bytes
    if size == 0:
        return CheckResult(name=CheckName.OBJECT_SIZE, passed=False, details="the object is empty (0 bytes)")
    if size > limit:
        return CheckResult(
            name=CheckName.OBJECT_SIZE, passed=False, details=f"{size} bytes exceeds the contract's limit of {limit}"
        )
    return CheckResult(name=CheckName.OBJECT_SIZE, passed=True, details=f"{size} bytes (limit {limit})")


def _training_capacity_check(rows: int, contract: Contract, size: int, memory_mb: int) -> CheckResult:
    """Accept only what training can take: mlops.training.capacity plans its memory and time."""
    plan = plan_dataset(rows, size, contract, lambda_memory_mb=memory_mb)
    reason = refusal(plan)
    if reason is not None:
        return CheckResult(
            name=CheckName.TRAINING_CAPACITY,
            passed=False,
            details=f"{reason}; upload fewer rows (or give train_model more memory)",
        )
    capacity = capacity_rows(
        len(contract.columns), size, contract.estimator.name, contract.estimator.params, lambda_memory_mb=memory_mb
    )
    return CheckResult(
        name=CheckName.TRAINING_CAPACITY,
        passed=True,
        details=f"{plan.reason} (at most {capacity} rows of this object there); trains on {plan.where}",
    )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
