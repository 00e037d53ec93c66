"""The model registry: the single registry table, the idempotency table, and register_model on `ModelTrained`."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import FUNCTIONS
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from mlops.events import DetailType
from mlops.layout import BASELINES_PREFIX, MODELS_PREFIX

REGISTRY_READ = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable")
REGISTRY_WRITE = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
)
# Audit events and alias moves (partition AUDIT#<name>) are append-only for every function role.
AUDIT_LEADING_KEYS = "AUDIT#*"
AUDIT_IMMUTABLE = ("dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
GSI1 = "gsi1"


class Registry(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        layers: LayerLibrary,
    ) -> None:
        super().__init__(scope, construct_id)
        string = dynamodb.AttributeType.STRING
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=string),
            sort_key=dynamodb.Attribute(name="sk", type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table.add_global_secondary_index(
            index_name=GSI1,
            partition_key=dynamodb.Attribute(name="gsi1pk", type=string),
            sort_key=dynamodb.Attribute(name="gsi1sk", type=string),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        # Powertools idempotency defaults: hash key `id`, TTL attribute `expiration`.
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=string),
            time_to_live_attribute="expiration",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.register = MlopsFunction(
            self,
            "RegisterModel",
            spec=FUNCTIONS["register_model"],
            environment={
                "REGISTRY_TABLE": self.table.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "EVENT_BUS_NAME": backbone.bus.event_bus_name,
                "IDEMPOTENCY_TABLE": self.idempotency_table.table_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        self.grant_registry_read(self.register)
        self.grant_registry_write(self.register)
        self.register.grant(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [
                artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{BASELINES_PREFIX}*"),
            ],
            why_wildcard="Reads the trained artifact and its baseline under models/ and baselines/ only.",
        )
        backbone.bus.grant_put_events_to(self.register.role)
        self.grant_idempotency(self.register)
        self.rule = backbone.route(
            "ModelTrainedRule", DetailType.MODEL_TRAINED, self.register.function, "register_model"
        )

    @property
    def index_arn(self) -> str:
        return f"{self.table.table_arn}/index/{GSI1}"

    def grant_registry_read(self, fn: MlopsFunction) -> None:
        fn.grant(REGISTRY_READ, [self.table.table_arn, self.index_arn])

    def grant_registry_write(self, fn: MlopsFunction) -> None:
        """Write access, except that audit items can never be updated or deleted (an explicit Deny
        wins over any Allow). Overwriting one with PutItem is prevented by the registry's
        `attribute_not_exists` condition, which IAM cannot express."""
        fn.grant(REGISTRY_WRITE, [self.table.table_arn])
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=list(AUDIT_IMMUTABLE),
                resources=[self.table.table_arn],
                conditions={"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": [AUDIT_LEADING_KEYS]}},
            )
        )

    def connect_alarm_topic(self, topic: sns.ITopic, key: kms.IKey) -> None:
        """register_model tells the alarm topic when it promotes a version automatically."""
        connect_alarm_topic(self.register, topic, key)

    def grant_idempotency(self, fn: MlopsFunction) -> None:
        fn.grant(IDEMPOTENCY_ACTIONS, [self.idempotency_table.table_arn])


def connect_alarm_topic(fn: MlopsFunction, topic: sns.ITopic, key: kms.IKey) -> None:
    """`fn` may publish production changes to the KMS-encrypted alarm topic (ALARM_TOPIC_ARN)."""
    fn.function.add_environment("ALARM_TOPIC_ARN", topic.topic_arn)
    fn.grant(["sns:Publish"], [topic.topic_arn])
    fn.grant(["kms:GenerateDataKey", "kms:Decrypt"], [key.key_arn])
