"""Imports Lambda gave up on (timeout, out of memory, an S3 error on every attempt), read from
train_model's on-failure destination record: announced as `ModelImportRejected`, never only logged.

Light (pydantic, stdlib): record_training_failure's layers ship no numpy or onnx.
"""

from __future__ import annotations

from mlops.events import ImportSource, ModelImportRejected
from mlops.imports.drops import drops_from_s3_event, is_s3_event
from mlops.layout import UNASSIGNED_MODEL, model_of_incoming_key
from mlops.training.outcome import destination_failure_reason


def failed_imports(record: object) -> list[ModelImportRejected]:
    """One rejection per import drop the record's request named; [] when it carried no S3 event.

    Raises BadRequestError when an S3 record names no bucket and key."""
    if not isinstance(record, dict) or not is_s3_event(record.get("requestPayload")):
        return []
    reason = destination_failure_reason(record)
    return [
        ModelImportRejected(
            model_name=model_of_incoming_key(drop.key) or UNASSIGNED_MODEL,
            source=ImportSource.unread(drop),
            problems=[f"the import did not finish: {reason}"],
        )
        for drop in drops_from_s3_event(record["requestPayload"])
    ]
