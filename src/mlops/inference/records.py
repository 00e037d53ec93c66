"""Request records checked against the contract, and turned into ONNX feed columns in one pass.

`RecordValidator` is compiled once per contract: a flat tuple of feature specs walked with plain
type checks (no pydantic per record: this is the hot path of every prediction). Rules:

- the batch is a non-empty JSON list of at most `max_records` objects;
- every feature is present; a nullable one may be null or missing (fed as NaN for numbers and
  booleans, `MISSING_CATEGORY` for categories: what the training imputers fill);
- numbers are finite ints/floats (NaN and +-Infinity, which Python's json accepts, are rejected;
  so are booleans) within the contract's min/max, and, for a feature the graph takes as float32,
  within float32's range (a larger number would be fed as +-inf);
- booleans are true/false (not 0/1, not strings);
- categories are strings: among the declared categories, or any string when the contract declares
  none (open vocabulary); an empty string or `MISSING_CATEGORY` is a null.
What a feature accepts is `mlops.contract_rules.FeatureRule`'s statement (the dataset checks and
training read it too); this module only compiles it for speed. Fields that are not features are
ignored (clients may send ids; they are never captured).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mlops.contract_rules import (
    FLOAT32_MAX,
    FLOAT64_MAX,
    MISSING_CATEGORY,
    NULL_CATEGORY_TEXTS,
    FeatureRule,
    FeatureType,
)
from mlops.errors import BadRequestError, RecordError, RejectionReason

_NUMERIC, _BOOLEAN, _CATEGORICAL = 0, 1, 2
_KINDS = {FeatureType.NUMERIC: _NUMERIC, FeatureType.BOOLEAN: _BOOLEAN, FeatureType.CATEGORICAL: _CATEGORICAL}
_MISSING: Any = object()
_NAN = math.nan


class HasFeatureRules(Protocol):
    """A contract (`mlops.contract.Contract`) or predict's light view of one (`ServingContract`)."""

    @property
    def feature_rules(self) -> Sequence[FeatureRule]: ...


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: int
    nullable: bool
    low: float  # the contract's bounds narrowed to the feed's range: one comparison per value
    high: float
    categories: frozenset[str] | None  # None: any string (open vocabulary)
    limit: float  # the feed dtype's largest magnitude (float32 or float64)
    contract_low: float
    contract_high: float


@dataclass(frozen=True)
class Columns:
    """A validated batch: one list of values per feature (contract order), and the rows themselves."""

    names: tuple[str, ...]
    values: tuple[list[Any], ...]
    rows: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.rows)


class RecordValidator:
    """Checks a batch of JSON records against one contract; compiled once, reused per request."""

    def __init__(
        self, contract: HasFeatureRules, max_records: int = 1_000, *, float64_inputs: Collection[str] = ()
    ) -> None:
        """Numeric features are bounded to float32's range unless named in `float64_inputs`
        (the graph's tensor(double) inputs)."""
        self.max_records = max_records
        self._specs = tuple(
            _spec(rule, FLOAT64_MAX if rule.name in float64_inputs else FLOAT32_MAX) for rule in contract.feature_rules
        )
        self.names = tuple(spec.name for spec in self._specs)

    def validate(self, records: Any) -> Columns:
        """Raise BadRequestError for a malformed batch, RecordError naming `records[i].field`."""
        if type(records) is not list:
            raise BadRequestError(f"records must be a JSON list of objects, got {_kind(records)}")
        if not records:
            raise BadRequestError("records must not be empty")
        if len(records) > self.max_records:
            raise BadRequestError(f"at most {self.max_records} records per request, got {len(records)}")
        specs = self._specs
        columns: tuple[list[Any], ...] = tuple([] for _ in specs)
        for index, record in enumerate(records):
            if type(record) is not dict:
                raise RecordError(
                    f"records[{index}]: expected an object, got {_kind(record)}", reason=RejectionReason.WRONG_TYPE
                )
            for spec, column in zip(specs, columns, strict=True):
                value = record.get(spec.name, _MISSING)
                kind = spec.kind
                if kind == _NUMERIC:
                    value_type = type(value)
                    if value_type is float:
                        if value != value:
                            raise _bad(index, spec, "expected a finite number", value, RejectionReason.WRONG_TYPE)
                        if value in (math.inf, -math.inf):
                            raise _bad(index, spec, "expected a finite number", value, RejectionReason.OUT_OF_RANGE)
                    elif value_type is int:
                        if not -FLOAT64_MAX <= value <= FLOAT64_MAX:
                            raise _bad(index, spec, "expected a finite number", value, RejectionReason.OUT_OF_RANGE)
                        value = float(value)
                    else:
                        column.append(_null(index, spec, value, _NAN, "expected a number"))
                        continue
                    if not spec.low <= value <= spec.high:
                        raise _out_of_range(index, spec, value)
                    column.append(value)
                elif kind == _CATEGORICAL:
                    if type(value) is str:
                        if value in NULL_CATEGORY_TEXTS:
                            column.append(_null(index, spec, None, MISSING_CATEGORY, "expected a string"))
                        elif spec.categories is None or value in spec.categories:
                            column.append(value)
                        else:
                            raise _bad(
                                index,
                                spec,
                                f"expected one of {sorted(spec.categories)}",
                                value,
                                RejectionReason.UNSEEN_CATEGORY,
                            )
                    else:
                        column.append(_null(index, spec, value, MISSING_CATEGORY, "expected a string"))
                elif value is True:
                    column.append(1.0)
                elif value is False:
                    column.append(0.0)
                else:
                    column.append(_null(index, spec, value, _NAN, "expected true or false"))
        return Columns(self.names, columns, records)

    def problems(self, records: list[Any]) -> list[RecordError]:
        """Each refused record's first problem (a batch `validate` refused with a RecordError):
        what predict counts per field and reason. Slow path: one record at a time."""
        found = []
        for index, record in enumerate(records):
            try:
                self.validate([record])
            except RecordError as error:
                found.append(error)
            except BadRequestError:  # cannot happen for one record; a future rule must not hide the others
                found.append(RecordError(f"records[{index}]: refused"))
        return found


def _spec(rule: FeatureRule, limit: float) -> _Spec:
    low, high = rule.feed_bounds(limit)
    contract_low, contract_high = rule.bounds
    return _Spec(
        name=rule.name,
        kind=_KINDS[rule.type],
        nullable=rule.nullable,
        low=low,
        high=high,
        categories=rule.allowed,
        limit=limit,
        contract_low=contract_low,
        contract_high=contract_high,
    )


def _out_of_range(index: int, spec: _Spec, value: float) -> RecordError:
    """The contract's range when the value breaks it, else the range of the dtype the graph takes."""
    low, high = spec.contract_low, spec.contract_high
    if not low <= value <= high:
        return _bad(index, spec, f"expected a number in [{low:g}, {high:g}]", value, RejectionReason.OUT_OF_RANGE)
    dtype = "float32" if spec.limit == FLOAT32_MAX else "float64"
    return RecordError(
        f"records[{index}].{spec.name}: {value:g} is outside the {dtype} range the model takes",
        field=spec.name,
        reason=RejectionReason.OUT_OF_RANGE,
    )


def _null(index: int, spec: _Spec, value: Any, null_value: Any, expected: str) -> Any:
    """The value fed for a null/missing cell, or the error for a value of the wrong type."""
    if value is _MISSING:
        if spec.nullable:
            return null_value
        raise RecordError(
            f"records[{index}].{spec.name}: required field is missing", field=spec.name, reason=RejectionReason.MISSING
        )
    if value is None:
        if spec.nullable:
            return null_value
        raise RecordError(
            f"records[{index}].{spec.name}: must not be null", field=spec.name, reason=RejectionReason.MISSING
        )
    raise _bad(index, spec, expected, value, RejectionReason.WRONG_TYPE)


def _bad(index: int, spec: _Spec, expected: str, value: Any, reason: RejectionReason) -> RecordError:
    return RecordError(f"records[{index}].{spec.name}: {expected}, got {_show(value)}", field=spec.name, reason=reason)


def _show(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")
