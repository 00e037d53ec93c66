"""The audit trail as a per-model hash chain (tamper evidence for an append-only log that IAM
alone cannot protect: any role with PutItem could overwrite or forge an item).

Each event has a monotonic `seq` (1, 2, ...), the previous event's hash and its own hash:
sha256(canonical JSON of the event without `hash` + prev_hash). The model keeps the chain head
(seq, hash), advanced in the same transaction that writes the event. Verification recomputes the
chain: a hash that does not match means an event was overwritten, a missing seq that one was
deleted, an event beyond the head that one was forged.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.registry.records import AuditEvent

GENESIS_HASH = "0" * 64


def canonical(value: Any) -> Any:
    """Plain JSON values that survive a DynamoDB round trip unchanged: integral floats become
    ints (DynamoDB numbers do not keep `1.0`), non-finite floats strings, times fixed-width UTC."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
        return int(value) if value.is_integer() else value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    raise TypeError(f"cannot hash a {type(value).__name__} in an audit event")


def event_hash(event: AuditEvent) -> str:
    """sha256 over the event's canonical JSON (every field but `hash`) followed by its prev_hash."""
    fields = {key: getattr(event, key) for key in type(event).model_fields if key != "hash"}
    text = json.dumps(canonical(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((text + event.prev_hash).encode()).hexdigest()


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    checked: int  # events verified before the first problem (all of them when ok)
    head_seq: int
    first_bad_seq: int | None = None
    problem: str | None = None  # overwritten | deleted | forged
    detail: str = ""


def verify_chain(events: list[AuditEvent], head_seq: int, head_hash: str) -> ChainVerdict:
    """Recompute a model's chain (events in any order) against its head. Never raises."""
    ordered = sorted(events, key=lambda e: e.seq)
    previous, expected = GENESIS_HASH, 1
    for index, event in enumerate(ordered):
        seq = event.seq
        if seq > head_seq:
            return ChainVerdict(
                False, index, head_seq, seq, "forged", f"event {seq} is beyond the chain head {head_seq}"
            )
        if seq != expected:
            return ChainVerdict(
                False, index, head_seq, expected, "deleted", f"event {expected} is missing (next is {seq})"
            )
        if event.prev_hash != previous:
            return ChainVerdict(
                False, index, head_seq, seq, "overwritten", f"event {seq} does not follow event {seq - 1}'s hash"
            )
        if event_hash(event) != event.hash:
            return ChainVerdict(
                False, index, head_seq, seq, "overwritten", f"event {seq}'s content does not match its hash"
            )
        previous, expected = event.hash, seq + 1
    if expected - 1 != head_seq:
        return ChainVerdict(
            False, len(ordered), head_seq, expected, "deleted", f"the head is {head_seq}, the last event {expected - 1}"
        )
    if previous != head_hash:
        return ChainVerdict(
            False, len(ordered), head_seq, head_seq, "overwritten", f"event {head_seq} does not match the head's hash"
        )
    return ChainVerdict(True, len(ordered), head_seq)
