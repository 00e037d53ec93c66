"""ObjectStore on Amazon S3."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from botocore.exceptions import ClientError

from mlops.adapters.aws import client
from mlops.errors import NotFoundError
from mlops.ports import ObjectInfo

_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}


class S3ObjectStore:
    def __init__(self, s3: Any | None = None) -> None:
        self._s3 = s3

    @property
    def s3(self) -> Any:
        return self._s3 or client("s3")

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        try:
            response = self.s3.head_object(Bucket=bucket, Key=key, **_version(version_id))
        except ClientError as error:
            raise _not_found(error, bucket, key) from error
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=int(response["ContentLength"]),
            version_id=response.get("VersionId"),
            last_modified=response.get("LastModified"),
            content_type=response.get("ContentType"),
            metadata=dict(response.get("Metadata") or {}),
        )

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key, **_version(version_id))
        except ClientError as error:
            raise _not_found(error, bucket, key) from error
        return cast(BinaryIO, response["Body"])

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        with self.open(bucket, key, version_id) as body:  # type: ignore[attr-defined]
            return body.read()

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> str | None:
        response = self.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return response.get("VersionId")

    def open_range(self, bucket: str, key: str, version_id: str | None, begin: int, end: int) -> BinaryIO:
        """A stream over bytes [begin, end) of one object version (one ranged GET)."""
        if end <= begin:
            return cast(BinaryIO, io.BytesIO(b""))
        try:
            response = self.s3.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={begin}-{end - 1}", **_version(version_id)
            )
        except ClientError as error:
            raise _not_found(error, bucket, key) from error
        return cast(BinaryIO, response["Body"])

    def put_file(self, bucket: str, key: str, path: str, content_type: str) -> None:
        """Upload a local file in one streamed PUT (up to S3's 5 GB; batch parts stay far below)."""
        with open(path, "rb") as body:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def move(self, bucket: str, key: str, version_id: str | None, new_key: str) -> str | None:
        source: dict[str, str] = {"Bucket": bucket, "Key": key, **_version(version_id)}
        try:
            copied = self.s3.copy_object(Bucket=bucket, Key=new_key, CopySource=source)
        except ClientError as error:
            raise _not_found(error, bucket, key) from error
        # Deleting the exact version (not adding a delete marker) only after the copy succeeded:
        # the data is always in at least one place.
        self.s3.delete_object(Bucket=bucket, Key=key, **_version(version_id))
        return copied.get("VersionId")

    def upload_url(self, bucket: str, key: str, expires_seconds: int) -> str:
        """A presigned PUT URL for exactly `key`, signed with this function's credentials (SigV4)."""
        return cast(
            str,
            self.s3.generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds, HttpMethod="PUT"
            ),
        )

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        paginator = self.s3.get_paginator("list_objects_v2")
        kwargs: dict[str, str] = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in paginator.paginate(**kwargs):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    bucket=bucket, key=item["Key"], size=int(item["Size"]), last_modified=item.get("LastModified")
                )


def _version(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id and version_id != "null" else {}


def _not_found(error: ClientError, bucket: str, key: str) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    if code in _MISSING:
        return NotFoundError(f"s3://{bucket}/{key} does not exist")
    return error
