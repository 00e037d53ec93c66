"""POST /models/{name}/feedback (REST API, API key + usage plan, like predict): ground truth for
served predictions, `{"labels": [{"prediction_id": ..., "label": ...}]}` (`value` for a regression),
at most mlops.feedback.MAX_LABELS_PER_REQUEST a request. The rules (mlops.feedback) are judged
against the production version's contract (read through the light registry view, cached per model);
the request is refused whole (400, every problem listed) or its labels are written as label objects,
one per prediction minute, under labels/ of the artifact bucket.

Its own function, not predict's: predict's cold start and package aims stay where they are. One
route, so no Powertools resolver (as in predict); the event is read directly and errors map to
statuses through `MlopsError`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.served_versions_dynamodb import DynamoServedVersions
from mlops.errors import MlopsError, NotFoundError
from mlops.feedback import FeedbackService, LabelRulesCache, LabelsRefused
from mlops.settings import FeedbackSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = FeedbackSettings.from_env()
logger = Logger()
service = FeedbackService(
    LabelRulesCache(DynamoServedVersions(settings.registry_table), ttl_seconds=settings.contract_cache_seconds),
    S3ObjectStore(),
    settings.artifact_bucket,
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    name = (event.get("pathParameters") or {}).get("name")
    try:
        if event.get("httpMethod") != "POST" or not name:
            raise NotFoundError(f"no route for {event.get('httpMethod')} {event.get('path')}")
        answer = service.record(name, event.get("body"), is_base64=bool(event.get("isBase64Encoded")))
    except LabelsRefused as refused:
        # reasons and counts only: the ids and labels are the caller's data
        logger.info("labels refused", model=name, problems=refused.total)
        return _response(400, {"error": type(refused).__name__, "message": str(refused), **refused.details()})
    except MlopsError as error:
        if error.http_status >= 500:
            logger.error("cannot record labels", error=str(error), kind=type(error).__name__)
        return _response(error.http_status, {"error": type(error).__name__, "message": str(error)})
    except Exception:
        logger.exception("unexpected error")
        return _response(500, {"error": "InternalError", "message": "internal error; see the function logs"})
    _count(answer)
    return _response(200, answer)


def _count(answer: dict[str, Any]) -> None:
    # its own EMF document with a `model` dimension (Powertools adds `service`)
    with single_metric(
        name="LabelsAccepted",
        unit=MetricUnit.Count,
        value=answer["accepted"],
        default_dimensions={"model": answer["model"]},
    ) as metric:
        metric.add_metadata("absorbed_duplicates", answer["absorbed"]["duplicates"])
        metric.add_metadata("absorbed_conflicts", answer["absorbed"]["conflicts"])


def _response(status: int, document: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway REST proxy response."""
    return {
        "statusCode": status,
        "body": json.dumps(document, separators=(",", ":")),
        "isBase64Encoded": False,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
    }
