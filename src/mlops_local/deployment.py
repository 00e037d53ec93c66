"""Creates the template's resources on the AWS stand-in, with their key schemas and settings.

Physical names are derived from logical ids the way CloudFormation does it (stack, logical id,
hash), so every `Ref`/`Fn::GetAtt` resolves before anything is created.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3

from mlops_local.template import ACCOUNT, REGION, Resolver, Resource, Template, TemplateError, physical_name

log = logging.getLogger("mlops_local")

STACK = "mlops-local"
_CLIENTS_LOCK = threading.Lock()
KEPT_KINDS = {
    "AWS::S3::Bucket": "bucket",
    "AWS::DynamoDB::Table": "table",
    "AWS::SQS::Queue": "queue",
    "AWS::SNS::Topic": "topic",
}
LOCAL_PREFIX = "local-"  # the runtime's own wiring (trigger queues), not declared by the template


@dataclass
class Reconciled:
    """The template against the stand-in's (restored) resources, by physical name."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)  # kept with their data, reported


# Qualified function ARNs (`<function arn>:<alias or version>`): local mode runs the function itself.
_QUALIFIED_FUNCTION_TYPES = frozenset({"AWS::Lambda::Alias", "AWS::Lambda::Version"})


@dataclass
class LocalDeployment:
    """The template, its resolved physical values, and clients to the stand-in."""

    template: Template
    endpoint: str
    region: str = REGION
    account: str = ACCOUNT
    names: dict[str, str] = field(init=False)
    resolver: Resolver = field(init=False)
    _clients: dict[tuple[str, str, str], Any] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.names = {r.logical_id: self._physical_name(r) for r in self.template.resources.values()}
        self.resolver = Resolver(
            {lid: self._ref(r) for lid, r in self.template.resources.items()},
            self._attribute,
            self.region,
            self.account,
        )

    def client(self, service: str) -> Any:
        """One client per service (creating one costs ~50 ms; clients are thread-safe once made)."""
        with _CLIENTS_LOCK:
            key = (service, self.endpoint, self.region)
            if key not in self._clients:
                self._clients[key] = boto3.client(service, endpoint_url=self.endpoint, region_name=self.region)
            return self._clients[key]

    def resolve(self, value: Any) -> Any:
        return self.resolver.resolve(value)

    def function_arn(self, logical_id: str) -> str:
        return self._attribute(logical_id, "Arn")

    def logical_id_of_arn(self, arn: str) -> str | None:
        """The function, topic or queue an ARN names; an alias's or version's ARN names its function."""
        for logical_id, resource in self.template.resources.items():
            if resource.type in {"AWS::Lambda::Function", "AWS::SNS::Topic", "AWS::SQS::Queue"} and arn in (
                self._attribute(logical_id, "Arn"),
                self._ref(resource),
            ):
                return logical_id
            if resource.type in _QUALIFIED_FUNCTION_TYPES and arn == self._ref(resource):
                return self._qualified_function_id(resource)
        return None

    def _qualified_function_id(self, resource: Resource) -> str:
        """The logical id of the function an alias or a version belongs to (`FunctionName: {"Ref": ...}`)."""
        function = resource.properties.get("FunctionName")
        if not (isinstance(function, dict) and isinstance(function.get("Ref"), str)):
            raise TemplateError(
                f"{resource.logical_id}: local mode resolves FunctionName only as a Ref, got {function!r}"
            )
        return function["Ref"]

    # --- creation -------------------------------------------------------------------------

    def create_all(self) -> Reconciled:
        """Create what the template declares and the stand-in lacks; what it already holds (restored
        state) is kept with its data. Returns what was created, kept, and found but not declared."""
        existing = self._existing_names()
        reconciled = Reconciled()
        creators = {
            "AWS::S3::Bucket": self._create_bucket,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::Events::EventBus": self._create_bus,
            "AWS::SNS::Topic": self._create_topic,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::StepFunctions::StateMachine": self._create_state_machine,
        }
        for resource in self.template.resources.values():
            creator = creators.get(resource.type)
            if creator is None:
                continue
            name = self.names[resource.logical_id]
            if resource.type not in existing:  # not kept across restarts: always created
                creator(resource)
            elif name in existing[resource.type]:
                self._check_kept(resource)
                reconciled.kept.append(name)
            else:
                creator(resource)
                reconciled.created.append(name)
        declared = set(self.names.values())
        reconciled.undeclared = sorted(
            f"{KEPT_KINDS[kind]} {name}"
            for kind, names in existing.items()
            for name in names - declared
            if not name.startswith(LOCAL_PREFIX)
        )
        self.declare_monitoring()
        return reconciled

    def declare_monitoring(self, retract: tuple[dict[str, str], dict[str, str]] | None = None) -> None:
        """Declare the template's alarms and dashboards on the stand-in; `retract` holds the (alarm,
        dashboard) names by logical id of an earlier template, deleted where no longer declared."""
        for alarm in self.template.of_type("AWS::CloudWatch::Alarm"):
            self._create_alarm(alarm)
        # composite alarms are not declared on the stand-in (moto 5.2.5 has no PutCompositeAlarm);
        # mlops_local.alarms evaluates them, and their notifications carry their state
        for dashboard in self.template.of_type("AWS::CloudWatch::Dashboard"):
            self._create_dashboard(dashboard)
        if retract:
            alarms, dashboards = (set(names.values()) - set(self.names.values()) for names in retract)
            cloudwatch = self.client("cloudwatch")
            if alarms:
                cloudwatch.delete_alarms(AlarmNames=sorted(alarms))
            if dashboards:
                cloudwatch.delete_dashboards(DashboardNames=sorted(dashboards))

    def monitoring_names(self) -> tuple[dict[str, str], dict[str, str]]:
        """(alarm names, dashboard names) by logical id."""
        return tuple(  # type: ignore[return-value]
            {r.logical_id: self.names[r.logical_id] for r in self.template.of_type(kind)}
            for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard")
        )

    def replace_template(self, template: Template) -> None:
        """Adopt a re-synthesized template (names and references follow it)."""
        self.template = template
        self.__post_init__()

    def _existing_names(self) -> dict[str, set[str]]:
        """Names of the kept resource kinds already on the stand-in (restored state)."""
        s3, dynamodb, sqs, sns = (self.client(s) for s in ("s3", "dynamodb", "sqs", "sns"))
        tables = [name for page in dynamodb.get_paginator("list_tables").paginate() for name in page["TableNames"]]
        topics = [t["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for t in page["Topics"]]
        return {
            "AWS::S3::Bucket": {b["Name"] for b in s3.list_buckets().get("Buckets", [])},
            "AWS::DynamoDB::Table": set(tables),
            "AWS::SQS::Queue": {url.rsplit("/", 1)[-1] for url in sqs.list_queues().get("QueueUrls", [])},
            "AWS::SNS::Topic": {arn.rsplit(":", 1)[-1] for arn in topics},
        }

    def _check_kept(self, resource: Resource) -> None:
        """Bring a kept table to the template's settings: indexes added or dropped and TTL set as declared.
        Its primary key cannot change under its items: another key is refused, with the fix."""
        if resource.type != "AWS::DynamoDB::Table":
            return
        props = self.resolve(resource.properties)
        name = self.names[resource.logical_id]
        dynamodb = self.client("dynamodb")
        table = dynamodb.describe_table(TableName=name)["Table"]

        def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
            return sorted((k["AttributeName"], k["KeyType"]) for k in schema)

        if keys(table["KeySchema"]) != keys(props["KeySchema"]):
            raise TemplateError(
                f"table {name} ({resource.logical_id}) was saved with the key {keys(table['KeySchema'])}, the "
                f"template declares {keys(props['KeySchema'])}; its items cannot be kept under another key: start "
                "with `mlops local up --fresh` (discards the saved state), or restore the table's previous key"
            )
        declared = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
        kept = {i["IndexName"]: keys(i["KeySchema"]) for i in table.get("GlobalSecondaryIndexes", [])}
        updates: list[dict[str, Any]] = [
            {"Delete": {"IndexName": index}}
            for index in kept
            if index not in declared or kept[index] != keys(declared[index]["KeySchema"])
        ]
        updates += [
            {"Create": {k: v for k, v in index.items() if k in {"IndexName", "KeySchema", "Projection"}}}
            for index_name, index in declared.items()
            if kept.get(index_name) != keys(index["KeySchema"])
        ]
        for update in updates:  # one index change per call, as DynamoDB allows
            dynamodb.update_table(
                TableName=name, AttributeDefinitions=props["AttributeDefinitions"], GlobalSecondaryIndexUpdates=[update]
            )
            log.info("table %s: index %s", name, update)
        ttl = props.get("TimeToLiveSpecification") or {}
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl.get("Enabled") and current.get("AttributeName") != ttl["AttributeName"]:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )

    def execute_api_origins(self) -> list[str]:
        """The origin each REST API of the template has once deployed (`https://<id>.execute-api...`),
        as the template's references resolve here: local mode serves it elsewhere and rewrites it."""
        return [
            f"https://{self._ref(api)}.execute-api.{self.region}.amazonaws.com"
            for api in self.template.of_type("AWS::ApiGateway::RestApi")
        ]

    def _create_bucket(self, resource: Resource) -> None:
        props = self.resolve(resource.properties)
        name = self.names[resource.logical_id]
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            rules = [  # CloudFormation and the S3 API name the same field differently
                {
                    ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                    for k, v in rule.items()
                }
                for rule in encryption
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        if props.get("ObjectLockEnabled"):
            log.info("bucket %s: object lock declared", name)

    def _create_table(self, resource: Resource) -> None:
        props = self.resolve(resource.properties)
        name = self.names[resource.logical_id]
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = props.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if k in {"IndexName", "KeySchema", "Projection"}}
                | (
                    {"ProvisionedThroughput": index["ProvisionedThroughput"]}
                    if "ProvisionedThroughput" in index
                    else {}
                )
                for index in props["GlobalSecondaryIndexes"]
            ]
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )

    def _create_bus(self, resource: Resource) -> None:
        self.client("events").create_event_bus(Name=self.names[resource.logical_id])

    def _create_state_machine(self, resource: Resource) -> None:
        """Declared on the stand-in (which records executions); mlops_local.state_machines runs them."""
        props = self.resolve(resource.properties)
        self.client("stepfunctions").create_state_machine(  # the stand-in answers an existing one unchanged
            name=self.names[resource.logical_id], definition=props["DefinitionString"], roleArn=props["RoleArn"]
        )

    def _create_topic(self, resource: Resource) -> None:
        self.client("sns").create_topic(Name=self.names[resource.logical_id])

    def _create_queue(self, resource: Resource) -> None:
        props = self.resolve(resource.properties)
        attributes = {
            key: str(props[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")
            if key in props
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        if props.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        self.client("sqs").create_queue(QueueName=self.names[resource.logical_id], Attributes=attributes)

    def _create_alarm(self, resource: Resource) -> None:
        """Declared on the stand-in so clients can list it; local mode evaluates it itself."""
        props = self.resolve(resource.properties)
        args = {
            key: props[key]
            for key in (
                "AlarmDescription",
                "ActionsEnabled",
                "AlarmActions",
                "OKActions",
                "InsufficientDataActions",
                "MetricName",
                "Namespace",
                "Statistic",
                "ExtendedStatistic",
                "Metrics",
                "Dimensions",
                "Period",
                "EvaluationPeriods",
                "DatapointsToAlarm",
                "Threshold",
                "ComparisonOperator",
                "TreatMissingData",
                "EvaluateLowSampleCountPercentile",
                "Unit",
            )
            if key in props
        }
        try:
            self.client("cloudwatch").put_metric_alarm(AlarmName=self.names[resource.logical_id], **args)
        except Exception:  # the listing is a convenience: evaluation never reads it
            log.warning("alarm %s: not declared on the stand-in", self.names[resource.logical_id], exc_info=True)

    def _create_dashboard(self, resource: Resource) -> None:
        """Stored on the stand-in so clients can read it (nothing renders it locally)."""
        props = self.resolve(resource.properties)
        try:
            self.client("cloudwatch").put_dashboard(
                DashboardName=self.names[resource.logical_id], DashboardBody=str(props["DashboardBody"])
            )
        except Exception:
            log.warning("dashboard %s: not stored on the stand-in", self.names[resource.logical_id], exc_info=True)

    # --- names, refs and attributes -----------------------------------------------------------

    def _physical_name(self, resource: Resource) -> str:
        props = resource.properties
        explicit = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Events::EventBus": "Name",
            "AWS::Events::Rule": "Name",
            "AWS::SNS::Topic": "TopicName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::CloudWatch::Alarm": "AlarmName",
            "AWS::CloudWatch::CompositeAlarm": "AlarmName",
            "AWS::CloudWatch::Dashboard": "DashboardName",
        }.get(resource.type)
        if explicit and isinstance(props.get(explicit), str):
            return props[explicit]
        lowercase = resource.type == "AWS::S3::Bucket"
        return physical_name(STACK, resource.logical_id, lowercase=lowercase)

    def _ref(self, resource: Resource) -> str:
        if resource.type in _QUALIFIED_FUNCTION_TYPES:  # CloudFormation: Ref of an alias or version is its ARN
            function_arn = self._attribute(self._qualified_function_id(resource), "Arn")
            qualifier = resource.properties.get("Name") if resource.type == "AWS::Lambda::Alias" else "1"
            return f"{function_arn}:{qualifier}"
        name = self.names[resource.logical_id]
        if resource.type in {"AWS::SNS::Topic", "AWS::StepFunctions::StateMachine"}:  # Ref is the ARN
            return self._attribute(resource.logical_id, "Arn")
        if resource.type == "AWS::ApiGateway::Stage" and isinstance(resource.properties.get("StageName"), str):
            return resource.properties["StageName"]  # CloudFormation: Ref of a stage is its name
        if resource.type == "AWS::SQS::Queue":
            return f"{self.endpoint}/{self.account}/{name}"
        return name

    def _attribute(self, logical_id: str, attribute: str) -> str:
        resource = self.template.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"Fn::GetAtt on {logical_id}, which the template does not declare")
        name = self.names[logical_id]
        region, account = self.region, self.account
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "AWS::Events::EventBus": f"arn:aws:events:{region}:{account}:event-bus/{name}",
            "AWS::Events::Rule": f"arn:aws:events:{region}:{account}:rule/{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
            "AWS::CloudWatch::CompositeAlarm": f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{name}",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{name}",
            "AWS::ApiGateway::RestApi": f"arn:aws:apigateway:{region}::/restapis/{name}",
            "AWS::Lambda::LayerVersion": f"arn:aws:lambda:{region}:{account}:layer:{name}:1",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
        }
        if attribute == "Arn" and resource.type in arns:
            return arns[resource.type]
        special = {
            ("AWS::Lambda::Version", "Version"): "1",  # one local "published version" per function
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): f"{self.endpoint}/{account}/{name}",
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::SNS::Topic", "TopicArn"): arns["AWS::SNS::Topic"],
            ("AWS::Events::EventBus", "Name"): name,
            ("AWS::S3::Bucket", "DomainName"): f"{name}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{name}.s3.{region}.amazonaws.com",
            ("AWS::DynamoDB::Table", "StreamArn"): f"{arns['AWS::DynamoDB::Table']}/stream/local",
            ("AWS::ApiGateway::RestApi", "RootResourceId"): f"{name}-root",
            ("AWS::KMS::Key", "KeyId"): name,
        }
        if (resource.type, attribute) in special:
            return special[(resource.type, attribute)]
        return f"{name}.{attribute}"
