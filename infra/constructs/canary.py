"""Challengers (issue 13). Canaries that end by themselves: per model, three canary alarms on the metrics predict
publishes per variant while a canary runs (errors, latency, output shift against the champion); an
alarm entering ALARM (CloudWatch puts state changes on the default bus) -> control_canary rolls the
canary back; a schedule -> control_canary promotes a canary that baked without alarms. The alarms
take no action of their own: they feed the model's health composite (infra.constructs.alarms), which
notifies, and the audit trail records what the canary did. Shadows: `ShadowScoring` below."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import FUNCTIONS, METRICS_NAMESPACE
from infra.constructs.alarms import model_alarm_prefix
from infra.constructs.events import EventBackbone
from infra.constructs.function_defaults import LayerLibrary, MlopsFunction
from infra.constructs.registry import Registry, connect_alarm_topic
from mlops.contract import Contract
from mlops.inference.variants import (
    VARIANT_DIMENSION,
    VARIANT_ERRORS,
    VARIANT_LATENCY_MS,
    VARIANT_OUTPUT_MEAN,
    VARIANT_REQUESTS,
)
from mlops.layout import CAPTURES_PREFIX, MODELS_PREFIX, MONITORING_PREFIX
from mlops.registry.canary_control import ALARM_STATE_CHANGE, canary_alarm_names, canary_alarm_patterns
from mlops.shadow import SHADOW_STATE_NAME

CANARY_PERIOD = Duration.minutes(1)
BAKE_CHECK_SCHEDULE = "rate(5 minutes)"
# below this many canary answers in a minute a single error or outlier decides nothing
CANARY_MIN_REQUESTS = 10
CANARY_ERROR_RATE_PERCENT = 5.0
CANARY_EXTRA_LATENCY_MS = 50.0  # the canary's mean answer time over the champion's
# classification: the share of answers in the positive class moved this much; regression: the mean
# prediction moved this share of the champion's
CANARY_OUTPUT_SHIFT = 0.2


def variant_metric(model: str, metric_name: str, variant: str, statistic: str) -> cloudwatch.Metric:
    """A metric predict publishes per variant (mlops.inference.variants): `service`, `model`, `variant`."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": FUNCTIONS["predict"].service_name, "model": model, VARIANT_DIMENSION: variant},
        statistic=statistic,
        period=CANARY_PERIOD,
    )


class CanaryAlarms(Construct):
    """One model's canary alarms, named `canary_alarm_names(prefix, model)` (errors, latency, output)."""

    def __init__(self, scope: Construct, construct_id: str, *, contract: Contract) -> None:
        super().__init__(scope, construct_id)
        model = contract.name
        names = dict(
            zip(
                ("errors", "latency", "output"),
                canary_alarm_names(model_alarm_prefix(Stack.of(self)), model),
                strict=True,
            )
        )
        sum_, average = cloudwatch.Stats.SUM, cloudwatch.Stats.AVERAGE
        canary_requests = variant_metric(model, VARIANT_REQUESTS, "canary", sum_)
        champion_requests = variant_metric(model, VARIANT_REQUESTS, "champion", sum_)
        enough = f"canary_requests >= {CANARY_MIN_REQUESTS}"

        def alarm(kind: str, signal: str, description: str, expression: str, threshold: float, **metrics: object):
            return cloudwatch.Alarm(
                self,
                kind,
                alarm_name=names[signal],
                alarm_description=f"Model {model}: {description} control_canary rolls the canary back when it fires.",
                metric=cloudwatch.MathExpression(
                    expression=expression, using_metrics=metrics, period=CANARY_PERIOD, label=f"canary {signal}"
                ),
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,  # no canary: nothing published
            )

        self.errors = alarm(
            "CanaryErrors",
            "errors",
            f"at least {CANARY_ERROR_RATE_PERCENT:g} % of the canary's answers failed in a minute.",
            f"IF({enough}, 100 * canary_errors / canary_requests, 0)",
            CANARY_ERROR_RATE_PERCENT,
            canary_requests=canary_requests,
            canary_errors=variant_metric(model, VARIANT_ERRORS, "canary", sum_),
        )
        self.latency = alarm(
            "CanaryLatency",
            "latency",
            f"the canary answered {CANARY_EXTRA_LATENCY_MS:g} ms slower than the champion on average in a minute.",
            f"IF({enough}, canary_latency - champion_latency, 0)",
            CANARY_EXTRA_LATENCY_MS,
            canary_requests=canary_requests,
            canary_latency=variant_metric(model, VARIANT_LATENCY_MS, "canary", average),
            champion_latency=variant_metric(model, VARIANT_LATENCY_MS, "champion", average),
        )
        shift = "ABS(canary_output - champion_output)"
        if contract.problem_type.value != "classification":
            shift = f"IF(ABS(champion_output) > 0, {shift} / ABS(champion_output), {shift})"
        self.output = alarm(
            "CanaryOutput",
            "output",
            "the canary's answers moved away from the champion's on the same traffic in a minute "
            + (
                f"(the share answered with the positive class differs by {CANARY_OUTPUT_SHIFT:g} or more)."
                if contract.problem_type.value == "classification"
                else f"(the mean prediction differs by {CANARY_OUTPUT_SHIFT:.0%} of the champion's or more)."
            ),
            f"IF({enough} AND champion_requests >= {CANARY_MIN_REQUESTS}, {shift}, 0)",
            CANARY_OUTPUT_SHIFT,
            canary_requests=canary_requests,
            champion_requests=champion_requests,
            canary_output=variant_metric(model, VARIANT_OUTPUT_MEAN, "canary", average),
            champion_output=variant_metric(model, VARIANT_OUTPUT_MEAN, "champion", average),
        )
        self.alarms = (self.errors, self.latency, self.output)


class CanaryControl(Construct):
    def alarms_of(self, model: str) -> tuple[cloudwatch.Alarm, ...]:
        found = self.alarms.get(model)
        return found.alarms if found is not None else ()

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        contracts: list[Contract],
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        layers: LayerLibrary,
        topic: sns.ITopic,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        prefix = model_alarm_prefix(stack)
        self.alarms = {
            contract.name: CanaryAlarms(self, f"Alarms-{contract.name}", contract=contract) for contract in contracts
        }
        self.function = fn = MlopsFunction(
            self,
            "ControlCanary",
            spec=FUNCTIONS["control_canary"],
            environment={
                "REGISTRY_TABLE": registry.table.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
                "EVENT_BUS_NAME": backbone.bus.event_bus_name,
                "ALARM_NAME_PREFIX": prefix,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        registry.grant_registry_read(fn)  # the models and their canaries
        registry.grant_registry_write(fn)  # canary ends and promotions, chained audit events
        backbone.bus.grant_put_events_to(fn.role)  # ModelPromoted
        connect_alarm_topic(fn, topic, key)  # production changes reach the topic's subscribers
        fn.grant(
            ["s3:GetObject"],
            [artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*")],
            why_wildcard="The promotion gate reads the canary's artifact back under models/ only.",
        )
        fn.grant(
            ["cloudwatch:DescribeAlarms"],
            [f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{prefix}*"],
            why_wildcard="Reads the state of the model alarms (the canary ones) before promoting a canary.",
        )

        def target() -> targets.LambdaFunction:
            return targets.LambdaFunction(
                fn.function, dead_letter_queue=backbone.dead_letters, retry_attempts=4, max_event_age=Duration.hours(1)
            )

        self.alarm_rule = events.Rule(
            self,
            "AlarmRule",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                detail={"alarmName": canary_alarm_patterns(prefix), "state": {"value": ["ALARM"]}},
            ),
            description="a model's canary alarm entered ALARM -> control_canary rolls the canary back",
        )
        self.alarm_rule.add_target(target())
        self.bake_schedule = events.Rule(
            self,
            "BakeSchedule",
            schedule=events.Schedule.expression(BAKE_CHECK_SCHEDULE),
            description="control_canary promotes canaries that baked without alarms",
        )
        self.bake_schedule.add_target(target())


SHADOW_SCHEDULE = "rate(5 minutes)"


class ShadowScoring(Construct):
    """score_shadow on a schedule: production's captures scored by each model's shadow version, off
    the response path; the agreement lands in monitoring/<model>/shadow-state.json (mlops.shadow)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifact_bucket: s3.IBucket,
        backbone: EventBackbone,
        registry: Registry,
        layers: LayerLibrary,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = fn = MlopsFunction(
            self,
            "ScoreShadow",
            spec=FUNCTIONS["score_shadow"],
            environment={
                "REGISTRY_TABLE": registry.table.table_name,
                "ARTIFACT_BUCKET": artifact_bucket.bucket_name,
            },
            layers=layers,
            failure_queue=backbone.dead_letters,
        )
        registry.grant_model_reads(fn)  # a model's shadow and production versions, the shadow's artifact
        registry.grant_model_listing(fn)
        fn.grant(
            ["s3:GetObject"],
            [
                artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                artifact_bucket.arn_for_objects(f"{CAPTURES_PREFIX}*"),
            ],
            why_wildcard="Reads model artifacts under models/ and production's captures under captures/ only.",
        )
        fn.grant(
            ["s3:ListBucket"],
            [artifact_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CAPTURES_PREFIX}*"]}},
        )
        fn.grant(
            ["s3:GetObject", "s3:PutObject"],
            [artifact_bucket.arn_for_objects(f"{MONITORING_PREFIX}*/{SHADOW_STATE_NAME}")],
            why_wildcard="Reads and writes only each model's shadow statistics, monitoring/<model>/shadow-state.json.",
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.expression(SHADOW_SCHEDULE),
            description="score_shadow scores production's new captures with each model's shadow",
        )
        self.schedule.add_target(
            targets.LambdaFunction(
                fn.function, dead_letter_queue=backbone.dead_letters, retry_attempts=2, max_event_age=Duration.hours(1)
            )
        )
