"""Who may call the models API: one IAM managed policy per registry role, and an IAM role for
each registry role whose principals the deployment names.

The first line of access control: each managed policy allows `execute-api:Invoke` on exactly the
routes whose action its role may perform (mlops.registry.access.PERMISSIONS). Who may assume a
role comes from deploy-time context, nobody by default (`cdk deploy -c adminPrincipals=<arn>,...`):

- `adminPrincipals`, `approverPrincipals`, `readerPrincipals`: IAM user or role ARNs (a list, or
  comma-separated text on the command line). A role is created only when someone is named, and
  trusts exactly those principals, never a whole account.
- `requireMfa` (default true): the trust policies require `aws:MultiFactorAuthPresent`.

The models_api function maps a caller back to its role (the second line): the role's sessions
always; the named principals' own ARNs only when MFA is not required, since a direct call carries
no MFA the function could check (local mode names its stand-in admin this way).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.constructs.nag import acknowledge_wildcard_resources
from mlops.registry.access import PERMISSIONS, Action, Role

PRINCIPAL_CONTEXT_KEYS = {
    Role.ADMIN: "adminPrincipals",
    Role.APPROVER: "approverPrincipals",
    Role.READER: "readerPrincipals",
}
REQUIRE_MFA_CONTEXT_KEY = "requireMfa"
MFA_PRESENT = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
# An IAM user or role, named exactly: no wildcard, no account root, no session.
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(user|role)/[A-Za-z0-9+=.@_/-]+")

# (method, path) -> the action the handler checks; the models API's routes, all AWS_IAM.
MODEL_ROUTES: dict[tuple[str, str], Action] = {
    ("GET", "/models"): Action.READ,
    ("GET", "/models/{name}"): Action.READ,
    ("GET", "/models/{name}/versions"): Action.READ,
    ("GET", "/models/{name}/versions/{version}"): Action.READ,
    ("GET", "/models/{name}/compare"): Action.READ,
    ("GET", "/models/{name}/audit"): Action.READ,
    ("GET", "/models/{name}/audit/verify"): Action.READ,
    ("GET", "/models/{name}/served"): Action.READ,
    ("GET", "/models/{name}/aliases/{alias}/history"): Action.READ,
    ("GET", "/openapi.json"): Action.READ,
    ("POST", "/models/{name}/versions/{version}/approve"): Action.APPROVE,
    ("POST", "/models/{name}/versions/{version}/reject"): Action.REJECT,
    ("POST", "/models/{name}/versions/{version}/promote"): Action.PROMOTE,
    ("POST", "/models/{name}/versions/{version}/archive"): Action.ARCHIVE,
    ("POST", "/models/{name}/rollback"): Action.ROLLBACK,
    ("PUT", "/models/{name}/aliases/{alias}"): Action.SET_ALIAS,
    ("POST", "/models/{name}/canary"): Action.CANARY,
    ("DELETE", "/models/{name}/canary"): Action.CANARY,
    ("PUT", "/models/{name}/shadow"): Action.SHADOW,
    ("DELETE", "/models/{name}/shadow"): Action.SHADOW,
    ("POST", "/models/{name}/retrain"): Action.RETRAIN,
    ("GET", "/models/{name}/datasets"): Action.READ,
    ("GET", "/models/{name}/drift"): Action.READ,
    ("GET", "/models/{name}/drift/{report_id}"): Action.READ,
    ("GET", "/models/{name}/quality"): Action.READ,
    ("POST", "/models/{name}/datasets/{dataset_id}/review"): Action.REVIEW_DATASET,
    ("POST", "/models/{name}/imports"): Action.IMPORT_MODEL,
    ("GET", "/clients"): Action.MANAGE_CLIENT_KEYS,
    ("POST", "/clients"): Action.MANAGE_CLIENT_KEYS,
    ("POST", "/clients/{key_id}/revoke"): Action.MANAGE_CLIENT_KEYS,
}

ENV_NAMES = {Role.ADMIN: "ADMIN_PRINCIPALS", Role.APPROVER: "APPROVER_PRINCIPALS", Role.READER: "READER_PRINCIPALS"}


class PrincipalContextError(ValueError):
    """A deploy-time principal setting is not what the stack accepts (the message names the key)."""


@dataclass(frozen=True)
class HumanPrincipals:
    """The principals named per registry role at deploy time, and whether assuming a role needs MFA."""

    named: Mapping[Role, tuple[str, ...]] = field(default_factory=dict)
    require_mfa: bool = True

    def of(self, role: Role) -> tuple[str, ...]:
        return tuple(self.named.get(role, ()))


def human_principals(context: Mapping[str, Any]) -> HumanPrincipals:
    """Parse the deploy-time context values. Raises PrincipalContextError naming the bad key."""
    named = {role: _principal_list(key, context.get(key)) for role, key in PRINCIPAL_CONTEXT_KEYS.items()}
    return HumanPrincipals(named, _flag(REQUIRE_MFA_CONTEXT_KEY, context.get(REQUIRE_MFA_CONTEXT_KEY), default=True))


def _principal_list(key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PrincipalContextError(f"{key}: expected IAM user or role ARNs, a list or comma-separated text")
    arns = tuple(item.strip() for item in value if item.strip())
    for arn in arns:
        if not _PRINCIPAL_ARN.fullmatch(arn):
            raise PrincipalContextError(
                f"{key}: {arn!r} is not an IAM user or role ARN (arn:aws:iam::<account>:user/<name> or "
                ":role/<name>; no wildcards, no account root)"
            )
    return arns


def _flag(key: str, value: Any, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise PrincipalContextError(f"{key}: expected true or false, got {value!r}")


def principals_from_context(scope: Construct) -> HumanPrincipals:
    keys = [*PRINCIPAL_CONTEXT_KEYS.values(), REQUIRE_MFA_CONTEXT_KEY]
    return human_principals({key: scope.node.try_get_context(key) for key in keys})


def invoke_path(path: str) -> str:
    """`/models/{name}/versions` -> `/models/*/versions` (the execute-api resource form)."""
    return "/".join("*" if part.startswith("{") else part for part in path.split("/"))


class ModelsApiAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, api: apigw.RestApi, stage: str) -> None:
        super().__init__(scope, construct_id)
        self.principals = principals_from_context(self)
        self.roles: dict[Role, iam.Role] = {}
        self.policies: dict[Role, iam.ManagedPolicy] = {}
        for role in Role:
            allowed = PERMISSIONS[role]
            arns = [
                api.arn_for_execute_api(method, invoke_path(path), stage)
                for (method, path), action in MODEL_ROUTES.items()
                if action in allowed
            ]
            title = role.value.title()
            policy = iam.ManagedPolicy(
                self,
                f"{title}Policy",
                description=f"models API {role.value}: invoke the routes a {role.value} may call",
                statements=[iam.PolicyStatement(actions=["execute-api:Invoke"], resources=arns)],
            )
            acknowledge_wildcard_resources(
                policy,
                arns,
                "execute-api resources name each route; `*` stands for the {name}/{version}/{alias}/{dataset_id} path parameters.",
            )
            self.policies[role] = policy
            named = self.principals.of(role)
            if not named:
                continue  # nobody may act in this role until the deployment names someone
            trusted: list[iam.IPrincipal] = [iam.ArnPrincipal(arn) for arn in named]
            if self.principals.require_mfa:
                trusted = [arn.with_conditions(MFA_PRESENT) for arn in trusted]
            principal = iam.Role(
                self,
                f"{title}Role",
                assumed_by=iam.CompositePrincipal(*trusted),
                description=f"models API {role.value} (assume it to call the registry as a {role.value})",
            )
            policy.attach_to_role(principal)
            self.roles[role] = principal

    def principal_patterns(self) -> dict[str, str]:
        """The models_api settings: per role with principals, its session ARN pattern, plus the named
        principals themselves when MFA is not required."""
        patterns = {}
        for role, principal in self.roles.items():
            session = f"arn:{Aws.PARTITION}:sts::{Aws.ACCOUNT_ID}:assumed-role/{principal.role_name}/*"
            direct = [] if self.principals.require_mfa else list(self.principals.of(role))
            patterns[ENV_NAMES[role]] = ",".join([session, *direct])
        return patterns
