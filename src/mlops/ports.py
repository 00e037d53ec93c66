"""The small interfaces the domain depends on. Adapters implement them on AWS; tests pass
in-memory fakes (tests/fakes.py) instead of patching boto3."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:  # predict imports the ports on its cold-start path, without pydantic
    from pydantic import BaseModel


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    version_id: str | None = None
    last_modified: datetime | None = None
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo: ...

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        """A streaming, read-only file object over the object's bytes."""
        ...

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes: ...

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> str | None:
        """Write an object; returns its version id (None on unversioned buckets)."""
        ...

    def move(self, bucket: str, key: str, version_id: str | None, new_key: str) -> str | None:
        """Copy one exact version to `new_key` then delete that version from `key`."""
        ...

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: BaseModel) -> None: ...


class MetricsSink(Protocol):
    def add(self, name: str, value: float, unit: str, dimensions: dict[str, str] | None = None) -> None: ...
