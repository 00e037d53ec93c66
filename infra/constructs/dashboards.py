"""CloudWatch dashboards: one per model (drift, data quality, window rows, predictions, latency, errors,
model loads) and one for the pipeline (every function, the API, dead letters, captures, datasets and
training outcomes). Their metrics are the alarms' own (infra.constructs.alarms)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.catalog import METRICS_NAMESPACE
from infra.constructs.alarms import (
    API_5XX_RATE_PERCENT,
    DRIFT_PERIOD,
    LOAD_FAILURE_METRIC,
    OPERATIONS_PERIOD,
    PREDICT_P99_LATENCY_MS,
    WAF_BLOCKED_REQUESTS,
    ApiSignals,
    ModelAlarms,
    OperationalAlarms,
    drift_metric,
    predict_metric,
    quality_metric,
    quality_route,
    waf_blocked_metric,
)
from infra.constructs.firewall import RULE_NAMES
from infra.constructs.function_defaults import MlopsFunction
from mlops.drift import metrics as names
from mlops.quality import metrics as quality_names

# published by validate_dataset, train_model, record_training_failure and register_model per model
PIPELINE_OUTCOMES = (
    "DatasetsValidated",
    "DatasetsQuarantined",
    "DatasetsHeld",
    "ModelsTrained",
    "TrainingRejected",
    "TrainingFailures",
    "ModelsRegistered",
    "ModelsPromoted",
)
FULL, HALF, THIRD, QUARTER = 24, 12, 8, 6
HEIGHT = 6


def _outcomes(model: str | None) -> cloudwatch.MathExpression:
    """Dataset and training outcomes by SEARCH: each function names its `service` its own way."""
    metric_names = " OR ".join(f'MetricName="{name}"' for name in PIPELINE_OUTCOMES)
    where = f' model="{model}"' if model else ""
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{METRICS_NAMESPACE},model,service}}{where} ({metric_names})', 'Sum', 3600)",
        using_metrics={},
        period=Duration.hours(1),
        label="",
    )


def _line(value: float, label: str) -> cloudwatch.HorizontalAnnotation:
    return cloudwatch.HorizontalAnnotation(value=value, label=label)


class ModelDashboard(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, model: str, alarms: ModelAlarms, api: ApiSignals
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{Stack.of(self).stack_name}-model-{model}",
            default_interval=Duration.days(7),
        )
        drift = {
            name: drift_metric(model, name).with_(label=name)
            for name in (names.DRIFT_DETECTED, names.PREDICTION_DRIFT, names.DRIFTED_FEATURE_SHARE, names.DRIFT_SCORE)
        }
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# Model {model}\n"
                    f"Latest drift report and its history: {alarms.report} (IAM-signed, reader role; "
                    "`Accept: text/html` for the page). Detect drift runs hourly; a window too small to judge "
                    "publishes nothing."
                ),
                width=HALF,
                height=HEIGHT,
            ),
            cloudwatch.AlarmStatusWidget(
                title=f"Alarms of {model}",
                alarms=[alarms.health, *alarms.children, alarms.late_captures],
                width=HALF,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Drift decision (1 = drifted)",
                left=[drift[names.DRIFT_DETECTED], drift[names.PREDICTION_DRIFT]],
                left_annotations=[_line(1, "alarm")],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Drifted feature share / largest PSI",
                left=[drift[names.DRIFTED_FEATURE_SHARE]],
                right=[drift[names.DRIFT_SCORE]],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Data quality issues",
                left=[drift_metric(model, names.DATA_QUALITY_ISSUES).with_(label=names.DATA_QUALITY_ISSUES)],
                left_annotations=[_line(1, "alarm")],
                width=THIRD,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Drift window rows / late captures / failed checks",
                left=[drift_metric(model, names.DRIFT_WINDOW_ROWS, cloudwatch.Stats.SUM).with_(label="window rows")],
                right=[
                    drift_metric(model, names.CAPTURES_LATE, cloudwatch.Stats.SUM).with_(label="late captures"),
                    drift_metric(model, names.DRIFT_CHECK_FAILURES, cloudwatch.Stats.SUM).with_(label="failed checks"),
                ],
                width=QUARTER,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Predictions, every model (predict has no model dimension)",
                left=[api.predict_requests.with_(label="requests")],
                right=[api.predict_server_errors.with_(label="5xx"), api.predict_client_errors.with_(label="4xx")],
                width=QUARTER,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Predict latency (ms), every model",
                left=[api.predict_latency_p50.with_(label="p50"), api.predict_latency_p99.with_(label="p99")],
                left_annotations=[_line(PREDICT_P99_LATENCY_MS, "p99 alarm")],
                width=QUARTER,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title=f"Serving {model}: load failures, registry lookups, stale refusals",
                left=[
                    predict_metric(name, model=model).with_(label=name)
                    for name in (LOAD_FAILURE_METRIC, "RegistryLookupFailures", "StaleModelRefusals")
                ],
                width=QUARTER,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"Live quality of the production version ({quality_route(model)})",
                left=[
                    quality_metric(model, name).with_(label=name)
                    for name in (
                        quality_names.LIVE_ACCURACY,
                        quality_names.LIVE_F1,
                        quality_names.LIVE_ROC_AUC,
                        quality_names.LIVE_R2,
                    )
                ],
                right=[
                    quality_metric(model, name).with_(label=name)
                    for name in (quality_names.LIVE_LOG_LOSS, quality_names.LIVE_RMSE, quality_names.LIVE_MAE)
                ],
                width=HALF,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Labels joined / unmatched / other versions; below minimum (1)",
                left=[
                    quality_metric(model, name, cloudwatch.Stats.SUM).with_(label=name)
                    for name in (
                        quality_names.LABELS_JOINED,
                        quality_names.LABELS_UNMATCHED,
                        quality_names.LABELS_OTHER_VERSION,
                    )
                ],
                right=[
                    quality_metric(model, quality_names.QUALITY_BELOW_MINIMUM).with_(
                        label=quality_names.QUALITY_BELOW_MINIMUM
                    ),
                    quality_metric(model, quality_names.LABEL_DRIFT).with_(label=quality_names.LABEL_DRIFT),
                ],
                width=HALF,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"Datasets and training of {model} (per hour)", left=[_outcomes(model)], width=FULL, height=HEIGHT
            )
        )


class PipelineDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Sequence[MlopsFunction],
        api: ApiSignals,
        dead_letter_queues: Sequence[sqs.IQueue],
        operations: OperationalAlarms,
        models: Sequence[ModelAlarms],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{Stack.of(self).stack_name}-pipeline", default_interval=Duration.days(1)
        )
        period = OPERATIONS_PERIOD

        def per_function(metric: str, statistic: str) -> list[cloudwatch.IMetric]:
            return [
                fn.function.metric(metric, period=period, statistic=statistic, label=fn.spec.folder) for fn in functions
            ]

        composites = [operations.serving, operations.pipeline, *(m.health for m in models)]
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Notifying (composite) alarms", alarms=composites, width=HALF, height=HEIGHT
            ),
            cloudwatch.AlarmStatusWidget(
                title="Operational alarms", alarms=operations.metric_alarms, width=HALF, height=HEIGHT
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations",
                left=per_function("Invocations", cloudwatch.Stats.SUM),
                width=QUARTER,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Errors", left=per_function("Errors", cloudwatch.Stats.SUM), width=QUARTER, height=HEIGHT
            ),
            cloudwatch.GraphWidget(
                title="Throttles", left=per_function("Throttles", cloudwatch.Stats.SUM), width=QUARTER, height=HEIGHT
            ),
            cloudwatch.GraphWidget(
                title="Duration p99 (ms)",
                left=per_function("Duration", cloudwatch.Stats.p(99)),
                width=QUARTER,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[api.requests.with_(label="requests")],
                right=[api.server_errors.with_(label="5xx"), api.client_errors.with_(label="4xx")],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="API 5xx rate (%)",
                left=[api.error_rate],
                left_annotations=[_line(API_5XX_RATE_PERCENT, "alarm")],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Predict latency (ms)",
                left=[api.predict_latency_p50.with_(label="p50"), api.predict_latency_p99.with_(label="p99")],
                left_annotations=[_line(PREDICT_P99_LATENCY_MS, "p99 alarm")],
                width=THIRD,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead letters waiting",
                left=[
                    queue.metric_approximate_number_of_messages_visible(
                        period=period, statistic=cloudwatch.Stats.MAXIMUM, label=queue.node.id
                    )
                    for queue in dead_letter_queues
                ],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Captured records (predict)",
                left=[
                    predict_metric(name).with_(label=name)
                    for name in (
                        names.CAPTURE_RECORDS_WRITTEN,
                        names.CAPTURE_RECORDS_DROPPED,
                        names.CAPTURE_RECORDS_SKIPPED,
                    )
                ],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Datasets and training outcomes, every model (per hour)",
                left=[_outcomes(None)],
                width=THIRD,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Drift windows scored (rows), every model",
                left=[
                    drift_metric(m.model, names.DRIFT_WINDOW_ROWS, cloudwatch.Stats.SUM).with_(label=m.model)
                    for m in models
                ],
                period=DRIFT_PERIOD,
                width=FULL,
                height=HEIGHT,
            )
        )
        if operations.firewall_acl_name is not None:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Requests blocked by the web ACL, per rule",
                    left=[
                        waf_blocked_metric(operations.firewall_acl_name, rule).with_(label=rule) for rule in RULE_NAMES
                    ],
                    left_annotations=[_line(WAF_BLOCKED_REQUESTS, "alarm (all rules)")],
                    width=FULL,
                    height=HEIGHT,
                )
            )
