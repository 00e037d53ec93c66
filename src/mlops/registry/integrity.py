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


def verify_stored_artifact(store: ObjectStore, artifact: Artifact) -> None:
    """Check the registered artifact still exists and hashes to its recorded digest.

    Raises NotFoundError (object gone) or IntegrityError (size or digest differ).
    """
    info = store.head(artifact.bucket, artifact.key)
    digest = hashlib.sha256()
    if info.size == artifact.size_bytes:
        with store.open(artifact.bucket, artifact.key) as body:  # type: ignore[attr-defined]
            while chunk := body.read(_CHUNK):
                digest.update(chunk)
    if info.size != artifact.size_bytes or digest.hexdigest() != artifact.sha256:
        raise IntegrityError(
            f"artifact s3://{artifact.bucket}/{artifact.key} no longer matches its registered SHA-256 "
            f"{artifact.sha256[:12]}...; it cannot serve"
        )
