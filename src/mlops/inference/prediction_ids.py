"""Prediction ids: one per answered record, so a label that arrives later can be joined to it.

32 hex characters: the answer's time in whole seconds (8), 80 random bits drawn once per request
(20) and the record's index in the request (4, more past 65,535 records). Unique (the random part
differs between requests, the index within one), ordered by second, and not guessable from another
caller's ids. Cheap on predict's path: the random bits come from a pool of `os.urandom` bytes
refilled every 400 requests (a getrandom syscall measured ~1 us here, the slice 0.1 us), each byte
used once; the time's hex text is reused within a second. The pool is filled at the first request,
never at import, so a SnapStart snapshot holds none of it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

PREDICTION_ID_PATTERN = r"^[0-9a-f]{32,}$"
_MATCHES = re.compile(PREDICTION_ID_PATTERN).match
_SUFFIXES = tuple(f"{index:04x}" for index in range(1_000))
_RANDOM_BYTES = 10
_POOL_BYTES = _RANDOM_BYTES * 400
_second_text: tuple[int, str] = (-1, "")
_pool = b""
_taken = 0


def _random_hex(random_bytes: Callable[[int], bytes]) -> str:
    global _pool, _taken
    if random_bytes is not os.urandom:  # a test's source: no pool
        return random_bytes(_RANDOM_BYTES).hex()
    if _taken >= len(_pool):
        _pool, _taken = os.urandom(_POOL_BYTES), 0
    start = _taken
    _taken = start + _RANDOM_BYTES
    return _pool[start : start + _RANDOM_BYTES].hex()


def new_prediction_ids(
    count: int,
    *,
    clock: Callable[[], float] = time.time,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> list[str]:
    """`count` fresh ids for the records of one request, in record order."""
    global _second_text
    second = int(clock())
    if second != _second_text[0]:
        _second_text = (second, f"{second & 0xFFFFFFFF:08x}")
    prefix = _second_text[1] + _random_hex(random_bytes)
    if count == 1:
        return [prefix + "0000"]
    if count <= len(_SUFFIXES):
        return [prefix + suffix for suffix in _SUFFIXES[:count]]
    return [f"{prefix}{index:04x}" for index in range(count)]


def forget_random_pool() -> None:
    """Drop the random bytes drawn so far (a SnapStart restore: every restored copy holds the same)."""
    global _pool, _taken, _second_text
    _pool, _taken, _second_text = b"", 0, (-1, "")


def is_prediction_id(text: str) -> bool:
    return _MATCHES(text) is not None
