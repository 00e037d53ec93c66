"""Validate one uploaded dataset object version against its model's contract, then route it.

Order of effects, so that nothing is lost and a retry is always safe:
  passed: write the report -> publish DatasetValidated
  failed: write the report -> publish DatasetQuarantined -> move the version to quarantine/
Moving the object is the last step because it is the "done" marker: once the version is gone from
datasets/, a later delivery finds nothing to do. Any failure before it raises, the caller (Lambda)
retries, and the retry redoes the same deterministic work (same report key, same content).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, BinaryIO

from mlops.contract import Contract, is_valid_model_name, parse_contract
from mlops.errors import ContractError, NotFoundError
from mlops.events import DatasetQuarantined, DatasetRef, DatasetValidated, DetailType
from mlops.layout import DATASETS_PREFIX, contract_key, model_of_dataset_key, quarantine_key, report_key
from mlops.ports import EventPublisher, ObjectInfo, ObjectStore
from mlops.validation.checks import DatasetChecker
from mlops.validation.readers import DatasetFormat, ReadResult, format_of, read_csv, read_parquet
from mlops.validation.report import CheckName, CheckResult, DatasetInfo, Outcome, ValidationReport, failed_reasons

logger = logging.getLogger(__name__)

# Reports of keys that name no (valid) model go here; model names cannot start with "_".
UNASSIGNED_MODEL = "_unassigned"
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

    def idempotency_payload(self) -> dict[str, str | None]:
        """What makes two deliveries the same: the exact object version (etag if unversioned)."""
        payload: dict[str, str | None] = {"bucket": self.bucket, "key": self.key, "version_id": self.version_id}
        if not self.version_id or self.version_id == "null":
            payload["etag"] = self.etag
        return payload


class Disposition(StrEnum):
    VALIDATED = "validated"
    QUARANTINED = "quarantined"
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

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "disposition": self.disposition.value}


def dataset_id(key: str, version_id: str | None) -> str:
    """A deterministic, readable id for one object version: `<file name>-<16 hex of key+version>`."""
    digest = hashlib.sha256(f"{key}\n{version_id or ''}".encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", posixpath.basename(key)).strip("-.")[:64] or "dataset"
    return f"{stem}-{digest}"


def csv_block_bytes(batch_rows: int) -> int:
    return max(_MIN_BLOCK_BYTES, min(_MAX_BLOCK_BYTES, batch_rows * ASSUMED_CSV_ROW_BYTES))


class DatasetValidator:
    """Validates uploads and routes them (report, event, quarantine).

    `store` reads and writes the data bucket; `open_seekable` opens a Parquet object for random
    access (default: `store.open`, fine for in-memory stores whose streams can seek).
    """

    def __init__(
        self,
        *,
        store: ObjectStore,
        publisher: EventPublisher,
        data_bucket: str,
        batch_rows: int = 65_536,
        open_seekable: SeekableOpener | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.data_bucket = data_bucket
        self.batch_rows = batch_rows
        self.open_seekable = open_seekable or (lambda bucket, key, version: store.open(bucket, key, version))
        self.clock = clock

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

        model = model_of_dataset_key(upload.key)
        model_name = model if model is not None and is_valid_model_name(model) else UNASSIGNED_MODEL
        try:
            info = self.store.head(upload.bucket, upload.key, upload.version_id)
        except NotFoundError:
            return self._missing(upload, model_name)
        timings["head"] = _ms_since(started)
        version_id = upload.version_id or info.version_id
        run = _Run(upload=upload, info=info, version_id=version_id, model_name=model_name, timings=timings)

        layout_problem = _layout_problem(upload.key, model)
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

        size_check = _size_check(info.size, contract)
        run.checks.append(size_check)
        if not size_check.passed:
            return self._finish(run, started)

        read_started = time.perf_counter()
        try:
            self._read(run, contract)
        except NotFoundError:
            return self._missing(upload, model_name)
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
        checker = DatasetChecker(contract)
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
                )
        finally:
            body.close()
        run.read = result
        run.rows = checker.rows if result.complete else None
        run.checks.append(
            CheckResult(
                name=CheckName.READABLE,
                passed=result.complete,
                details=f"read as {run.format}" if result.complete else f"not readable as {run.format}: {result.error}",
            )
        )
        run.checks.extend(checker.results(complete=result.complete))

    def _finish(self, run: _Run, started: float) -> ValidationOutcome:
        upload = run.upload
        # a dataset passes only if it was read to the end and every check passed
        passed = run.rows is not None and run.contract_digest is not None and all(c.passed for c in run.checks)
        the_id = dataset_id(upload.key, run.version_id)
        the_report_key = report_key(run.model_name, the_id)
        the_quarantine_key = None if passed else quarantine_key(upload.key)
        reasons = failed_reasons(run.checks)
        run.timings["total"] = _ms_since(started)
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
            ),
            contract_key=run.contract_key,
            contract_digest=run.contract_digest,
            outcome=Outcome.PASSED if passed else Outcome.FAILED,
            checks=run.checks,
            reasons=reasons,
            quarantine_key=the_quarantine_key,
            validated_at=self.clock().isoformat(),
            timings_ms=run.timings,
        )
        self.store.put_bytes(
            self.data_bucket, the_report_key, report.model_dump_json(indent=2).encode(), content_type="application/json"
        )
        outcome = ValidationOutcome(
            disposition=Disposition.VALIDATED if passed else Disposition.QUARANTINED,
            model_name=run.model_name,
            bucket=upload.bucket,
            key=upload.key,
            version_id=run.version_id,
            report_key=the_report_key,
            quarantine_key=the_quarantine_key,
            rows=run.rows,
            reasons=reasons,
        )
        if passed and run.read is not None and run.rows is not None and run.contract_digest is not None:
            dataset = DatasetRef(
                bucket=upload.bucket,
                key=upload.key,
                version_id=run.version_id,
                sha256=run.read.sha256,
                size_bytes=run.info.size,
                rows=run.rows,
            )
            validated = DatasetValidated(
                model_name=run.model_name,
                dataset=dataset,
                contract_digest=run.contract_digest,
                report_key=the_report_key,
            )
            self.publisher.publish(DetailType.DATASET_VALIDATED, validated)
            logger.info("dataset validated: s3://%s/%s (%s rows)", upload.bucket, upload.key, run.rows)
            return outcome
        quarantine = quarantine_key(upload.key)
        quarantined = DatasetQuarantined(
            model_name=run.model_name,
            source_key=upload.key,
            quarantine_key=quarantine,
            report_key=the_report_key,
            reasons=reasons,
        )
        self.publisher.publish(DetailType.DATASET_QUARANTINED, quarantined)
        self.store.move(upload.bucket, upload.key, run.version_id, quarantine)
        logger.warning("dataset quarantined: s3://%s/%s: %s", upload.bucket, upload.key, "; ".join(reasons))
        return outcome

    def _missing(self, upload: UploadedObject, model_name: str) -> ValidationOutcome:
        """The version is gone: deleted by the uploader, or already routed by an earlier delivery."""
        the_report_key = report_key(model_name, dataset_id(upload.key, upload.version_id))
        try:
            report = ValidationReport.model_validate_json(self.store.get_bytes(self.data_bucket, the_report_key))
        except Exception:
            report = None
        if report is None:
            logger.warning(
                "dataset version no longer exists: s3://%s/%s (%s)", upload.bucket, upload.key, upload.version_id
            )
        else:
            logger.info("dataset version already handled (%s): %s", report.outcome.value, the_report_key)
        return ValidationOutcome(
            disposition=Disposition.MISSING,
            model_name=model_name,
            bucket=upload.bucket,
            key=upload.key,
            version_id=upload.version_id,
            report_key=the_report_key if report is not None else None,
            quarantine_key=report.quarantine_key if report is not None else None,
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


def _layout_problem(key: str, model: str | None) -> str | None:
    if model is None:
        return f"key {key!r} is not {DATASETS_PREFIX}<model>/<file>"
    if not is_valid_model_name(model):
        return f"{model!r} is not a valid model name (lowercase letters, digits and '-')"
    if format_of(key) is None:
        return f"unsupported file type {posixpath.basename(key)!r}: expected .csv, .csv.gz or .parquet"
    return None


def _size_check(size: int, contract: Contract) -> CheckResult:
    limit = contract.data.max_object_bytes
    if size == 0:
        return CheckResult(name=CheckName.OBJECT_SIZE, passed=False, details="the object is empty (0 bytes)")
    if size > limit:
        return CheckResult(
            name=CheckName.OBJECT_SIZE, passed=False, details=f"{size} bytes exceeds the contract's limit of {limit}"
        )
    return CheckResult(name=CheckName.OBJECT_SIZE, passed=True, details=f"{size} bytes (limit {limit})")


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
