"""Local mode's alarm rules: metric math, percentiles, missing data and composite rules, as CloudWatch
evaluates them (the runtime's wiring is tested in tests/integration/test_local_runtime.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops_local.alarm_rules import NotEmulatedError, parse_math, parse_rule
from mlops_local.alarms import AlarmSpec, MetricQuery, MetricStat, evaluate
from mlops_local.metrics import ApiRequest, Datapoint, MetricStore, api_datapoints, statistic

PERIOD = 300
NOW = 1_000_000 * PERIOD + 10  # 10 s into a period
STAGE = frozenset({("ApiName", "api"), ("Stage", "v1")})
RATE = "IF(requests >= 10, 100 * errors / requests, 0)"


def _spec(**overrides: object) -> AlarmSpec:
    base = AlarmSpec(
        logical_id="A",
        name="a",
        namespace="MLOps",
        metric_name="M",
        dimensions=frozenset({("service", "s")}),
        statistic="Sum",
        period=PERIOD,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        threshold=1,
        comparison="GreaterThanOrEqualToThreshold",
        treat_missing_data="missing",
        alarm_actions=(),
        ok_actions=(),
        insufficient_data_actions=(),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def _rate_alarm(**overrides: object) -> AlarmSpec:
    def stat(query_id: str, metric: str) -> MetricQuery:
        return MetricQuery(query_id, MetricStat("AWS/ApiGateway", metric, STAGE, "Sum", PERIOD), None, False)

    queries = (MetricQuery("rate", None, RATE, True), stat("errors", "5XXError"), stat("requests", "Count"))
    return _spec(
        namespace="",
        metric_name="",
        dimensions=frozenset(),
        statistic="",
        queries=queries,
        threshold=5,
        comparison="GreaterThanThreshold",
        **overrides,
    )


def _requests(store: MetricStore, statuses: list[int], *, at: float = NOW - 5, resource: str | None = "/p") -> None:
    for status in statuses:
        store.add(api_datapoints(ApiRequest("api", "v1", "POST", resource, status, 12.0, 10.0, at), detailed=True))


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        ([200] * 18 + [502] * 2, "ALARM"),  # 10 % of 20 requests
        ([200] * 19 + [502], "OK"),  # exactly 5 %: not greater than the threshold
        ([502] * 3, "OK"),  # 100 % of 3 requests: below the minimum, counted as 0 %
    ],
)
def test_metric_math_rate_alarm_divides_errors_by_requests(statuses: list[int], state: str) -> None:
    store = MetricStore()
    _requests(store, statuses)
    assert evaluate(_rate_alarm(), store, NOW, "INSUFFICIENT_DATA")[0] == state


def test_metric_math_without_any_request_is_missing_data_treated_as_declared() -> None:
    store = MetricStore()
    assert evaluate(_rate_alarm(treat_missing_data="notBreaching"), store, NOW, "ALARM")[0] == "OK"
    assert evaluate(_rate_alarm(), store, NOW, "OK")[0] == "INSUFFICIENT_DATA"


def test_metric_math_reads_exact_dimension_sets() -> None:
    # GIVEN 5xx answers recorded per method only (no stage-level datapoints)
    store = MetricStore()
    method = STAGE | {("Method", "POST"), ("Resource", "/p")}
    for _ in range(20):
        store.add([Datapoint("AWS/ApiGateway", "Count", method, 1, NOW - 5)])
        store.add([Datapoint("AWS/ApiGateway", "5XXError", method, 1, NOW - 5)])
    # THEN the stage-level alarm sees nothing: CloudWatch never matches a superset
    assert evaluate(_rate_alarm(), store, NOW, "INSUFFICIENT_DATA")[0] == "INSUFFICIENT_DATA"


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        ("100 * e / r", {"e": 1, "r": 4}, 25),
        ("e / r", {"e": 1, "r": 0}, None),  # no value, like CloudWatch's division by zero
        ("e + r", {"e": 1, "r": None}, None),  # a missing value propagates
        ("FILL(e, 0) + 1", {"e": None}, 1),
        ("IF(r > 2 AND NOT e, 7, -1)", {"e": 0, "r": 3}, 7),
        ("IF(r > 2 || e, 7)", {"e": 0, "r": 1}, None),
        ("ABS(e - r) ^ 2", {"e": 1, "r": 4}, 9),
        ("-(e) * 2 <= -2", {"e": 1}, 1),
    ],
)
def test_metric_math_expressions(expression: str, values: dict[str, float | None], expected: float | None) -> None:
    function, reads = parse_math(expression)
    assert reads <= set(values)
    assert function(values) == expected


@pytest.mark.parametrize(
    "expression", ["SEARCH('{AWS/Lambda} Errors', 'Sum', 300)", "ANOMALY_DETECTION_BAND(m1)", "m1 +"]
)
def test_metric_math_not_emulated_is_refused_by_name(expression: str) -> None:
    with pytest.raises(NotEmulatedError):
        parse_math(expression)


def test_percentile_is_the_nearest_rank_of_the_raw_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert statistic(values, "p99") == 99
    assert statistic(values, "p50") == 50
    assert statistic(values, "p99.9") == 100
    assert statistic([7.0], "p99") == 7


def test_p99_latency_alarm_needs_three_slow_periods_in_a_row() -> None:
    # GIVEN a p99 alarm over 3 periods, and one request of 2.5 s among 99 fast ones in the newest period
    method = STAGE | {("Method", "POST"), ("Resource", "/p")}
    spec = _spec(
        namespace="AWS/ApiGateway",
        metric_name="Latency",
        dimensions=method,
        statistic="p99",
        evaluation_periods=3,
        datapoints_to_alarm=3,
        threshold=1000,
        comparison="GreaterThanThreshold",
        treat_missing_data="notBreaching",
    )
    store = MetricStore()

    def period(start: float, slow: int) -> None:
        store.add([Datapoint("AWS/ApiGateway", "Latency", method, 20.0, start + 1) for _ in range(100 - slow)])
        store.add([Datapoint("AWS/ApiGateway", "Latency", method, 2500.0, start + 2) for _ in range(slow)])

    newest = NOW - 10
    period(newest, 1)
    # THEN one slow request in a hundred is not the p99 (nearest rank 99 is fast)
    assert evaluate(spec, store, NOW, "OK")[0] == "OK"
    # WHEN two slow requests in each of the last three periods
    for index in range(3):
        period(newest - index * PERIOD, 2)
    # THEN the p99 of each period is slow and the alarm goes to ALARM
    state, reason = evaluate(spec, store, NOW, "OK")
    assert state == "ALARM", reason


def test_low_sample_count_percentile_ignored_keeps_the_state() -> None:
    spec = _spec(statistic="p99", threshold=100, low_sample_count="ignore")
    store = MetricStore()
    store.add([Datapoint("MLOps", "M", frozenset({("service", "s")}), 500.0, NOW - 5)])  # 1 sample < 1000 needed
    assert evaluate(spec, store, NOW, "OK")[0] == "OK"
    assert evaluate(replace(spec, low_sample_count=""), store, NOW, "OK")[0] == "ALARM"


def test_missing_data_ignored_keeps_the_state_until_a_scored_window() -> None:
    spec = _spec(statistic="Maximum", treat_missing_data="ignore", period=3600)
    store = MetricStore()
    assert evaluate(spec, store, NOW, "INSUFFICIENT_DATA")[0] == "INSUFFICIENT_DATA"
    assert evaluate(spec, store, NOW, "ALARM")[0] == "ALARM"
    store.add([Datapoint("MLOps", "M", frozenset({("service", "s")}), 0.0, NOW - 1)])
    assert evaluate(spec, store, NOW, "ALARM")[0] == "OK"


def test_an_alarm_local_mode_cannot_evaluate_stays_insufficient_data() -> None:
    state, reason = evaluate(_spec(problem="not evaluated locally: SEARCH"), MetricStore(), NOW, "OK")
    assert (state, reason) == ("INSUFFICIENT_DATA", "not evaluated locally: SEARCH")


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({"a": "OK", "b": "OK", "c": "OK"}, False),
        ({"a": "ALARM", "b": "OK", "c": "OK"}, True),
        ({"a": "OK", "b": "ALARM", "c": "OK"}, False),  # b counts only while c is not OK
        ({"a": "OK", "b": "ALARM", "c": "INSUFFICIENT_DATA"}, True),
        ({"a": "INSUFFICIENT_DATA", "b": "INSUFFICIENT_DATA", "c": "INSUFFICIENT_DATA"}, False),
    ],
)
def test_composite_rule_and_or_not_parentheses(states: dict[str, str], expected: bool) -> None:
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"
    rule, names = parse_rule(f'ALARM("{arn}") OR (ALARM(b) AND NOT OK("c"))')
    assert names == [arn, "b", "c"]
    assert rule({arn: states["a"], "b": states["b"], "c": states["c"]}) is expected


def test_composite_rule_constants_and_errors() -> None:
    assert parse_rule("TRUE AND NOT FALSE")[0]({}) is True
    for broken in ("ALARM(a) OR", "ALARM(a", "AT_LEAST(2, ALARM, (a, b))", "alarm(a)"):
        with pytest.raises(NotEmulatedError):
            parse_rule(broken)


def test_api_datapoints_per_stage_and_per_method() -> None:
    request = ApiRequest("api", "v1", "POST", "/models/{name}/predict", 502, 30.0, 25.0, NOW)
    points = api_datapoints(request, detailed=True)
    by_set: dict[frozenset[tuple[str, str]], dict[str, float]] = {}
    for point in points:
        by_set.setdefault(point.dimensions, {})[point.name] = point.value
    method = STAGE | {("Method", "POST"), ("Resource", "/models/{name}/predict")}
    assert by_set == {
        s: {"Count": 1, "4XXError": 0, "5XXError": 1, "Latency": 30.0, "IntegrationLatency": 25.0}
        for s in (STAGE, method)
    }
    assert {p.dimensions for p in api_datapoints(request, detailed=False)} == {STAGE}
