"""The managed engine: datasets past train_model's budget train in a SageMaker training job running
train_model's own image (`python3 /var/task/job.py`), started and watched by a Step Functions state
machine (`createTrainingJob.sync`); any failure (the job fails, runs past its stopping condition,
its image does not start) goes to record_training_failure, as train_model's own failures do.

Why SageMaker rather than AWS Batch on Fargate (issue 11): it needs no VPC (Batch on Fargate runs
in subnets this stack does not have), bills per second with no minimum, stops a job at its
MaxRuntimeInSeconds by itself and is an optimized `.sync` integration; a Lambda base image runs
there with ContainerEntrypoint. The cost: minutes of instance start, irrelevant past 15 minutes.
"""

from __future__ import annotations

from collections.abc import Callable

import jsii
from aws_cdk import Aws, Duration, IStableStringProducer, Lazy, RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.catalog import FUNCTIONS, REPO_ROOT
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import IMAGE_EXCLUDES, LOG_RETENTION, MlopsFunction
from infra.constructs.ledger import DatasetLedger
from infra.constructs.nag import acknowledge, acknowledge_wildcard_resources
from infra.constructs.registry import MODEL_PARTITIONS, Registry, leading_keys
from mlops.adapters.cloudwatch import NAMESPACE
from mlops.layout import (
    BASELINES_PREFIX,
    CAPTURES_PREFIX,
    CONTRACTS_PREFIX,
    DATASETS_PREFIX,
    LABELS_PREFIX,
    MODELS_PREFIX,
)
from mlops.training.capacity import MANAGED_ENGINE_INSTANCE_TYPE

ENTRYPOINT = ["python3", "/var/task/job.py"]
JOB_NAME_PREFIX = "train-"  # mlops.training.engine.job_name
MAX_RUNTIME = Duration.hours(8)
VOLUME_GB = 50  # the dataset object is read from S3 into memory; the volume holds only SageMaker's own files
OUTPUT_PREFIX = "managed-training/"  # SageMaker requires an output path; the job writes nothing to /opt/ml/model
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"  # the managed rule `.sync` relies on


class ManagedTraining(Construct):
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
        record_failure: MlopsFunction,
        job_environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self._record_failure_arn = record_failure.function.function_arn
        # train_model's image asset: same context, Dockerfile and excludes, so the same hash and one build
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(REPO_ROOT),
            file=FUNCTIONS["train_model"].dockerfile,
            exclude=IMAGE_EXCLUDES,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="The managed-training job: train_model's reads and writes, nothing else",
        )
        self._grant_job(data_bucket, artifact_bucket, backbone, registry, ledger)

        self._alarm_topic_arn = ""  # connect_alarm_topic sets it; the job's environment reads it at synth
        environment = {
            **job_environment,
            "ENGINE_INSTANCE_TYPE": MANAGED_ENGINE_INSTANCE_TYPE,
            "ALARM_TOPIC_ARN": Lazy.string(_Produce(lambda: self._alarm_topic_arn)),
        }
        train = sfn.CustomState(
            self,
            "Train",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTrainingJob.sync",
                "Parameters": {
                    "TrainingJobName.$": "$.job.name",
                    "RoleArn": self.job_role.role_arn,
                    "AlgorithmSpecification": {
                        "TrainingImage": self.image.image_uri,
                        "TrainingInputMode": "File",
                        # the Lambda base image's own entrypoint would take SageMaker's `train` for a handler
                        "ContainerEntrypoint": ENTRYPOINT,
                    },
                    "ResourceConfig": {
                        "InstanceType": MANAGED_ENGINE_INSTANCE_TYPE,
                        "InstanceCount": 1,
                        "VolumeSizeInGB": VOLUME_GB,
                    },
                    "StoppingCondition": {"MaxRuntimeInSeconds": int(MAX_RUNTIME.to_seconds())},
                    "OutputDataConfig": {"S3OutputPath": artifact_bucket.s3_url_for_object(OUTPUT_PREFIX)},
                    "Environment": {
                        **environment,
                        "MODEL_NAME.$": "$.job.model_name",
                        "DATASET_ID.$": "$.job.dataset_id",
                    },
                },
                "ResultPath": "$.training",
                "ResultSelector": {
                    "status.$": "$.TrainingJobStatus",
                    "seconds.$": "$.TrainingTimeInSeconds",
                },
            },
        )
        # the destination record record_training_failure reads for train_model's own failures
        record = tasks.LambdaInvoke(
            self,
            "RecordFailure",
            lambda_function=record_failure.function,
            payload=sfn.TaskInput.from_object(
                {
                    "requestContext": {"condition": "ManagedTrainingFailed"},
                    "requestPayload": {"detail": sfn.JsonPath.object_at("$.detail")},
                    "responsePayload": {
                        "errorType": sfn.JsonPath.string_at("$.error.Error"),
                        "errorMessage": sfn.JsonPath.string_at("$.error.Cause"),
                    },
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
            retry_on_service_exceptions=True,
        )
        train.add_catch(record, errors=["States.ALL"], result_path="$.error")
        record.next(
            sfn.Fail(self, "TrainingFailed", error="ManagedTrainingFailed", cause="recorded as training_failed")
        )
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(train.next(sfn.Succeed(self, "Trained"))),
            timeout=MAX_RUNTIME.plus(Duration.hours(1)),  # the job's own stopping condition ends it first
            tracing_enabled=True,
            # execution data names datasets; the events say enough
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        self._grant_state_machine()

    def connect_alarm_topic(self, topic: sns.ITopic, key: kms.IKey) -> None:
        """The job announces rejections and failures on the alarm topic, as train_model does."""
        self._alarm_topic_arn = topic.topic_arn
        self._allow(["sns:Publish"], [topic.topic_arn])
        self._allow(["kms:GenerateDataKey", "kms:Decrypt"], [key.key_arn])

    def _grant_job(
        self,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        ledger: DatasetLedger,
    ) -> None:
        """What train_model's training does, nothing of its imports: the same prefixes and tables."""
        self._allow(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [data_bucket.arn_for_objects(f"{DATASETS_PREFIX}*"), data_bucket.arn_for_objects(f"{CONTRACTS_PREFIX}*")],
            why="Reads validated dataset versions under datasets/ and contracts under contracts/ only.",
        )
        self._allow(
            ["s3:PutObject"],
            [
                artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{BASELINES_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{OUTPUT_PREFIX}*"),
            ],
            why=(
                "Writes content-addressed artifacts and baselines under models/ and baselines/, and SageMaker's "
                "required output under managed-training/ only."
            ),
        )
        self._allow(
            ["s3:GetObject"],
            [
                artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{CAPTURES_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{LABELS_PREFIX}*"),
            ],
            why="The production artifact (the champion scored on the candidate's holdout) and recent labelled traffic.",
        )
        self._allow(
            ["s3:ListBucket"],
            [artifact_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CAPTURES_PREFIX}*", f"{LABELS_PREFIX}*"]}},
        )
        self._allow(["dynamodb:GetItem"], [registry.table.table_arn], conditions=leading_keys(MODEL_PARTITIONS))
        self._allow(["dynamodb:GetItem", "dynamodb:PutItem"], [ledger.table.table_arn])
        backbone.bus.grant_put_events_to(self.job_role)
        self._allow(
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
            why="PutMetricData has no resource; the condition holds it to the MLOps namespace.",
        )
        self._allow(
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/TrainingJobs:*"],
            why="SageMaker writes the job's output to its own log group, one stream per job.",
        )
        self.image.repository.grant_pull(self.job_role)
        acknowledge(
            self.job_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource (grant_pull); PutMetricData is held to the MLOps namespace.",
        )

    def _grant_state_machine(self) -> None:
        """Start, watch and stop exactly its jobs, pass exactly the job role, and the `.sync` rule."""
        jobs = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:training-job/{JOB_NAME_PREFIX}*"
        machine = self.state_machine
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
                resources=[jobs],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{SYNC_RULE}"],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        acknowledge_wildcard_resources(
            machine, [jobs], "Training jobs are named per dataset version at run time, all under train-*."
        )
        acknowledge_wildcard_resources(
            machine,
            [f"{self._record_failure_arn}:*"],
            "The failure path invokes exactly record_training_failure (any of its versions).",
        )
        acknowledge(
            machine,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing: PutTraceSegments and PutTelemetryRecords have no resource.",
        )

    def _allow(
        self,
        actions: list[str],
        resources: list[str],
        *,
        why: str = "",
        conditions: dict[str, object] | None = None,
    ) -> None:
        self.job_role.add_to_principal_policy(
            iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions)
        )
        if why:
            acknowledge_wildcard_resources(self.job_role, resources, why)


@jsii.implements(IStableStringProducer)
class _Produce:
    def __init__(self, produce: Callable[[], str]) -> None:
        self._produce = produce

    def produce(self) -> str:
        return self._produce()
