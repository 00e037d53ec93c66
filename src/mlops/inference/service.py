"""The prediction use case: request body -> validated records -> production model -> answer."""

from __future__ import annotations

import time
from typing import Any

from mlops.errors import BadRequestError, RecordError
from mlops.inference.capture import CaptureBuffer, FlushResult
from mlops.inference.model import CANARY, CHAMPION, ModelCache
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.inference.variants import VariantMetrics, VariantWindow, output_values
from mlops.json_body import decode_json_body


def parse_records(body: str | None, *, is_base64: bool = False) -> Any:
    """`{"records": [...]}` or a bare JSON list -> the list (not yet validated).

    Raises BadRequestError for an empty body, invalid JSON, a duplicate key or another shape.
    """
    document = decode_json_body(body, is_base64=is_base64, expected='{"records": [...]}')
    if type(document) is dict:
        if "records" not in document:
            raise BadRequestError('request body must be {"records": [...]} or a JSON list of records')
        return document["records"]
    if type(document) is list:
        return document
    raise BadRequestError('request body must be {"records": [...]} or a JSON list of records')


class PredictionService:
    """Answers prediction requests from the cached production model (or its canary, or a pinned
    version) and samples them for drift; while a canary runs, both variants are measured."""

    def __init__(
        self, models: ModelCache, capture: CaptureBuffer | None = None, variants: VariantMetrics | None = None
    ) -> None:
        self.models = models
        self.capture = capture
        self.variants = variants or VariantMetrics()

    def predict(
        self,
        name: str,
        body: str | None,
        *,
        is_base64: bool = False,
        version: int | None = None,
        alias: str | None = None,
    ) -> dict[str, Any]:
        """Answers carry a `prediction_id` each, and `variant` (champion|canary|pinned) when a canary
        runs or the request pins a version or alias. Raises BadRequestError/RecordError (400),
        ModelNotFoundError/NotFoundError (404), ConflictError (409: pinned version no longer serves),
        IntegrityError (503); refused records are counted for drift."""
        records = parse_records(body, is_base64=is_base64)
        model, variant = self.models.choose(name, version=version, alias=alias)
        try:
            columns = model.validator.validate(records)
        except RecordError:
            if self.capture is not None:
                for problem in model.validator.problems(records):
                    self.capture.reject(name, problem.field, problem.reason)
            raise
        if variant is CHAMPION or variant is CANARY:
            predictions = self._measured(model, variant, columns)
        else:
            predictions = model.predict_columns(columns)
        for prediction, prediction_id in zip(predictions, new_prediction_ids(len(predictions)), strict=True):
            prediction["prediction_id"] = prediction_id
        if self.capture is not None:
            self.capture.add(name, model.version, columns.names, columns.rows, predictions, model.capture_sample_rate)
        values = model.contract.label_values
        if values is not None:  # integer or boolean classes: answered as declared; captures keep the text
            predictions = [{**prediction, "label": values[prediction["label"]]} for prediction in predictions]
        if variant is None:
            return {"model": name, "version": model.version, "predictions": predictions}
        return {"model": name, "version": model.version, "variant": variant, "predictions": predictions}

    def _measured(self, model: Any, variant: str, columns: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            predictions = model.predict_columns(columns)
        except Exception:
            self.variants.record(model.name, variant, model.version, seconds=0.0, error=True)
            raise
        positive = model.classes[-1] if model.classification and model.classes else None
        self.variants.record(
            model.name,
            variant,
            model.version,
            seconds=time.perf_counter() - started,
            outputs=output_values(predictions, positive),
        )
        return predictions

    def after_request(self) -> list[FlushResult]:
        """Write the capture buffers that are due (by count or age)."""
        return self.capture.flush_due() if self.capture is not None else []

    def variant_windows(self) -> list[VariantWindow]:
        """The per-variant statistics due for publishing (while a canary runs)."""
        return self.variants.due()

    def shutdown(self) -> list[FlushResult]:
        return self.capture.flush() if self.capture is not None else []
