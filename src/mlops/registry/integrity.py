"""Does a registered artifact still hold the bytes the registry recorded? Light (hashlib only):
the registry's production gate (mlops.registry.engine) runs it before any version serves."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from mlops.errors import IntegrityError

if TYPE_CHECKING:
    from mlops.ports import ObjectStore
    from mlops.registry.records import Artifact

_CHUNK = 1024 * 1024


def object_sha256(store: ObjectStore, bucket: str, key: str) -> str:
    """The SHA-256 of an object's bytes, streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    with store.open(bucket, key) as body:  # type: ignore[attr-defined]
        while chunk := body.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_stored_artifact(store: ObjectStore, artifact: Artifact) -> None:
    """Check the registered artifact still exists and hashes to its recorded digest.

    Raises NotFoundError (object gone) or IntegrityError (size or digest differ).
    """
    info = store.head(artifact.bucket, artifact.key)
    if info.size != artifact.size_bytes or object_sha256(store, artifact.bucket, artifact.key) != artifact.sha256:
        raise IntegrityError(
            f"artifact s3://{artifact.bucket}/{artifact.key} no longer matches its registered SHA-256 "
            f"{artifact.sha256[:12]}...; it cannot serve"
        )
