"""What every function shares: runtime, architecture, tracing, JSON logs, log retention, layers,
Powertools variables, the `mlops:source` metadata, and the check that its environment is exactly
what its settings class declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.catalog import (
    HANDLER,
    METRICS_NAMESPACE,
    PLATFORM_ENV_NAMES,
    REPO_ROOT,
    RESERVED_CONCURRENCY_CONTEXT_KEY,
    SNAPSTART_ALIAS,
    SNAPSTART_CONTEXT_KEY,
    SOURCE_METADATA_KEY,
    FunctionSpec,
    reserved_concurrency,
    settings_defaults,
    snap_start_enabled,
)
from infra.constructs.nag import acknowledge, acknowledge_wildcard_resources
from infra.layers import LAYERS

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# The context of the container image: the repo root minus what the image never needs.
IMAGE_EXCLUDES = [
    ".venv",
    "node_modules",
    "cdk.out",
    "cdk.out*",
    "layers/build",
    ".git",
    "tests",
    ".local",
    "**/__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".hypothesis",
]


class EnvironmentMismatchError(ValueError):
    """A function would receive variables its settings do not declare, or miss required ones."""


def check_environment(spec: FunctionSpec, environment: Mapping[str, str]) -> None:
    declared = set(spec.settings.env_names())
    required = declared - set(settings_defaults(spec.settings))
    if undeclared := sorted(set(environment) - declared):
        raise EnvironmentMismatchError(
            f"{spec.folder}: {', '.join(undeclared)} not declared by {spec.settings.__name__}"
        )
    if missing := sorted(required - set(environment)):
        raise EnvironmentMismatchError(f"{spec.folder}: required {', '.join(missing)} not set")


class LayerLibrary(Construct):
    """One LayerVersion per built layer in `layers/build/`, shared by every function."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self._layers: dict[str, lambda_.LayerVersion] = {}
        for name, spec in LAYERS.items():
            self._layers[name] = lambda_.LayerVersion(
                self,
                name.title().replace("-", ""),
                code=lambda_.Code.from_asset(str(spec.asset_dir)),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=spec.description,
                removal_policy=RemovalPolicy.RETAIN,
            )

    def get(self, names: Sequence[str]) -> list[lambda_.ILayerVersion]:
        return [self._layers[name] for name in names]


class MlopsFunction(Construct):
    """A Lambda function built from a `FunctionSpec` with the project's shared defaults.

    `environment` maps settings env names to values; it must match the settings class exactly
    (optional settings missing from it get their declared default). Grants go through `grant`,
    which adds exact statements and acknowledges the wildcard resources with a reason.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        layers: LayerLibrary,
        failure_queue: sqs.IQueue | None = None,
        failure_destination: lambda_.IDestination | None = None,
    ) -> None:
        """`failure_queue` or `failure_destination` (not both) receives asynchronous invocations
        Lambda gave up on, after two retries."""
        super().__init__(scope, construct_id)
        if failure_queue is not None and failure_destination is not None:
            raise ValueError(f"{spec.folder}: a failure queue or a failure destination, not both")
        on_failure = destinations.SqsDestination(failure_queue) if failure_queue else failure_destination
        self.spec = spec
        env = {**settings_defaults(spec.settings), **environment}
        check_environment(spec, env)
        env |= {
            "POWERTOOLS_SERVICE_NAME": spec.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        assert set(env) - set(spec.settings.env_names()) == set(PLATFORM_ENV_NAMES)

        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN)
        # An own role instead of the AWS managed basic-execution policy: logs only to its group.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{spec.folder} Lambda function",
        )
        self.log_group.grant_write(self.role)

        common = {
            "architecture": ARCHITECTURE,
            "memory_size": spec.memory_mb,
            "timeout": Duration.seconds(spec.timeout_seconds),
            "tracing": lambda_.Tracing.ACTIVE,
            "logging_format": lambda_.LoggingFormat.JSON,
            "log_group": self.log_group,
            "role": self.role,
            "environment": env,
            "description": f"{spec.folder} ({spec.source})",
            "reserved_concurrent_executions": reserved_concurrency(
                self.node.try_get_context(RESERVED_CONCURRENCY_CONTEXT_KEY)
            ).get(spec.folder, spec.reserved_concurrency),
            "on_failure": on_failure,
            "retry_attempts": 2 if on_failure else None,
        }
        if spec.snap_start and spec.container_image:
            raise ValueError(f"{spec.folder}: SnapStart does not support container images")
        if spec.container_image:
            self.function: lambda_.Function = lambda_.DockerImageFunction(
                self,
                "Function",
                code=lambda_.DockerImageCode.from_image_asset(
                    str(REPO_ROOT), file=spec.dockerfile, exclude=IMAGE_EXCLUDES
                ),
                **common,
            )
        else:
            self.function = lambda_.Function(
                self,
                "Function",
                runtime=RUNTIME,
                handler=HANDLER,
                code=lambda_.Code.from_asset(str(spec.code_dir), exclude=["**/__pycache__", "*.pyc"]),
                layers=layers.get(spec.layers),
                snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
                if spec.snap_start and snap_start_enabled(self.node.try_get_context(SNAPSTART_CONTEXT_KEY))
                else None,
                **common,
            )
        # What callers invoke: with SnapStart, the alias on the published version (the unqualified
        # function is $LATEST, which is never snapshotted); otherwise the function itself.
        self.invoke_target: lambda_.IFunction = self.function
        if spec.snap_start:
            self.alias = lambda_.Alias(self, "Live", alias_name=SNAPSTART_ALIAS, version=self.function.current_version)
            self.invoke_target = self.alias
            # the warning asks for a published version: current_version publishes one, the alias serves it
            Annotations.of(self.function).acknowledge_warning(
                "@aws-cdk/aws-lambda:snapStartRequirePublish", "current_version is published; the live alias invokes it"
            )
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.add_metadata(SOURCE_METADATA_KEY, spec.source)

        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) and CloudWatch PutMetricData "
            "(conditioned on the MLOps namespace) support no resource-level permissions.",
        )
        acknowledge(
            self,
            "AwsSolutions-L1",
            "Pinned to Python 3.12: the layers are built and import-tested for the 3.12 runtime.",
        )

    def grant(
        self,
        actions: Sequence[str],
        resources: Sequence[str],
        *,
        why_wildcard: str = "",
        conditions: Mapping[str, object] | None = None,
    ) -> None:
        """Allow exact `actions` on `resources`; `why_wildcard` justifies any `*` in a resource."""
        if any("*" in action for action in actions):
            raise ValueError(f"wildcard actions are not allowed: {actions}")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(actions), resources=list(resources), conditions=dict(conditions or {}))
        )
        if why_wildcard:
            acknowledge_wildcard_resources(self, list(resources), why_wildcard)

    @property
    def function_name(self) -> str:
        return self.function.function_name
