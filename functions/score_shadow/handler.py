"""score_shadow (schedule): for every model with a shadow version, score the production model's
new capture objects with the shadow (verified and loaded like predict's models) and store the
agreement statistics the compare answer shows (mlops.shadow.score_shadows: one model failing is counted in
ShadowFailures and the others are still scored). Off the response path: predict never
reads the shadow."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.cloudwatch import PowertoolsMetricsSink
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.inference.model import load_model
from mlops.settings import ShadowSettings
from mlops.shadow import score_shadows

settings = ShadowSettings.from_env()
logger = Logger()
tracer = Tracer()
registry = DynamoRegistry(settings.registry_table)
store = S3ObjectStore()
metrics = PowertoolsMetricsSink()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = score_shadows(
        registry.list_models(),
        store=store,
        bucket=settings.artifact_bucket,
        load=lambda name, version: load_model(registry.get_version(name, version), store),
        metrics=metrics,
        max_objects=settings.max_objects_per_run,
    )
    scored = []
    for name, agreement in run.scored:
        logger.info(
            "shadow scored",
            model=name,
            production_version=agreement.production_version,
            shadow_version=agreement.shadow_version,
            rows=agreement.rows,
            **agreement.summary,
        )
        scored.append(
            {
                k: v
                for k, v in asdict(agreement).items()
                if k in ("production_version", "shadow_version", "rows", "summary")
            }
            | {"model": name}
        )
    return {"scored": scored, "failed": run.failed}
