"""The model registry: the single registry table, the idempotency table, and register_model on `ModelTrained`.

Each function gets exactly the registry calls it makes, on the partitions it touches
(`dynamodb:LeadingKeys`): readers of the production model GetItem on MODEL# only; writers put
MODEL#/AUDIT# items and update MODEL# items only.
"""

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
from infra.constructs.ledger import DatasetLedger
from infra.constructs.tables import index_arn, keyed_table
from mlops.adapters.registry_dynamodb import audit_pk, model_pk
from mlops.events import DetailType
from mlops.layout import BASELINES_PREFIX, MODELS_PREFIX

# The registry's partitions (the adapter's own key functions): models and their versions, claims and
# request records under MODEL#<name>; audit events and alias moves under AUDIT#<name>.
MODEL_PARTITIONS = model_pk("*")
AUDIT_PARTITIONS = audit_pk("*")


def leading_keys(*patterns: str) -> dict[str, object]:
    """Only items whose partition key matches one of `patterns` (every key a request touches)."""
    return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(patterns)}}


# Audit events and alias moves are append-only for every function role: no writer is allowed an
# update or delete there anyway; the Deny keeps it so should an Allow ever widen.
AUDIT_IMMUTABLE = ("dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


class Registry(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        layers: LayerLibrary,
        ledger: DatasetLedger,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = keyed_table(self, "Table")
        # Powertools idempotency defaults: hash key `id`, TTL attribute `expiration`.
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
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
                "LEDGER_TABLE": ledger.table_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        self.grant_model_reads(self.register)
        self.grant_registry_write(self.register)
        ledger.grant_training_outcomes(self.register)
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
        return index_arn(self.table)

    def grant_model_reads(self, fn: MlopsFunction) -> None:
        """GetItem on the MODEL# partitions: a model, a version, its production pointer."""
        fn.grant(["dynamodb:GetItem"], [self.table.table_arn], conditions=leading_keys(MODEL_PARTITIONS))

    def grant_model_listing(self, fn: MlopsFunction) -> None:
        """Query the index: every registered model (its `MODELS` partition)."""
        fn.grant(["dynamodb:Query"], [self.index_arn])

    def grant_registry_read(self, fn: MlopsFunction) -> None:
        """Everything the models API reads: models, versions, audit trail, alias history, the listing."""
        fn.grant(
            ["dynamodb:GetItem", "dynamodb:Query"],
            [self.table.table_arn],
            conditions=leading_keys(MODEL_PARTITIONS, AUDIT_PARTITIONS),
        )
        self.grant_model_listing(fn)

    def grant_registry_write(self, fn: MlopsFunction) -> None:
        """The registry's transactions: conditional puts of MODEL#/AUDIT# items, updates of MODEL#
        items only; never a delete or a batch write. Audit items can never be updated or deleted (an
        explicit Deny wins over any Allow); overwriting one with PutItem is prevented by the
        registry's `attribute_not_exists` condition, which IAM cannot express."""
        table = [self.table.table_arn]
        fn.grant(["dynamodb:PutItem"], table, conditions=leading_keys(MODEL_PARTITIONS, AUDIT_PARTITIONS))
        fn.grant(["dynamodb:UpdateItem"], table, conditions=leading_keys(MODEL_PARTITIONS))
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=list(AUDIT_IMMUTABLE),
                resources=table,
                conditions={"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": [AUDIT_PARTITIONS]}},
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
