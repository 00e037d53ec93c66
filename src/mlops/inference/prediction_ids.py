"""Prediction ids: one per answered record, so a label that arrives later can be joined to it.

32 hex characters: the answer's time in milliseconds (12), 64 random bits drawn once per request
(16) and the record's index in the request (4, more past 65,535 records). Unique (the random part
differs between requests, the index within one), time-ordered, and not guessable from another
caller's ids; one `os.urandom` call per request instead of a uuid4 per record keeps a
1,000-record answer cheap.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

PREDICTION_ID_PATTERN = r"^[0-9a-f]{32,}$"
_MATCHES = re.compile(PREDICTION_ID_PATTERN).match
_SUFFIXES = tuple(f"{index:04x}" for index in range(1_000))


def new_prediction_ids(
    count: int,
    *,
    clock: Callable[[], float] = time.time,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> list[str]:
    """`count` fresh ids for the records of one request, in record order."""
    prefix = f"{int(clock() * 1000) & 0xFFFFFFFFFFFF:012x}{random_bytes(8).hex()}"
    if count <= len(_SUFFIXES):
        return [prefix + suffix for suffix in _SUFFIXES[:count]]
    return [f"{prefix}{index:04x}" for index in range(count)]


def is_prediction_id(text: str) -> bool:
    return _MATCHES(text) is not None
