"""mlops.feedback: the one set of rules a label of a served prediction must satisfy, the request's
all-or-nothing judgement, and the label objects written."""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops.contract import parse_contract
from mlops.errors import BadRequestError, ConflictError, IntegrityError, ModelNotFoundError
from mlops.feedback import (
    MAX_LABELS_PER_REQUEST,
    MAX_PROBLEMS_LISTED,
    WRITE_PARALLEL,
    FeedbackService,
    LabelProblem,
    LabelRules,
    LabelRulesCache,
    LabelsRefused,
    judge_request,
    parse_feedback_body,
    write_labels,
)
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.inference.served import ServedArtifact, ServedVersion
from mlops.labels import LabelBatch, decode_labels, merge_labels, prediction_minute
from mlops.layout import labels_minute_key
from tests.support.fakes import InMemoryObjectStore

CHURN = json.loads((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())
NOW = datetime(2026, 12, 3, 10, 15, 42, tzinfo=UTC)
CLASSIFIER = LabelRules.from_contract(CHURN)
REGRESSION = LabelRules(model="price", classes=None, horizon_seconds=3600.0)


def ids_at(at: datetime, count: int = 1) -> list[str]:
    return new_prediction_ids(count, clock=lambda: at.timestamp())


# fixed random bytes: parametrized test ids must be the same in every pytest-xdist worker
(FRESH,) = new_prediction_ids(1, clock=lambda: (NOW - timedelta(minutes=5)).timestamp(), random_bytes=bytes)


@pytest.mark.parametrize(
    ("rules", "prediction_id", "name", "truth", "reason"),
    [
        (CLASSIFIER, FRESH, "label", "yes", None),
        (CLASSIFIER, FRESH, "label", "maybe", LabelProblem.UNKNOWN_CLASS),
        (CLASSIFIER, FRESH, "label", "Yes", LabelProblem.UNKNOWN_CLASS),  # classes compare exactly
        (CLASSIFIER, FRESH, "label", 1, LabelProblem.WRONG_TYPE),
        (CLASSIFIER, FRESH, "value", 1.0, LabelProblem.WRONG_TYPE),  # a number for a classifier
        (CLASSIFIER, FRESH, "label", None, LabelProblem.MISSING),
        (CLASSIFIER, None, "label", "yes", LabelProblem.MALFORMED_ID),
        (CLASSIFIER, 12, "label", "yes", LabelProblem.MALFORMED_ID),
        (CLASSIFIER, "not-an-id", "label", "yes", LabelProblem.MALFORMED_ID),
        (CLASSIFIER, FRESH.upper(), "label", "yes", LabelProblem.MALFORMED_ID),
        (CLASSIFIER, FRESH + "0" * 100, "label", "yes", LabelProblem.MALFORMED_ID),  # absurdly long
        (REGRESSION, FRESH, "value", 1.5, None),
        (REGRESSION, FRESH, "value", 3, None),
        (REGRESSION, FRESH, "value", math.nan, LabelProblem.NOT_FINITE),
        (REGRESSION, FRESH, "value", -math.inf, LabelProblem.NOT_FINITE),
        (REGRESSION, FRESH, "value", True, LabelProblem.WRONG_TYPE),
        (REGRESSION, FRESH, "value", "1.5", LabelProblem.WRONG_TYPE),  # JSON text is not a number
        (REGRESSION, FRESH, "label", "yes", LabelProblem.WRONG_TYPE),
    ],
)
def test_label_rules_table(rules: LabelRules, prediction_id: Any, name: str, truth: Any, reason: Any) -> None:
    found = rules.problem(prediction_id, name, truth, NOW.timestamp())
    assert (found[0] if found else None) == reason


def test_label_rules_time_future_beyond_skew_and_past_the_horizon() -> None:
    now = NOW.timestamp()
    (skewed,) = ids_at(NOW + timedelta(seconds=200))  # a client clock a little ahead: believed
    (future,) = ids_at(NOW + timedelta(minutes=10))
    (edge,) = ids_at(NOW - timedelta(days=7) + timedelta(seconds=1))
    (old,) = ids_at(NOW - timedelta(days=7, seconds=1))
    assert CLASSIFIER.problem(skewed, "label", "no", now) is None
    assert CLASSIFIER.problem(future, "label", "no", now)[0] is LabelProblem.FUTURE  # type: ignore[index]
    assert CLASSIFIER.problem(edge, "label", "no", now) is None
    reason, message = CLASSIFIER.problem(old, "label", "no", now)  # type: ignore[misc]
    assert reason is LabelProblem.PAST_HORIZON
    assert "horizon of 168 h" in message


def test_label_rules_horizon_comes_from_the_contract() -> None:
    document = {**CHURN, "monitoring": {**CHURN["monitoring"], "feedback": {"horizon_hours": 2}}}
    rules = LabelRules.from_contract(parse_contract(document).model_dump(mode="json"))
    (three_hours,) = ids_at(NOW - timedelta(hours=3))
    assert rules.horizon_hours == 2
    assert rules.problem(three_hours, "label", "no", NOW.timestamp())[0] is LabelProblem.PAST_HORIZON  # type: ignore[index]
    assert CLASSIFIER.problem(three_hours, "label", "no", NOW.timestamp()) is None


def test_label_rules_of_an_altered_contract_are_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        LabelRules.from_contract({"name": "x", "problem_type": "classification", "target": {}})


def test_feedback_horizon_default_keeps_the_contract_digest() -> None:
    # contracts written before monitoring.feedback existed keep their digest; another value changes it
    contract = parse_contract(CHURN)
    explicit = parse_contract({**CHURN, "monitoring": {**CHURN["monitoring"], "feedback": {"horizon_hours": 168}}})
    changed = parse_contract({**CHURN, "monitoring": {**CHURN["monitoring"], "feedback": {"horizon_hours": 24}}})
    assert contract.digest == "34085e43b745642cc37098e91ca85aa15cce50396da43aa1c75e653f4356eef0"
    assert explicit.digest == contract.digest
    assert changed.digest != contract.digest


@pytest.mark.parametrize("hours", [0, -1, 24 * 367])
def test_feedback_horizon_out_of_bounds_is_a_contract_error(hours: float) -> None:
    with pytest.raises(BadRequestError, match=r"monitoring\.feedback\.horizon_hours"):
        parse_contract({**CHURN, "monitoring": {"feedback": {"horizon_hours": hours}}})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "request body is empty"),
        ("{oops", "request body is not valid JSON"),
        ('[{"prediction_id": "x"}]', "request body must be {"),
        ('{"labels": {}}', "request body must be {"),
        ('{"labels": []}', "labels must not be empty"),
        ('{"labels": [], "labels": [1]}', 'duplicate field "labels"'),
    ],
)
def test_feedback_body_shape_errors(body: str | None, message: str) -> None:
    with pytest.raises(BadRequestError, match="^" + message.replace("{", r"\{").replace("[", r"\[")):
        parse_feedback_body(body)


def test_feedback_body_over_the_batch_limit_names_the_limit() -> None:
    body = json.dumps({"labels": [{"prediction_id": FRESH, "label": "no"}] * (MAX_LABELS_PER_REQUEST + 1)})
    with pytest.raises(BadRequestError, match=f"1001 labels in one request; at most {MAX_LABELS_PER_REQUEST}"):
        parse_feedback_body(body)
    assert len(parse_feedback_body(json.dumps({"labels": [{}] * MAX_LABELS_PER_REQUEST}))) == MAX_LABELS_PER_REQUEST


def test_judge_request_refuses_the_whole_request_naming_every_problem() -> None:
    ids = ids_at(NOW - timedelta(minutes=1), 4)
    items = [
        {"prediction_id": ids[0], "label": "yes"},
        {"prediction_id": ids[1], "label": "maybe"},
        "yes",
        {"prediction_id": ids[3]},
    ]
    with pytest.raises(LabelsRefused) as refused:
        judge_request(CLASSIFIER, items, NOW.timestamp())
    assert refused.value.total == 3
    assert [(p.index, p.prediction_id, p.reason) for p in refused.value.problems] == [
        (1, ids[1], LabelProblem.UNKNOWN_CLASS),
        (2, None, LabelProblem.NOT_AN_OBJECT),
        (3, ids[3], LabelProblem.MISSING),
    ]
    assert str(refused.value).startswith("3 of 4 labels refused, none recorded; labels[1]: label 'maybe' is not one")
    assert refused.value.http_status == 400


def test_judge_request_lists_problems_up_to_a_cap_and_counts_all() -> None:
    items = [{"prediction_id": "bad", "label": "yes"}] * (MAX_PROBLEMS_LISTED + 20)
    with pytest.raises(LabelsRefused) as refused:
        judge_request(CLASSIFIER, items, NOW.timestamp())
    assert len(refused.value.problems) == MAX_PROBLEMS_LISTED
    assert refused.value.details()["problems_total"] == MAX_PROBLEMS_LISTED + 20


def test_judge_request_absorbs_repeats_within_a_request_first_counts() -> None:
    a, b = ids_at(NOW - timedelta(minutes=1), 2)
    items = [
        {"prediction_id": a, "label": "yes"},
        {"prediction_id": b, "label": "no"},
        {"prediction_id": a, "label": "yes"},  # a duplicate
        {"prediction_id": b, "label": "yes"},  # a conflict: the first ("no") counts
    ]
    accepted = judge_request(CLASSIFIER, items, NOW.timestamp())
    assert (accepted.received, accepted.duplicates, accepted.conflicts) == (4, 1, 1)
    assert accepted.batch.prediction_ids == [a, b]
    assert accepted.batch.labels == ["yes", "no"]


def test_judge_request_stores_regression_values_as_floats() -> None:
    (a,) = ids_at(NOW - timedelta(minutes=1))
    accepted = judge_request(REGRESSION, [{"prediction_id": a, "value": 3}], NOW.timestamp())
    assert accepted.batch.labels == [3.0]
    assert isinstance(accepted.batch.labels[0], float)


class Registry:
    def __init__(self, contract: dict[str, Any] | None) -> None:
        self.contract = contract
        self.reads = 0

    def production(self, name: str) -> ServedVersion | None:
        self.reads += 1
        if name != "churn":
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        if self.contract is None:
            return None
        return ServedVersion("churn", 1, ServedArtifact("b", "k", "s", 1), self.contract)


def service(registry: Registry, store: InMemoryObjectStore) -> FeedbackService:
    return FeedbackService(LabelRulesCache(registry, ttl_seconds=60), store, "artifacts", clock=lambda: NOW)


def test_feedback_service_writes_one_object_per_prediction_minute() -> None:
    # GIVEN labels of predictions answered in two minutes, one sent twice
    early = ids_at(NOW - timedelta(minutes=3), 2)
    late = ids_at(NOW - timedelta(minutes=1), 1)
    labels = [{"prediction_id": i, "label": "yes"} for i in [*early, *late, early[0]]]
    store = InMemoryObjectStore()
    # WHEN they are recorded
    answer = service(Registry(CHURN), store).record("churn", json.dumps({"labels": labels}))
    # THEN the answer says what was accepted and absorbed, and each minute has its own object
    assert answer == {
        "model": "churn",
        "received": 4,
        "accepted": 3,
        "absorbed": {"duplicates": 1, "conflicts": 0},
        "label_objects": 2,
        "horizon_hours": 168.0,
    }
    keys = sorted(key for bucket, key in store.objects if bucket == "artifacts")
    assert len(keys) == 2
    assert keys[0].startswith(labels_minute_key("churn", prediction_minute(early[0])) + "-")
    assert keys[1].startswith(labels_minute_key("churn", prediction_minute(late[0])) + "-")
    batches = [decode_labels(store.get_bytes("artifacts", key)) for key in keys]
    assert batches[0].prediction_ids == early
    assert batches[0].received_at == [NOW.timestamp()] * 2
    assert {b.source for b in batches} == {"api"}
    # AND a retried request only adds duplicates, which the merge absorbs (first received counts)
    service(Registry(CHURN), store).record("churn", json.dumps({"labels": labels}))
    first_minute = labels_minute_key("churn", prediction_minute(early[0]))
    minute = [decode_labels(data) for (_, key), (data, _, _) in store.objects.items() if key.startswith(first_minute)]
    merged = merge_labels(minute)
    assert len(minute) == 2
    assert merged.labels == {early[0]: "yes", early[1]: "yes"}
    assert merged.duplicates == 2


def test_feedback_service_refused_request_writes_nothing() -> None:
    store = InMemoryObjectStore()
    (a,) = ids_at(NOW - timedelta(minutes=1))
    body = json.dumps({"labels": [{"prediction_id": a, "label": "yes"}, {"prediction_id": a[:-1], "label": "no"}]})
    with pytest.raises(LabelsRefused):
        service(Registry(CHURN), store).record("churn", body)
    assert store.objects == {}


def test_feedback_service_unknown_model_is_404_and_no_production_is_409() -> None:
    body = json.dumps({"labels": [{"prediction_id": FRESH, "label": "yes"}]})
    with pytest.raises(ModelNotFoundError):
        service(Registry(CHURN), InMemoryObjectStore()).record("nope", body)
    with pytest.raises(ConflictError, match="no production version"):
        service(Registry(None), InMemoryObjectStore()).record("churn", body)


def test_label_rules_cache_rereads_the_registry_after_its_ttl() -> None:
    registry = Registry(CHURN)
    clock = [0.0]
    cache = LabelRulesCache(registry, ttl_seconds=60, clock=lambda: clock[0])
    cache.get("churn")
    clock[0] = 59
    cache.get("churn")
    assert registry.reads == 1
    clock[0] = 61
    cache.get("churn")
    assert registry.reads == 2


class SlowStore(InMemoryObjectStore):
    """Each PUT takes `seconds` (S3's latency) and counts the PUTs in flight; `fail_on` raises for
    keys containing it."""

    def __init__(self, seconds: float, fail_on: str | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.fail_on = fail_on
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.seconds)
        with self.lock:
            self.in_flight -= 1
        if self.fail_on is not None and self.fail_on in key:
            raise OSError("S3 is unavailable")
        return super().put_bytes(bucket, key, data, content_type)


def spread_batch(minutes: int) -> LabelBatch:
    ids = [i for m in range(minutes) for i in ids_at(NOW - timedelta(minutes=m + 1))]
    return LabelBatch(ids, ["yes"] * minutes, [NOW.timestamp()] * minutes, "api")


def test_write_labels_puts_a_requests_minutes_in_parallel_in_minute_order() -> None:
    # GIVEN labels of 40 prediction minutes and a store whose PUT takes 20 ms
    store = SlowStore(0.02)
    keys = write_labels(store, "artifacts", "churn", spread_batch(40), NOW)
    # THEN 40 objects, keys in minute order, several PUTs at once but no more than the bound
    assert len(keys) == len(store.objects) == 40
    assert keys == sorted(keys)
    assert 2 <= store.most_in_flight <= WRITE_PARALLEL


def test_write_labels_failure_of_one_put_fails_the_call() -> None:
    batch = spread_batch(10)
    failing_minute = labels_minute_key("churn", prediction_minute(batch.prediction_ids[4])).rsplit("/", 1)[1]
    with pytest.raises(OSError, match="S3 is unavailable"):
        write_labels(SlowStore(0.001, fail_on=failing_minute), "artifacts", "churn", batch, NOW)
