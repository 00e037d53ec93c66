"""The request record validator: table-driven rules, messages naming record index and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.contract import parse_contract
from mlops.errors import BadRequestError, RecordError
from mlops.inference.records import RecordValidator
from mlops.inference.service import parse_records
from mlops.training.onnx_io import MISSING_CATEGORY

CONTRACT = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())
GOOD: dict[str, Any] = {
    "tenure_months": 12,
    "monthly_charges": 70.5,
    "support_calls": 2,
    "data_usage_gb": 3.5,
    "plan": "basic",
    "region": "north",
    "autopay": True,
}


def with_(**changes: Any) -> dict[str, Any]:
    record = dict(GOOD)
    for name, value in changes.items():
        if value is _DROP:
            del record[name]
        else:
            record[name] = value
    return record


_DROP = object()


@pytest.fixture(scope="module")
def validator() -> RecordValidator:
    return RecordValidator(CONTRACT, max_records=5)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([with_(tenure_months=_DROP)], "records[0].tenure_months: required field is missing"),
        ([GOOD, GOOD, GOOD, with_(tenure_months="abc")], "records[3].tenure_months: expected a number, got 'abc'"),
        ([with_(tenure_months=None)], "records[0].tenure_months: must not be null"),
        ([with_(monthly_charges=float("nan"))], "records[0].monthly_charges: expected a finite number, got NaN"),
        ([with_(monthly_charges=float("inf"))], "records[0].monthly_charges: expected a finite number, got Infinity"),
        ([with_(monthly_charges=float("-inf"))], "records[0].monthly_charges: expected a finite number, got -Infinity"),
        ([with_(monthly_charges="Infinity")], "records[0].monthly_charges: expected a number, got 'Infinity'"),
        ([with_(support_calls=10**400)], "records[0].support_calls: expected a finite number"),
        ([with_(tenure_months=-1)], "records[0].tenure_months: expected a number in [0, 240], got -1"),
        ([with_(tenure_months=True)], "records[0].tenure_months: expected a number, got true"),
        ([with_(autopay=1)], "records[0].autopay: expected true or false, got 1"),
        ([with_(autopay="true")], "records[0].autopay: expected true or false, got 'true'"),
        ([with_(plan="gold")], "records[0].plan: expected one of ['basic', 'premium', 'standard'], got 'gold'"),
        ([with_(plan=3)], "records[0].plan: expected a string, got 3"),
        ([with_(region=None)], "records[0].region: must not be null"),
        ([GOOD, "x"], "records[1]: expected an object, got a string"),
        ([GOOD, [1, 2]], "records[1]: expected an object, got a list"),
        ([with_(plan={"a": 1})], "records[0].plan: expected a string, got an object"),
    ],
)
def test_validator_rejects_bad_records_naming_index_and_field(
    validator: RecordValidator, records: list[Any], message: str
) -> None:
    with pytest.raises(RecordError) as raised:
        validator.validate(records)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([], "records must not be empty"),
        ([GOOD] * 6, "at most 5 records per request, got 6"),
        ({"records": []}, "records must be a JSON list of objects, got an object"),
        (None, "records must be a JSON list of objects, got null"),
        ("abc", "records must be a JSON list of objects, got a string"),
    ],
)
def test_validator_rejects_bad_batches(validator: RecordValidator, records: Any, message: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        validator.validate(records)
    assert str(raised.value) == message
    assert raised.value.http_status == 400


@pytest.mark.parametrize("null", [None, _DROP])
def test_validator_accepts_null_or_missing_nullable_feature(validator: RecordValidator, null: object) -> None:
    columns = validator.validate([with_(data_usage_gb=null)])
    usage = columns.values[columns.names.index("data_usage_gb")]
    assert usage[0] != usage[0]  # NaN: the graph's imputer fills it


def test_validator_builds_columns_in_contract_order(validator: RecordValidator) -> None:
    columns = validator.validate([GOOD, with_(autopay=False, tenure_months=0, extra_id="ignored")])
    assert columns.names == tuple(CONTRACT.feature_names)
    by_name = dict(zip(columns.names, columns.values, strict=True))
    assert by_name["tenure_months"] == [12.0, 0.0]
    assert by_name["autopay"] == [1.0, 0.0]
    assert by_name["plan"] == ["basic", "basic"]
    assert len(columns) == 2


def test_validator_feeds_missing_category_for_nullable_categorical() -> None:
    document = json.loads(CONTRACT.canonical_json())
    for feature in document["features"]:
        if feature["name"] == "region":
            feature["nullable"] = True
    columns = RecordValidator(parse_contract(document)).validate([with_(region=None)])
    assert columns.values[columns.names.index("region")] == [MISSING_CATEGORY]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "request body is empty"),
        ("  ", "request body is empty"),
        ("{not json", "request body is not valid JSON"),
        ("[" * 100_000, "request body is not valid JSON"),
        ("1" * 5_000, "request body is not valid JSON"),
        ('{"rows": []}', 'request body must be {"records": [...]}'),
        ('"text"', 'request body must be {"records": [...]}'),
    ],
)
def test_parse_records_rejects_bad_bodies(body: str | None, message: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        parse_records(body)
    assert str(raised.value).startswith(message)


def test_parse_records_accepts_wrapped_and_bare_lists() -> None:
    assert parse_records('{"records": [{"a": 1}]}') == [{"a": 1}]
    assert parse_records('[{"a": 1}]') == [{"a": 1}]


def test_parse_records_reads_nan_literals_so_the_validator_can_name_them(validator: RecordValidator) -> None:
    # Python's json accepts NaN/Infinity literals: the validator must still reject them
    records = parse_records('[{"tenure_months": 1, "monthly_charges": Infinity}]')
    with pytest.raises(RecordError, match=r"records\[0\]\.monthly_charges: expected a finite number, got Infinity"):
        validator.validate([{**GOOD, **records[0]}])


def test_parse_records_rejects_bad_base64() -> None:
    with pytest.raises(BadRequestError, match="base64"):
        parse_records("***", is_base64=True)


def regression_contract(**x: Any) -> Any:
    """One numeric feature `x` (bounds from `x`), as a regression contract takes it."""
    document = json.loads(CONTRACT.canonical_json())
    document.update(
        name="unbounded",
        problem_type="regression",
        target={"name": "y"},
        features=[{"name": "x", "type": "numeric", **x}],
        estimator={"name": "ridge", "params": {}},
        metric={"name": "r2", "at_least": 0.5},
    )
    return parse_contract(document)


@pytest.mark.parametrize(
    ("bounds", "value", "message"),
    [
        ({}, 1e39, "records[0].x: 1e+39 is outside the float32 range the model takes"),
        ({}, -1e39, "records[0].x: -1e+39 is outside the float32 range the model takes"),
        ({}, 10**39, "records[0].x: 1e+39 is outside the float32 range the model takes"),
        ({}, 3.4028235e38, "records[0].x: 3.40282e+38 is outside the float32 range the model takes"),
        ({"min": -1e40}, -1e39, "records[0].x: -1e+39 is outside the float32 range the model takes"),
        # a value the contract forbids anyway is named by the contract's rule
        ({"max": 100}, 1e39, "records[0].x: expected a number in [-inf, 100], got 1e+39"),
    ],
)
def test_validator_rejects_numbers_beyond_float32_for_float_inputs(
    bounds: dict[str, float], value: float, message: str
) -> None:
    validator = RecordValidator(regression_contract(**bounds))
    with pytest.raises(RecordError) as raised:
        validator.validate([{"x": value}])
    assert str(raised.value) == message


@pytest.mark.parametrize("value", [3.4028234663852886e38, -3.4028234663852886e38, 0.0, 1e-45])
def test_validator_accepts_the_float32_extremes(value: float) -> None:
    assert RecordValidator(regression_contract()).validate([{"x": value}]).values == ([value],)


def test_validator_accepts_float64_range_for_double_inputs() -> None:
    validator = RecordValidator(regression_contract(), float64_inputs={"x"})
    assert validator.validate([{"x": 1e39}]).values == ([1e39],)
    with pytest.raises(RecordError, match=r"records\[0\]\.x: expected a finite number"):
        validator.validate([{"x": 10**400}])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # the first, invalid value would be dropped by a plain json.loads and never checked
        ('{"records": [{"tenure_months": "abc", "plan": "basic", "tenure_months": 240}]}', "tenure_months"),
        ('[{"tenure_months": "abc", "tenure\\u005fmonths": 240}]', "tenure_months"),
        ('{"records": [{"plan": "gold"}], "records": [{"plan": "basic"}]}', "records"),
        ('{"records": [{"plan": {"a": 1, "a": 2}}]}', "a"),
    ],
)
def test_parse_records_rejects_duplicate_keys_naming_the_field(body: str, field: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        parse_records(body)
    assert raised.value.http_status == 400
    assert f'"{field}"' in str(raised.value)
    assert "duplicate" in str(raised.value)


def test_parse_records_accepts_the_same_key_in_different_records() -> None:
    assert parse_records('[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
