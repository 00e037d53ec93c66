"""An import drop: one ONNX file put under `models/<model>/incoming/` of the data bucket.

Light (stdlib only): train_model's handler reads S3 events with it; settings read its size limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from mlops.errors import BadRequestError

# Far above what a sound model of a contract's size needs (a capped forest is a few MB) and well
# below what predict's 1 GB can load next to a second version. Refused before a byte is read.
MAX_IMPORT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ImportDrop:
    bucket: str
    key: str
    version_id: str | None
    uploaded_by: str | None  # the S3 event's principal
    uploaded_at: str | None


def is_s3_event(event: object) -> bool:
    return isinstance(event, dict) and isinstance(event.get("Records"), list)


def drops_from_s3_event(event: dict[str, Any]) -> list[ImportDrop]:
    """The objects an S3 ObjectCreated notification names (keys arrive URL-encoded).

    Raises BadRequestError when a record names no bucket or key.
    """
    drops = []
    for index, record in enumerate(event.get("Records") or []):
        try:
            s3 = record["s3"]
            bucket, key = s3["bucket"]["name"], unquote_plus(s3["object"]["key"])
        except (KeyError, TypeError):
            raise BadRequestError(f"Records[{index}] names no S3 bucket and key") from None
        identity = record.get("userIdentity") if isinstance(record.get("userIdentity"), dict) else {}
        drops.append(
            ImportDrop(
                bucket=bucket,
                key=key,
                version_id=s3["object"].get("versionId"),
                uploaded_by=identity.get("principalId"),
                uploaded_at=record.get("eventTime"),
            )
        )
    return drops
