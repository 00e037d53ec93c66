"""REST `/models...` (IAM auth): list models, their versions and audit trail, roll production back.

Routes delegate to mlops.registry.service; every MlopsError maps to its `http_status` in one
handler, with the body `{"error": <class>, "message": ...}`. `GET /openapi.json` serves the
OpenAPI document Powertools generates from these routes.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.contract import MODEL_NAME_PATTERN, is_valid_model_name
from mlops.errors import MlopsError
from mlops.ports import EventPublisher
from mlops.registry.ports import ModelRegistry
from mlops.registry.records import AuditEvent
from mlops.registry.service import (
    ModelSummary,
    RollbackRequest,
    VersionSummary,
    audit_trail,
    model_summaries,
    rollback_model,
    summarize_model,
    version_summaries,
)
from mlops.settings import ModelsApiSettings

SERVICE = "models_api"
API_TITLE = "MLOps models API"
API_VERSION = "1.0.0"
ModelName = Annotated[str, Path(description=f"a model name, {MODEL_NAME_PATTERN}")]

settings = ModelsApiSettings.from_env()
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


def build_app(registry: ModelRegistry, publisher: EventPublisher) -> APIGatewayRestResolver:
    """The resolver with every route, wired to `registry` and `publisher` (fakes in unit tests)."""
    app = APIGatewayRestResolver(enable_validation=True)

    @app.get("/models", summary="Registered models with their latest and production versions")
    def list_models() -> list[ModelSummary]:
        return model_summaries(registry)

    @app.get("/models/<name>/versions", summary="A model's versions: metrics, status, lineage, artifact digest")
    def list_versions(name: ModelName) -> list[VersionSummary]:
        return version_summaries(registry, name)

    @app.get("/models/<name>/audit", summary="A model's audit trail, oldest first")
    def audit(name: ModelName) -> list[AuditEvent]:
        return audit_trail(registry, name)

    @app.post("/models/<name>/rollback", summary="Return production to the previous (or a named) production version")
    def rollback(name: ModelName, request: Annotated[RollbackRequest | None, Body()] = None) -> ModelSummary:
        request = request or RollbackRequest()
        context = app.current_event.request_context
        identity = context.identity
        actor = identity.user_arn or identity.caller or "unknown"
        record = rollback_model(
            name,
            registry=registry,
            publisher=publisher,
            actor=actor,
            reason=request.reason,
            to_version=request.to_version,
            request_id=context.request_id or "",
        )
        logger.info("rolled back", model=name, version=record.production_version, actor=actor)
        with single_metric(
            name="ModelsRolledBack", unit=MetricUnit.Count, value=1, default_dimensions={"service": SERVICE}
        ) as metric:
            metric.add_dimension("model", name)
        return summarize_model(record)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi():  # no return annotation: a Response is not a schema
        document = app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION)
        return Response(200, content_types.APPLICATION_JSON, document)

    @app.exception_handler(MlopsError)
    def mlops_error(error: MlopsError) -> Response:
        if error.http_status >= 500:
            logger.exception("registry error")
        return _error(error.http_status, type(error).__name__, str(error))

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()]
        return _error(422, "RequestValidationError", "the request does not match the API schema", details=details)

    @app.not_found
    def no_route(_: RouteNotFoundError) -> Response:
        event = app.current_event
        segments = event.path.strip("/").split("/")
        if len(segments) >= 2 and segments[0] == "models" and not is_valid_model_name(unquote(segments[1])):
            return _error(400, "BadRequestError", f"{unquote(segments[1])!r} is not a valid model name")
        return _error(404, "NotFound", f"no route for {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def unexpected(_: Exception) -> Response:
        logger.exception("unexpected error")
        return _error(500, "InternalError", "internal error; see the function logs")

    return app


def _error(status: int, kind: str, message: str, **extra: Any) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"error": kind, "message": message, **extra})


app = build_app(DynamoRegistry(settings.registry_table), EventBridgePublisher(settings.event_bus_name))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
