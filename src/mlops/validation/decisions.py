"""What a dataset version's decision sets in motion, and the id that names the version.

Light on purpose (pydantic only, no numpy/pyarrow): models_api imports it to carry out a
reviewer's decision, and its layers ship neither.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re

from mlops.errors import NotFoundError
from mlops.events import DatasetQuarantined, DatasetValidated, DetailType
from mlops.layout import quarantine_key
from mlops.ports import EventPublisher, ObjectStore
from mlops.validation.ledger import LedgerEntry

logger = logging.getLogger(__name__)

# What `dataset_id` produces: a file-name stem (it starts with a letter, digit or "_"; truncation
# may end it with "-" or ".") then 16 hex. No "/" and no "#": safe in a path and in a sort key.
DATASET_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}-[0-9a-f]{16}$"
_DATASET_ID_RE = re.compile(DATASET_ID_PATTERN)


def dataset_id(key: str, version_id: str | None) -> str:
    """A deterministic, readable id for one object version: `<file name>-<16 hex of key+version>`."""
    digest = hashlib.sha256(f"{key}\n{version_id or ''}".encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", posixpath.basename(key)).strip("-.")[:64] or "dataset"
    return f"{stem}-{digest}"


def is_valid_dataset_id(text: str) -> bool:
    return isinstance(text, str) and bool(_DATASET_ID_RE.fullmatch(text))


def publish_validated(publisher: EventPublisher, entry: LedgerEntry) -> None:
    """DatasetValidated for an accepted entry: training starts on exactly this version."""
    if entry.contract_digest is None:
        raise ValueError(f"dataset {entry.dataset_id} has no contract digest")
    publisher.publish(
        DetailType.DATASET_VALIDATED,
        DatasetValidated(
            model_name=entry.model_name,
            dataset=entry.dataset_ref(),
            contract_digest=entry.contract_digest,
            report_key=entry.report_key,
        ),
    )


def quarantine(store: ObjectStore, publisher: EventPublisher, entry: LedgerEntry) -> None:
    """DatasetQuarantined, then move the version under quarantine/ (a version already gone is fine)."""
    target = entry.quarantine_key or quarantine_key(entry.key)
    publisher.publish(
        DetailType.DATASET_QUARANTINED,
        DatasetQuarantined(
            model_name=entry.model_name,
            source_key=entry.key,
            quarantine_key=target,
            report_key=entry.report_key,
            reasons=entry.reasons,
        ),
    )
    try:
        store.move(entry.bucket, entry.key, entry.version_id, target)
    except NotFoundError:
        logger.info("s3://%s/%s (%s) is already gone", entry.bucket, entry.key, entry.version_id)
