"""In-memory stand-ins for batch scoring's ports: a store with ranged reads and file uploads, a
ledger with DynamoDB's conditional-write semantics, the registry's versions, a metrics sink."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, BinaryIO

from mlops.batch.jobs import BatchJob, JobProgress, PartResult
from mlops.inference.served import ServedArtifact, ServedVersion
from mlops.layout import artifact_key
from tests.support.fakes import InMemoryObjectStore


class BatchStore(InMemoryObjectStore):
    def __init__(self) -> None:
        super().__init__()
        self.uploads: list[str] = []  # keys written by put_file, in order (the work a part did)

    def open_range(self, bucket: str, key: str, version_id: str | None, begin: int, end: int) -> BinaryIO:
        return io.BytesIO(self._get(bucket, key, version_id)[0][begin:end])

    def put_file(self, bucket: str, key: str, path: str, content_type: str) -> None:
        self.uploads.append(key)
        self.put_bytes(bucket, key, Path(path).read_bytes(), content_type)

    def seekable(self, bucket: str, key: str, version_id: str | None) -> BinaryIO:
        return self.open(bucket, key, version_id)


class LedgerFault(Exception):
    """A write lost on the way (the invocation dies; Lambda retries it)."""


class InMemoryBatchLedger:
    """The conditional writes of `DynamoBatchLedger`: put-if-absent, set-part-if-absent, mark-once."""

    def __init__(self) -> None:
        self.jobs: dict[str, BatchJob] = {}
        self.done: dict[str, dict[int, PartResult]] = {}
        self.summarized: set[str] = set()
        self.fail_next_completion = False

    def start(self, job: BatchJob) -> BatchJob:
        self.done.setdefault(job.job_id, {})
        return self.jobs.setdefault(job.job_id, job)

    def progress(self, job_id: str) -> JobProgress | None:
        if job_id not in self.jobs:
            return None
        return JobProgress(self.jobs[job_id], dict(self.done[job_id]), job_id in self.summarized)

    def complete_part(self, job_id: str, result: PartResult) -> JobProgress | None:
        if self.fail_next_completion:
            self.fail_next_completion = False
            raise LedgerFault("the ledger write timed out")
        if result.index in self.done[job_id]:
            return None
        self.done[job_id][result.index] = result
        return self.progress(job_id)

    def mark_summarized(self, job_id: str) -> bool:
        first = job_id not in self.summarized
        self.summarized.add(job_id)
        return first


class Versions:
    def __init__(self, *versions: ServedVersion, production: int | None = None) -> None:
        self.versions = {(v.model_name, v.version): v for v in versions}
        self.production_version = production

    def production(self, name: str) -> ServedVersion | None:
        return None if self.production_version is None else self.versions.get((name, self.production_version))

    def registered(self, name: str, version: int) -> ServedVersion | None:
        return self.versions.get((name, version))


class RecordingMetrics:
    def __init__(self) -> None:
        self.points: list[tuple[str, float, dict[str, str]]] = []

    def add(self, name: str, value: float, unit: str, dimensions: dict[str, str] | None = None) -> None:
        self.points.append((name, value, dict(dimensions or {})))

    def total(self, name: str) -> float:
        return sum(value for metric, value, _ in self.points if metric == name)


def served_version(
    onnx_bytes: bytes, contract: dict[str, Any], store: InMemoryObjectStore, *, version: int = 1
) -> ServedVersion:
    """Upload an artifact and describe it as the registry would."""
    sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    key = artifact_key(contract["name"], sha256)
    store.put_bytes("artifacts", key, onnx_bytes)
    return ServedVersion(contract["name"], version, ServedArtifact("artifacts", key, sha256, len(onnx_bytes)), contract)
