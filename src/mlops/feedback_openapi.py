"""The feedback route in the OpenAPI document the models API serves (record_feedback serves the
route itself): its request, answer and the rules' description, from mlops.feedback's constants."""

from __future__ import annotations

from typing import Any

from mlops.feedback import (
    CLOCK_SKEW_SECONDS,
    LABEL_FIELD,
    MAX_LABELS_PER_REQUEST,
    MAX_PREDICTION_ID_CHARS,
    MAX_PROBLEMS_LISTED,
    VALUE_FIELD,
    LabelProblem,
)

FEEDBACK_PATH = "/models/{name}/feedback"  # served by record_feedback; documented in the models API's document
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def openapi_schemas() -> dict[str, Any]:
    """The request and answer of the feedback route, for the OpenAPI document's components."""
    label = {
        "type": "object",
        "required": ["prediction_id"],
        "description": "one label: `label` (a class of the contract: text, or an integer / true-false when the "
        "contract declares those) for a classifier, `value` (a finite number) for a regression",
        "properties": {
            "prediction_id": {
                "type": "string",
                "pattern": f"^[0-9a-f]{{32,{MAX_PREDICTION_ID_CHARS}}}$",
                "description": "the id predict answered with",
            },
            LABEL_FIELD: {"type": ["string", "integer", "boolean"]},
            VALUE_FIELD: {"type": "number"},
        },
    }
    return {
        "FeedbackRequest": {
            "title": "FeedbackRequest",
            "type": "object",
            "required": ["labels"],
            "properties": {
                "labels": {"type": "array", "minItems": 1, "maxItems": MAX_LABELS_PER_REQUEST, "items": label}
            },
        },
        "FeedbackResponse": {
            "type": "object",
            "required": ["model", "received", "accepted", "absorbed", "label_objects", "horizon_hours"],
            "properties": {
                "model": {"type": "string"},
                "received": {"type": "integer", "description": "labels in the request"},
                "accepted": {"type": "integer", "description": "labels recorded (one per prediction id)"},
                "absorbed": {
                    "type": "object",
                    "description": "repeats of a prediction id within the request: the first counts",
                    "properties": {"duplicates": {"type": "integer"}, "conflicts": {"type": "integer"}},
                },
                "label_objects": {"type": "integer", "description": "objects written: one per prediction minute"},
                "horizon_hours": {"type": "number", "description": "how late a label may arrive for this model"},
            },
        },
    }


def openapi_operation(model_name_pattern: str) -> dict[str, Any]:
    """The path item of `POST /models/{name}/feedback` (API key)."""
    return {
        "post": {
            "summary": "Ground truth for served predictions: labels by prediction id",
            "operationId": "feedback",
            "description": (
                f"Up to {MAX_LABELS_PER_REQUEST} labels a request, each for a `prediction_id` predict answered with. "
                "All or nothing: if any label breaks a rule, nothing is recorded and the 400 lists every problem "
                f"(up to {MAX_PROBLEMS_LISTED}, with the total) by index, prediction id and reason. A label is refused "
                "when its id is not one predict issues, its prediction was answered in the future (beyond "
                f"{CLOCK_SKEW_SECONDS:g} s of clock skew) or longer ago than the contract's "
                "`monitoring.feedback.horizon_hours` (default 168), it is of the wrong kind (`label`, a class as "
                "text, for a classifier; `value`, a finite number, for a regression) or a class the contract does "
                "not declare. Repeats are absorbed, never errors: a prediction id sent twice in one request counts "
                "once (the first label; the answer counts duplicates and conflicts), and a label sent again in a "
                "later request (a retry) is absorbed when the labels are read: the first label received for a "
                "prediction counts. Retrying a request is safe. An id that is well formed and within the horizon "
                "but was never issued cannot be recognised when it arrives (captures are written later, and "
                "sampled): it is accepted here and counted as unmatched by the quality join."
            ),
            "security": [{"api_key": []}],
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": f"a model name, {model_name_pattern}",
                    "schema": {"type": "string", "pattern": model_name_pattern},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeedbackRequest"}}},
            },
            "responses": {
                "200": {
                    "description": "Every label accepted and recorded",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeedbackResponse"}}},
                },
                "400": {
                    "description": (
                        'The body is not {"labels": [...]} of 1 to '
                        f"{MAX_LABELS_PER_REQUEST} items, or labels break the rules (error `LabelsRefused`, nothing "
                        "recorded): `details` lists each problem as {index, prediction_id, reason, message}, reason "
                        f"one of {', '.join(reason.value for reason in LabelProblem)}; `problems_total` counts them "
                        f"all (the list stops at {MAX_PROBLEMS_LISTED})"
                    ),
                    "content": _ERROR,
                },
                "403": {"description": "No API key, or one not on a usage plan", "content": _ERROR},
                "404": {"description": "No model of that name is registered", "content": _ERROR},
                "409": {
                    "description": "The model has no production version (no prediction to label)",
                    "content": _ERROR,
                },
                "413": {"description": "The body is larger than API Gateway's 10 MB payload limit", "content": _ERROR},
                "429": {"description": "Throttled (stage or usage plan limits)", "content": _ERROR},
                "503": {"description": "The registered contract cannot be read", "content": _ERROR},
            },
        }
    }
