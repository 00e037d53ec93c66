"""MetricsSink on CloudWatch through Powertools' embedded metric format (one EMF line per metric).

Each metric is written with `single_metric`, so its dimensions are exactly the ones given plus the
`service` dimension Powertools adds (POWERTOOLS_SERVICE_NAME): an alarm must use that same set.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mlops.adapters.aws import client

NAMESPACE = "MLOps"


class PowertoolsMetricsSink:
    def __init__(self, namespace: str = NAMESPACE) -> None:
        self.namespace = namespace

    def add(self, name: str, value: float, unit: str, dimensions: dict[str, str] | None = None) -> None:
        with single_metric(name=name, unit=MetricUnit(unit), value=value, namespace=self.namespace) as metric:
            for dimension, dimension_value in (dimensions or {}).items():
                metric.add_dimension(name=dimension, value=dimension_value)


class CloudWatchMetricsSink:
    """MetricsSink through PutMetricData, for code outside Lambda (the managed engine's job): CloudWatch
    reads EMF lines from Lambda's logs, not from a training job's."""

    def __init__(self, namespace: str = NAMESPACE, service: str | None = None) -> None:
        self.namespace = namespace
        self.service = service  # the `service` dimension Powertools adds in Lambda

    def add(self, name: str, value: float, unit: str, dimensions: dict[str, str] | None = None) -> None:
        every = {**({"service": self.service} if self.service else {}), **(dimensions or {})}
        client("cloudwatch").put_metric_data(
            Namespace=self.namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Value": value,
                    "Unit": unit,
                    "Dimensions": [{"Name": key, "Value": text} for key, text in every.items()],
                }
            ],
        )
