"""The promotion policy and the status transitions, table-driven."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.contract import Metric
from mlops.errors import ConflictError
from mlops.registry.policy import decide_promotion
from mlops.registry.records import VersionStatus
from mlops.registry.transitions import ALLOWED_TRANSITIONS, check_transition, is_allowed, rollback_target

S = VersionStatus


@pytest.mark.parametrize(
    ("metric", "candidate", "champion", "promote", "reason"),
    [
        # higher is better
        (Metric(name="roc_auc", minimum=0.7), 0.8, None, True, "no production version"),
        (Metric(name="roc_auc", minimum=0.7), 0.7, None, True, "meets the contract"),
        (Metric(name="roc_auc", minimum=0.7), 0.69, None, False, "does not meet the contract minimum 0.7"),
        (Metric(name="roc_auc"), 0.01, None, True, "no production version"),
        (Metric(name="roc_auc", minimum=0.7), 0.81, 0.8, True, "beats production v1 0.8"),
        (Metric(name="roc_auc", minimum=0.7), 0.8, 0.8, False, "does not beat production v1 0.8"),
        (Metric(name="roc_auc", minimum=0.7), 0.79, 0.8, False, "does not beat"),
        (Metric(name="roc_auc", min_improvement=0.01), 0.805, 0.8, False, "by at least 0.01"),
        (Metric(name="roc_auc", min_improvement=0.01), 0.811, 0.8, True, "by at least 0.01"),
        (Metric(name="roc_auc", minimum=0.9), 0.85, 0.8, False, "does not meet"),  # better, below minimum
        # lower is better
        (Metric(name="rmse", minimum=10), 5.0, None, True, "no production version"),
        (Metric(name="rmse", minimum=10), 11.0, None, False, "does not meet the contract maximum 10"),
        (Metric(name="rmse", minimum=10), 4.0, 5.0, True, "lower is better"),
        (Metric(name="rmse", minimum=10), 6.0, 5.0, False, "does not beat"),
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
