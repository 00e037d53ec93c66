"""Validators for what a registry request names (model, version, alias, digest), shared by the
registry adapters and the service layer. Light: no pydantic models, no boto3."""

from __future__ import annotations

import re

from mlops.contract import is_valid_model_name
from mlops.contract_rules import ALIAS_PATTERN as ALIAS_PATTERN
from mlops.contract_rules import is_valid_alias
from mlops.errors import BadRequestError

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_VERSION = 10**10 - 1  # version sort keys are 10 digits
PRODUCTION_ALIAS = "production"


class IdempotencyKeyReusedError(BadRequestError):
    """An idempotency key came back with a different request (IETF draft: 422)."""

    http_status = 422


def require_model_name(name: str) -> str:
    """Raises BadRequestError unless `name` is a valid model name (no key delimiters, no slashes)."""
    if not isinstance(name, str) or not is_valid_model_name(name):
        raise BadRequestError(f"{name!r} is not a valid model name (lowercase letters, digits and '-', 1-63 chars)")
    return name


def require_version(version: int) -> int:
    """Raises BadRequestError unless `version` is a positive integer that fits a version key."""
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise BadRequestError(f"{version!r} is not a version number (a positive integer)")
    return version


def parse_version(text: str) -> int:
    """A path segment -> a version number; raises BadRequestError for anything else."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise BadRequestError(f"{text!r} is not a version number (a positive integer)")
    return require_version(int(text))


def require_alias(alias: str) -> str:
    if not is_valid_alias(alias):
        raise BadRequestError(f"{alias!r} is not a valid alias (lowercase letters, digits and '-', 1-32 chars)")
    return alias


def require_sha256(digest: str) -> str:
    if not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest):
        raise BadRequestError(f"{digest!r} is not a lowercase hex SHA-256 digest")
    return digest
