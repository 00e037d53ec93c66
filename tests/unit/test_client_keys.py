"""Per-client API keys: issued into the clients' usage plan, revoked, audited, never shown twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from mlops.client_keys import (
    ISSUE_CLAIM_LEASE,
    AttemptState,
    ClientKeyNotFoundError,
    IssuedClientKey,
    IssueInProgressError,
    IssueKeyRequest,
    KeyAction,
    RevokeKeyRequest,
    client_keys,
    fingerprint,
    issue_client_key,
    revoke_client_key,
)
from mlops.errors import BadRequestError
from tests.support.client_keys import InMemoryIssueAttempts, InMemoryKeyAudit, InMemoryKeyGateway

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
APPROVER = "arn:aws:sts::123456789012:assumed-role/mlops-approvers/bob"


def _issue(gateway: InMemoryKeyGateway, audit: InMemoryKeyAudit, client: str = "acme") -> object:
    return issue_client_key(
        gateway, audit, IssueKeyRequest(client=client, reason="new partner"), actor=APPROVER, request_id="r1", now=NOW
    )


def test_client_key_issue_puts_the_key_in_the_usage_plan_and_audits_its_fingerprint_only() -> None:
    gateway, audit = InMemoryKeyGateway(), InMemoryKeyAudit()
    issued = _issue(gateway, audit)
    assert issued.key_id in gateway.in_plan
    assert issued.value == gateway.value_of(issued.key_id)
    assert issued.fingerprint == fingerprint(issued.value) != issued.value
    assert issued.usage_plan.quota_limit == 1000
    [event] = audit.events()
    assert (event.action, event.client, event.key_id, event.actor, event.reason) == (
        KeyAction.ISSUED,
        "acme",
        issued.key_id,
        APPROVER,
        "new partner",
    )
    assert issued.value not in event.model_dump_json()


def test_client_key_that_cannot_join_the_usage_plan_is_deleted_again() -> None:
    gateway, audit = InMemoryKeyGateway(refuse_plan=True), InMemoryKeyAudit()
    with pytest.raises(RuntimeError):
        _issue(gateway, audit)
    assert gateway.keys == {}
    assert audit.events() == []


def test_client_key_listing_shows_ids_and_fingerprints_never_values_nor_other_keys() -> None:
    gateway, audit = InMemoryKeyGateway(), InMemoryKeyAudit()
    first, second = _issue(gateway, audit, "acme"), _issue(gateway, audit, "globex")
    stack_key = gateway.create_key("ApiKey", "the stack's own key")  # not a client key
    listed = client_keys(gateway)
    assert {(k.client, k.key_id) for k in listed} == {("acme", first.key_id), ("globex", second.key_id)}
    text = "".join(k.model_dump_json() for k in listed)
    assert first.value not in text
    assert second.value not in text
    assert stack_key.value not in text


def test_client_key_revoke_deletes_it_and_audits_who_and_why() -> None:
    gateway, audit = InMemoryKeyGateway(), InMemoryKeyAudit()
    issued = _issue(gateway, audit)
    revoked = revoke_client_key(
        gateway,
        audit,
        issued.key_id,
        RevokeKeyRequest(reason="contract ended"),
        actor=APPROVER,
        request_id="r2",
        now=NOW,
    )
    assert (revoked.key_id, revoked.enabled) == (issued.key_id, False)
    assert issued.key_id not in gateway.keys
    assert [(e.action, e.reason, e.fingerprint) for e in audit.events()] == [
        (KeyAction.ISSUED, "new partner", issued.fingerprint),
        (KeyAction.REVOKED, "contract ended", issued.fingerprint),
    ]


@pytest.mark.parametrize(
    ("key_id", "error"),
    [("nosuchkey", ClientKeyNotFoundError), ("bad/id", BadRequestError), ("", BadRequestError)],
)
def test_client_key_revoke_refuses_unknown_or_malformed_ids(key_id: str, error: type[Exception]) -> None:
    gateway, audit = InMemoryKeyGateway(), InMemoryKeyAudit()
    with pytest.raises(error):
        revoke_client_key(gateway, audit, key_id, RevokeKeyRequest(reason="x"), actor=APPROVER, request_id="r", now=NOW)
    assert audit.events() == []


def test_client_key_revoke_never_touches_keys_it_did_not_issue() -> None:
    gateway, audit = InMemoryKeyGateway(), InMemoryKeyAudit()
    stack_key = gateway.create_key("ApiKey", "the stack's own key")
    with pytest.raises(ClientKeyNotFoundError):
        revoke_client_key(
            gateway, audit, stack_key.key_id, RevokeKeyRequest(reason="x"), actor=APPROVER, request_id="r", now=NOW
        )
    assert stack_key.key_id in gateway.keys


@pytest.mark.parametrize(
    "body",
    [
        {"client": "Acme Corp", "reason": "r"},  # not a client name
        {"client": "a", "reason": "r"},  # too short
        {"client": "acme", "reason": ""},  # no reason
        {"client": "acme"},
        {"client": "acme", "reason": "r", "value": "my-own-key"},  # values are never chosen by callers
    ],
)
def test_client_key_issue_request_refuses_bad_bodies(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        IssueKeyRequest.model_validate(body)


def _issue_once(
    gateway: InMemoryKeyGateway, attempts: InMemoryIssueAttempts, now: datetime = NOW, client: str = "acme"
) -> IssuedClientKey:
    return issue_client_key(
        gateway,
        InMemoryKeyAudit(),
        IssueKeyRequest(client=client, reason="new partner"),
        actor=APPROVER,
        request_id="r1",
        now=now,
        idempotency_key="onboard-acme",
        attempts=attempts,
    )


def _pending(attempts: InMemoryIssueAttempts, at: datetime) -> None:
    """A claim of the same request whose invocation is still running (or died) since `at`."""
    gateway = InMemoryKeyGateway()
    _issue_once(gateway, attempts, at)
    [stored] = attempts.stored.values()
    attempts.stored[stored.key_hash] = stored.model_copy(update={"state": AttemptState.PENDING, "key": None})


def test_client_key_issue_while_the_same_idempotency_key_is_being_served_is_refused_with_409() -> None:
    gateway, attempts = InMemoryKeyGateway(), InMemoryIssueAttempts()
    _pending(attempts, NOW)
    with pytest.raises(IssueInProgressError) as refused:
        _issue_once(gateway, attempts, NOW + ISSUE_CLAIM_LEASE - timedelta(seconds=1))
    assert refused.value.http_status == 409
    assert gateway.keys == {}


def test_client_key_issue_abandoned_past_its_lease_is_taken_over_by_the_retry() -> None:
    gateway, attempts = InMemoryKeyGateway(), InMemoryIssueAttempts()
    _pending(attempts, NOW)
    issued = _issue_once(gateway, attempts, NOW + ISSUE_CLAIM_LEASE)
    assert issued.value == gateway.value_of(issued.key_id)
    [stored] = attempts.stored.values()
    assert stored.state is AttemptState.ISSUED
    assert stored.key is not None
    assert stored.key.key_id == issued.key_id
    assert issued.value not in stored.model_dump_json()


def test_client_key_issue_that_failed_may_be_retried_with_the_same_idempotency_key() -> None:
    attempts = InMemoryIssueAttempts()
    with pytest.raises(RuntimeError):
        _issue_once(InMemoryKeyGateway(refuse_plan=True), attempts)
    assert [a.state for a in attempts.stored.values()] == [AttemptState.FAILED]
    gateway = InMemoryKeyGateway()
    issued = _issue_once(gateway, attempts, NOW + timedelta(seconds=1))
    assert not issued.replayed
    assert list(gateway.keys) == [issued.key_id]
    replayed = _issue_once(gateway, attempts, NOW + timedelta(seconds=2))
    assert (replayed.replayed, replayed.key_id, replayed.value) == (True, issued.key_id, None)
    assert list(gateway.keys) == [issued.key_id]


class _FailingAudit(InMemoryKeyAudit):
    def record(self, event: object) -> None:
        raise RuntimeError("DynamoDB throttled")


def test_client_key_whose_issue_cannot_be_audited_is_deleted_again() -> None:
    gateway, attempts = InMemoryKeyGateway(), InMemoryIssueAttempts()
    for _ in range(2):  # the caller's retry with the same Idempotency-Key
        with pytest.raises(RuntimeError, match="throttled"):
            issue_client_key(
                gateway,
                _FailingAudit(),
                IssueKeyRequest(client="acme", reason="new partner"),
                actor=APPROVER,
                request_id="r1",
                now=NOW,
                idempotency_key="k1",
                attempts=attempts,
            )
    assert gateway.keys == {}  # no live key that nobody saw and no audit records
    assert gateway.in_plan == set()


def test_client_key_revoke_that_cannot_be_audited_leaves_the_key_for_a_retry_that_records_it() -> None:
    gateway, audit = InMemoryKeyGateway(), InMemoryKeyAudit()
    issued = _issue(gateway, audit)
    with pytest.raises(RuntimeError, match="throttled"):
        revoke_client_key(
            gateway,
            _FailingAudit(),
            issued.key_id,
            RevokeKeyRequest(reason="leaked"),
            actor=APPROVER,
            request_id="r2",
            now=NOW,
        )
    assert issued.key_id in gateway.keys  # not revoked unrecorded: the retry finds it
    revoked = revoke_client_key(
        gateway, audit, issued.key_id, RevokeKeyRequest(reason="leaked"), actor=APPROVER, request_id="r3", now=NOW
    )
    assert (revoked.key_id, revoked.enabled) == (issued.key_id, False)
    assert issued.key_id not in gateway.keys
    assert [(e.action, e.key_id, e.fingerprint) for e in audit.events()][-1] == (
        KeyAction.REVOKED,
        issued.key_id,
        issued.fingerprint,
    )
