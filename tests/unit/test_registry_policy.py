"""The promotion policy and the status transitions, table-driven."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.contract import Metric, PromotionMode, parse_contract
from mlops.contract_compat import Break, Incompatibility, InputCompatibility
from mlops.errors import ConflictError, ForbiddenError
from mlops.registry.access import PERMISSIONS, AccessPolicy, Action, Role, minimum_role
from mlops.registry.policy import (
    PromotionDecision,
    SameDataComparison,
    apply_compatibility,
    apply_promotion_mode,
    decide_promotion,
    same_data_of,
)
from mlops.registry.records import VersionStatus
from mlops.registry.transitions import ALLOWED_TRANSITIONS, check_transition, is_allowed, rollback_target
from tests.support.registry_fake import contract_document

S = VersionStatus


@pytest.mark.parametrize(
    ("metric", "candidate", "champion", "promote", "reason"),
    [
        # higher is better
        (Metric(name="roc_auc", at_least=0.7), 0.8, None, True, "no production version"),
        (Metric(name="roc_auc", at_least=0.7), 0.7, None, True, "meets the contract"),
        (Metric(name="roc_auc", at_least=0.7), 0.69, None, False, "does not meet the contract minimum 0.7"),
        (Metric(name="roc_auc"), 0.01, None, True, "no production version"),
        (Metric(name="roc_auc", at_least=0.7), 0.81, 0.8, True, "beats production v1 0.8"),
        (Metric(name="roc_auc", at_least=0.7), 0.8, 0.8, False, "does not beat production v1 0.8"),
        (Metric(name="roc_auc", at_least=0.7), 0.79, 0.8, False, "does not beat"),
        (Metric(name="roc_auc", min_improvement=0.01), 0.805, 0.8, False, "by at least 0.01"),
        (Metric(name="roc_auc", min_improvement=0.01), 0.811, 0.8, True, "by at least 0.01"),
        (Metric(name="roc_auc", at_least=0.9), 0.85, 0.8, False, "does not meet"),  # better, below minimum
        # lower is better
        (Metric(name="rmse", at_most=10), 5.0, None, True, "no production version"),
        (Metric(name="rmse", at_most=10), 11.0, None, False, "does not meet the contract maximum 10"),
        (Metric(name="rmse", at_most=10), 4.0, 5.0, True, "lower is better"),
        (Metric(name="rmse", at_most=10), 6.0, 5.0, False, "does not beat"),
        (Metric(name="log_loss", min_improvement=0.05), 0.46, 0.5, False, "by at least 0.05"),
        (Metric(name="log_loss", min_improvement=0.05), 0.44, 0.5, True, "beats"),
    ],
)
def test_decide_promotion_table(
    metric: Metric, candidate: float, champion: float | None, promote: bool, reason: str
) -> None:
    decision = decide_promotion(
        metric,
        {metric.name: candidate},
        None if champion is None else {metric.name: champion},
        champion_version=None if champion is None else 1,
    )
    assert decision.promote is promote
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("candidate", "champion", "reason"),
    [
        ({}, None, "candidate has no usable roc_auc"),
        ({"roc_auc": float("nan")}, None, "candidate has no usable roc_auc"),
        ({"roc_auc": 0.9}, {"accuracy": 0.5}, "has no roc_auc metric to compare"),
    ],
)
def test_decide_promotion_missing_metric_declines(
    candidate: dict[str, float], champion: dict[str, float] | None, reason: str
) -> None:
    decision = decide_promotion(Metric(name="roc_auc"), candidate, champion, champion_version=3)
    assert not decision.promote
    assert reason in decision.reason


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.1))
def test_decide_promotion_never_promotes_a_non_improvement(candidate: float, champion: float, margin: float) -> None:
    metric = Metric(name="accuracy", min_improvement=margin)
    decision = decide_promotion(metric, {"accuracy": candidate}, {"accuracy": champion})
    if candidate <= champion:
        assert not decision.promote


ALL = list(VersionStatus)
ALLOWED = {
    (S.CANDIDATE, S.APPROVED),
    (S.CANDIDATE, S.REJECTED),
    (S.CANDIDATE, S.PRODUCTION),
    (S.APPROVED, S.PRODUCTION),
    (S.APPROVED, S.REJECTED),
    (S.CANDIDATE, S.ARCHIVED),
    (S.APPROVED, S.ARCHIVED),
    (S.PRODUCTION, S.ARCHIVED),
}


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("target", ALL)
def test_transitions_table(current: VersionStatus, target: VersionStatus) -> None:
    expected = (current, target) in ALLOWED
    assert is_allowed(current, target) is expected
    if expected:
        check_transition(current, target)
    else:
        with pytest.raises(ConflictError, match=f"{current.value} -> {target.value}"):
            check_transition(current, target)


def test_transitions_archived_to_production_only_by_rollback() -> None:
    with pytest.raises(ConflictError, match="archived -> production is not allowed except by rollback"):
        check_transition(S.ARCHIVED, S.PRODUCTION)
    check_transition(S.ARCHIVED, S.PRODUCTION, rollback=True)
    with pytest.raises(ConflictError):
        check_transition(S.REJECTED, S.PRODUCTION, rollback=True)
    assert set(ALLOWED_TRANSITIONS) == set(VersionStatus)


@pytest.mark.parametrize(
    ("history", "to_version", "target", "after"),
    [
        ([1, 3], None, 1, [1]),
        ([1, 2, 3], None, 2, [1, 2]),
        ([1, 2, 3], 1, 1, [1]),
        ([1, 4, 1, 5], 1, 1, [1, 4, 1]),
    ],
)
def test_rollback_target(history: list[int], to_version: int | None, target: int, after: list[int]) -> None:
    assert rollback_target(history, to_version) == (target, after)


@pytest.mark.parametrize(
    ("history", "to_version", "message"),
    [
        ([], None, "no production version"),
        ([1], None, "nothing to roll back to"),
        ([1, 3], 3, "already the production version"),
        ([1, 3], 2, "was not a production version"),
    ],
)
def test_rollback_target_conflicts(history: list[int], to_version: int | None, message: str) -> None:
    with pytest.raises(ConflictError, match=message):
        rollback_target(history, to_version)


def test_rejected_is_terminal_and_never_promoted() -> None:
    for target in VersionStatus:
        assert not is_allowed(S.REJECTED, target)
        assert not is_allowed(S.REJECTED, target, rollback=True)


@pytest.mark.parametrize(
    ("mode", "decision", "promote", "reason"),
    [
        (PromotionMode.AUTO, PromotionDecision(True, "beats"), True, "beats"),
        (PromotionMode.MANUAL, PromotionDecision(True, "beats"), False, "requires manual approval"),
        (PromotionMode.MANUAL, PromotionDecision(False, "does not beat"), False, "does not beat"),
    ],
)
def test_promotion_mode(mode: PromotionMode, decision: PromotionDecision, promote: bool, reason: str) -> None:
    applied = apply_promotion_mode(decision, mode)
    assert applied.promote is promote
    assert reason in applied.reason


def test_contract_promotion_defaults_to_auto_and_keeps_the_digest() -> None:
    document = contract_document()
    default = parse_contract(document)
    explicit = parse_contract({**document, "promotion": {"mode": "auto"}})
    manual = parse_contract({**document, "promotion": {"mode": "manual"}})
    assert default.promotion.mode is PromotionMode.AUTO
    assert "promotion" not in default.canonical_json()
    assert default.digest == explicit.digest != manual.digest


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.READER, {Action.READ}),
        (
            Role.APPROVER,
            {
                Action.READ,
                Action.APPROVE,
                Action.REJECT,
                Action.PROMOTE,
                Action.ROLLBACK,
                Action.SET_ALIAS,
                Action.CANARY,  # start or stop a canary (issue 13)
                Action.SHADOW,
                Action.REVIEW_DATASET,
                Action.IMPORT_MODEL,
                Action.RETRAIN,  # skips the new-label minimum; OVERRIDE_COOLDOWN stays with admins
                Action.MANAGE_CLIENT_KEYS,  # issue and revoke prediction clients' API keys
            },
        ),
        (Role.ADMIN, set(Action)),
    ],
)
def test_role_permissions_table(role: Role, allowed: set[Action]) -> None:
    assert PERMISSIONS[role] == allowed
    assert minimum_role(Action.ARCHIVE) is Role.ADMIN
    assert minimum_role(Action.READ) is Role.READER


@pytest.mark.parametrize(
    ("principal", "role"),
    [
        ("arn:aws:iam::123456789012:user/local-admin", Role.ADMIN),
        ("arn:aws:sts::111122223333:assumed-role/models-approvers/bob", Role.APPROVER),
        ("arn:aws:sts::111122223333:assumed-role/models-readers/carol", Role.READER),
        ("arn:aws:sts::111122223333:assumed-role/other/eve", None),
        ("arn:aws:sts::111122223333:assumed-role/models-readers-evil/eve", None),
        ("", None),
        (None, None),
    ],
)
def test_access_policy_maps_principals_to_roles(principal: str | None, role: Role | None) -> None:
    policy = AccessPolicy(
        admins=["arn:aws:iam::123456789012:user/local-admin"],
        approvers=["arn:aws:sts::111122223333:assumed-role/models-approvers/*"],
        readers=["arn:aws:sts::111122223333:assumed-role/models-readers/*"],
    )
    assert policy.role_of(principal) is role
    if role is None:
        with pytest.raises(ForbiddenError, match="no role"):
            policy.require(principal, Action.READ)
    elif role is Role.READER:
        with pytest.raises(ForbiddenError, match="promote needs the role approver, admin"):
            policy.require(principal, Action.PROMOTE)


def same(
    candidate: float | None,
    champion: float | None,
    *,
    data: str = "candidate_holdout",
    version: int | None = 1,
    metric: str = "roc_auc",
    rows: int = 30,
    unavailable: str | None = None,
) -> SameDataComparison:
    return SameDataComparison(
        data=data,
        metric_name=metric,
        rows=rows,
        candidate_value=candidate,
        champion_version=version,
        champion_value=champion,
        unavailable=unavailable,
    )


@pytest.mark.parametrize(
    ("own", "same_data", "promote", "reasons"),
    [
        # same data decides, whatever the own holdouts say
        (
            (0.97, 0.85),
            [same(0.97, 0.99)],
            False,
            ["on the candidate's holdout (30 rows): roc_auc 0.97 does not beat production v1 0.99", "same data"],
        ),
        (
            (0.80, 0.90),
            [same(0.93, 0.91)],
            True,
            ["on the candidate's holdout (30 rows): roc_auc 0.93 beats production v1 0.91"],
        ),
        # every same-data set must be won: a better holdout and a worse recent traffic decline
        (
            (0.9, 0.8),
            [same(0.93, 0.91), same(0.70, 0.75, data="recent_traffic", rows=500)],
            False,
            ["on recent labelled traffic (500 rows): roc_auc 0.7 does not beat production v1 0.75"],
        ),
        (
            (0.9, 0.8),
            [same(0.93, 0.91), same(0.80, 0.75, data="recent_traffic", rows=500)],
            True,
            ["on the candidate's holdout (30 rows)", "on recent labelled traffic (500 rows)"],
        ),
        # the old comparison only when no same-data score is usable, saying why
        ((0.9, 0.8), [], True, ["beats production v1 0.8", "own holdout", "not scored on the candidate's data"]),
        (
            (0.9, 0.8),
            [same(0.9, None, unavailable="production v1 could not be scored: its classes differ")],
            True,
            ["own holdout (production v1 could not be scored: its classes differ)"],
        ),
        ((0.9, 0.8), [same(0.9, 0.95, version=2)], True, ["training scored v2, but production v1 has served since"]),
        (
            (0.9, 0.95),
            [same(0.9, 0.8, metric="accuracy")],
            False,
            ["does not beat production v1 0.95", "no same-data roc_auc"],
        ),
    ],
)
def test_decide_promotion_on_the_same_data(
    own: tuple[float, float], same_data: list[SameDataComparison], promote: bool, reasons: list[str]
) -> None:
    decision = decide_promotion(
        Metric(name="roc_auc", at_least=0.6),
        {"roc_auc": own[0]},
        {"roc_auc": own[1]},
        champion_version=1,
        same_data=same_data,
    )
    assert decision.promote is promote
    for reason in reasons:
        assert reason in decision.reason


def test_decide_promotion_same_data_still_needs_the_contract_minimum() -> None:
    decision = decide_promotion(
        Metric(name="roc_auc", at_least=0.9),
        {"roc_auc": 0.85},
        {"roc_auc": 0.8},
        champion_version=1,
        same_data=[same(0.85, 0.7)],
    )
    assert not decision.promote
    assert "does not meet the contract minimum 0.9" in decision.reason


def test_decide_promotion_same_data_margin_applies() -> None:
    metric = Metric(name="log_loss", min_improvement=0.05)
    near = decide_promotion(
        metric, {"log_loss": 0.2}, {"log_loss": 0.5}, champion_version=1, same_data=[same(0.46, 0.5, metric="log_loss")]
    )
    far = decide_promotion(
        metric, {"log_loss": 0.2}, {"log_loss": 0.5}, champion_version=1, same_data=[same(0.44, 0.5, metric="log_loss")]
    )
    assert not near.promote
    assert "by at least 0.05" in near.reason
    assert far.promote


def test_same_data_of_reads_lineage_records_and_tolerates_older_versions() -> None:
    record = {
        "data": "candidate_holdout",
        "metric_name": "roc_auc",
        "rows": 30,
        "candidate_value": 1,
        "champion_version": 3,
        "champion_value": 0.9,
        "unavailable": None,
        "champion_metrics": {},
    }
    assert same_data_of({"same_data": [record]}) == [same(1.0, 0.9, version=3)]
    assert same_data_of({}) == []


@pytest.mark.parametrize(
    ("promote", "breaking", "expected_promote", "reason"),
    [
        (True, False, True, "beats"),
        (
            True,
            True,
            False,
            "schema: the candidate would reject requests production v4 accepts: x: new required feature; not promoted automatically",
        ),
        (False, True, False, "does not beat; schema: the candidate would reject"),
    ],
)
def test_apply_compatibility(promote: bool, breaking: bool, expected_promote: bool, reason: str) -> None:
    breaks = (Incompatibility("x", Break.NEW_REQUIRED_FEATURE, "new required feature"),) if breaking else ()
    decision = apply_compatibility(
        PromotionDecision(promote, "beats" if promote else "does not beat"), InputCompatibility(breaks), 4
    )
    assert decision.promote is expected_promote
    assert reason in decision.reason
