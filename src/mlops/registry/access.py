"""Who may do what through the models API: roles, actions, and mapping a caller to a role.

IAM is the first line (the stack's managed policies allow `execute-api:Invoke` on each role's
routes); this table is the second line, checked by the handler for every request. A caller is
identified by the IAM principal ARN API Gateway puts in `requestContext.identity.userArn`
(`arn:aws:sts::<acct>:assumed-role/<role>/<session>` for a role session,
`arn:aws:iam::<acct>:user/<name>` for a user) and matched against shell-style patterns per role
(settings `ADMIN_PRINCIPALS`, `APPROVER_PRINCIPALS`, `READER_PRINCIPALS`, comma separated).
The highest matching role wins. API-key callers have no IAM principal and get no role.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from fnmatch import fnmatchcase

from mlops.errors import ForbiddenError


class Role(StrEnum):
    READER = "reader"
    APPROVER = "approver"
    ADMIN = "admin"


class Action(StrEnum):
    READ = "read"  # list, get, versions, compare, audit, alias history, served-at, datasets, drift
    APPROVE = "approve"
    REJECT = "reject"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    SET_ALIAS = "set_alias"
    CANARY = "canary"  # start or stop a canary (issue 13)
    SHADOW = "shadow"  # set or clear the shadow (issue 13)
    ARCHIVE = "archive"
    # the seam for held datasets (validation's side decides what "held" means)
    REVIEW_DATASET = "review_dataset"
    IMPORT_MODEL = "import_model"  # ask for an upload URL for a model built elsewhere (mlops.imports)
    RETRAIN = "retrain"  # ask for a retraining (mlops.retraining): skips the new-label minimum, not the cooldown
    OVERRIDE_COOLDOWN = "override_cooldown"  # a retraining request that skips the cooldown too (admin only)
    MANAGE_CLIENT_KEYS = "manage_client_keys"  # issue, list and revoke prediction clients' API keys


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.READER: frozenset({Action.READ}),
    Role.APPROVER: frozenset(
        {
            Action.READ,
            Action.APPROVE,
            Action.REJECT,
            Action.PROMOTE,
            Action.ROLLBACK,
            Action.SET_ALIAS,
            Action.CANARY,
            Action.SHADOW,
            Action.REVIEW_DATASET,
            Action.IMPORT_MODEL,
            Action.RETRAIN,
            Action.MANAGE_CLIENT_KEYS,
        }
    ),
    Role.ADMIN: frozenset(Action),
}

# the lowest role allowed each action (the stack's managed policies are built from it)
_RANK = [Role.READER, Role.APPROVER, Role.ADMIN]


def minimum_role(action: Action) -> Role:
    return next(role for role in _RANK if action in PERMISSIONS[role])


def roles_allowed(action: Action) -> list[Role]:
    return [role for role in _RANK if action in PERMISSIONS[role]]


def parse_patterns(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


class AccessPolicy:
    """Maps principal ARNs to roles by pattern; `require` raises ForbiddenError."""

    def __init__(self, *, admins: Sequence[str] = (), approvers: Sequence[str] = (), readers: Sequence[str] = ()):
        self._patterns = {Role.ADMIN: tuple(admins), Role.APPROVER: tuple(approvers), Role.READER: tuple(readers)}

    def role_of(self, principal: str | None) -> Role | None:
        if not principal:
            return None
        for role in reversed(_RANK):
            if any(fnmatchcase(principal, pattern) for pattern in self._patterns[role]):
                return role
        return None

    def allows(self, principal: str | None, action: Action) -> bool:
        role = self.role_of(principal)
        return role is not None and action in PERMISSIONS[role]

    def require(self, principal: str | None, action: Action) -> Role:
        """The caller's role when it may perform `action`; raises ForbiddenError otherwise."""
        role = self.role_of(principal)
        if role is None:
            raise ForbiddenError(f"{principal or 'an unidentified caller'} has no role in the models API")
        if action not in PERMISSIONS[role]:
            allowed = ", ".join(r.value for r in roles_allowed(action))
            raise ForbiddenError(f"{action.value} needs the role {allowed}; {principal} is a {role.value}")
        return role
