"""Label files in: ingest_feedback on every ObjectCreated under `feedback/` of the data bucket.

Its own function rather than validate_dataset's: a label file is not a dataset (no ledger state,
no training, no reference model), and a separate role keeps each least-privileged: ingest_feedback
reads feedback/, writes labels/ (artifact bucket), its reports and quarantine/_feedback/, and reads
the registry's MODEL# items; it holds no ledger, bus or registry write. It writes nothing under
feedback/, so it never triggers itself.
"""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from infra.catalog import FUNCTIONS
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from infra.constructs.registry import Registry
from mlops.layout import FEEDBACK_PREFIX, FEEDBACK_QUARANTINE_PREFIX, LABELS_PREFIX, REPORTS_PREFIX


class FeedbackFiles(Construct):
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
        self.ingest = MlopsFunction(
            self,
            "IngestFeedback",
            spec=FUNCTIONS["ingest_feedback"],
            environment={
                "DATA_BUCKET": data_bucket.bucket_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "REGISTRY_TABLE": registry.table.table_name,
                "IDEMPOTENCY_TABLE": registry.idempotency_table.table_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        data = data_bucket.arn_for_objects
        self.ingest.grant(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [data(f"{FEEDBACK_PREFIX}*")],
            why_wildcard="Reads label files under feedback/ only.",
        )
        self.ingest.grant(
            ["s3:PutObject"],
            [data(f"{REPORTS_PREFIX}*/feedback/*"), data(f"{FEEDBACK_QUARANTINE_PREFIX}*")],
            why_wildcard="Writes label file reports and quarantines unreadable label files, by prefix.",
        )
        self.ingest.grant(
            ["s3:DeleteObject", "s3:DeleteObjectVersion"],
            [data(f"{FEEDBACK_PREFIX}*")],
            why_wildcard="Removes an unreadable label file version from feedback/ once it is quarantined.",
        )
        # Without ListBucket a version already moved answers 403, not 404: a repeated delivery could
        # not tell "already quarantined" from "denied".
        self.ingest.grant(["s3:ListBucket"], [data_bucket.bucket_arn])
        self.ingest.grant(
            ["s3:PutObject"],
            [artifact_bucket.arn_for_objects(f"{LABELS_PREFIX}*")],
            why_wildcard="Writes label objects under labels/ only.",
        )
        registry.grant_model_reads(self.ingest)  # the production version's contract
        registry.grant_idempotency(self.ingest)
        data_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.ingest.function),
            s3.NotificationKeyFilter(prefix=FEEDBACK_PREFIX),
        )
