"""The prediction use case: request body -> validated records -> production model -> answer."""

from __future__ import annotations

from typing import Any

from mlops.errors import BadRequestError, RecordError
from mlops.inference.capture import CaptureBuffer, FlushResult
from mlops.inference.model import ModelCache
from mlops.inference.prediction_ids import new_prediction_ids
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
    """Answers prediction requests from the cached production model and samples them for drift."""

    def __init__(self, models: ModelCache, capture: CaptureBuffer | None = None) -> None:
        self.models = models
        self.capture = capture

    def predict(self, name: str, body: str | None, *, is_base64: bool = False) -> dict[str, Any]:
        """Answers carry a `prediction_id` each. Raises BadRequestError/RecordError (400),
        ModelNotFoundError (404), IntegrityError (503); refused records are counted for drift."""
        records = parse_records(body, is_base64=is_base64)
        model = self.models.get(name)
        try:
            columns = model.validator.validate(records)
        except RecordError:
            if self.capture is not None:
                for problem in model.validator.problems(records):
                    self.capture.reject(name, problem.field, problem.reason)
            raise
        predictions = model.predict_columns(columns)
        for prediction, prediction_id in zip(predictions, new_prediction_ids(len(predictions)), strict=True):
            prediction["prediction_id"] = prediction_id
        if self.capture is not None:
            self.capture.add(name, model.version, columns.names, columns.rows, predictions, model.capture_sample_rate)
        values = model.contract.label_values
        if values is not None:  # integer or boolean classes: answered as declared; captures keep the text
            predictions = [{**prediction, "label": values[prediction["label"]]} for prediction in predictions]
        return {"model": name, "version": model.version, "predictions": predictions}

    def after_request(self) -> list[FlushResult]:
        """Write the capture buffers that are due (by count or age)."""
        return self.capture.flush_due() if self.capture is not None else []

    def shutdown(self) -> list[FlushResult]:
        return self.capture.flush() if self.capture is not None else []
