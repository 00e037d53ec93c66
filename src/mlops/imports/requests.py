"""`POST /models/{name}/imports`: an approver asks to import a model built elsewhere.

The graph never goes through the API (API Gateway's 10 MB payload limit): the answer is a
presigned PUT URL for a fresh key under `models/<name>/incoming/` of the data bucket, and the
models API records the request (who, why, when) beside it under `models/<name>/requests/`, where
uploaders cannot write. The import stage reads that record to name the importer: a file dropped
without one is attributed to the S3 principal that uploaded it.

Light (pydantic, stdlib): the models API ships no numpy or onnx.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.errors import BadRequestError, NotFoundError
from mlops.layout import IMPORT_SUFFIX, import_request_key, incoming_key, incoming_key_problem
from mlops.ports import ObjectStore
from mlops.registry.names import require_model_name

UPLOAD_URL_SECONDS = 15 * 60
FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.onnx$"
_FILE_NAME = re.compile(FILE_NAME_PATTERN)
MAX_REASON_CHARS = 1_000


class UploadUrls(Protocol):
    def upload_url(self, bucket: str, key: str, expires_seconds: int) -> str:
        """A presigned PUT URL for exactly `key`."""
        ...


class ImportRequest(BaseModel):
    """Body of `POST /models/{name}/imports`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_name: str = Field(
        description="the ONNX file's name (kept in the upload key)",
        max_length=106,
        json_schema_extra={"pattern": FILE_NAME_PATTERN},
    )
    reason: str = Field(default="", description="why (kept with the import's lineage)", max_length=MAX_REASON_CHARS)


class ImportTicket(BaseModel):
    """What the models API records for one upload URL; the import stage names the importer from it."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    key: str
    importer: str
    reason: str = ""
    requested_at: str
    request_id: str = ""


class ImportUpload(BaseModel):
    """The answer: PUT the graph's bytes to `upload_url` before `expires_at`; the import starts on arrival."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    key: str
    upload_url: str
    method: str = "PUT"
    expires_at: datetime


def request_import(
    name: str,
    request: ImportRequest,
    *,
    importer: str,
    store: ObjectStore,
    urls: UploadUrls,
    data_bucket: str,
    request_id: str = "",
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    token: Callable[[], str] = lambda: secrets.token_hex(4),
) -> ImportUpload:
    """Record the request and sign an upload URL for a fresh incoming key.

    Raises BadRequestError naming the model name or file name that breaks its rule.
    """
    require_model_name(name)
    if not _FILE_NAME.fullmatch(request.file_name):
        raise BadRequestError(
            f"file_name {request.file_name[:120]!r} is not a plain ONNX file name ({FILE_NAME_PATTERN})"
        )
    now = clock()
    upload_id = f"{request.file_name.removesuffix(IMPORT_SUFFIX)}-{now:%Y%m%dT%H%M%S}-{token()}"
    key = incoming_key(name, upload_id + IMPORT_SUFFIX)
    problem = incoming_key_problem(key)
    if problem is not None:  # the patterns above make this unreachable; the key rule stays the one judge
        raise BadRequestError(problem)
    ticket = ImportTicket(
        model_name=name,
        key=key,
        importer=importer,
        reason=request.reason,
        requested_at=now.isoformat(),
        request_id=request_id,
    )
    # the record first: an upload that arrives finds who asked for it
    store.put_bytes(
        data_bucket, import_request_key(name, upload_id), ticket.model_dump_json().encode(), "application/json"
    )
    return ImportUpload(
        model_name=name,
        key=key,
        upload_url=urls.upload_url(data_bucket, key, UPLOAD_URL_SECONDS),
        expires_at=now + timedelta(seconds=UPLOAD_URL_SECONDS),
    )


def ticket_of(store: ObjectStore, bucket: str, key: str) -> ImportTicket | None:
    """The models API's record of the upload URL `key` was made for; None when it was dropped without one
    (or the record does not describe this key)."""
    if incoming_key_problem(key) is not None:
        return None
    model, file_name = key.split("/")[1], key.rsplit("/", 1)[-1]
    try:
        document = store.get_bytes(bucket, import_request_key(model, file_name.removesuffix(IMPORT_SUFFIX)))
        ticket = ImportTicket.model_validate(json.loads(document))
    except (NotFoundError, ValueError, ValidationError):
        return None
    return ticket if ticket.key == key and ticket.model_name == model else None
