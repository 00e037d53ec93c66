"""Alarms an operator trusts: one message per incident.

Metric alarms watch one signal each and take no action of their own; each feeds exactly one
composite alarm, and only composites notify the alarm topic (on ALARM and on OK):

- per model `<stack>-model-<name>-health`: drift, data quality, live quality, model loads, drift-check
  and quality-check failures;
- `<stack>-serving-health`: predict and models_api errors/throttles, API 5xx rate, predict p99
  latency, capture drops, requests blocked by the API's web ACL (when the WAF is on);
- `<stack>-pipeline-health`: the other functions' errors/throttles, dead-letter depth, late captures.

A composite stays in ALARM while any child is, so a second child joining an open incident sends
nothing more; the notification (CloudWatch's `TriggeringChildren`) names the child that opened it.

The metrics are built here once; the dashboards read them from these constructs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.catalog import FUNCTIONS, METRICS_NAMESPACE
from infra.constructs.function_defaults import MlopsFunction
from mlops.contract import Contract
from mlops.drift import metrics as names
from mlops.quality import metrics as quality_names

DRIFT_PERIOD = Duration.hours(1)  # detect_drift runs hourly: one scored window per model per period
OPERATIONS_PERIOD = Duration.minutes(5)
# every five minutes: retries back off to one per MODEL_LOAD_RETRY_MAX_SECONDS (5 min), so any failure
# in the last 15 minutes keeps the alarm raised and a failing version does not flap OK/ALARM
LOAD_FAILURE_PERIODS = 3
LOAD_FAILURE_METRIC = "ModelLoadFailures"  # functions/predict, one per failed load attempt

API_5XX_RATE_PERCENT = 5.0
API_5XX_MIN_REQUESTS = 10  # below this a single error is a 100 % rate: Lambda's Errors alarm covers it
API_5XX_RATE_EXPRESSION = f"IF(requests >= {API_5XX_MIN_REQUESTS}, 100 * errors / requests, 0)"
PREDICT_P99_LATENCY_MS = 1000
# async pipeline functions are retried by Lambda for hours when throttled (train_model's reserved
# concurrency of 2 queues an upload storm on purpose): only throttling for 30 minutes is an incident
PIPELINE_THROTTLE_PERIODS = 6
# Scanners and the IP-reputation list block a trickle all day; this many blocked in a five-minute
# period, twice in fifteen minutes, is a flood or an attack in progress that someone should look at.
WAF_BLOCKED_REQUESTS = 500
WAF_BLOCKED_PERIODS = 3
WAF_BLOCKED_DATAPOINTS = 2
LATE_CAPTURE_PERIODS = 2  # one late object after a slow flush is normal; two hours running is a too-short settle time


def waf_blocked_metric(web_acl_name: str, rule: str = "ALL") -> cloudwatch.Metric:
    """Requests the web ACL blocked: all rules together (`Rule=ALL`) or one rule (its metric name)."""
    return cloudwatch.Metric(
        namespace="AWS/WAFV2",
        metric_name="BlockedRequests",
        dimensions_map={"WebACL": web_acl_name, "Region": Aws.REGION, "Rule": rule},
        statistic=cloudwatch.Stats.SUM,
        period=OPERATIONS_PERIOD,
    )


def report_route(model: str) -> str:
    return f"GET /models/{model}/drift"


def drift_metric(model: str, metric_name: str, statistic: str = cloudwatch.Stats.MAXIMUM) -> cloudwatch.Metric:
    """A metric detect_drift publishes per model (Powertools adds `service`; CloudWatch matches the exact set)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": FUNCTIONS["detect_drift"].service_name, "model": model},
        statistic=statistic,
        period=DRIFT_PERIOD,
    )


def predict_metric(
    metric_name: str, *, model: str | None = None, statistic: str = cloudwatch.Stats.SUM
) -> cloudwatch.Metric:
    """A metric predict publishes: degraded serving per model, capture counts on `service` alone."""
    dimensions = {"service": FUNCTIONS["predict"].service_name} | ({"model": model} if model else {})
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=OPERATIONS_PERIOD,
    )


@dataclass(frozen=True)
class ApiSignals:
    """The API's metrics: the stage for request counts and errors, the predict method for its latency."""

    requests: cloudwatch.Metric
    server_errors: cloudwatch.Metric
    client_errors: cloudwatch.Metric
    error_rate: cloudwatch.MathExpression
    predict_requests: cloudwatch.Metric
    predict_server_errors: cloudwatch.Metric
    predict_client_errors: cloudwatch.Metric
    predict_latency_p50: cloudwatch.Metric
    predict_latency_p99: cloudwatch.Metric

    @classmethod
    def of(cls, api: apigw.RestApi, predict: apigw.Method) -> ApiSignals:
        stage = api.deployment_stage
        period = OPERATIONS_PERIOD
        requests = stage.metric_count(period=period, statistic=cloudwatch.Stats.SUM)
        server_errors = stage.metric_server_error(period=period, statistic=cloudwatch.Stats.SUM)
        return cls(
            requests=requests,
            server_errors=server_errors,
            client_errors=stage.metric_client_error(period=period, statistic=cloudwatch.Stats.SUM),
            error_rate=cloudwatch.MathExpression(
                expression=API_5XX_RATE_EXPRESSION,
                using_metrics={"errors": server_errors, "requests": requests},
                period=period,
                label="5xx % of requests",
            ),
            predict_requests=predict.metric_count(stage, period=period, statistic=cloudwatch.Stats.SUM),
            predict_server_errors=predict.metric_server_error(stage, period=period, statistic=cloudwatch.Stats.SUM),
            predict_client_errors=predict.metric_client_error(stage, period=period, statistic=cloudwatch.Stats.SUM),
            predict_latency_p50=predict.metric_latency(stage, period=period, statistic=cloudwatch.Stats.p(50)),
            predict_latency_p99=predict.metric_latency(stage, period=period, statistic=cloudwatch.Stats.p(99)),
        )


def quality_route(model: str) -> str:
    return f"GET /models/{model}/quality"


def quality_metric(model: str, metric_name: str, statistic: str = cloudwatch.Stats.MAXIMUM) -> cloudwatch.Metric:
    """A metric evaluate_quality publishes per model (same dimension rule as `drift_metric`)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": FUNCTIONS["evaluate_quality"].service_name, "model": model},
        statistic=statistic,
        period=DRIFT_PERIOD,
    )


def _notify(alarm: cloudwatch.CompositeAlarm, topic: sns.ITopic) -> None:
    action = cw_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)


def model_alarm_prefix(stack: Stack) -> str:
    """Every model alarm's name starts with this; `<model>-<signal>` follows (retrain_model reads it)."""
    return f"{stack.stack_name}-model-"


def retraining_alarm_names(stack: Stack, model: str) -> list[str]:
    """The alarms whose ALARM is evidence the model should retrain: drift and live quality."""
    return [f"{model_alarm_prefix(stack)}{model}-{signal}" for signal in ("drift", "quality")]


class ModelAlarms(Construct):
    """One model's alarms: six signals and the composite that notifies for them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        contract: Contract,
        topic: sns.ITopic,
        api_url: str,
        canary: Sequence[cloudwatch.Alarm] = (),
    ) -> None:
        """`canary`: the model's canary alarms (infra.constructs.canary): they roll the canary back by
        themselves and feed this composite, so someone hears of it."""
        super().__init__(scope, construct_id)
        model = self.model = contract.name
        prefix = f"{model_alarm_prefix(Stack.of(self))}{model}"
        report = f"{report_route(model)} on the models API ({api_url}models/{model}/drift)"
        self.report = report

        def alarm(kind: str, suffix: str, description: str, **props: object) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                kind,
                alarm_name=f"{prefix}-{suffix}",
                alarm_description=f"Model {model}: {description}",
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                **props,  # type: ignore[arg-type]
            )

        # DriftDetected and DataQualityIssues are published for every scored window (0 when clean). A
        # window too small to judge publishes nothing: missing data keeps the state, so only a window
        # that scored clean clears the alarm, and no quiet hour flips it to OK.
        self.drift = alarm(
            "Drift",
            "drift",
            f"a feature or the prediction drifted in the latest scored window. Report: {report}.",
            metric=drift_metric(model, names.DRIFT_DETECTED),
            threshold=1,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self.data_quality = alarm(
            "DataQuality",
            "data-quality",
            "data-quality problems in the latest scored window (missing-value spike, values outside the "
            f"observed range, rejected requests). Report: {report}.",
            metric=drift_metric(model, names.DATA_QUALITY_ISSUES),
            threshold=1,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self.load_failures = alarm(
            "ModelLoads",
            "model-loads",
            "predict cannot load the production version (bad digest, corrupt graph, S3 error); containers "
            "serve the previous version or answer 503. See predict's logs ('model loaded' / load failures).",
            metric=predict_metric(LOAD_FAILURE_METRIC, model=model),
            threshold=1,
            evaluation_periods=LOAD_FAILURE_PERIODS,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.check_failures = alarm(
            "DriftChecks",
            "drift-checks",
            "detect_drift could not check this model in one of the last two hourly runs, so drift and data "
            "quality are not being judged. See detect_drift's logs.",
            metric=drift_metric(model, names.DRIFT_CHECK_FAILURES, cloudwatch.Stats.SUM),
            threshold=1,
            evaluation_periods=2,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # a monitoring-pipeline signal, not the model's health: it feeds the pipeline composite
        self.late_captures = alarm(
            "LateCaptures",
            "late-captures",
            f"capture objects landed after their drift window closed in {LATE_CAPTURE_PERIODS} hourly runs in "
            "a row: DRIFT_SETTLE_SECONDS is shorter than predict's capture flush delay.",
            metric=drift_metric(model, names.CAPTURES_LATE, cloudwatch.Stats.SUM),
            threshold=1,
            evaluation_periods=LATE_CAPTURE_PERIODS,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # QualityBelowMinimum is published only for a window with enough labels (like DriftDetected):
        # a quiet day keeps the state, only a judged window clears it
        live = contract.monitoring.live_quality
        minimum = f"{contract.metric.threshold}" if contract.metric.threshold is not None else "none"
        self.quality = alarm(
            "Quality",
            "quality",
            f"live {contract.metric.name} (labels joined to served predictions, last {live.window_hours:g} h, "
            f"at least {live.min_labels} labels) is below the contract minimum ({minimum}) or more than "
            f"{live.margin:g} below the version's holdout score. Result: {quality_route(model)}.",
            metric=quality_metric(model, quality_names.QUALITY_BELOW_MINIMUM),
            threshold=1,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self.quality_check_failures = alarm(
            "QualityChecks",
            "quality-checks",
            "evaluate_quality could not evaluate this model in one of the last two hourly runs, so live "
            "quality is not being judged. See evaluate_quality's logs.",
            metric=quality_metric(model, quality_names.QUALITY_CHECK_FAILURES, cloudwatch.Stats.SUM),
            threshold=1,
            evaluation_periods=2,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.children = (
            self.drift,
            self.data_quality,
            self.quality,
            self.load_failures,
            self.check_failures,
            self.quality_check_failures,
            *canary,
        )
        self.health = cloudwatch.CompositeAlarm(
            self,
            "Health",
            composite_alarm_name=f"{prefix}-health",
            alarm_rule=cloudwatch.AlarmRule.any_of(*self.children),
            alarm_description=(
                f"Model {model} needs attention: ALARM while any of its alarms is in ALARM (drift, data quality, "
                "live quality, model loads, drift and quality checks, a canary rolled back by its alarm), one "
                "notification per incident; OK when all are clear. "
                f"TriggeringChildren names the alarm that opened it. Report: {report}."
            ),
        )
        _notify(self.health, topic)


class OperationalAlarms(Construct):
    """Functions, the API, dead letters and captures; two composites notify (serving, pipeline)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        serving: Sequence[MlopsFunction],
        pipeline: Sequence[MlopsFunction],
        api: ApiSignals,
        dead_letter_queues: Sequence[sqs.IQueue],
        late_captures: Sequence[cloudwatch.Alarm],
        firewall_acl_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = Stack.of(self).stack_name
        self.function_alarms: dict[str, tuple[cloudwatch.Alarm, cloudwatch.Alarm]] = {}
        serving_children: list[cloudwatch.Alarm] = []
        pipeline_children: list[cloudwatch.Alarm] = []
        for fn in serving:
            serving_children += self._function_alarms(fn, throttle_periods=1)
        for fn in pipeline:
            pipeline_children += self._function_alarms(fn, throttle_periods=PIPELINE_THROTTLE_PERIODS)

        self.api_errors = cloudwatch.Alarm(
            self,
            "Api5xxRate",
            alarm_name=f"{self.prefix}-api-5xx-rate",
            alarm_description=(
                f"More than {API_5XX_RATE_PERCENT:g} % of API requests answered 5xx in 2 of the last 3 five-minute "
                f"periods (periods with fewer than {API_5XX_MIN_REQUESTS} requests count as 0 %). See the API's "
                "access logs and predict/models_api logs."
            ),
            metric=api.error_rate,
            threshold=API_5XX_RATE_PERCENT,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # API Gateway's Latency, not Lambda's Duration: it is what a caller waits for, cold starts
        # (Duration leaves out the init phase), request validation and the integration included.
        self.predict_latency = cloudwatch.Alarm(
            self,
            "PredictLatencyP99",
            alarm_name=f"{self.prefix}-predict-latency-p99",
            alarm_description=(
                f"p99 latency of POST /models/{{name}}/predict above {PREDICT_P99_LATENCY_MS} ms for 15 minutes "
                "(three five-minute periods in a row; a lone cold start does not raise it). See predict's "
                "'model loaded' logs and Duration on the pipeline dashboard."
            ),
            metric=api.predict_latency_p99,
            threshold=PREDICT_P99_LATENCY_MS,
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.capture_drops = cloudwatch.Alarm(
            self,
            "CaptureDrops",
            alarm_name=f"{self.prefix}-capture-drops",
            alarm_description=(
                "predict dropped captured records (the S3 write of a capture batch failed): drift windows miss "
                "that traffic. predict publishes CaptureRecordsDropped without a model dimension; its logs name "
                "the model ('capture flush failed')."
            ),
            metric=predict_metric(names.CAPTURE_RECORDS_DROPPED),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        serving_children += [self.api_errors, self.predict_latency, self.capture_drops]
        self.firewall_acl_name = firewall_acl_name
        self.waf_blocked: cloudwatch.Alarm | None = None
        if firewall_acl_name is not None:
            self.waf_blocked = cloudwatch.Alarm(
                self,
                "WafBlockedRequests",
                alarm_name=f"{self.prefix}-waf-blocked-requests",
                alarm_description=(
                    f"The API's web ACL blocked at least {WAF_BLOCKED_REQUESTS} requests in {WAF_BLOCKED_DATAPOINTS} "
                    f"of the last {WAF_BLOCKED_PERIODS} five-minute periods: a flood or an attack is being refused. "
                    "The per-rule BlockedRequests metrics (Rule=RateLimitPerIp, AwsCommonRules, ...) and the "
                    "web ACL's sampled requests name the rule and the sources."
                ),
                metric=waf_blocked_metric(firewall_acl_name),
                threshold=WAF_BLOCKED_REQUESTS,
                evaluation_periods=WAF_BLOCKED_PERIODS,
                datapoints_to_alarm=WAF_BLOCKED_DATAPOINTS,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            serving_children.append(self.waf_blocked)

        self.dead_letter_alarms = []
        for index, queue in enumerate(dead_letter_queues):
            depth = cloudwatch.Alarm(
                self,
                f"DeadLetters{index}",
                alarm_name=f"{self.prefix}-dead-letters-{index}",
                alarm_description=(
                    "Events or asynchronous invocations were given up on and wait in a dead-letter queue "
                    f"({queue.node.path}). Read them, fix the cause, then redrive or delete them."
                ),
                metric=queue.metric_approximate_number_of_messages_visible(
                    period=OPERATIONS_PERIOD, statistic=cloudwatch.Stats.MAXIMUM
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # an empty queue with no activity publishes nothing for hours: that is "no dead letters"
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            self.dead_letter_alarms.append(depth)
        pipeline_children += [*self.dead_letter_alarms, *late_captures]

        self.serving = cloudwatch.CompositeAlarm(
            self,
            "ServingHealth",
            composite_alarm_name=f"{self.prefix}-serving-health",
            alarm_rule=cloudwatch.AlarmRule.any_of(*serving_children),
            alarm_description=(
                "Serving needs attention: ALARM while any serving alarm is (predict/models_api errors or "
                "throttles, API 5xx rate, predict p99 latency, capture drops, WAF blocks), one notification per incident. "
                "TriggeringChildren names the alarm that opened it."
            ),
        )
        self.pipeline = cloudwatch.CompositeAlarm(
            self,
            "PipelineHealth",
            composite_alarm_name=f"{self.prefix}-pipeline-health",
            alarm_rule=cloudwatch.AlarmRule.any_of(*pipeline_children),
            alarm_description=(
                "The dataset -> training -> registry -> drift pipeline needs attention: ALARM while any of its "
                "alarms is (function errors or throttles, dead letters, late captures), one notification per "
                "incident. TriggeringChildren names the alarm that opened it."
            ),
        )
        _notify(self.serving, topic)
        _notify(self.pipeline, topic)
        self.metric_alarms = [*serving_children, *pipeline_children]

    def _function_alarms(self, fn: MlopsFunction, *, throttle_periods: int) -> list[cloudwatch.Alarm]:
        folder = fn.spec.folder
        name = fn.spec.service_name
        errors = cloudwatch.Alarm(
            self,
            f"Errors-{folder}",
            alarm_name=f"{self.prefix}-{name}-errors",
            alarm_description=(
                f"{folder} failed (an unhandled error, a timeout or out of memory) in the last five minutes. "
                f"See its log group and the dead-letter queue."
            ),
            metric=fn.function.metric_errors(period=OPERATIONS_PERIOD, statistic=cloudwatch.Stats.SUM),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        minutes = throttle_periods * int(OPERATIONS_PERIOD.to_minutes())
        throttles = cloudwatch.Alarm(
            self,
            f"Throttles-{folder}",
            alarm_name=f"{self.prefix}-{name}-throttles",
            alarm_description=(
                f"{folder} was throttled in every five-minute period of the last {minutes} minutes "
                "(account concurrency or its reserved concurrency is exhausted)."
            ),
            metric=fn.function.metric_throttles(period=OPERATIONS_PERIOD, statistic=cloudwatch.Stats.SUM),
            threshold=1,
            evaluation_periods=throttle_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.function_alarms[folder] = (errors, throttles)
        return [errors, throttles]
