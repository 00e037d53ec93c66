"""Batch scoring: score_batch on every ObjectCreated under `batch/` of the data bucket, and on the
`BatchPartRequested` events it sends itself to fan a large file out (one per part, through the bus
rule below: retries and the dead-letter queue come with it, and local mode wires it like any rule).

Least privilege: reads batch/ (data bucket) and models/ (artifact bucket, the version's artifact),
writes predictions/ only, reads the registry's MODEL# items, and reads/writes its own ledger table
(one item per job, conditional writes; no delete, scan or query). It writes nothing under batch/,
so it never triggers itself through S3.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from infra.catalog import FUNCTIONS
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from infra.constructs.registry import Registry
from mlops.events import DetailType
from mlops.layout import BATCH_PREFIX, MODELS_PREFIX, PREDICTIONS_PREFIX

LEDGER_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]


class BatchScoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        layers: LayerLibrary,
    ) -> None:
        super().__init__(scope, construct_id)
        # jobs and their completed parts (mlops.adapters.batch_ledger_dynamodb); items expire after 30 days
        self.ledger = dynamodb.Table(
            self,
            "Ledger",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expires_at",
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.score = MlopsFunction(
            self,
            "ScoreBatch",
            spec=FUNCTIONS["score_batch"],
            environment={
                "DATA_BUCKET": data_bucket.bucket_name,
                "REGISTRY_TABLE": registry.table.table_name,
                "BATCH_LEDGER_TABLE": self.ledger.table_name,
                "EVENT_BUS_NAME": backbone.bus.event_bus_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        data = data_bucket.arn_for_objects
        self.score.grant(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [data(f"{BATCH_PREFIX}*")],
            why_wildcard="Reads the files to score under batch/ only.",
        )
        self.score.grant(
            ["s3:PutObject"],
            [data(f"{PREDICTIONS_PREFIX}*")],
            why_wildcard="Writes predictions, rejects and summaries under predictions/ only.",
        )
        self.score.grant(
            ["s3:GetObject"],
            [artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*")],
            why_wildcard="Loads model artifacts under models/ only (verified against the registry's digest).",
        )
        self.score.grant(LEDGER_ACTIONS, [self.ledger.table_arn])
        registry.grant_model_reads(self.score)  # the production or pinned version
        backbone.bus.grant_put_events_to(self.score.role)
        data_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.score.function),
            s3.NotificationKeyFilter(prefix=BATCH_PREFIX),
        )
        backbone.route("BatchParts", DetailType.BATCH_PART_REQUESTED, self.score.function, "score_batch")
