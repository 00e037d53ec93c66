"""A seekable, read-only file over one S3 object version, read with ranged GETs.

Parquet readers need random access (the footer first, then column chunks); this gives it without
downloading the object. Wrapped in a buffer so small reads (footer, page headers) cost one GET
per buffer, not one per read.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO, cast

from botocore.exceptions import ClientError

from mlops.adapters.aws import client
from mlops.adapters.s3 import _not_found, _version

DEFAULT_BUFFER_BYTES = 1024 * 1024


class S3RangedReader(io.RawIOBase):
    def __init__(
        self, bucket: str, key: str, version_id: str | None = None, *, size: int | None = None, s3: Any | None = None
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.version_id = version_id
        self._s3 = s3 or client("s3")
        self._position = 0
        if size is None:
            try:
                size = int(self._s3.head_object(Bucket=bucket, Key=key, **_version(version_id))["ContentLength"])
            except ClientError as error:
                raise _not_found(error, bucket, key) from error
        self._size = size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def size(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._position)
        if wanted <= 0:
            return 0
        last = self._position + wanted - 1
        try:
            response = self._s3.get_object(
                Bucket=self.bucket, Key=self.key, Range=f"bytes={self._position}-{last}", **_version(self.version_id)
            )
        except ClientError as error:
            raise _not_found(error, self.bucket, self.key) from error
        with response["Body"] as body:
            data = body.read()
        view[: len(data)] = data
        self._position += len(data)
        return len(data)


def open_ranged(
    bucket: str, key: str, version_id: str | None = None, *, buffer_bytes: int = DEFAULT_BUFFER_BYTES
) -> BinaryIO:
    """A buffered, seekable reader over `s3://bucket/key` at `version_id`."""
    return cast(BinaryIO, io.BufferedReader(S3RangedReader(bucket, key, version_id), buffer_size=buffer_bytes))
