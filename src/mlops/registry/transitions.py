"""Which status changes a model version may make, as one table and one check."""

from __future__ import annotations

from mlops.errors import ConflictError
from mlops.registry.records import VersionStatus

S = VersionStatus

# from -> the statuses it may move to in ordinary operation. `rejected` is terminal: a rejected
# (or integrity-failed, which is rejected with that reason) version can never be promoted.
ALLOWED_TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    S.CANDIDATE: frozenset({S.APPROVED, S.REJECTED, S.PRODUCTION, S.ARCHIVED}),
    S.APPROVED: frozenset({S.PRODUCTION, S.REJECTED, S.ARCHIVED}),
    S.PRODUCTION: frozenset({S.ARCHIVED}),  # only when another version takes production (promotion, rollback)
    S.ARCHIVED: frozenset(),
    S.REJECTED: frozenset(),
}

# only a rollback may bring a former production version back
ROLLBACK_TRANSITIONS: frozenset[tuple[VersionStatus, VersionStatus]] = frozenset({(S.ARCHIVED, S.PRODUCTION)})


def is_allowed(current: VersionStatus, target: VersionStatus, *, rollback: bool = False) -> bool:
    if target in ALLOWED_TRANSITIONS[current]:
        return True
    return rollback and (current, target) in ROLLBACK_TRANSITIONS


def check_transition(current: VersionStatus, target: VersionStatus, *, rollback: bool = False) -> None:
    """Raises ConflictError naming the transition when it is not allowed."""
    if is_allowed(current, target, rollback=rollback):
        return
    hint = " except by rollback" if (current, target) in ROLLBACK_TRANSITIONS else ""
    raise ConflictError(f"version status transition {current.value} -> {target.value} is not allowed{hint}")


def rollback_target(history: list[int], to_version: int | None = None) -> tuple[int, list[int]]:
    """The version a rollback restores and the production history after it.

    `history` is the stack of production versions, the current one last. Rolling back pops the
    current version (or everything above `to_version`). Raises ConflictError when there is nothing
    to roll back to or `to_version` was never production below the current one.
    """
    if not history:
        raise ConflictError("the model has no production version to roll back")
    current = history[-1]
    earlier = history[:-1]
    if to_version is None:
        if not earlier:
            raise ConflictError(f"v{current} is the only version that has been in production; nothing to roll back to")
        return earlier[-1], earlier
    if to_version == current:
        raise ConflictError(f"v{to_version} is already the production version")
    if to_version not in earlier:
        raise ConflictError(f"v{to_version} was not a production version before v{current}; cannot roll back to it")
    index = len(earlier) - 1 - earlier[::-1].index(to_version)
    return to_version, earlier[: index + 1]
