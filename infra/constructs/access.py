"""Who may call the models API: one IAM role and managed policy per registry role.

The first line of access control: each managed policy allows `execute-api:Invoke` on exactly the
routes whose action its role may perform (mlops.registry.access.PERMISSIONS). The roles are
assumable by principals of this account (the account decides who may assume them); the
models_api function maps an assumed-role session ARN back to its role (the second line).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.constructs.nag import acknowledge_wildcard_resources
from mlops.registry.access import PERMISSIONS, Action, Role

# The local stand-in of API Gateway signs every admin call as this IAM user of its fake account
# (123456789012, which is no real deployment's account), so local mode is an administrator.
LOCAL_ADMIN = "arn:aws:iam::123456789012:user/local-admin"

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
    ("GET", "/models/{name}/datasets"): Action.READ,
    ("POST", "/models/{name}/datasets/{dataset_id}/review"): Action.REVIEW_DATASET,
}

ENV_NAMES = {Role.ADMIN: "ADMIN_PRINCIPALS", Role.APPROVER: "APPROVER_PRINCIPALS", Role.READER: "READER_PRINCIPALS"}


def invoke_path(path: str) -> str:
    """`/models/{name}/versions` -> `/models/*/versions` (the execute-api resource form)."""
    return "/".join("*" if part.startswith("{") else part for part in path.split("/"))


class ModelsApiAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, api: apigw.RestApi, stage: str) -> None:
        super().__init__(scope, construct_id)
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
            principal = iam.Role(
                self,
                f"{title}Role",
                assumed_by=iam.AccountRootPrincipal(),
                description=f"models API {role.value} (assume it to call the registry as a {role.value})",
            )
            policy.attach_to_role(principal)
            self.roles[role] = principal
            self.policies[role] = policy

    def principal_patterns(self) -> dict[str, str]:
        """The models_api settings: per role, the session ARN pattern of its IAM role."""
        patterns = {}
        for role, principal in self.roles.items():
            session = f"arn:{Aws.PARTITION}:sts::{Aws.ACCOUNT_ID}:assumed-role/{principal.role_name}/*"
            extra = [LOCAL_ADMIN] if role is Role.ADMIN else []
            patterns[ENV_NAMES[role]] = ",".join([session, *extra])
        return patterns
