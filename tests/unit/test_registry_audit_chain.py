"""The audit hash chain as plain functions: what survives storage hashes the same, and verify
names the first bad seq and why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops.registry.audit_chain import GENESIS_HASH, canonical, event_hash, verify_chain
from mlops.registry.records import AuditEvent


def _chain(count: int) -> list[AuditEvent]:
    events, previous = [], GENESIS_HASH
    for seq in range(1, count + 1):
        event = AuditEvent(
            model_name="churn",
            at=datetime(2026, 12, 2, 12, 0, seq, tzinfo=UTC),
            event_id=f"e{seq}",
            action="registered",
            actor="trainer",
            version=seq,
            after={"metrics": {"roc_auc": 0.8, "whole": 1.0}},
            seq=seq,
            prev_hash=previous,
        )
        event = event.model_copy(update={"hash": event_hash(event)})
        events.append(event)
        previous = event.hash
    return events


def test_canonical_form_survives_what_dynamodb_does_to_numbers() -> None:
    # DynamoDB returns 1.0 as 1 and keeps non-finite floats as strings: both hash the same
    assert canonical({"a": 1.0, "b": float("nan"), "c": [2.5]}) == canonical({"a": 1, "b": "NaN", "c": [2.5]})


def test_verify_chain_accepts_an_intact_chain_in_any_order() -> None:
    events = _chain(4)
    verdict = verify_chain(list(reversed(events)), 4, events[-1].hash)
    assert (verdict.ok, verdict.checked) == (True, 4)


@pytest.mark.parametrize(
    ("tamper", "head", "bad_seq", "problem"),
    [
        (lambda e: [e[0], e[1].model_copy(update={"actor": "mallory"}), *e[2:]], 4, 2, "overwritten"),
        (lambda e: [e[0], *e[2:]], 4, 2, "deleted"),
        (lambda e: e[:3], 4, 4, "deleted"),
        (lambda e: [*e, e[3].model_copy(update={"seq": 5})], 4, 5, "forged"),
        # rewritten consistently from event 3 on (new hashes): the head still catches it
        (
            lambda e: [
                *e[:3],
                e[3].model_copy(update={"reason": "x", "hash": event_hash(e[3].model_copy(update={"reason": "x"}))}),
            ],
            4,
            4,
            "overwritten",
        ),
    ],
)
def test_verify_chain_names_the_first_bad_seq(tamper: object, head: int, bad_seq: int, problem: str) -> None:
    events = _chain(4)
    verdict = verify_chain(tamper(events), head, events[-1].hash)  # type: ignore[operator]
    assert (verdict.ok, verdict.first_bad_seq, verdict.problem) == (False, bad_seq, problem)
