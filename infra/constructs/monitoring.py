"""Drift monitoring: detect_drift every hour, a PSI alarm and a model-load-failure alarm per contract,
and the encrypted alarm topic."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
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
from mlops.contract import Contract, parse_contract
from mlops.layout import BASELINES_PREFIX, CAPTURES_PREFIX

CONTRACTS_DIR = REPO_ROOT / "contracts"
DRIFT_METRIC = "DriftScore"
LOAD_FAILURE_METRIC = "ModelLoadFailures"  # emitted by functions/predict, one per failed load attempt
MONITORING_PREFIX = "monitoring/"
SCHEDULE = "rate(1 hour)"


def load_contracts(directory: Path = CONTRACTS_DIR) -> list[Contract]:
    """Every `contracts/*.json`, parsed (a broken contract fails synth)."""
    return [parse_contract(path.read_text(), source=str(path.name)) for path in sorted(directory.glob("*.json"))]


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
        contracts: list[Contract],
    ) -> None:
        super().__init__(scope, construct_id)
        self.drift = MlopsFunction(
            self,
            "DetectDrift",
            spec=FUNCTIONS["detect_drift"],
            environment={
                "REGISTRY_TABLE": registry.table.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
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

        action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for contract in contracts:
            alarm = cloudwatch.Alarm(
                self,
                f"Drift-{contract.name}",
                alarm_description=f"Input drift (PSI) of model {contract.name} crossed its contract threshold",
                metric=cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=DRIFT_METRIC,
                    dimensions_map={"service": self.drift.spec.service_name, "model": contract.name},
                    statistic=cloudwatch.Stats.MAXIMUM,
                    period=Duration.hours(1),
                ),
                threshold=contract.monitoring.psi_alarm_threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[contract.name] = alarm
            self._load_failure_alarm(contract, action)

    def _load_failure_alarm(self, contract: Contract, action: cw_actions.SnsAction) -> None:
        """predict cannot load the production version (it serves the previous one, or answers 503)."""
        alarm = cloudwatch.Alarm(
            self,
            f"ModelLoadFailures-{contract.name}",
            alarm_description=(
                f"predict cannot load the production version of model {contract.name} (bad digest, corrupt graph, "
                "S3 error); containers serve the previous version or answer 503"
            ),
            metric=cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=LOAD_FAILURE_METRIC,
                dimensions_map={"service": FUNCTIONS["predict"].service_name, "model": contract.name},
                statistic=cloudwatch.Stats.SUM,
                period=Duration.minutes(5),
            ),
            threshold=1,
            # retries back off to one per MODEL_LOAD_RETRY_MAX_SECONDS (5 min): any failure in the
            # last 15 minutes keeps the alarm raised, so a failing version does not flap OK/ALARM
            evaluation_periods=3,
            datapoints_to_alarm=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
