"""Reads a synthesized CloudFormation template: which resources local mode creates, which it
deliberately leaves out, and how intrinsic functions resolve to local physical values.

An unknown resource type is an error: local and deployed must not quietly diverge.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
# The local API signs every IAM-authorised call as this user of the stand-in's fake account.
LOCAL_ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:user/local-admin"

# Types local mode creates or runs.
EMULATED_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::CompositeAlarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::Lambda::Function",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::ApiKey",
        "AWS::ApiGateway::UsagePlan",
        "AWS::ApiGateway::UsagePlanKey",
        "Custom::S3BucketNotifications",
        "AWS::StepFunctions::StateMachine",  # executions run by mlops_local.state_machines
    }
)

# Types with no local behaviour, each for a stated reason.
NOT_EMULATED_TYPES: dict[str, str] = {
    "AWS::IAM::Role": "IAM is not enforced locally (moto does not enforce it); tested in the template",
    "AWS::IAM::Policy": "IAM is not enforced locally; least privilege is tested in the template",
    "AWS::IAM::ManagedPolicy": "IAM is not enforced locally",
    "AWS::Lambda::Permission": "local triggers call handlers directly",
    "AWS::Lambda::Version": "a published version resolves to its function (SnapStart has no local meaning)",
    "AWS::Lambda::Alias": "an alias resolves to its function: local mode runs the function's code",
    "AWS::Lambda::LayerVersion": "handlers run from the source tree with the dev environment",
    "AWS::Lambda::EventInvokeConfig": "local async invokes retry in the trigger loop",
    "AWS::Logs::LogGroup": "invocation logs go to the console and .local/logs",
    "AWS::S3::BucketPolicy": "bucket policies (TLS-only) are not enforced by the stand-in",
    "AWS::SQS::QueuePolicy": "resource policies are not enforced by the stand-in",
    "AWS::SNS::TopicPolicy": "resource policies are not enforced by the stand-in",
    "AWS::KMS::Key": "the stand-in stores data unencrypted; encryption settings are tested in the template",
    "AWS::KMS::Alias": "see AWS::KMS::Key",
    "AWS::ApiGateway::Deployment": "the local API serves the template's routes directly",
    "AWS::ApiGateway::Stage": "one local stage; access logs go to .local/logs",
    "AWS::ApiGateway::Account": "account-level API Gateway settings have no local meaning",
    "AWS::ApiGateway::RequestValidator": "handlers validate request bodies themselves",
    "AWS::ApiGateway::Model": "handlers validate request bodies themselves",
    "AWS::ApiGateway::GatewayResponse": "local error responses follow API Gateway's defaults",
    "AWS::WAFv2::WebACL": "the local API listens on loopback only; the web ACL's rules are tested in the template",
    "AWS::WAFv2::WebACLAssociation": "see AWS::WAFv2::WebACL",
    "AWS::CDK::Metadata": "CDK bookkeeping",
}


class TemplateError(Exception):
    """The template uses something local mode cannot run faithfully."""


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any]


@dataclass
class Template:
    body: dict[str, Any]
    resources: dict[str, Resource] = field(init=False)

    def __post_init__(self) -> None:
        self.resources = {
            logical_id: Resource(
                logical_id, spec["Type"], spec.get("Properties", {}) or {}, spec.get("Metadata", {}) or {}
            )
            for logical_id, spec in self.body.get("Resources", {}).items()
        }

    @classmethod
    def load(cls, path: Path) -> Template:
        return cls(json.loads(path.read_text()))

    def of_type(self, resource_type: str) -> Iterator[Resource]:
        return (r for r in self.resources.values() if r.type == resource_type)

    def check_supported(self) -> list[Resource]:
        """Raise TemplateError listing every type local mode does not know; return the skipped ones."""
        unknown = sorted(
            {
                f"{r.logical_id} ({r.type})"
                for r in self.resources.values()
                if r.type not in EMULATED_TYPES and r.type not in NOT_EMULATED_TYPES
            }
        )
        if unknown:
            raise TemplateError(
                "local mode does not emulate these resources, so it cannot run this template faithfully: "
                + ", ".join(unknown)
                + ". Add the type to mlops_local.template (emulated, or not emulated with a reason)."
            )
        return [r for r in self.resources.values() if r.type in NOT_EMULATED_TYPES]

    def outputs(self) -> dict[str, Any]:
        return {name: spec["Value"] for name, spec in self.body.get("Outputs", {}).items()}


def physical_name(stack: str, logical_id: str, *, lowercase: bool = False, max_length: int = 63) -> str:
    """A stable physical name in CloudFormation's style: <stack>-<logical id>-<hash>."""
    suffix = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:10]
    name = f"{stack}-{logical_id}"[: max_length - len(suffix) - 1] + f"-{suffix}"
    if lowercase:
        name = re.sub(r"[^a-z0-9-]", "-", name.lower())
    return name


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select and Fn::Split against local values."""

    def __init__(
        self, refs: dict[str, Any], attributes: Callable[[str, str], Any], region: str = REGION, account: str = ACCOUNT
    ) -> None:
        self.refs = refs
        self.attributes = attributes
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "local",
            "AWS::NoValue": None,
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attributes(logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in self.resolve(parts))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key.startswith("Fn::"):
                raise TemplateError(f"local mode cannot resolve {key}")
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name not in self.refs:
            raise TemplateError(f"Ref to {name}, which local mode did not create")
        return self.refs[name]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(variables[token])
            if "." in token:
                logical_id, attribute = token.split(".", 1)
                return str(self.attributes(logical_id, attribute))
            return str(self._ref(token))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)
