"""REST `/models...` (IAM auth): read the registry (models, versions, compare with the PSI
between the versions' training data, audit, alias history, served-at) and change it (approve,
reject, promote, rollback, archive, aliases); list a model's datasets by ledger state and review
held ones (approve: train on it; reject: quarantine); sign upload URLs for models built elsewhere
(`POST /models/{name}/imports`, mlops.imports.requests: the graph goes to S3, never through the API).

Every route first checks the caller's role (mlops.registry.access; IAM policies are the first
line). Mutating routes accept an `Idempotency-Key` header: a retry with the same key returns the
first outcome (header `Idempotent-Replayed: true`) and changes nothing. Routes delegate to
mlops.registry.service; every MlopsError maps to its `http_status` in one handler, with the body
`{"error": <class>, "message": ...}`. `GET /openapi.json` serves the generated OpenAPI document.
`/clients` issues, lists and revokes prediction clients' API keys (mlops.client_keys: in the clients'
usage plan, audited, the value shown once and never logged; a retried issue with the same
`Idempotency-Key` answers the first key's id and fingerprint, never its value again).
Dataset reviews delegate to mlops.validation.review (light: no numpy/pyarrow in this function).
Drift runs (`/models/{name}/drift...`) are read from the artifact bucket's monitoring/ prefix by
mlops.drift.history; a run's report page is rendered from its stored result (mlops.drift.report).
Live-quality runs (`/models/{name}/quality`) likewise, by mlops.quality.history (the same paging).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from mlops import feedback_openapi
from mlops.adapters.apigateway_keys import ApiGatewayClientKeys
from mlops.adapters.client_key_audit_dynamodb import DynamoIssueAttempts, DynamoKeyAudit
from mlops.adapters.dataset_ledger_dynamodb import DynamoDatasetLedger
from mlops.adapters.drift_results_s3 import S3DriftResults
from mlops.adapters.events import EventBridgePublisher
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.sns import SnsNotifier
from mlops.adapters.validation_notifier import SnsSummaryNotifier
from mlops.client_keys import (
    KEY_ID_PATTERN,
    ClientKeyGateway,
    ClientKeySummary,
    IssueAttempts,
    IssuedClientKey,
    IssueKeyRequest,
    KeyAudit,
    RevokeKeyRequest,
    client_keys,
    issue_client_key,
    revoke_client_key,
)
from mlops.contract import MODEL_NAME_PATTERN, is_valid_model_name, parse_contract, predict_request_schema
from mlops.drift.history import (
    DEFAULT_PAGE,
    MAX_PAGE,
    DriftHistory,
    DriftResults,
    drift_history,
    drift_page,
    drift_result,
)
from mlops.drift.report import HEADER_CONTENT_SECURITY_POLICY
from mlops.drift.result import DriftResult
from mlops.errors import BadRequestError, ForbiddenError, MlopsError, NotFoundError, ServiceUnavailableError
from mlops.imports.requests import ImportRequest, ImportUpload, UploadUrls, request_import
from mlops.inference.prediction_ids import PREDICTION_ID_PATTERN
from mlops.layout import DRIFT_REPORT_ID_PATTERN, is_drift_report_id, quality_result_key, quality_results_prefix
from mlops.ports import EventPublisher, ObjectStore
from mlops.quality.history import QualityHistory, quality_at, quality_history
from mlops.registry.access import AccessPolicy, Action, parse_patterns
from mlops.registry.ports import ModelRegistry, NoNotifier, Notifier
from mlops.registry.records import AliasMove, AuditEvent, Change
from mlops.registry.service import (
    ALIAS_PATTERN,
    AliasRequest,
    AuditVerification,
    CanaryRequest,
    CanaryStopRequest,
    ChangeRequest,
    Lifecycle,
    ModelSummary,
    RollbackRequest,
    ShadowRequest,
    VersionComparison,
    VersionSummary,
    alias_history,
    audit_trail,
    compare_versions,
    model_summaries,
    parse_version,
    served_at,
    summarize_model,
    summarize_version,
    verify_audit_trail,
    version_summaries,
    version_summary,
)
from mlops.request_limits import predict_limits_description
from mlops.retraining.requests import RetrainAccepted, RetrainRequest, request_retraining
from mlops.settings import ModelsApiSettings, PredictSettings
from mlops.validation.decisions import DATASET_ID_PATTERN, is_valid_dataset_id
from mlops.validation.ledger import DatasetLedger, DatasetState, LedgerEntry
from mlops.validation.ledger import Notifier as DatasetNotifier
from mlops.validation.review import ReviewDecision, ReviewRequest, datasets_in_state, review_held_dataset

SERVICE = "models_api"
# the paging of stored runs (drift, live quality): newest first, `next` is the last report id seen
RunsPerPage = Annotated[int, Query(ge=1, le=MAX_PAGE, description="runs per page")]
RunsAfter = Annotated[
    str | None,
    Query(
        alias="next",
        description="the `next` value of the previous page (a report id)",
        json_schema_extra={"pattern": DRIFT_REPORT_ID_PATTERN},
    ),
]
API_TITLE = "MLOps models API"
# 1.2: compare reports training_data_drift; 1.3: audit/verify; 1.4: drift; 1.5: quality;
# 1.6: compare reports same_data (both versions on the same rows) and schema_compatibility; 1.7: imports;
# 1.8: /clients (prediction clients' API keys); 1.9: POST /clients honours Idempotency-Key (replayed: value null);
# 1.10: canary and shadow routes, predict pins ?version= or ?alias=
API_VERSION = "1.10.0"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_IDEMPOTENCY_KEY = 255
PREDICT_PATH = "/models/{name}/predict"  # served by the predict function; documented here
# Path constraints are documented (json_schema_extra) and enforced by the domain, which answers 400
# naming the problem; a Powertools `pattern=` would answer 422 instead.
ModelName = Annotated[
    str, Path(description=f"a model name, {MODEL_NAME_PATTERN}", json_schema_extra={"pattern": MODEL_NAME_PATTERN})
]
VersionNumber = Annotated[
    str,
    Path(
        description="a version number, a positive integer",
        json_schema_extra={"pattern": "^0*[1-9][0-9]*$", "maxLength": 10},
    ),
]
KeyId = Annotated[str, Path(description="an API key id, as issued", json_schema_extra={"pattern": KEY_ID_PATTERN})]
AliasName = Annotated[str, Path(description=f"an alias, {ALIAS_PATTERN}", json_schema_extra={"pattern": ALIAS_PATTERN})]
SettableAlias = Annotated[
    str,
    Path(
        description=f"an alias, {ALIAS_PATTERN}; not `production` (reserved: promote and rollback move it)",
        json_schema_extra={"pattern": ALIAS_PATTERN, "not": {"const": "production"}},
    ),
]
ReportId = Annotated[
    str,
    Path(
        description="a drift report id from the model's drift history: the run's UTC time, YYYYMMDDTHHMMSSffffffZ",
        json_schema_extra={"pattern": DRIFT_REPORT_ID_PATTERN},
    ),
]
DatasetId = Annotated[
    str,
    Path(
        description=f"a dataset id from the ledger, {DATASET_ID_PATTERN}",
        json_schema_extra={"pattern": DATASET_ID_PATTERN},
    ),
]


class ReportFormat(StrEnum):
    JSON = "json"
    HTML = "html"


# The report page: its own CSP (no script, nothing fetched), never sniffed, framed or cached.
HTML_HEADERS = {
    "Content-Security-Policy": HEADER_CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "Vary": "Accept",
}
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


class ErrorBody(BaseModel):
    """Every error answer. This function sends `error` and `message` (and `details` for a 422);
    API Gateway's own answers (403 without a signature, 413, 429) carry `message` only."""

    error: str | None = Field(default=None, description="the error's class, e.g. ConflictError")
    message: str
    details: list[dict[str, Any]] | None = Field(default=None, description="each schema problem (422)")


_STATUS_MEANINGS = {
    400: "A path value or body field breaks a rule the message names (model name, version, alias, dataset id, "
    "drift report id or `next` token)",
    403: "No valid SigV4 signature, a role that does not allow the action, or an API key on an IAM route",
    404: "No such model, version, alias move, dataset or drift report (or no route)",
    409: "The transition is not allowed from the current state, or a concurrent change won",
    413: "The body is larger than API Gateway's 10 MB payload limit",
    422: "The request does not match this document (details), or an Idempotency-Key was reused for another request",
    429: "Throttled (stage or usage plan limits)",
    503: "An artifact's bytes do not match the digest the registry recorded",
}
_EVERY_ROUTE = (400, 403, 404, 413, 422, 429)
CHANGE = (409,)  # statuses a state change adds
VERIFIES_ARTIFACT = (409, 503)  # promote and rollback read the artifact back before serving it


def responses(ok: Any = None, *extra: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: 200 (`ok`'s schema; the return annotation's when None) and every
    error status it can answer, each with ErrorBody."""
    documented: dict[int, OpenAPIResponse] = {200: {"description": "OK"}}
    if ok is not None:
        documented[200]["content"] = {"application/json": {"model": ok}}
    for status in sorted({*_EVERY_ROUTE, *extra}):
        documented[status] = {
            "description": _STATUS_MEANINGS[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return documented


def created(ok: Any, *extra: int) -> dict[int, OpenAPIResponse]:
    """The responses of a route that creates something: 201 with `ok`'s schema instead of 200."""
    documented = responses(ok, *extra)
    documented[201] = {**documented.pop(200), "description": "Created"}
    return documented


def accepted(ok: Any, *extra: int) -> dict[int, OpenAPIResponse]:
    """The responses of a route that queues work: 202 with `ok`'s schema instead of 200."""
    documented = responses(ok, *extra)
    documented[202] = {**documented.pop(200), "description": "Accepted"}
    return documented


settings = ModelsApiSettings.from_env()
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


def access_policy(config: ModelsApiSettings) -> AccessPolicy:
    return AccessPolicy(
        admins=parse_patterns(config.admin_principals),
        approvers=parse_patterns(config.approver_principals),
        readers=parse_patterns(config.reader_principals),
    )


def build_app(
    registry: ModelRegistry,
    publisher: EventPublisher,
    *,
    store: ObjectStore,
    access: AccessPolicy,
    ledger: DatasetLedger,
    drift_results: DriftResults,
    notifier: Notifier | None = None,
    dataset_notifier: DatasetNotifier | None = None,
    quality_results: DriftResults | None = None,
    upload_urls: UploadUrls | None = None,
    data_bucket: str = "",
    client_key_gateway: ClientKeyGateway | None = None,
    key_audit: KeyAudit | None = None,
    issue_attempts: IssueAttempts | None = None,
) -> APIGatewayRestResolver:
    """The resolver with every route, wired to its ports (fakes in unit tests). `notifier` hears
    about production changes, `dataset_notifier` about rejected datasets (both: the alarm topic);
    `drift_results` holds the drift function's stored results, `quality_results` evaluate_quality's
    (none given: no runs); `upload_urls` signs import uploads into `data_bucket`; `client_key_gateway`
    and `key_audit` issue and revoke prediction clients' API keys (none given: /clients answers 503),
    `issue_attempts` makes an issue with an Idempotency-Key answer a retry with the first key."""
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=_json_body)
    lifecycle = Lifecycle(registry, publisher, store, notifier or NoNotifier())

    def caller(action: Action) -> str:
        """The caller's principal ARN, once its role allows `action`; raises ForbiddenError."""
        identity = app.current_event.request_context.identity
        if identity.api_key:
            raise ForbiddenError("API keys authorise predictions only, never the models API")
        principal = identity.user_arn
        access.require(principal, action)
        return principal or ""

    def who(action: Action, reason: str) -> dict[str, Any]:
        key = app.current_event.headers.get(IDEMPOTENCY_HEADER) or ""
        if not key:  # header names are case-insensitive; the event keeps the client's spelling
            key = next((v for k, v in app.current_event.headers.items() if k.lower() == "idempotency-key"), "")
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise BadRequestError(f"{IDEMPOTENCY_HEADER} is longer than {MAX_IDEMPOTENCY_KEY} characters")
        return {
            "actor": caller(action),
            "reason": reason,
            "request_id": app.current_event.request_context.request_id or "",
            "idempotency_key": key,
        }

    def changed(change: Change, body: Any) -> Response:
        name = change.model.name
        if change.replayed:
            logger.info("replayed", model=name, action=change.action)
        else:
            logger.info(change.action, model=name, version=change.version.version)
            _count(f"Models{change.action.title().replace('_', '')}", name)
        headers = {REPLAYED_HEADER: "true"} if change.replayed else None
        return Response(200, content_types.APPLICATION_JSON, body.model_dump_json(), headers=headers)

    # ---- reads ----

    @app.get("/models", summary="Registered models with their latest and production versions", responses=responses())
    def list_models() -> list[ModelSummary]:
        caller(Action.READ)
        return model_summaries(registry)

    @app.get("/models/<name>", summary="One model: latest and production version, aliases", responses=responses())
    def get_model(name: ModelName) -> ModelSummary:
        caller(Action.READ)
        return summarize_model(registry.get_model(name))

    @app.get(
        "/models/<name>/versions",
        summary="A model's versions: metrics, status, lineage, artifact digest",
        responses=responses(),
    )
    def list_versions(name: ModelName) -> list[VersionSummary]:
        caller(Action.READ)
        return version_summaries(registry, name)

    @app.get(
        "/models/<name>/versions/<version>",
        summary="One version: metrics, status, lineage, params",
        responses=responses(),
    )
    def get_version(name: ModelName, version: VersionNumber) -> VersionSummary:
        caller(Action.READ)
        return version_summary(registry, name, parse_version(version))

    @app.get(
        "/models/<name>/compare",
        summary=(
            "Two versions side by side: metrics, both on the same data (when recorded at training), "
            "whether b accepts every request a accepts, params, lineage, PSI of b's training data against a's"
        ),
        responses=responses(None, 503),
    )
    def compare(
        name: ModelName,
        a: Annotated[int, Query(ge=1, description="a version")],
        b: Annotated[int, Query(ge=1, description="another version")],
    ) -> VersionComparison:
        caller(Action.READ)
        return compare_versions(registry, name, a, b, store=store)

    @app.get("/models/<name>/audit", summary="A model's audit trail, oldest first", responses=responses())
    def audit(name: ModelName) -> list[AuditEvent]:
        caller(Action.READ)
        return audit_trail(registry, name)

    @app.get(
        "/models/<name>/audit/verify",
        summary="Recompute the audit hash chain: ok, or the first bad seq and why (overwritten, deleted, forged)",
        responses=responses(),
    )
    def verify_audit(name: ModelName) -> AuditVerification:
        caller(Action.READ)
        return verify_audit_trail(registry, name)

    @app.get(
        "/models/<name>/aliases/<alias>/history", summary="Every move of an alias, oldest first", responses=responses()
    )
    def history(name: ModelName, alias: AliasName) -> list[AliasMove]:
        caller(Action.READ)
        return alias_history(registry, name, alias)

    @app.get(
        "/models/<name>/served",
        summary="Which version an alias (default production) pointed at, at a time",
        responses=responses(),
    )
    def served(
        name: ModelName,
        at: Annotated[datetime, Query(description="ISO 8601 time with a zone")],
        alias: Annotated[str, Query(pattern=ALIAS_PATTERN)] = "production",
    ) -> AliasMove:
        caller(Action.READ)
        if at.tzinfo is None:
            raise BadRequestError("`at` needs a time zone (e.g. 2026-01-01T12:00:00Z)")
        move = served_at(registry, name, at, alias)
        if move is None or move.to_version is None:
            raise _NothingServed(f"{name}: alias {alias} pointed at no version at {at.isoformat()}")
        return move

    # ---- drift ----

    @app.get(
        "/models/<name>/drift",
        summary="Drift runs: the latest result in full and a page of summaries, newest first (`next` pages on); "
        "no runs yet: an empty history",
        responses=responses(),
    )
    def drift(
        name: ModelName,
        limit: RunsPerPage = DEFAULT_PAGE,
        after: RunsAfter = None,
    ) -> DriftHistory:
        caller(Action.READ)
        return drift_history(registry, drift_results, name, limit=limit, after=after)

    @app.get(
        "/models/<name>/drift/<report_id>",
        summary="One drift run: its result (JSON), or its report page with `Accept: text/html` or `?format=html`",
        responses=_drift_report_responses(),
    )
    def drift_report(
        name: ModelName,
        report_id: ReportId,
        report_format: Annotated[
            ReportFormat | None,
            Query(alias="format", description="json or html; without it the Accept header decides (JSON by default)"),
        ] = None,
    ):  # no return annotation: a Response (JSON or HTML) is not one schema
        caller(Action.READ)
        if wants_html(report_format, _header(app.current_event.headers, "accept")):
            page = drift_page(
                registry,
                drift_results,
                name,
                report_id,
                live_quality=lambda at: quality_at(quality_results or _NoRuns(), name, at),
            )
            return Response(200, HTML_CONTENT_TYPE, page, headers=dict(HTML_HEADERS))
        result = drift_result(registry, drift_results, name, report_id)
        return Response(200, content_types.APPLICATION_JSON, result.model_dump_json(), headers={"Vary": "Accept"})

    @app.get(
        "/models/<name>/quality",
        summary="Live-quality runs (labels joined to served predictions): the latest result in full and a page of "
        "summaries, newest first (`next` pages on); no runs yet: an empty history",
        responses=responses(),
    )
    def quality(
        name: ModelName,
        limit: RunsPerPage = DEFAULT_PAGE,
        after: RunsAfter = None,
    ) -> QualityHistory:
        caller(Action.READ)
        return quality_history(registry, quality_results or _NoRuns(), name, limit=limit, after=after)

    # ---- changes ----

    @app.post(
        "/models/<name>/versions/<version>/approve",
        summary="candidate -> approved",
        responses=responses(VersionSummary, *CHANGE),
    )
    def approve(name: ModelName, version: VersionNumber, request: Annotated[ChangeRequest | None, Body()] = None):
        request = request or ChangeRequest()
        change = lifecycle.approve(name, parse_version(version), **who(Action.APPROVE, request.reason))
        return changed(change, summarize_version(change.version))

    @app.post(
        "/models/<name>/versions/<version>/reject",
        summary="candidate/approved -> rejected (final)",
        responses=responses(VersionSummary, *CHANGE),
    )
    def reject(name: ModelName, version: VersionNumber, request: Annotated[ChangeRequest | None, Body()] = None):
        request = request or ChangeRequest()
        change = lifecycle.reject(name, parse_version(version), **who(Action.REJECT, request.reason))
        return changed(change, summarize_version(change.version))

    @app.post(
        "/models/<name>/versions/<version>/archive",
        summary="candidate/approved -> archived",
        responses=responses(VersionSummary, *CHANGE),
    )
    def archive(name: ModelName, version: VersionNumber, request: Annotated[ChangeRequest | None, Body()] = None):
        request = request or ChangeRequest()
        change = lifecycle.archive(name, parse_version(version), **who(Action.ARCHIVE, request.reason))
        return changed(change, summarize_version(change.version))

    @app.post(
        "/models/<name>/versions/<version>/promote",
        summary="An approved version becomes production",
        responses=responses(ModelSummary, *VERIFIES_ARTIFACT),
    )
    def promote(name: ModelName, version: VersionNumber, request: Annotated[ChangeRequest | None, Body()] = None):
        request = request or ChangeRequest()
        change = lifecycle.promote(name, parse_version(version), **who(Action.PROMOTE, request.reason))
        return changed(change, summarize_model(change.model))

    @app.post(
        "/models/<name>/rollback",
        summary="Return production to the previous (or a named) production version",
        responses=responses(ModelSummary, *VERIFIES_ARTIFACT),
    )
    def rollback(name: ModelName, request: Annotated[RollbackRequest | None, Body()] = None):
        request = request or RollbackRequest()
        change = lifecycle.rollback(name, to_version=request.to_version, **who(Action.ROLLBACK, request.reason))
        return changed(change, summarize_model(change.model))

    @app.put(
        "/models/<name>/aliases/<alias>",
        summary="Point a named alias (not production) at a version",
        responses=responses(ModelSummary, *CHANGE),
    )
    def set_alias(name: ModelName, alias: SettableAlias, request: Annotated[AliasRequest, Body()]):
        change = lifecycle.set_alias(name, alias, request.version, **who(Action.SET_ALIAS, request.reason))
        return changed(change, summarize_model(change.model))

    @app.post(
        "/models/<name>/canary",
        summary="An approved version answers a share of the production requests, promoted after its bake "
        "period without alarms; its alarms roll it back by themselves",
        responses=responses(ModelSummary, *CHANGE),
    )
    def start_canary(name: ModelName, request: Annotated[CanaryRequest, Body()]):
        change = lifecycle.start_canary(
            name,
            request.version,
            share=request.share,
            bake_minutes=request.bake_minutes,
            **who(Action.CANARY, request.reason),
        )
        return changed(change, summarize_model(change.model))

    @app.delete(
        "/models/<name>/canary",
        summary="Stop the canary: production answers every request again",
        responses=responses(ModelSummary, *CHANGE),
    )
    def stop_canary(name: ModelName, request: Annotated[CanaryStopRequest | None, Body()] = None):
        request = request or CanaryStopRequest()
        change = lifecycle.stop_canary(name, **who(Action.CANARY, request.reason))
        return changed(change, summarize_model(change.model))

    @app.put(
        "/models/<name>/shadow",
        summary="A version scores the production model's captured requests off the response path; compare "
        "shows their agreement",
        responses=responses(ModelSummary, *CHANGE),
    )
    def set_shadow(name: ModelName, request: Annotated[ShadowRequest, Body()]):
        model = lifecycle.set_shadow(name, request.version, **who(Action.SHADOW, request.reason))
        logger.info("shadow_set", model=name, version=request.version)
        return summarize_model(model)

    @app.delete("/models/<name>/shadow", summary="Stop the shadow", responses=responses(ModelSummary, *CHANGE))
    def clear_shadow(name: ModelName, request: Annotated[CanaryStopRequest | None, Body()] = None):
        request = request or CanaryStopRequest()
        model = lifecycle.set_shadow(name, None, **who(Action.SHADOW, request.reason))
        logger.info("shadow_cleared", model=name)
        return summarize_model(model)

    # ---- datasets (the validation ledger) ----

    @app.get(
        "/models/<name>/datasets",
        summary="A model's datasets in one ledger state, newest decision first",
        responses=responses(),
    )
    def list_datasets(
        name: ModelName,
        state: Annotated[
            DatasetState, Query(description="held (default), accepted or quarantined")
        ] = DatasetState.HELD,
    ) -> list[LedgerEntry]:
        caller(Action.READ)
        return datasets_in_state(ledger, name, state)

    @app.post(
        "/models/<name>/datasets/<dataset_id>/review",
        summary="A held dataset: approve (DatasetValidated, training starts) or reject (moved to quarantine/)",
        responses=responses(None, *CHANGE),
    )
    def review_dataset(
        name: ModelName, dataset_id: DatasetId, request: Annotated[ReviewRequest, Body()]
    ) -> LedgerEntry:
        actor = caller(Action.REVIEW_DATASET)
        request_id = app.current_event.request_context.request_id or ""

        def audit(decision: ReviewDecision, decided: LedgerEntry) -> None:
            registry.record_dataset_review(
                name,
                dataset_id,
                decision.value,
                decided.state.value,
                actor=actor,
                reason=request.reason,
                request_id=request_id,
            )

        entry = review_held_dataset(
            ledger,
            store,
            publisher,
            name,
            dataset_id,
            request.decision,
            actor=actor,
            reason=request.reason,
            notifier=dataset_notifier,
            audit=audit,
        )
        logger.info("dataset reviewed", model=name, dataset_id=dataset_id, state=entry.state.value)
        return entry

    @app.post(
        "/models/<name>/imports",
        summary="Import a model built elsewhere: a presigned PUT URL for its ONNX file; on arrival it is "
        "checked against the contract, scored on the suite's holdout and registered like a trained one",
        responses=responses(),
    )
    def import_model(name: ModelName, request: Annotated[ImportRequest, Body()]) -> ImportUpload:
        importer = caller(Action.IMPORT_MODEL)
        if upload_urls is None or not data_bucket:
            raise RuntimeError("build_app was not given upload_urls and data_bucket")
        upload = request_import(
            name,
            request,
            importer=importer,
            store=store,
            urls=upload_urls,
            data_bucket=data_bucket,
            request_id=app.current_event.request_context.request_id or "",
        )
        logger.info("import requested", model=name, key=upload.key)
        return upload

    @app.post(
        "/models/<name>/retrain",
        summary="Ask for a retraining (reason required, audited): the last accepted dataset plus labelled "
        "traffic goes through the dataset gate, training and the promotion policy; an approver's request "
        "skips the new-label minimum, only an admin's may override the cooldown",
        responses=accepted(RetrainAccepted, *CHANGE),
    )
    def retrain(name: ModelName, request: Annotated[RetrainRequest, Body()]):  # a Response is not a schema
        context = who(Action.RETRAIN, request.reason)
        accepted = request_retraining(
            registry,
            publisher,
            name,
            request,
            actor=context["actor"],
            may_override_cooldown=access.allows(context["actor"], Action.OVERRIDE_COOLDOWN),
            request_id=context["request_id"],
            idempotency_key=context["idempotency_key"],
        )
        logger.info("retraining requested", model=name, override_cooldown=request.override_cooldown)
        _count("ModelsRetrainRequested", name)
        return Response(202, content_types.APPLICATION_JSON, accepted.model_dump_json())

    # ---- prediction clients' API keys ----

    def key_ports() -> tuple[ClientKeyGateway, KeyAudit]:
        if client_key_gateway is None or key_audit is None:
            raise ServiceUnavailableError("client API keys are not configured (no clients' usage plan)")
        return client_key_gateway, key_audit

    @app.post(
        "/clients",
        summary="Issue an API key for a prediction client, in the clients' usage plan (throttle and quota); "
        "the value is in this answer only, audited by id and fingerprint; a retry with the same Idempotency-Key "
        "answers the first key's id and fingerprint (value null: it is never shown twice)",
        responses=_issue_responses(),
    )
    def issue_key(request: Annotated[IssueKeyRequest, Body()]):  # a Response is not a schema
        context = who(Action.MANAGE_CLIENT_KEYS, request.reason)
        gateway, audit = key_ports()
        issued = issue_client_key(
            gateway,
            audit,
            request,
            actor=context["actor"],
            request_id=context["request_id"],
            now=datetime.now(UTC),
            idempotency_key=context["idempotency_key"],
            attempts=issue_attempts,
        )
        if issued.replayed:
            logger.info("replayed", client=issued.client, key_id=issued.key_id, fingerprint=issued.fingerprint)
            return Response(
                201, content_types.APPLICATION_JSON, issued.model_dump_json(), headers={REPLAYED_HEADER: "true"}
            )
        logger.info("client key issued", client=issued.client, key_id=issued.key_id, fingerprint=issued.fingerprint)
        return Response(201, content_types.APPLICATION_JSON, issued.model_dump_json())

    @app.get(
        "/clients",
        summary="Issued client API keys (ids and fingerprints, never values)",
        responses=responses(None, 503),
    )
    def list_keys() -> list[ClientKeySummary]:
        caller(Action.MANAGE_CLIENT_KEYS)
        gateway, _ = key_ports()
        return client_keys(gateway)

    @app.post(
        "/clients/<key_id>/revoke",
        summary="Revoke a client API key (deleted from API Gateway: refused from then on; audited)",
        responses=responses(ClientKeySummary, 503),
    )
    def revoke_key(key_id: KeyId, request: Annotated[RevokeKeyRequest, Body()]) -> ClientKeySummary:
        context = who(Action.MANAGE_CLIENT_KEYS, request.reason)
        gateway, audit = key_ports()
        revoked = revoke_client_key(
            gateway,
            audit,
            key_id,
            request,
            actor=context["actor"],
            request_id=context["request_id"],
            now=datetime.now(UTC),
        )
        logger.info("client key revoked", client=revoked.client, key_id=key_id, fingerprint=revoked.fingerprint)
        return revoked

    @app.get("/openapi.json", include_in_schema=False)
    def openapi():  # no return annotation: a Response is not a schema
        caller(Action.READ)
        return Response(200, content_types.APPLICATION_JSON, openapi_document(app, registry))

    @app.exception_handler(MlopsError)
    def mlops_error(error: MlopsError) -> Response:
        if error.http_status >= 500:
            logger.exception("registry error")
        return _error(error.http_status, type(error).__name__, str(error))

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()]
        return _error(422, "RequestValidationError", "the request does not match the API schema", details=details)

    @app.exception_handler(RequestUnsupportedContentType)
    def unreadable_body(error: RequestUnsupportedContentType) -> Response:
        declared = _header(app.current_event.headers, "content-type") or ""
        return _error(
            415, "UnsupportedMediaType", f"the body is {declared[:80]!r}; this API reads application/json bodies"
        )

    @app.not_found
    def no_route(_: RouteNotFoundError) -> Response:
        event = app.current_event
        segments = event.path.strip("/").split("/")
        if len(segments) >= 2 and segments[0] == "models" and not is_valid_model_name(unquote(segments[1])):
            return _error(400, "BadRequestError", f"{unquote(segments[1])!r} is not a valid model name")
        if len(segments) >= 4 and segments[2] == "datasets" and not is_valid_dataset_id(unquote(segments[3])):
            return _error(400, "BadRequestError", f"{unquote(segments[3])!r} is not a dataset id")
        if len(segments) == 4 and segments[2] == "drift" and not is_drift_report_id(unquote(segments[3])):
            return _error(400, "BadRequestError", f"{unquote(segments[3])[:80]!r} is not a drift report id")
        return _error(404, "NotFound", f"no route for {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def unexpected(_: Exception) -> Response:
        logger.exception("unexpected error")
        return _error(500, "InternalError", "internal error; see the function logs")

    return app


def _issue_responses() -> dict[int, OpenAPIResponse]:
    documented = created(IssuedClientKey, 409, 503)
    documented[201]["description"] = (
        "Created; or, for a retry with the same Idempotency-Key (header Idempotent-Replayed: true), the key the "
        "first request created, without its value"
    )
    documented[409]["description"] = (
        _STATUS_MEANINGS[409] + "; or a request with the same Idempotency-Key is still being served"
    )
    return documented


def _drift_report_responses() -> dict[int, OpenAPIResponse]:
    documented = responses(DriftResult)
    documented[200] = {
        "description": "The run's stored result (JSON), or its self-contained report page (HTML)",
        "content": {"application/json": {"model": DriftResult}, "text/html": {"schema": {"type": "string"}}},
    }
    return documented


def wants_html(report_format: ReportFormat | None, accept: str | None) -> bool:
    """`?format=` decides; without it, HTML when the Accept header ranks text/html above JSON
    (a browser's does); JSON otherwise."""
    if report_format is not None:
        return report_format is ReportFormat.HTML
    ranks: dict[str, float] = {}
    for item in (accept or "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                quality = quality if 0.0 <= quality <= 1.0 else 0.0  # also NaN
        ranks[media.lower()] = max(ranks.get(media.lower(), 0.0), quality)
    json_rank = ranks.get("application/json", ranks.get("application/*", ranks.get("*/*", 0.0)))
    return ranks.get("text/html", 0.0) > json_rank


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    """A request header by name, whatever its spelling (the event keeps the client's)."""
    return next((value for key, value in (headers or {}).items() if key.lower() == name), None)


SECURITY_SCHEMES = {
    # API Gateway's IAM authorization: requests signed with SigV4 for `execute-api`
    "sigv4": APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 for execute-api (IAM); the signer also sends X-Amz-Date",
    ),
    "api_key": APIKey(name="x-api-key", in_=APIKeyIn.header, description="an API key on the usage plan"),
}


def openapi_document(app: APIGatewayRestResolver, registry: ModelRegistry) -> str:
    """The API's OpenAPI document: this function's routes (IAM), the predict route (API key), whose
    request schema is built from the contract of each model's production version, and the feedback
    route (API key, mlops.feedback_openapi)."""
    document = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE, version=API_VERSION, security_schemes=SECURITY_SCHEMES, security=[{"sigv4": []}]
        )
    )
    contracts = []
    for model in registry.list_models():
        production = registry.production(model.name)
        if production is not None:
            contracts.append(parse_contract(production.contract, source=f"{model.name} v{production.version}"))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # predict's deployed value: the construct passes its settings' defaults (infra.catalog)
    max_records = int(PredictSettings.env_defaults()["MAX_RECORDS_PER_REQUEST"])
    schemas["PredictRequest"] = predict_request_schema(contracts, max_records)
    schemas["PredictResponse"] = _PREDICT_RESPONSE
    schemas |= feedback_openapi.openapi_schemas()
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    predict_errors = {
        400: "A record breaks the model's contract (the message names records[i].field), or the body is not "
        '{"records": [...]} or a list',
        403: "No API key, or one not on a usage plan; or the web ACL refused the request (its per-IP rate "
        "or a managed rule)",
        404: "No model of that name has a production version, or no pinned version or alias of that name",
        409: "The pinned version is rejected or archived: it no longer serves",
        413: _STATUS_MEANINGS[413],
        422: "The model produced a non-finite value for a valid record (the message names it)",
        429: _STATUS_MEANINGS[429],
        503: "The production model cannot be loaded (its artifact does not match the registry)",
    }
    document["paths"][PREDICT_PATH] = {
        "post": {
            "summary": "Predictions of the model's production version for 1 or more records",
            "description": predict_limits_description(max_records),
            "operationId": "predict",
            "security": [{"api_key": []}],
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": f"a model name, {MODEL_NAME_PATTERN}",
                    "schema": {"type": "string", "pattern": MODEL_NAME_PATTERN},
                },
                {
                    "name": "version",
                    "in": "query",
                    "required": False,
                    "description": "pin a version (a rejected or archived one answers 409, an unknown one 404)",
                    "schema": {"type": "integer", "minimum": 1},
                },
                {
                    "name": "alias",
                    "in": "query",
                    "required": False,
                    "description": f"pin a named alias's version, {ALIAS_PATTERN} (an unknown alias answers 404)",
                    "schema": {"type": "string", "pattern": ALIAS_PATTERN},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
            },
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}},
                },
                **{str(status): {"description": text, "content": error} for status, text in predict_errors.items()},
            },
        }
    }
    document["paths"][feedback_openapi.FEEDBACK_PATH] = feedback_openapi.openapi_operation(MODEL_NAME_PATTERN)
    return json.dumps(document)


_PREDICT_RESPONSE = {
    "type": "object",
    "required": ["model", "version", "predictions"],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "predictions": {
            "type": "array",
            "items": {
                "type": "object",
                "description": "one answer per record, in order: label and probabilities (classification) or value "
                "(regression), and the prediction's id (send it with the label later)",
                "required": ["prediction_id"],
                "properties": {
                    "prediction_id": {"type": "string", "pattern": PREDICTION_ID_PATTERN},
                    "label": {
                        "type": ["string", "integer", "boolean"],
                        "description": "the class, in the type the contract declares its classes",
                    },
                    "probabilities": {
                        "type": "object",
                        "additionalProperties": {"type": "number"},
                        "description": "per class, keyed by its text (true/false, digits for integers)",
                    },
                    "value": {"type": "number"},
                },
            },
        },
    },
}


def _json_body(text: str) -> Any:
    """The request body (Powertools has decoded base64) as JSON. A syntax error stays Powertools'
    422; a body json.loads cannot hold (nesting past the recursion limit, an integer over 4300
    digits) raises BadRequestError (400) instead of escaping as a 500."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:
        raise BadRequestError(f"request body is not valid JSON: {type(error).__name__}: {error}") from None


class _NothingServed(MlopsError):
    http_status = 404


def _error(status: int, kind: str, message: str, **extra: Any) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"error": kind, "message": message, **extra})


class _NoRuns:
    """Stored runs of a deployment that keeps none."""

    def report_ids(self, model: str, *, before: str | None, limit: int) -> list[str]:
        return []

    def read(self, model: str, report_id: str) -> bytes:
        raise NotFoundError(f"{model} has no run {report_id}")


def _count(name: str, model: str) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=1, default_dimensions={"service": SERVICE}) as metric:
        metric.add_dimension("model", model)


_s3 = S3ObjectStore()
app = build_app(
    DynamoRegistry(settings.registry_table),
    EventBridgePublisher(settings.event_bus_name),
    store=_s3,
    access=access_policy(settings),
    ledger=DynamoDatasetLedger(settings.ledger_table),
    drift_results=S3DriftResults(settings.artifact_bucket),
    quality_results=S3DriftResults(
        settings.artifact_bucket, prefix_of=quality_results_prefix, key_of=quality_result_key
    ),
    notifier=SnsNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else None,
    # the same topic; dataset notices are plain-text summaries (as validate_dataset sends them)
    dataset_notifier=SnsSummaryNotifier(settings.alarm_topic_arn) if settings.alarm_topic_arn else None,
    upload_urls=_s3,
    data_bucket=settings.data_bucket,
    client_key_gateway=ApiGatewayClientKeys(settings.client_usage_plan_name)
    if settings.client_usage_plan_name
    else None,
    key_audit=DynamoKeyAudit(settings.registry_table),
    issue_attempts=DynamoIssueAttempts(settings.registry_table),
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # POST /clients answers a key value; URLs sign uploads
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
