"""Dataset intake: the data bucket and validate_dataset on every ObjectCreated under `datasets/`.

validate_dataset reads datasets and contracts, writes only under reports/ and quarantine/ (neither
triggers it: the notification filters on datasets/), records each dataset's state in the ledger
(its own table: validate_dataset holds no write permission on the registry), reads the
production model (GetItem on the registry) and its baseline from the artifact bucket, and
announces quarantines and holds on the alarm topic (`announce_to`).

A data file uploaded anywhere else (`penguins/x.csv`) would do nothing at all: S3 notifications
cannot say "every prefix but these", so the bucket also sends its events to EventBridge, where an
anything-but pattern routes objects outside the suite's own prefixes (mlops.misplaced) to
report_misplaced_upload, which writes a notice under misplaced/ and counts `MisplacedUploads`.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import FUNCTIONS
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from infra.constructs.ledger import DatasetLedger
from infra.constructs.registry import Registry
from infra.constructs.storage import secure_bucket
from mlops.layout import (
    BASELINES_PREFIX,
    CONTRACTS_PREFIX,
    DATASETS_PREFIX,
    MISPLACED_PREFIX,
    MODELS_PREFIX,
    QUARANTINE_PREFIX,
    REPORTS_PREFIX,
)
from mlops.misplaced import OWNED_PREFIXES


class Datasets(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        access_logs: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        ledger: DatasetLedger,
        layers: LayerLibrary,
        artifact_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = secure_bucket(self, "DataBucket", access_logs=access_logs, log_prefix="data/")
        self.validate = MlopsFunction(
            self,
            "ValidateDataset",
            spec=FUNCTIONS["validate_dataset"],
            environment={
                "DATA_BUCKET": self.bucket.bucket_name,
                "EVENT_BUS_NAME": backbone.bus.event_bus_name,
                "IDEMPOTENCY_TABLE": registry.idempotency_table.table_name,
                "REGISTRY_TABLE": registry.table.table_name,
                "LEDGER_TABLE": ledger.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        objects = self.bucket.arn_for_objects
        self.validate.grant(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [objects(f"{DATASETS_PREFIX}*"), objects(f"{CONTRACTS_PREFIX}*"), objects(f"{REPORTS_PREFIX}*")],
            why_wildcard="Reads uploaded datasets, registered contracts and earlier reports (profiles), by prefix.",
        )
        artifacts = artifact_bucket.arn_for_objects
        self.validate.grant(
            ["s3:GetObject"],
            [artifacts(f"{MODELS_PREFIX}*"), artifacts(f"{BASELINES_PREFIX}*")],
            why_wildcard="Reads the production model (label-flip check) and its baseline profile, by prefix.",
        )
        registry.grant_model_reads(self.validate)  # the production model: the label-flip reference
        ledger.grant_decisions(self.validate)
        # Without ListBucket S3 answers 403 instead of 404 for a missing object, and the validator
        # could not tell an already-handled upload (or a missing contract) from a denied read.
        # No s3:prefix condition: a HeadObject carries no prefix, so the condition would never hold.
        self.validate.grant(["s3:ListBucket"], [self.bucket.bucket_arn])
        self.validate.grant(
            ["s3:PutObject"],
            [objects(f"{QUARANTINE_PREFIX}*"), objects(f"{REPORTS_PREFIX}*")],
            why_wildcard="Writes quarantined datasets and validation reports, by prefix.",
        )
        self.validate.grant(
            ["s3:DeleteObject", "s3:DeleteObjectVersion"],
            [objects(f"{DATASETS_PREFIX}*")],
            why_wildcard="Removes a dataset version from datasets/ once it is quarantined.",
        )
        backbone.bus.grant_put_events_to(self.validate.role)
        registry.grant_idempotency(self.validate)
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.validate.function),
            s3.NotificationKeyFilter(prefix=DATASETS_PREFIX),
        )
        self.misplaced = self._misplaced_uploads(backbone, layers)

    def _misplaced_uploads(self, backbone: EventBackbone, layers: LayerLibrary) -> MlopsFunction:
        """report_misplaced_upload on every object created outside the owned prefixes (it keeps data files)."""
        function = MlopsFunction(
            self,
            "ReportMisplacedUpload",
            spec=FUNCTIONS["report_misplaced_upload"],
            environment={"DATA_BUCKET": self.bucket.bucket_name},
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        function.grant(
            ["s3:PutObject"],
            [self.bucket.arn_for_objects(f"{MISPLACED_PREFIX}*")],
            why_wildcard="Writes a notice per misplaced upload, by prefix.",
        )
        self.bucket.enable_event_bridge_notification()
        outside = [{"anything-but": {"wildcard": [f"{prefix}*" for prefix in OWNED_PREFIXES]}}]
        rule = events.Rule(
            self,
            "MisplacedUploads",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [self.bucket.bucket_name]}, "object": {"key": outside}},
            ),
            description="objects created in the data bucket outside its owned prefixes -> report_misplaced_upload",
        )
        rule.add_target(
            targets.LambdaFunction(
                function.function,
                dead_letter_queue=backbone.dead_letters,
                retry_attempts=2,
                max_event_age=Duration.hours(2),
            )
        )
        return function

    def announce_to(self, topic: sns.ITopic, key: kms.IKey) -> None:
        """Quarantines and holds are published to `topic` (encrypted with `key`)."""
        self.validate.function.add_environment("ALARM_TOPIC_ARN", topic.topic_arn)
        self.validate.grant(["sns:Publish"], [topic.topic_arn])
        self.validate.grant(["kms:GenerateDataKey", "kms:Decrypt"], [key.key_arn])
