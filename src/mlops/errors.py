"""One small hierarchy of errors. `http_status` maps each to an HTTP status in one place."""

from __future__ import annotations

from enum import StrEnum


class MlopsError(Exception):
    """Base of every error the domain raises on purpose."""

    http_status = 500


class BadRequestError(MlopsError):
    http_status = 400


class ContractError(BadRequestError):
    """A contract document is invalid (the message names the field)."""


class RejectionReason(StrEnum):
    """Why predict refused a record: what drift's data-quality section counts per field."""

    UNSEEN_CATEGORY = "unseen_category"
    OUT_OF_RANGE = "out_of_range"
    WRONG_TYPE = "wrong_type"
    MISSING = "missing"  # absent, or null where the contract does not allow it
    OTHER = "other"


RECORD_FIELD = "(record)"  # the field of a rejection that concerns the whole record (not an object)


class RecordError(BadRequestError):
    """An inference record does not satisfy the contract (the message names record and field);
    `field` and `reason` say the same for counting, without the value."""

    def __init__(
        self, message: str, *, field: str = RECORD_FIELD, reason: RejectionReason = RejectionReason.OTHER
    ) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


class DatasetError(MlopsError):
    """A dataset cannot be read or does not satisfy its contract."""

    http_status = 422


class PredictionError(MlopsError):
    """The model cannot answer a valid record (it produced a non-finite value); names the record."""

    http_status = 422


class NotFoundError(MlopsError):
    http_status = 404


class ModelNotFoundError(NotFoundError):
    pass


class VersionNotFoundError(NotFoundError):
    pass


class ConflictError(MlopsError):
    """A conditional write lost a race or a transition is not allowed from the current state."""

    http_status = 409


class ForbiddenError(MlopsError):
    http_status = 403


class IntegrityError(MlopsError):
    """An artifact's bytes do not match the digest the registry recorded."""

    http_status = 503


class ServiceUnavailableError(MlopsError):
    """A capability this deployment has not configured (the message names it)."""

    http_status = 503


class ModelUnavailableError(MlopsError):
    """The production model cannot be served right now (it cannot be loaded, or the registry has been
    unreachable for longer than the stale-serving limit); the message says which."""

    http_status = 503


class TrainingRejectedError(MlopsError):
    """Training produced no acceptable model (does not convert, does not agree, too few rows)."""

    http_status = 422


def http_status(error: Exception) -> int:
    return error.http_status if isinstance(error, MlopsError) else 500
