"""In-memory implementations of the ports, for unit tests (fakes over mocks)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from pydantic import BaseModel

from mlops.errors import MlopsError, NotFoundError
from mlops.ports import ObjectInfo


class InMemoryObjectStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str, str]] = {}
        self._versions = itertools.count(1)

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        version = f"v{next(self._versions)}"
        self.objects[(bucket, key)] = (data, version, content_type)
        return version

    def _get(self, bucket: str, key: str, version_id: str | None) -> tuple[bytes, str, str]:
        found = self.objects.get((bucket, key))
        if found is None or (version_id is not None and found[1] != version_id):
            raise NotFoundError(f"s3://{bucket}/{key} does not exist")
        return found

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        data, version, content_type = self._get(bucket, key, version_id)
        return ObjectInfo(bucket, key, len(data), version, datetime.now(UTC), content_type)

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        return io.BytesIO(self._get(bucket, key, version_id)[0])

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self._get(bucket, key, version_id)[0]

    def move(self, bucket: str, key: str, version_id: str | None, new_key: str) -> str:
        data, _, content_type = self._get(bucket, key, version_id)
        new_version = self.put_bytes(bucket, new_key, data, content_type)
        del self.objects[(bucket, key)]
        return new_version

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        for (b, key), (data, version, _) in sorted(self.objects.items()):
            if b == bucket and key.startswith(prefix) and (start_after is None or key > start_after):
                yield ObjectInfo(b, key, len(data), version)


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, BaseModel]] = []

    def publish(self, detail_type: str, detail: BaseModel) -> None:
        self.events.append((detail_type, detail))

    def of_type(self, detail_type: str) -> list[BaseModel]:
        return [detail for kind, detail in self.events if kind == detail_type]


class FlakyPublisher(RecordingPublisher):
    """Refuses the first `failures` events (as EventBridgePublisher does when the bus refuses an
    entry), then records like RecordingPublisher."""

    def __init__(self, failures: int = 1) -> None:
        super().__init__()
        self.failures = failures

    def publish(self, detail_type: str, detail: BaseModel) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise MlopsError(f"EventBridge refused {detail_type}: ThrottlingException")
        super().publish(detail_type, detail)


class SignedUrls:
    """Upload URLs as a fake signer makes them (the S3 adapter signs real ones)."""

    def __init__(self) -> None:
        self.signed: list[tuple[str, str, int]] = []

    def upload_url(self, bucket: str, key: str, expires_seconds: int) -> str:
        self.signed.append((bucket, key, expires_seconds))
        return f"https://{bucket}.example/{key}?signature=fake"
