"""The registry adapter's read path decodes DynamoDB attribute values without boto3, exactly as
boto3's TypeDeserializer followed by `from_dynamo` does."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import DYNAMODB_CONTEXT, Binary, TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from mlops.adapters.registry_dynamodb import to_dynamo
from mlops.adapters.registry_items import _NUMBERS, from_dynamo
from mlops.adapters.registry_items import from_attribute as _from_attribute
from mlops.adapters.registry_items import from_item as _from_item

ROOT = Path(__file__).resolve().parents[2]

# What the adapter writes: to_dynamo's inputs (NaN/Infinity become strings on the way in).
# Finite floats within DynamoDB's number range (boto3 refuses the others when writing).
_floats = st.floats().filter(lambda f: not math.isfinite(f) or f == 0 or 1e-128 < abs(f) < 1e125)
_scalars = st.none() | st.booleans() | st.text(max_size=8) | st.integers(-(10**30), 10**30) | _floats
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def _boto3_read(attribute: dict[str, Any]) -> Any:
    return from_dynamo(TypeDeserializer().deserialize(attribute))


def _same(left: Any, right: Any) -> bool:
    return type(left) is type(right) and (left == right or (isinstance(left, float) and math.isnan(left)))


@given(_values)
def test_from_attribute_matches_boto3_for_everything_the_adapter_writes(value: Any) -> None:
    attribute = TypeSerializer().serialize(to_dynamo(value))
    ours, theirs = _from_attribute(attribute), _boto3_read(attribute)
    assert ours == theirs
    assert repr(ours) == repr(theirs)  # same types all the way down (1 vs 1.0, True vs 1)


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ({"S": ""}, ""),
        ({"N": "3"}, 3),
        ({"N": "-0"}, 0),
        ({"N": "1E+2"}, 100),
        ({"N": "0.1"}, 0.1),
        ({"N": "12345678901234567890123456789012345678"}, 12345678901234567890123456789012345678),
        ({"BOOL": False}, False),
        ({"NULL": True}, None),
        ({"L": []}, []),
        ({"M": {}}, {}),
        ({"M": {"a": {"L": [{"N": "1.5"}, {"NULL": True}]}}}, {"a": [1.5, None]}),
        # types the adapter never writes go through boto3's deserializer
        ({"SS": ["a", "b"]}, {"a", "b"}),
        ({"NS": ["1", "2.5"]}, {Decimal("1"), Decimal("2.5")}),
        ({"B": b"\x00"}, Binary(b"\x00")),
    ],
)
def test_from_attribute_decodes_each_type(attribute: dict[str, Any], expected: Any) -> None:
    assert _same(_from_attribute(attribute), expected)
    assert _same(_boto3_read(attribute), expected)


def _outcome(read: Any, attribute: dict[str, Any]) -> Any:
    try:
        return read(attribute)
    except Exception as error:  # the outcome is what is compared
        return type(error)


@pytest.mark.parametrize(
    "attribute",
    [
        {},
        {"S": "a", "N": "1"},
        {"XX": "1"},
        {"NULL": False},
        {"N": "x"},
        {"N": "1" * 39},
        {"N": "1e-200"},
        {"N": "1e200"},
    ],
)
def test_from_attribute_handles_malformed_values_as_boto3_does(attribute: dict[str, Any]) -> None:
    assert repr(_outcome(_from_attribute, attribute)) == repr(_outcome(_boto3_read, attribute))


def test_numbers_use_boto3s_decimal_context() -> None:
    assert repr(_NUMBERS) == repr(DYNAMODB_CONTEXT)


def test_from_item_decodes_every_attribute() -> None:
    item = {"pk": {"S": "MODEL#churn"}, "production_version": {"N": "4"}, "aliases": {"M": {}}}
    assert _from_item(item) == {"pk": "MODEL#churn", "production_version": 4, "aliases": {}}


def test_importing_the_adapter_does_not_import_boto3() -> None:
    # GIVEN a fresh interpreter WHEN the adapter is imported THEN boto3 (~15 ms of cold start) is not
    code = "import sys, mlops.adapters.registry_dynamodb; assert 'boto3' not in sys.modules, 'boto3 imported'"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
