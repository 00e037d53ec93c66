"""Where the commands act: the running local mode or a deployed stack, resolved into one `Target`.

Local mode: its endpoints, credentials and outputs from its state file (`.local/state.json`).
AWS: a boto3 session (profile, region), the stack's outputs from CloudFormation (infra/outputs.py
names them), the API key's value through API Gateway, function names from the stack's resources.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.outputs import API_KEY_ID, API_URL, DATA_BUCKET_NAME, LEDGER_TABLE_NAME, STACK_NAME
from mlops_local.client import ApiClient


class TargetError(Exception):
    """The target could not be resolved (not running, no such stack, an output missing)."""


@dataclass
class Target:
    """One deployment (local mode or a stack): clients, API access and names, whichever it is."""

    description: str
    region: str
    outputs: dict[str, str]
    api_key: str | None
    session: Any  # boto3.Session
    endpoint_url: str | None = None  # local mode's AWS stand-in
    ca_bundle: str | None = None  # local mode's self-signed certificate
    log_dir: Path | None = None  # local mode's logs (invocations.log, one file per function)
    control_url: str | None = None  # local mode's control endpoint
    function_names: Callable[[], dict[str, str]] | None = None  # handler folder -> deployed name (AWS)
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.log_dir is not None

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise TargetError(f"{self.description} has no output {name!r}") from None

    @property
    def data_bucket(self) -> str:
        return self.output(DATA_BUCKET_NAME)

    @property
    def ledger_table(self) -> str:
        return self.output(LEDGER_TABLE_NAME)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    def api(self) -> ApiClient:
        """The API: predictions with the API key, admin calls signed with this target's credentials."""
        credentials = self.session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        return ApiClient(
            self.output(API_URL),
            ca_bundle=self.ca_bundle,
            api_key=self.api_key,
            access_key=frozen.access_key if frozen else None,
            secret_key=frozen.secret_key if frozen else None,
            session_token=frozen.token if frozen else None,
            region=self.region,
        )


def local_target(state_file: Path) -> Target:
    """The running local mode, from the state file it writes at start."""
    if not state_file.exists():
        raise TargetError(f"local mode is not running (no {state_file}); start it with `mlops local up`")
    state = json.loads(state_file.read_text())
    session = boto3.Session(
        aws_access_key_id=state["access_key_id"],
        aws_secret_access_key=state["secret_access_key"],
        region_name=state["region"],
    )
    return Target(
        description="local mode",
        region=state["region"],
        outputs=dict(state["outputs"]),
        api_key=state.get("api_key"),
        session=session,
        endpoint_url=state["aws_endpoint_url"],
        ca_bundle=state.get("ca_bundle"),
        log_dir=Path(state["log_dir"]),
        control_url=state.get("control_url"),
    )


def aws_target(
    *, profile: str | None = None, region: str | None = None, stack: str = STACK_NAME, session: Any = None
) -> Target:
    """A deployed stack: outputs from CloudFormation, the API key's value from API Gateway."""
    session = session or boto3.Session(profile_name=profile, region_name=region)
    if session.region_name is None:
        raise TargetError("no AWS region: pass --region or set one in the profile (AWS_DEFAULT_REGION)")
    cloudformation = session.client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        raise TargetError(f"stack {stack!r} not found in {session.region_name}: {error}") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    where = f"stack {stack} ({session.region_name}{', profile ' + profile if profile else ''})"
    api_key = None
    if API_KEY_ID in outputs:
        api_key = session.client("apigateway").get_api_key(apiKey=outputs[API_KEY_ID], includeValue=True)["value"]
    target = Target(description=where, region=session.region_name, outputs=outputs, api_key=api_key, session=session)
    target.function_names = lambda: stack_function_names(target.client("cloudformation"), stack)
    return target


def stack_function_names(cloudformation: Any, stack: str) -> dict[str, str]:
    """Handler folder (`predict`, `validate_dataset`...) -> the deployed function's name."""
    from infra.catalog import SOURCE_METADATA_KEY  # each function resource names its handler folder

    template = cloudformation.get_template(StackName=stack, TemplateStage="Processed")["TemplateBody"]
    if isinstance(template, str):
        template = json.loads(template)
    folders = {
        logical_id: resource["Metadata"][SOURCE_METADATA_KEY].rsplit("/", 1)[-1]
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Lambda::Function" and SOURCE_METADATA_KEY in resource.get("Metadata", {})
    }
    names: dict[str, str] = {}
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            if resource["LogicalResourceId"] in folders:
                names[folders[resource["LogicalResourceId"]]] = resource["PhysicalResourceId"]
    return names
