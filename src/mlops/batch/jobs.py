"""A batch job's records: the job as planned, each part's result, and the ledger that holds them.

`JobProgress.complete` is the one rule that decides when a job is summarised; a ledger (DynamoDB in
mlops.adapters.batch_ledger_dynamodb, in memory in tests) only executes its conditional writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from mlops.batch.plan import BatchFormat


@dataclass(frozen=True)
class BatchJob:
    job_id: str
    model: str
    version: int
    artifact_sha256: str
    bucket: str
    key: str
    version_id: str | None
    format: BatchFormat
    header: str  # the CSV's header line ("" for Parquet)
    parts: int
    started_at: str  # ISO 8601, UTC

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchJob:
        return cls(**{**data, "format": BatchFormat(data["format"])})


@dataclass(frozen=True)
class PartResult:
    index: int
    rows: int
    scored: int
    rejected: int
    reasons: dict[str, int]
    output_key: str | None
    rejects_key: str | None
    finished_at: str  # ISO 8601, UTC
    error: str | None = None  # the part could not be read to its end: nothing of it was written

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartResult:
        return cls(**data)


@dataclass(frozen=True)
class JobProgress:
    job: BatchJob
    done: dict[int, PartResult]
    summarized: bool = False

    @property
    def complete(self) -> bool:
        """Every planned part is recorded: the one rule that decides when a job is summarised."""
        return len(self.done) == self.job.parts

    def pending(self) -> list[int]:
        return [index for index in range(self.job.parts) if index not in self.done]


class BatchLedger(Protocol):
    """One entry per job, with one entry per completed part; every write is conditional."""

    def start(self, job: BatchJob) -> BatchJob:
        """Record `job` unless its id is recorded; return the recorded job (the first writer's)."""
        ...

    def progress(self, job_id: str) -> JobProgress | None: ...

    def complete_part(self, job_id: str, result: PartResult) -> JobProgress | None:
        """Record a part once. The progress after this write, or None if the part was recorded before."""
        ...

    def mark_summarized(self, job_id: str) -> bool:
        """True for the first call per job."""
        ...
