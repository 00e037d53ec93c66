"""POST /models/{name}/predict (REST API, API key): validated records in, predictions of the cached
production model out, each with its `prediction_id`. `?version=N` or `?alias=NAME` pins what answers;
while a canary runs it answers its share of the unpinned requests (mlops.inference.model.ModelCache),
and both variants' requests, errors, latency and output mean are published per model and variant
every VARIANT_METRICS_SECONDS (the canary alarms compare them). Sampled traffic (with the ids) and the counts of
refused records per field and reason are buffered and written as columnar capture objects for
drift monitoring (mlops.inference.capture).

Measured choices (scripts/bench_inference.py), because this function's latency is the product:
- No Powertools event handler: API Gateway sends this function exactly one route, so there is
  nothing to route, and importing the resolvers costs ~40 ms of cold start (plus ~20 us a
  request). The event is read directly and errors map to statuses through `MlopsError`.
- The body is hand-validated (pydantic per request would cost more than the model).
- No Powertools Tracer: creating it imports the X-Ray SDK (+0.11 s cold start) and its decorator
  costs ~17 us per request even with tracing disabled. Lambda's active tracing still records each
  invocation; model loads are logged with their duration.
- No `@logger.inject_lambda_context`: it rebuilds every context key on each request (measured
  ~16 us of a ~125 us request); `_log_context` sets the same keys (function name, memory, ARN,
  request id, cold start) and per request only what changes (~4 us). Predict uses neither of the
  decorator's options (logging the event, debug-log sampling).
- OpenBLAS runs one thread (OPENBLAS_NUM_THREADS, unless set): predict never calls BLAS
  (onnxruntime has its own kernels), and the idle workers numpy's import starts spin first, which
  measured ~30-40 ms of CPU of the cold start, on a function that has ~0.6 vCPU at 1024 MB.
- No pydantic on the import and first-request path (plain-dataclass settings, the registry read as
  a `ServedVersion`, the contract as a `ServingContract`): it cost ~0.2-0.3 s of CPU at cold
  start. A test fails if a first request imports it.

Degraded serving is counted per model (own EMF documents with a `model` dimension, alarmed in
infra/constructs/monitoring.py): ModelLoadFailures (the last good version keeps answering while the
new one is retried with backoff), RegistryLookupFailures and StaleModelRefusals (503 once the
registry has not confirmed the cached version for MODEL_STALE_SECONDS). The captures buffered at
shutdown are flushed on SIGTERM, which Lambda sends because predict's layers register the
graceful-shutdown extension (layers/extensions/).

SnapStart (on published versions; API Gateway invokes the `live` alias): initialisation runs once
per published version and its snapshot is restored into every new environment. Before the snapshot,
the AWS clients are created once, so the botocore modules and service models the first request
needs are in the snapshot; after each restore, `_after_restore` re-creates what must not be shared
between environments (clients and their connections and credentials, the random generator that
samples captures, the prediction-id pool) and makes the next request re-read the production pointer.
Outside a SnapStart runtime (tests, local mode) no hook is registered.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from typing import TYPE_CHECKING, Any

if "numpy" not in sys.modules:  # read once, when numpy loads OpenBLAS (through onnxruntime below)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from mlops.adapters.aws import client, reset_clients
from mlops.adapters.s3 import S3ObjectStore
from mlops.adapters.served_versions_dynamodb import DynamoServedVersions
from mlops.errors import BadRequestError, MlopsError, NotFoundError
from mlops.inference.capture import CaptureBuffer, flush_on_shutdown
from mlops.inference.model import CacheEvent, LoadedModel, ModelCache, ModelLoadFailure, load_model
from mlops.inference.prediction_ids import forget_random_pool
from mlops.inference.service import PredictionService
from mlops.inference.variants import VARIANT_DIMENSION, VariantMetrics, VariantWindow
from mlops.settings import PredictSettings
from mlops.snapstart import register_snapstart_hooks

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from mlops.inference.served import ServedVersion

settings = PredictSettings.from_env()
logger = Logger()
metrics = Metrics()
store = S3ObjectStore()


def load_production_model(version: ServedVersion) -> LoadedModel:
    started = time.perf_counter()
    model = load_model(version, store, max_records=settings.max_records_per_request)
    logger.info(
        "model loaded", model=version.model_name, version=version.version, seconds=time.perf_counter() - started
    )
    return model


service = PredictionService(
    ModelCache(
        DynamoServedVersions(settings.registry_table),
        store,
        refresh_seconds=settings.model_refresh_seconds,
        stale_seconds=settings.model_stale_seconds,
        load_retry_seconds=settings.model_load_retry_seconds,
        load_retry_max_seconds=settings.model_load_retry_max_seconds,
        loader=load_production_model,
    ),
    CaptureBuffer(
        store,
        settings.artifact_bucket,
        max_records=settings.capture_max_records,
        max_age_seconds=settings.capture_max_age_seconds,
    ),
    VariantMetrics(flush_seconds=settings.variant_metrics_seconds),
)
if "AWS_LAMBDA_RUNTIME_API" in os.environ:
    # In Lambda only: in-process hosts (tests, local mode) outlive their endpoints and flush themselves.
    flush_on_shutdown(service.shutdown)


def _before_snapshot() -> None:
    for service_name in ("dynamodb", "s3"):  # the registry and the artifacts: what a first request calls
        client(service_name)


def _after_restore() -> None:
    reset_clients()
    random.seed()  # from os.urandom: each environment samples captures on its own
    forget_random_pool()
    service.models.forget_production_pointers()
    logger.info("restored from a snapshot", loaded_versions=service.models.loaded_versions())


register_snapstart_hooks(before_snapshot=_before_snapshot, after_restore=_after_restore)


# True/False: the next invocation sets every context key with this cold_start; None: only the keys
# that change (an invocation under provisioned concurrency is never a cold start, as Powertools says)
_cold_start: bool | None = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "provisioned-concurrency"


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _log_context(context)
    try:
        return _respond(event)
    finally:
        _after_request()


def _log_context(context: LambdaContext) -> None:
    """The keys Powertools' `inject_lambda_context` adds to every log line, set when they change."""
    global _cold_start
    if _cold_start is None:
        # the ARN names the alias or version invoked, which can differ between invocations
        logger.append_keys(function_request_id=context.aws_request_id, function_arn=context.invoked_function_arn)
        return
    logger.append_keys(
        cold_start=_cold_start,
        function_name=context.function_name,
        function_memory_size=context.memory_limit_in_mb,
        function_arn=context.invoked_function_arn,
        function_request_id=context.aws_request_id,
    )
    _cold_start = False if _cold_start else None


def _respond(event: dict[str, Any]) -> dict[str, Any]:
    try:
        name = (event.get("pathParameters") or {}).get("name")
        if event.get("httpMethod") != "POST" or not name:
            raise NotFoundError(f"no route for {event.get('httpMethod')} {event.get('path')}")
        query = event.get("queryStringParameters")
        version, alias = _pin(query) if query else (None, None)
        answer = service.predict(
            name, event.get("body"), is_base64=bool(event.get("isBase64Encoded")), version=version, alias=alias
        )
    except MlopsError as error:
        if error.http_status >= 500:
            logger.error("cannot serve", error=str(error), kind=type(error).__name__)
            metrics.add_metric(name="ModelUnavailable", unit=MetricUnit.Count, value=1)
        return _response(error.http_status, {"error": type(error).__name__, "message": str(error)})
    except Exception:
        logger.exception("unexpected error")
        return _response(500, {"error": "InternalError", "message": "internal error; see the function logs"})
    return _response(200, answer)


def _pin(query: dict[str, str]) -> tuple[int | None, str | None]:
    """`?version=N` or `?alias=NAME` (not both). Raises BadRequestError."""
    version, alias = query.get("version"), query.get("alias")
    if version is not None and alias is not None:
        raise BadRequestError("pin a version or an alias, not both")
    if version is None:
        return None, alias
    # ASCII digits only: str.isdigit() also takes '²' (int() raises) and '١٢' (int() reads 12)
    if not re.fullmatch(r"[0-9]{1,10}", version) or int(version) == 0:
        raise BadRequestError(f"version must be a positive integer, got {version[:20]!r}")
    return int(version), None


# built once: json.dumps with non-default arguments builds an encoder per call
_JSON = json.JSONEncoder(separators=(",", ":"))


def _response(status: int, document: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway REST proxy response (the shape Powertools' resolver returns)."""
    return {
        "statusCode": status,
        "body": _JSON.encode(document),
        "isBase64Encoded": False,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
    }


def _after_request() -> None:
    for event in service.models.drain_events():
        _count_model_event(event)
    for flushed in service.after_request():
        if flushed.error:
            logger.warning(
                "capture flush failed",
                model=flushed.model,
                records=flushed.records,
                rejections=flushed.rejected,
                error=flushed.error,
            )
        if flushed.skipped:
            logger.warning("capture records skipped", model=flushed.model, records=flushed.skipped)
            metrics.add_metric(name="CaptureRecordsSkipped", unit=MetricUnit.Count, value=flushed.skipped)
        if flushed.records:
            metrics.add_metric(
                name="CaptureRecordsDropped" if flushed.error else "CaptureRecordsWritten",
                unit=MetricUnit.Count,
                value=flushed.records,
            )
    for window in service.variant_windows():
        _publish_variant(window)
    # Flushed only when there is something to publish, instead of `@metrics.log_metrics`: an empty
    # flush issues a warning on every request (measured ~4 us of a ~100 us budget).
    if metrics.metric_set:
        metrics.flush_metrics()


def _count_model_event(event: CacheEvent) -> None:
    """One metric per degraded-serving event, with a `model` dimension (the alarms match on it)."""
    if isinstance(event, ModelLoadFailure):
        _model_metric(
            "ModelLoadFailures",
            event.model,
            production_version=event.version,
            served_version=event.serving_version,
            failures=event.failures,
            retry_in_seconds=event.retry_in_seconds,
        )
        return
    details = {"served_version": event.serving_version, "unconfirmed_seconds": event.unconfirmed_seconds}
    _model_metric("RegistryLookupFailures", event.model, **details)
    if event.refused and event.unconfirmed_seconds is not None:
        _model_metric("StaleModelRefusals", event.model, **details)


def _publish_variant(window: VariantWindow) -> None:
    """One EMF document per model and variant: the canary alarms match `service`, `model`, `variant`."""
    service_name = os.environ.get("POWERTOOLS_SERVICE_NAME", "predict")
    dimensions = {"service": service_name, "model": window.model, VARIANT_DIMENSION: window.variant}
    values = window.metrics()
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MLOps"),
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **dimensions,
        **{name: value for name, (value, _) in values.items()},
        "version": window.version,
    }
    print(_JSON.encode(document), flush=True)  # EMF: CloudWatch reads it from the log stream


def _model_metric(name: str, model: str, **properties: object) -> None:
    # its own EMF document: a `model` dimension on the shared metric set would also land on the
    # capture metrics flushed with it; Powertools adds `service` from POWERTOOLS_SERVICE_NAME
    with single_metric(name=name, unit=MetricUnit.Count, value=1, default_dimensions={"model": model}) as metric:
        for key, value in properties.items():
            metric.add_metadata(key, value)
