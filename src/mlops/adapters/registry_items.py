"""The registry table's keys and its item codec, without the registry's records or rules.

`registry_dynamodb` (the whole registry) and `served_versions_dynamodb` (predict's read of the
production version) share them; this module imports neither pydantic nor boto3, so predict's
cold start pays for neither (item layout in docs/DESIGN.md, "Registry table").
"""

from __future__ import annotations

from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

MODEL_SK = "MODEL"
VERSION_PREFIX = "VERSION#"
# DynamoDB's numbers: 38 digits, exponents -130..125 (the context boto3's (de)serializer uses).
_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def model_pk(name: str) -> str:
    return f"MODEL#{name}"


def version_sk(version: int) -> str:
    return f"{VERSION_PREFIX}{version:010d}"


def item_key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute values) -> a plain dict."""
    return {key: from_attribute(value) for key, value in item.items()}


def from_attribute(attribute: dict[str, Any]) -> Any:
    """One DynamoDB attribute value -> plain Python, as `from_dynamo(TypeDeserializer().deserialize(...))`.

    The types the registry writes (S, N, BOOL, NULL, M, L) are decoded here with the standard
    library alone; any other (sets, binary) goes through boto3's deserializer."""
    if len(attribute) == 1:
        ((tag, value),) = attribute.items()
        if tag == "S" or tag == "BOOL":
            return value
        if tag == "N":
            return from_dynamo(_NUMBERS.create_decimal(value))
        if tag == "M":
            return {key: from_attribute(item) for key, item in value.items()}
        if tag == "L":
            return [from_attribute(item) for item in value]
        if tag == "NULL" and value is True:
            return None
    from boto3.dynamodb.types import TypeDeserializer  # rare types only: boto3 costs ~15 ms to import

    return from_dynamo(TypeDeserializer().deserialize(attribute))


def from_dynamo(value: Any) -> Any:
    """DynamoDB values -> plain Python: integral numbers become int, others float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value
