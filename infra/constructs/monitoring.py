"""Drift and live-quality monitoring: detect_drift and evaluate_quality every hour, the encrypted alarm topic it and the alarms notify, and
its notice settings (the topic, the API's base URL for report links). The alarms and dashboards live
in infra.constructs.alarms and infra.constructs.dashboards."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import FUNCTIONS, METRICS_NAMESPACE
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from infra.constructs.registry import Registry
from infra.layers import REPO_ROOT
from mlops.contract import Contract, contract_files, parse_contract
from mlops.layout import BASELINES_PREFIX, CAPTURES_PREFIX, LABELS_PREFIX

CONTRACTS_DIR = REPO_ROOT / "contracts"
MONITORING_PREFIX = "monitoring/"
SCHEDULE = "rate(1 hour)"


# Context key naming another contracts directory: local mode re-synthesizes with the contracts
# published to its data bucket (a deployment always uses contracts/).
CONTRACTS_DIR_CONTEXT = "mlops:contractsDir"


def contracts_directory(scope: Construct) -> Path:
    """contracts/, unless the `mlops:contractsDir` context names another directory."""
    chosen = scope.node.try_get_context(CONTRACTS_DIR_CONTEXT)
    return Path(chosen) if chosen else CONTRACTS_DIR


def load_contracts(directory: Path = CONTRACTS_DIR) -> list[Contract]:
    """Every contract of `contracts/` (JSON or YAML), parsed (a broken contract fails synth)."""
    return [parse_contract(path.read_text(), source=str(path.name)) for path in contract_files(directory)]


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        layers: LayerLibrary,
        api_url: str,
    ) -> None:
        """`api_url`: the models API's base URL (stage included, ending in '/'), for report links."""
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            enable_key_rotation=True,
            description="alarm topic encryption (CloudWatch may publish)",
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms cannot publish to a topic under the AWS managed key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(self, "AlarmTopic", master_key=self.key, enforce_ssl=True)

        self.drift = MlopsFunction(
            self,
            "DetectDrift",
            spec=FUNCTIONS["detect_drift"],
            environment={
                "REGISTRY_TABLE": registry.table.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                # the drift notice (model, version, drifted features, report link) goes to the alarm topic
                "DRIFT_NOTICE_TOPIC_ARN": self.topic.topic_arn,
                "REPORT_BASE_URL": api_url,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        self.drift.grant(["sns:Publish"], [self.topic.topic_arn])
        self.drift.grant(["kms:GenerateDataKey", "kms:Decrypt"], [self.key.key_arn])  # the topic is encrypted
        registry.grant_model_listing(self.drift)  # every model, then each production version
        registry.grant_model_reads(self.drift)
        objects = artifact_bucket.arn_for_objects
        self.drift.grant(
            ["s3:GetObject"],
            [objects(f"{BASELINES_PREFIX}*"), objects(f"{CAPTURES_PREFIX}*")],
            why_wildcard="Reads training baselines and inference captures, by prefix.",
        )
        self.drift.grant(
            ["s3:ListBucket"],
            [artifact_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CAPTURES_PREFIX}*", f"{BASELINES_PREFIX}*"]}},
        )
        self.drift.grant(
            ["s3:PutObject"],
            [objects(f"{MONITORING_PREFIX}*")],
            why_wildcard="Writes drift reports under monitoring/ only.",
        )
        self.drift.grant(
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.expression(SCHEDULE),
            description="hourly drift check",
        )
        self.schedule.add_target(targets.LambdaFunction(self.drift.function, retry_attempts=2))

        self.quality = self._quality_function(artifact_bucket, backbone, registry, layers)

    def _quality_function(
        self, artifact_bucket: s3.IBucket, backbone: EventBackbone, registry: Registry, layers: LayerLibrary
    ) -> MlopsFunction:
        """evaluate_quality: reads labels, captures and baselines; writes only its results and state
        under monitoring/<model>/quality*; its own hourly schedule, so a failure stays its own."""
        quality = MlopsFunction(
            self,
            "EvaluateQuality",
            spec=FUNCTIONS["evaluate_quality"],
            environment={
                "REGISTRY_TABLE": registry.table.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        registry.grant_model_listing(quality)
        registry.grant_model_reads(quality)
        objects = artifact_bucket.arn_for_objects
        quality.grant(
            ["s3:GetObject"],
            [objects(f"{BASELINES_PREFIX}*"), objects(f"{CAPTURES_PREFIX}*"), objects(f"{LABELS_PREFIX}*")],
            why_wildcard="Reads training baselines, inference captures and labels, by prefix.",
        )
        quality.grant(
            ["s3:GetObject", "s3:PutObject"],
            [objects(f"{MONITORING_PREFIX}*/quality/*"), objects(f"{MONITORING_PREFIX}*/quality-state.json")],
            why_wildcard="Reads and writes its own state and results under monitoring/<model>/quality only.",
        )
        quality.grant(
            ["s3:ListBucket"],
            [artifact_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CAPTURES_PREFIX}*", f"{LABELS_PREFIX}*"]}},
        )
        quality.grant(
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        )
        schedule = events.Rule(
            self,
            "QualitySchedule",
            schedule=events.Schedule.expression(SCHEDULE),
            description="hourly live-quality check (labels joined to captures)",
        )
        schedule.add_target(targets.LambdaFunction(quality.function, retry_attempts=2))
        return quality
