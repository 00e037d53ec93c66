"""Ground truth in: THE rules for a label of a served prediction, used by both ways labels arrive
(`POST /models/{name}/feedback`, functions/record_feedback; label files under `feedback/<model>/`,
functions/ingest_feedback), and the writing of accepted labels as label objects (`mlops.labels`).

A label is refused when:
- its prediction id is not one predict issues (`mlops.inference.prediction_ids.is_prediction_id`,
  at most `MAX_PREDICTION_ID_CHARS`);
- its prediction was answered in the future (beyond `CLOCK_SKEW_SECONDS`) or longer ago than the
  contract's `monitoring.feedback.horizon_hours` (the quality join has judged that window by then);
- it is missing, of the wrong kind (a classifier takes `label`, one of the contract's classes, as
  text; a regression takes `value`, a finite number), a class the contract does not declare, or a
  non-finite number.
An id that is well formed and in the horizon but was never issued cannot be told from a real one
here (captures are flushed later, and sampled): the quality join counts it as unmatched.

A request is all-or-nothing: one refused label refuses the request (400) listing every problem
(up to `MAX_PROBLEMS_LISTED`), so a client never guesses which half landed. Within a request a
prediction id sent twice is absorbed (`merge_labels`: the first counts; same label: a duplicate,
another label: a conflict); across requests and files `merge_labels` absorbs repeats when the
labels are read (first received counts). Files are judged row by row (`LabelFileReader`): good rows
are written, bad rows reported by number and reason.

Stdlib only: record_feedback ships powertools + mlops-core and no pydantic on its path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from mlops.contract_rules import DEFAULT_FEEDBACK_HORIZON_HOURS, ProblemType, label_reader, label_text
from mlops.errors import BadRequestError, ConflictError, IntegrityError
from mlops.inference.prediction_ids import is_prediction_id
from mlops.json_body import decode_json_body
from mlops.labels import (
    LabelBatch,
    encode_labels,
    merge_labels,
    new_label_batch_id,
    prediction_second,
    split_by_minute,
)
from mlops.layout import label_key
from mlops.ports import ObjectStore

MAX_LABELS_PER_REQUEST = 1_000
MAX_PROBLEMS_LISTED = 100  # problems named in a refusal or a file report; the total is counted
MAX_PREDICTION_ID_CHARS = 40  # 32 hex; longer only past 65,535 records in one request
# label objects written at once: boto3 clients are thread-safe, and botocore pools 10 connections
WRITE_PARALLEL = 8
CLOCK_SKEW_SECONDS = 300.0  # a prediction answered this far "in the future" is still believed
API_SOURCE = "api"
LABEL_FIELD = "label"  # classification: the true class, as text
VALUE_FIELD = "value"  # regression: the true value, a finite number
_QUOTED_CHARS = 40


class LabelProblem(StrEnum):
    """Why a label is refused (the `reason` of a problem)."""

    NOT_AN_OBJECT = "not_an_object"
    MALFORMED_ID = "malformed_prediction_id"
    FUTURE = "answered_in_the_future"
    PAST_HORIZON = "older_than_horizon"
    MISSING = "missing_label"
    WRONG_TYPE = "wrong_label_type"
    UNKNOWN_CLASS = "unknown_class"
    NOT_FINITE = "not_finite"


@dataclass(frozen=True)
class LabelIssue:
    """One refused label: where it is (`index` in the request's list, or the file's data row number,
    1 = the first row under the header), its prediction id when it is text, why."""

    index: int
    prediction_id: str | None
    reason: LabelProblem
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "prediction_id": self.prediction_id,
            "reason": self.reason.value,
            "message": self.message,
        }


class LabelsRefused(BadRequestError):
    """The request's labels break the rules; nothing was recorded. `problems` names each (capped)."""

    def __init__(self, problems: Sequence[LabelIssue], total: int, received: int) -> None:
        first = problems[0]
        super().__init__(
            f"{total} of {received} labels refused, none recorded; labels[{first.index}]: {first.message}"
            + (f" (and {total - 1} more, see problems)" if total > 1 else "")
        )
        self.problems = list(problems)
        self.total = total

    def details(self) -> dict[str, Any]:
        """The error body's `details` (each problem) and their total (the list stops at the cap)."""
        return {"details": [problem.as_dict() for problem in self.problems], "problems_total": self.total}


@dataclass(frozen=True)
class LabelRules:
    """What a label of `model` may be, from its registered contract."""

    model: str
    classes: tuple[str, ...] | None  # classification: the declared classes as text (`label_text`); None: regression
    horizon_seconds: float
    skew_seconds: float = CLOCK_SKEW_SECONDS
    # the declared classes' own type when it is not text: int or bool (a label may come as 1 / true)
    label_type: type | None = None
    _class_set: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _read_label: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_class_set", frozenset(self.classes or ()))
        # a label of the classes' type stands for its kind: False for booleans, 0 for integers
        object.__setattr__(self, "_read_label", label_reader([self.label_type()] if self.label_type else []))

    @classmethod
    def from_contract(cls, document: Mapping[str, Any]) -> LabelRules:
        """From a registered contract document (the registry validated it at registration).
        Raises IntegrityError when it lacks what the rules need (the item was altered)."""
        try:
            problem = ProblemType(document["problem_type"])
            feedback = (document.get("monitoring") or {}).get("feedback") or {}
            horizon = float(feedback.get("horizon_hours", DEFAULT_FEEDBACK_HORIZON_HOURS))
            declared = list(document["target"]["classes"]) if problem.value == "classification" else None
            classes = None if declared is None else tuple(label_text(c) for c in declared)
            kinds = {type(c) for c in declared or ()}
            label_type = kinds.pop() if len(kinds) == 1 and kinds <= {int, bool} else None
            return cls(
                model=str(document["name"]), classes=classes, horizon_seconds=horizon * 3600, label_type=label_type
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise IntegrityError(f"the registered contract is not valid ({type(error).__name__}: {error})") from None

    @property
    def field(self) -> str:
        """The name a label's truth goes under: `label` (classification) or `value` (regression)."""
        return LABEL_FIELD if self.classes is not None else VALUE_FIELD

    @property
    def horizon_hours(self) -> float:
        return self.horizon_seconds / 3600

    def problem(self, prediction_id: object, name: str, truth: object, now: float) -> tuple[LabelProblem, str] | None:
        """Why (`reason`, message) the label `truth`, sent under `name` for `prediction_id` at `now`
        (epoch seconds), is refused; None when it is accepted. THE rule, for requests and files."""
        if not isinstance(prediction_id, str) or not prediction_id:
            return LabelProblem.MALFORMED_ID, "prediction_id is missing or not text"
        if len(prediction_id) > MAX_PREDICTION_ID_CHARS or not is_prediction_id(prediction_id):
            return LabelProblem.MALFORMED_ID, "prediction_id is not an id predict issued (32 lowercase hex characters)"
        answered = prediction_second(prediction_id)
        if answered > now + self.skew_seconds:
            return LabelProblem.FUTURE, "prediction_id says the prediction was answered in the future"
        if answered < now - self.horizon_seconds:
            return (
                LabelProblem.PAST_HORIZON,
                f"the prediction was answered {(now - answered) / 3600:.1f} h ago, beyond the contract's "
                f"feedback horizon of {self.horizon_hours:g} h",
            )
        if name != self.field:
            return LabelProblem.WRONG_TYPE, self._kind_message(f"got {name!r}")
        if truth is None:
            return LabelProblem.MISSING, self._kind_message("it is missing")
        if self.classes is not None:
            label = self.label_of(truth)
            if label is None:
                return LabelProblem.WRONG_TYPE, self._kind_message(f"got {type(truth).__name__}")
            if label not in self._class_set:
                return (
                    LabelProblem.UNKNOWN_CLASS,
                    f"label {_quoted(label)} is not one of the classes {list(self.classes)}",
                )
            return None
        if isinstance(truth, bool) or not isinstance(truth, int | float):
            return LabelProblem.WRONG_TYPE, self._kind_message(f"got {_kind(truth)}")
        if not math.isfinite(truth):
            return LabelProblem.NOT_FINITE, f"value {truth!r} is not a finite number"
        return None

    def label_of(self, truth: object) -> str | None:
        """A classifier's label as text (`label_text`): text as the classes read it ("True" -> "true"
        for boolean classes), or a JSON value of the classes' own type (1, true); None otherwise."""
        if isinstance(truth, str):
            return truth if self._read_label is None else self._read_label(truth)
        if self.label_type is not None and type(truth) is self.label_type:
            return label_text(truth)
        return None

    def stored(self, truth: Any) -> str | float:
        """An accepted label as it is stored: the class text, or the regression value."""
        if self.classes is None:
            return float(truth)
        label = self.label_of(truth)
        return truth if label is None else label

    def _kind_message(self, found: str) -> str:
        if self.classes is not None:
            kind = {int: "as an integer or text", bool: "as true/false or text"}.get(self.label_type, "as text")  # type: ignore[call-overload]
            return f"{self.model} is a classifier: send label, one of {list(self.classes)} {kind} ({found})"
        return f"{self.model} is a regression: send value, a finite number ({found})"

    def truth_of_text(self, text: str | None) -> object:
        """A file cell (text) as the rule reads it: the class text, or the number it spells (the text
        itself when it spells none, so the rule names it a wrong type)."""
        if text is None or self.classes is not None:
            return text
        try:
            return float(text)
        except ValueError:
            return text


def _kind(value: object) -> str:
    return "text" if isinstance(value, str) else "true/false" if isinstance(value, bool) else type(value).__name__


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _QUOTED_CHARS else text[:_QUOTED_CHARS] + "...")


def _id_of(item: object) -> str | None:
    prediction_id = item.get("prediction_id") if isinstance(item, dict) else None
    return prediction_id[:MAX_PREDICTION_ID_CHARS] if isinstance(prediction_id, str) else None


def parse_feedback_body(body: str | None, *, is_base64: bool = False) -> list[Any]:
    """`{"labels": [...]}` -> the list (items not yet judged). Raises BadRequestError for an empty,
    invalid or oversized body."""
    document = decode_json_body(
        body, is_base64=is_base64, expected='{"labels": [{"prediction_id": ..., "label": ...}]}'
    )
    if type(document) is not dict or type(document.get("labels")) is not list:
        raise BadRequestError('request body must be {"labels": [{"prediction_id": ..., "label" or "value": ...}]}')
    labels = document["labels"]
    if not labels:
        raise BadRequestError("labels must not be empty")
    if len(labels) > MAX_LABELS_PER_REQUEST:
        raise BadRequestError(
            f"{len(labels)} labels in one request; at most {MAX_LABELS_PER_REQUEST} (send several requests)"
        )
    return labels


@dataclass(frozen=True)
class AcceptedLabels:
    batch: LabelBatch  # one label per prediction id, in the order first sent
    received: int
    duplicates: int  # the same label again for an id already in the request: absorbed
    conflicts: int  # another label for an id already in the request: the first counts


def judge_request(rules: LabelRules, items: Sequence[Any], now: float) -> AcceptedLabels:
    """Every item of a request judged; all accepted or LabelsRefused naming each problem."""
    problems: list[LabelIssue] = []
    total = 0
    ids: list[str] = []
    truths: list[str | float] = []
    name = rules.field
    for index, item in enumerate(items):
        if type(item) is not dict:
            found: tuple[LabelProblem, str] | None = (
                LabelProblem.NOT_AN_OBJECT,
                'each label must be an object {"prediction_id": ..., "label" or "value": ...}',
            )
        else:
            # the other kind's field sent instead is a wrong type; neither field, a missing label
            sent = next((kind for kind in (name, LABEL_FIELD, VALUE_FIELD) if kind in item), name)
            found = rules.problem(item.get("prediction_id"), sent, item.get(sent), now)
        if found is not None:
            total += 1
            if len(problems) < MAX_PROBLEMS_LISTED:
                problems.append(LabelIssue(index, _id_of(item), found[0], found[1]))
            continue
        ids.append(item["prediction_id"])
        truth = item[name]
        truths.append(rules.stored(truth))
    if problems:
        raise LabelsRefused(problems, total, len(items))
    merged = merge_labels([LabelBatch(ids, truths, [now] * len(ids), API_SOURCE)])
    unique = LabelBatch(list(merged.labels), list(merged.labels.values()), [now] * len(merged.labels), API_SOURCE)
    return AcceptedLabels(unique, len(items), merged.duplicates, merged.conflicts)


def write_labels(
    store: ObjectStore, bucket: str, model: str, batch: LabelBatch, arrived: datetime, *, parallel: int = WRITE_PARALLEL
) -> list[str]:
    """One label object per prediction minute of `batch`, written `parallel` at a time (a request's
    labels may span hundreds of minutes: one PUT after another would add their latencies); the keys,
    in minute order. A failure part way leaves the objects written so far: a retry of the whole batch
    adds only duplicates, which `merge_labels` absorbs (the first received counts)."""
    objects = [
        (label_key(model, minute, new_label_batch_id(arrived)), encode_labels(part))
        for minute, part in split_by_minute(batch)
    ]

    def put(item: tuple[str, bytes]) -> str:
        store.put_bytes(bucket, item[0], item[1], "application/json")
        return item[0]

    if parallel <= 1 or len(objects) <= 1:
        return [put(item) for item in objects]
    with ThreadPoolExecutor(max_workers=min(parallel, len(objects))) as pool:
        return list(pool.map(put, objects))


class ProductionContracts(Protocol):
    """The registry as feedback reads it (`DynamoServedVersions`): the production version or None.
    Raises ModelNotFoundError for an unknown model."""

    def production(self, name: str) -> Any: ...


class LabelRulesCache:
    """Each model's label rules from its production version's contract, re-read after `ttl_seconds`
    (a new contract's classes or horizon apply within that time)."""

    def __init__(
        self, registry: ProductionContracts, *, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.registry = registry
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._cached: dict[str, tuple[float, LabelRules]] = {}

    def get(self, model: str) -> LabelRules:
        """Raises ModelNotFoundError (404), ConflictError (409: nothing in production, so no
        prediction to label), IntegrityError (503)."""
        now = self.clock()
        cached = self._cached.get(model)
        if cached is not None and now < cached[0]:
            return cached[1]
        version = self.registry.production(model)
        if version is None:
            raise ConflictError(f"{model} has no production version: it has answered no prediction to label")
        rules = LabelRules.from_contract(version.contract)
        self._cached[model] = (now + self.ttl_seconds, rules)
        return rules


class FeedbackService:
    """`POST /models/{name}/feedback`: judge a request's labels, write the accepted ones."""

    def __init__(
        self,
        rules: LabelRulesCache,
        store: ObjectStore,
        bucket: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.rules = rules
        self.store = store
        self.bucket = bucket
        self.clock = clock

    def record(self, model: str, body: str | None, *, is_base64: bool = False) -> dict[str, Any]:
        """The answer: what was accepted and absorbed. Raises BadRequestError/LabelsRefused (400),
        ModelNotFoundError (404), ConflictError (409), IntegrityError (503)."""
        items = parse_feedback_body(body, is_base64=is_base64)
        rules = self.rules.get(model)
        arrived = self.clock()
        accepted = judge_request(rules, items, arrived.timestamp())
        keys = write_labels(self.store, self.bucket, model, accepted.batch, arrived)
        return {
            "model": model,
            "received": accepted.received,
            "accepted": len(accepted.batch),
            "absorbed": {"duplicates": accepted.duplicates, "conflicts": accepted.conflicts},
            "label_objects": len(keys),
            "horizon_hours": rules.horizon_hours,
        }
