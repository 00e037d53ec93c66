"""Training: train_model (a container image: scikit-learn does not fit a zip) on `DatasetValidated`
and on import drops (`models/<model>/incoming/*.onnx` of the data bucket: models built elsewhere,
scored with the same split, metrics and profile code), and record_training_failure, its on-failure destination: what no code in train_model can catch (out
of memory, timeout, an event too old) still ends as `training_failed` in the dataset ledger."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import FUNCTIONS
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from infra.constructs.ledger import DatasetLedger
from infra.constructs.managed_training import ManagedTraining
from infra.constructs.nag import acknowledge_wildcard_resources
from infra.constructs.registry import Registry, connect_alarm_topic
from mlops.events import DetailType
from mlops.layout import (
    BASELINES_PREFIX,
    CAPTURES_PREFIX,
    CONTRACTS_PREFIX,
    DATASETS_PREFIX,
    IMPORT_SUFFIX,
    IMPORTS_FOLDER,
    INCOMING_FOLDER,
    LABELS_PREFIX,
    MODELS_PREFIX,
    REQUESTS_FOLDER,
)


class Training(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        ledger: DatasetLedger,
        layers: LayerLibrary,
    ) -> None:
        super().__init__(scope, construct_id)
        self.record_failure = MlopsFunction(
            self,
            "RecordTrainingFailure",
            spec=FUNCTIONS["record_training_failure"],
            environment={
                "LEDGER_TABLE": ledger.table_name,
                "EVENT_BUS_NAME": backbone.bus.event_bus_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        ledger.grant_training_outcomes(self.record_failure)
        backbone.bus.grant_put_events_to(self.record_failure.role)
        # datasets past train_model's budget: a SageMaker training job on the same image
        self.managed = ManagedTraining(
            self,
            "Managed",
            data_bucket=data_bucket,
            artifact_bucket=artifact_bucket,
            backbone=backbone,
            registry=registry,
            ledger=ledger,
            record_failure=self.record_failure,
            job_environment={
                "DATA_BUCKET": data_bucket.bucket_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "EVENT_BUS_NAME": backbone.bus.event_bus_name,
                "LEDGER_TABLE": ledger.table_name,
                "REGISTRY_TABLE": registry.table.table_name,
            },
        )
        self.train = MlopsFunction(
            self,
            "TrainModel",
            spec=FUNCTIONS["train_model"],
            environment={
                "DATA_BUCKET": data_bucket.bucket_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "EVENT_BUS_NAME": backbone.bus.event_bus_name,
                "IDEMPOTENCY_TABLE": registry.idempotency_table.table_name,
                "LEDGER_TABLE": ledger.table_name,
                "REGISTRY_TABLE": registry.table.table_name,
                "TRAINING_STATE_MACHINE_ARN": self.managed.state_machine.state_machine_arn,
            },
            layers=layers,
            # the whole destination record (request payload included): it names the dataset
            failure_destination=destinations.LambdaDestination(self.record_failure.function, response_only=False),
        )
        acknowledge_wildcard_resources(
            self.train,
            [f"{self.record_failure.function.function_arn}:*"],
            "The on-failure destination: Lambda invokes exactly record_training_failure (any of its versions).",
        )
        self.train.grant(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [
                data_bucket.arn_for_objects(f"{DATASETS_PREFIX}*"),
                data_bucket.arn_for_objects(f"{CONTRACTS_PREFIX}*"),
            ],
            why_wildcard="Reads validated dataset versions under datasets/ and contracts under contracts/ only.",
        )
        self.train.grant(
            ["s3:PutObject"],
            [
                artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{BASELINES_PREFIX}*"),
            ],
            why_wildcard="Writes content-addressed artifacts and baselines under models/ and baselines/ only.",
        )
        self.train.grant(
            ["s3:GetObject"],
            [
                artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{CAPTURES_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{LABELS_PREFIX}*"),
            ],
            why_wildcard=(
                "Reads the production artifact under models/ (verified, then scored on the candidate's holdout) "
                "and recent labelled traffic under captures/ and labels/ (both graphs scored on it)."
            ),
        )
        self.train.grant(
            ["s3:ListBucket"],
            [artifact_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CAPTURES_PREFIX}*", f"{LABELS_PREFIX}*"]}},
        )
        registry.grant_model_reads(self.train)  # the production version: the champion to score
        self.train.grant(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [data_bucket.arn_for_objects(f"{MODELS_PREFIX}*/{INCOMING_FOLDER}/*")],
            why_wildcard="Reads the exact version of a graph dropped for import, under models/<model>/incoming/ only.",
        )
        self.train.grant(
            ["s3:GetObject"],
            [data_bucket.arn_for_objects(f"{MODELS_PREFIX}*/{REQUESTS_FOLDER}/*")],
            why_wildcard="Reads the models API's record of who asked for an import's upload URL.",
        )
        self.train.grant(
            ["s3:PutObject"],
            [data_bucket.arn_for_objects(f"{MODELS_PREFIX}*/{IMPORTS_FOLDER}/*")],
            why_wildcard="Writes import reports under models/<model>/imports/ of the data bucket only.",
        )
        backbone.bus.grant_put_events_to(self.train.role)
        self.train.grant(["states:StartExecution"], [self.managed.state_machine.state_machine_arn])
        registry.grant_idempotency(self.train)
        ledger.grant_training_outcomes(self.train)
        ledger.grant_index_reads(self.train)  # an import scores on the model's last accepted dataset
        # Import drops go to the data bucket: in the artifact bucket the same filter would also match
        # every artifact training writes (models/<model>/<sha256>.onnx) and wake this image for nothing.
        data_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.train.function),
            s3.NotificationKeyFilter(prefix=MODELS_PREFIX, suffix=IMPORT_SUFFIX),
        )
        self.rule = backbone.route(
            "DatasetValidatedRule", DetailType.DATASET_VALIDATED, self.train.function, "train_model"
        )

    def connect_alarm_topic(self, topic: sns.ITopic, key: kms.IKey) -> None:
        """Training rejections and failures are announced on the alarm topic."""
        connect_alarm_topic(self.train, topic, key)
        connect_alarm_topic(self.record_failure, topic, key)
        self.managed.connect_alarm_topic(topic, key)
