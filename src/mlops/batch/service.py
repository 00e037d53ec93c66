"""Batch jobs: a file under batch/<model>/ planned into parts, each part scored once, one summary.

`submit` (the S3 event) resolves the version once (production, or the one pinned by a `v<N>/`
folder), plans the parts and records the job in the ledger; a one-part file is scored at once,
a larger one is fanned out as one `BatchPartRequested` event per part, which the same function
receives. `score_part` skips a part the ledger has as done (a retried or repeated event does no
work twice), writes the part's outputs under deterministic keys (a crash before the ledger entry
only overwrites them) and records the part with a conditional write. The invocation whose write
completes the job writes the summary, publishes `BatchScored` and counts the rows; a retry that
finds the job complete but not yet summarised finishes that step.

Batch predictions are not captured for drift: a file would flood the online captures with one
population and one moment, and the file itself is already in the bucket.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlops.batch.jobs import BatchJob, BatchLedger, JobProgress, PartResult
from mlops.batch.plan import BatchFormat, Part, PlanError, parquet_row_groups, plan_csv, plan_parquet
from mlops.batch.scoring import REJECT_SCHEMA, BatchScorer
from mlops.errors import IntegrityError, MlopsError, NotFoundError
from mlops.events import BatchPartRequested, BatchRefused, BatchScored, DetailType
from mlops.inference.model import LoadedModel, load_model
from mlops.inference.served import LoadableVersion
from mlops.layout import (
    UNASSIGNED_MODEL,
    batch_job_id,
    batch_key_problem,
    batch_output_key,
    batch_rejects_key,
    batch_summary_key,
    batch_target,
)
from mlops.ports import EventPublisher, MetricsSink, ObjectInfo

log = logging.getLogger(__name__)
CSV_BLOCK_BYTES = 4 * 1024 * 1024  # one pyarrow CSV block: ~50k rows of a typical 8-column file
_CONTENT_TYPES = {BatchFormat.CSV: "text/csv", BatchFormat.PARQUET: "application/vnd.apache.parquet"}


class BatchStore(Protocol):
    """What batch scoring needs of S3 (mlops.adapters.s3.S3ObjectStore)."""

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo: ...

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO: ...

    def open_range(self, bucket: str, key: str, version_id: str | None, begin: int, end: int) -> BinaryIO:
        """A stream over bytes [begin, end) of one object version."""
        ...

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes: ...

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> str | None: ...

    def put_file(self, bucket: str, key: str, path: str, content_type: str) -> None:
        """Upload a local file, streamed (memory stays flat)."""
        ...


class RegisteredVersions(Protocol):
    """mlops.adapters.served_versions_dynamodb.DynamoServedVersions."""

    def production(self, name: str) -> LoadableVersion | None: ...

    def registered(self, name: str, version: int) -> LoadableVersion | None: ...


@dataclass(frozen=True)
class BatchUpload:
    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None


@dataclass
class BatchOutcome:
    """What one invocation did (the handler logs it)."""

    job_id: str | None
    action: str  # refused | fanned_out | scored | skipped | resumed
    parts: list[int] = field(default_factory=list)
    summary: dict[str, Any] | None = None  # set when this invocation wrote the summary
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BatchRefusal(MlopsError):
    """The file cannot be scored at all; the message names the problem (written as its summary)."""


class BatchService:
    def __init__(
        self,
        *,
        store: BatchStore,
        versions: RegisteredVersions,
        ledger: BatchLedger,
        publisher: EventPublisher,
        metrics: MetricsSink,
        open_seekable: Callable[[str, str, str | None], BinaryIO],
        part_bytes: int,
        batch_rows: int,
        loader: Callable[[LoadableVersion, int], LoadedModel] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.versions = versions
        self.ledger = ledger
        self.publisher = publisher
        self.metrics = metrics
        self.open_seekable = open_seekable
        self.part_bytes = part_bytes
        self.batch_rows = batch_rows
        self._loader = loader or (lambda version, rows: load_model(version, store, max_records=rows))  # type: ignore[arg-type]
        self._clock = clock
        self._models: dict[tuple[str, int], LoadedModel] = {}  # verified once per warm container

    # --- the S3 event ---------------------------------------------------------------------------

    def submit(self, upload: BatchUpload) -> BatchOutcome:
        """Plan a dropped file and score it (one part) or fan it out. A file that cannot be scored
        gets a summary naming the problem and a `BatchRefused` event."""
        job_id = batch_job_id(upload.key, upload.version_id)
        known = self.ledger.progress(job_id)
        if known is not None:  # a repeated S3 event: resume what is left
            return self._resume(known)
        try:
            job, parts = self._plan(upload, job_id)
        except BatchRefusal as refusal:
            return self._refuse(upload, job_id, str(refusal))
        job = self.ledger.start(job)
        if len(parts) == 1:
            return self._score(job, parts[0])
        self._request(job, parts)
        return BatchOutcome(job.job_id, "fanned_out", [part.index for part in parts])

    def _plan(self, upload: BatchUpload, job_id: str) -> tuple[BatchJob, list[Part]]:
        problem = batch_key_problem(upload.key)
        if problem is not None:
            raise BatchRefusal(problem)
        model, pinned = batch_target(upload.key)
        version = self._version(model, pinned)
        fmt = BatchFormat.of_key(upload.key)
        size = upload.size if upload.size is not None else self.store.head(upload.bucket, upload.key).size
        header = ""
        try:
            if fmt is BatchFormat.CSV:
                stream = self.store.open(upload.bucket, upload.key, upload.version_id)
                try:
                    raw_header, parts = plan_csv(stream, size, self.part_bytes)
                finally:
                    stream.close()
                header = raw_header.decode("utf-8")
                repeated = _repeated_column(header)
                if repeated is not None:
                    raise BatchRefusal(f"the CSV header names column {repeated!r} more than once")
            else:
                with self.open_seekable(upload.bucket, upload.key, upload.version_id) as seekable:
                    parts = plan_parquet(parquet_row_groups(pq.ParquetFile(seekable).metadata), self.part_bytes)
        except PlanError as error:
            raise BatchRefusal(str(error)) from None
        except UnicodeDecodeError:
            raise BatchRefusal("the CSV header is not UTF-8 text") from None
        except pa.ArrowInvalid as error:
            raise BatchRefusal(f"the file cannot be read as Parquet ({error})") from None
        job = BatchJob(
            job_id=job_id,
            model=model,
            version=version.version,
            artifact_sha256=version.artifact.sha256,
            bucket=upload.bucket,
            key=upload.key,
            version_id=upload.version_id,
            format=fmt,
            header=header,
            parts=len(parts),
            started_at=self._clock().isoformat(),
        )
        return job, parts

    def _version(self, model: str, pinned: int | None) -> LoadableVersion:
        try:
            version = self.versions.production(model) if pinned is None else self.versions.registered(model, pinned)
        except NotFoundError as error:
            raise BatchRefusal(str(error)) from None
        if version is None:
            which = "a production version" if pinned is None else f"a version {pinned}"
            raise BatchRefusal(f"model {model!r} has no {which}")
        return version

    def _request(self, job: BatchJob, parts: list[Part]) -> None:
        for part in parts:
            self.publisher.publish(
                DetailType.BATCH_PART_REQUESTED, BatchPartRequested(job_id=job.job_id, part=part.as_dict())
            )

    def _resume(self, progress: JobProgress) -> BatchOutcome:
        """A job seen before: summarise it if complete, else ask again for the parts not done (a
        part already done is skipped when its request arrives twice)."""
        if progress.complete:
            summary = None if progress.summarized else self._summarize(progress)
            return BatchOutcome(progress.job.job_id, "skipped", summary=summary)
        job = progress.job
        parts = self._replan(job)
        pending = [part for part in parts if part.index not in progress.done]
        if len(parts) == 1:
            return self._score(job, parts[0])
        self._request(job, pending)
        return BatchOutcome(job.job_id, "resumed", [part.index for part in pending])

    def _replan(self, job: BatchJob) -> list[Part]:
        """The same parts as the first plan: the plan depends only on the object version and the part size."""
        upload = BatchUpload(job.bucket, job.key, job.version_id)
        _, parts = self._plan(upload, job.job_id)
        if len(parts) != job.parts:
            raise IntegrityError(f"batch job {job.job_id}: planned {len(parts)} parts now, {job.parts} before")
        return parts

    def _refuse(self, upload: BatchUpload, job_id: str, reason: str) -> BatchOutcome:
        problem = batch_key_problem(upload.key)
        model = batch_target(upload.key)[0] if problem is None else UNASSIGNED_MODEL
        key = batch_summary_key(model, job_id)
        summary = {
            "job_id": job_id,
            "status": "refused",
            "reason": reason,
            "source": {"bucket": upload.bucket, "key": upload.key, "version_id": upload.version_id},
            "refused_at": self._clock().isoformat(),
        }
        self.store.put_bytes(upload.bucket, key, _json(summary), "application/json")
        self.publisher.publish(
            DetailType.BATCH_REFUSED,
            BatchRefused(
                model_name=model,
                source_key=upload.key,
                source_version_id=upload.version_id,
                summary_key=key,
                reason=reason,
            ),
        )
        log.warning("batch file refused", extra={"job_id": job_id, "reason": reason})
        return BatchOutcome(job_id, "refused", summary=summary, reason=reason)

    # --- one part -------------------------------------------------------------------------------

    def score_part(self, job_id: str, part: Part) -> BatchOutcome:
        """Score one part unless the ledger has it as done. Raises NotFoundError for an unknown job."""
        progress = self.ledger.progress(job_id)
        if progress is None:
            raise NotFoundError(f"batch job {job_id} is not in the ledger")
        if part.index in progress.done:
            summary = self._summarize(progress) if progress.complete and not progress.summarized else None
            return BatchOutcome(job_id, "skipped", [part.index], summary=summary)
        return self._score(progress.job, part)

    def _score(self, job: BatchJob, part: Part) -> BatchOutcome:
        model = self._model(job)
        scorer = BatchScorer(model, model.contract.feature_rules, text_cells=job.format is BatchFormat.CSV)
        started = time.perf_counter()
        result = self._write_part(job, part, scorer)
        log.info(
            "batch part scored",
            extra={
                "job_id": job.job_id,
                "part": part.index,
                "rows": result.rows,
                "seconds": time.perf_counter() - started,
            },
        )
        progress = self.ledger.complete_part(job.job_id, result)
        if progress is None:  # another invocation recorded this part first: its outputs stand
            return BatchOutcome(job.job_id, "skipped", [part.index])
        summary = self._summarize(progress) if progress.complete else None
        return BatchOutcome(job.job_id, "scored", [part.index], summary=summary)

    def _model(self, job: BatchJob) -> LoadedModel:
        key = (job.model, job.version)
        model = self._models.get(key)
        if model is None:
            version = self.versions.registered(job.model, job.version)
            if version is None or version.artifact.sha256 != job.artifact_sha256:
                raise IntegrityError(f"{job.model} v{job.version} is not the version batch job {job.job_id} planned")
            model = self._loader(version, self.batch_rows)  # verifies the digest before loading
            self._models = {key: model}  # one version per container at a time: a job's parts share it
        return model

    def _batches(self, job: BatchJob, part: Part, scorer: BatchScorer) -> Iterator[pa.RecordBatch]:
        names = scorer.model.validator.names
        if job.format is BatchFormat.CSV:
            columns = next(csv.reader([job.header]))
            stream = self.store.open_range(job.bucket, job.key, job.version_id, part.begin, part.end)
            try:
                reader = pacsv.open_csv(
                    stream,
                    read_options=pacsv.ReadOptions(column_names=columns, block_size=CSV_BLOCK_BYTES, use_threads=False),
                    convert_options=pacsv.ConvertOptions(
                        column_types={name: pa.string() for name in columns},
                        include_columns=[name for name in columns if name in names],
                    ),
                )
                yield from reader
            finally:
                stream.close()
        else:
            with self.open_seekable(job.bucket, job.key, job.version_id) as seekable:
                file = pq.ParquetFile(seekable)
                present = [name for name in file.schema_arrow.names if name in names]
                yield from file.iter_batches(
                    batch_size=self.batch_rows, row_groups=range(part.begin, part.end), columns=present
                )

    def _write_part(self, job: BatchJob, part: Part, scorer: BatchScorer) -> PartResult:
        rows = scored = rejected = 0
        reasons: dict[str, int] = {}
        output_key = batch_output_key(job.model, job.job_id, part.index, job.format.suffix)
        rejects_key = batch_rejects_key(job.model, job.job_id, part.index)
        with tempfile.TemporaryDirectory(prefix="batch-") as folder:
            output_path, rejects_path = os.path.join(folder, "out"), os.path.join(folder, "rejects.csv")
            writer: Any = None
            rejects_writer: pacsv.CSVWriter | None = None
            next_row = part.first_row
            try:
                for batch in self._batches(job, part, scorer):
                    if batch.num_rows > self.batch_rows:  # a CSV block can hold more rows than a validator batch
                        pieces = [batch.slice(at, self.batch_rows) for at in range(0, batch.num_rows, self.batch_rows)]
                    else:
                        pieces = [batch]
                    for piece in pieces:
                        outcome = scorer.score(piece, next_row)
                        next_row += piece.num_rows
                        rows, scored, rejected = (
                            rows + outcome.rows,
                            scored + outcome.scored,
                            rejected + outcome.rejected,
                        )
                        for reason, count in outcome.reasons.items():
                            reasons[reason] = reasons.get(reason, 0) + count
                        if outcome.predictions is not None:
                            if writer is None:
                                writer = _writer(job.format, output_path, outcome.predictions.schema)
                            writer.write_table(outcome.predictions)
                        if outcome.rejects is not None:
                            if rejects_writer is None:
                                rejects_writer = pacsv.CSVWriter(rejects_path, REJECT_SCHEMA)
                            rejects_writer.write_table(outcome.rejects)
            except (pa.ArrowInvalid, UnicodeDecodeError) as error:
                # A malformed line (or row group): the part cannot be read past it. Retrying would fail
                # the same way, so it is recorded with the reason and none of its rows are written.
                return PartResult(
                    index=part.index,
                    rows=0,
                    scored=0,
                    rejected=0,
                    reasons={},
                    output_key=None,
                    rejects_key=None,
                    finished_at=self._clock().isoformat(),
                    error=f"unreadable after data row {next_row - 1}: {_first_line(str(error))}",
                )
            finally:
                for open_writer in (writer, rejects_writer):
                    if open_writer is not None:
                        open_writer.close()
            if writer is not None:
                self.store.put_file(job.bucket, output_key, output_path, _CONTENT_TYPES[job.format])
            if rejects_writer is not None:
                self.store.put_file(job.bucket, rejects_key, rejects_path, "text/csv")
        return PartResult(
            index=part.index,
            rows=rows,
            scored=scored,
            rejected=rejected,
            reasons=reasons,
            output_key=output_key if writer is not None else None,
            rejects_key=rejects_key if rejects_writer is not None else None,
            finished_at=self._clock().isoformat(),
        )

    # --- the end --------------------------------------------------------------------------------

    def _summarize(self, progress: JobProgress) -> dict[str, Any]:
        """Write the summary (its content depends only on the ledger: a repeat writes the same
        bytes), announce the job and count its rows, then mark it summarised."""
        job = progress.job
        results = [progress.done[index] for index in range(job.parts)]
        reasons: dict[str, int] = {}
        for result in results:
            for reason, count in result.reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
        finished_at = max(result.finished_at for result in results)
        duration = (datetime.fromisoformat(finished_at) - datetime.fromisoformat(job.started_at)).total_seconds()
        unreadable = [{"part": result.index, "error": result.error} for result in results if result.error]
        rows, scored, rejected = (sum(getattr(r, name) for r in results) for name in ("rows", "scored", "rejected"))
        key = batch_summary_key(job.model, job.job_id)
        summary = {
            "job_id": job.job_id,
            "status": "scored" if not unreadable else "scored_with_unreadable_parts",
            "unreadable_parts": unreadable,
            "model": job.model,
            "version": job.version,
            "artifact_sha256": job.artifact_sha256,
            "source": {"bucket": job.bucket, "key": job.key, "version_id": job.version_id, "format": job.format.value},
            "rows": rows,
            "scored": scored,
            "rejected": rejected,
            "rejection_reasons": dict(sorted(reasons.items())),
            "parts": job.parts,
            "outputs": [result.output_key for result in results if result.output_key],
            "rejects": [result.rejects_key for result in results if result.rejects_key],
            "started_at": job.started_at,
            "finished_at": finished_at,
            "duration_seconds": round(duration, 3),
        }
        self.store.put_bytes(job.bucket, key, _json(summary), "application/json")
        self.publisher.publish(
            DetailType.BATCH_SCORED,
            BatchScored(
                model_name=job.model,
                version=job.version,
                artifact_sha256=job.artifact_sha256,
                job_id=job.job_id,
                source_key=job.key,
                source_version_id=job.version_id,
                summary_key=key,
                rows=rows,
                scored=scored,
                rejected=rejected,
                parts=job.parts,
                duration_seconds=summary["duration_seconds"],
            ),
        )
        if self.ledger.mark_summarized(job.job_id):  # counted once, even if a retry re-announced
            dimensions = {"model": job.model}
            self.metrics.add("BatchRowsScored", scored, "Count", dimensions)
            self.metrics.add("BatchRowsRejected", rejected, "Count", dimensions)
        return summary


def _writer(fmt: BatchFormat, path: str, schema: pa.Schema) -> Any:
    if fmt is BatchFormat.CSV:
        return pacsv.CSVWriter(path, schema)
    return pq.ParquetWriter(path, schema)


_PARSER_ROW_TEXT = re.compile(r"(got \d+): .*$")


def _repeated_column(header: str) -> str | None:
    """The first column name the header repeats, or None (the scorer selects columns by name)."""
    seen: set[str] = set()
    for name in next(csv.reader([header]), []):
        if name in seen:
            return name
        seen.add(name)
    return None


def _first_line(text: str) -> str:
    """The parser's complaint without the offending line: pyarrow appends the row's text ("CSV parse
    error: Row #50: Expected 7 columns, got 8: <the row>"), and rows are data, kept out of reports."""
    first = text.strip().splitlines()[0] if text.strip() else "unreadable"
    return _PARSER_ROW_TEXT.sub(r"\1", first)[:200]


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")
