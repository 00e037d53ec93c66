"""The contract's plain rules, stdlib only: its enums, its name pattern and each feature's input rules.

`FeatureRule` is the one statement of what a value of a feature may be and how it reaches the
model. Dataset checks (`mlops.validation`), training (`mlops.training`: reader, feed, one-hot
categories) and request validation (`mlops.inference.records`) all read a feature through it,
and the pydantic `Feature` of `mlops.contract` checks a contract document with it. No pydantic and
no numpy here: the predict function imports this on its cold-start path.

- numeric: a finite number, within [min, max] where the contract sets them. The graph takes
  float32 (`FLOAT32_MAX`), so a larger magnitude cannot reach it (it would be fed as +-inf);
- boolean: true or false (fed as 1.0/0.0). Dataset text spells them `BOOLEAN_TEXT`; a request,
  typed JSON, sends true/false;
- categorical: text. With `categories` declared, one of them; without (open vocabulary), any
  text: the one-hot encoder learns the values of the training data and ignores any other at
  prediction time (it then counts as none of them);
- null: a null, a missing field, an empty text cell (or the reserved `MISSING_CATEGORY` text):
  allowed for nullable features only; fed as NaN (numbers, booleans: the graph's median imputer
  fills it) or `MISSING_CATEGORY` (categories: the training imputer's constant).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MODEL_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
COLUMN_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
# a registry alias (`staging`, `challenger`, ...); here (stdlib only) because predict checks pins too
ALIAS_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
_ALIAS_RE = re.compile(ALIAS_PATTERN)

MISSING_CATEGORY = "__missing__"  # a null category as the graph sees it; also the profiles' null bucket
FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32: the graph's numeric inputs
FLOAT64_MAX = 1.7976931348623157e308
NULL_CATEGORY_TEXTS = frozenset({"", MISSING_CATEGORY})  # category texts that stand for a null
DEFAULT_FEEDBACK_HORIZON_HOURS = 7 * 24.0  # how late a label may arrive (mlops.feedback) unless the contract says
DEFAULT_CAPTURE_SAMPLE_RATE = 1.0  # share of predictions captured for drift when the contract says nothing
BOOLEAN_TEXT: dict[str, bool] = {"true": True, "false": False, "1": True, "0": False}  # after trim + lower


class ProblemType(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class FeatureType(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


def is_valid_model_name(name: str) -> bool:
    return bool(_MODEL_NAME_RE.fullmatch(name))


def is_valid_alias(alias: object) -> bool:
    return isinstance(alias, str) and bool(_ALIAS_RE.fullmatch(alias))


def is_null_category(text: str) -> bool:
    """An empty text cell, or the reserved null bucket itself: both reach the graph as a null."""
    return text in NULL_CATEGORY_TEXTS


@dataclass(frozen=True)
class FeatureRule:
    """What one feature accepts. Raises ValueError when the declaration contradicts itself."""

    name: str
    type: FeatureType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None  # None: open vocabulary (any text)
    allowed: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type is not FeatureType.NUMERIC and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max apply only to numeric features, not {self.type.value}")
        if self.type is not FeatureType.CATEGORICAL and self.categories is not None:
            raise ValueError(f"categories apply only to categorical features, not {self.type.value}")
        for bound in (self.min, self.max):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("min and max must be finite numbers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.categories is not None:
            if not self.categories or len(set(self.categories)) != len(self.categories):
                raise ValueError("categories must be a non-empty list without duplicates")
            if reserved := [c for c in self.categories if is_null_category(c)]:
                raise ValueError(f"categories must not include {reserved[0]!r}: it stands for a null")
        object.__setattr__(self, "allowed", None if self.categories is None else frozenset(self.categories))

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> FeatureRule:
        """A rule from a feature of a contract document (JSON types; other keys are ignored)."""
        categories = document.get("categories")
        return cls(
            name=str(document["name"]),
            type=FeatureType(document["type"]),
            nullable=bool(document.get("nullable", False)),
            min=_opt_float(document.get("min")),
            max=_opt_float(document.get("max")),
            categories=None if categories is None else tuple(str(c) for c in categories),
        )

    @property
    def open_vocabulary(self) -> bool:
        return self.type is FeatureType.CATEGORICAL and self.categories is None

    def allows_category(self, text: str) -> bool:
        """Whether a (non-null) text is an accepted value of this categorical feature."""
        return self.allowed is None or text in self.allowed

    def encoder_categories(self, training_values: Iterable[str]) -> list[str]:
        """The one-hot encoder's categories: the declared ones, else the values training saw."""
        return list(self.categories) if self.categories is not None else sorted(set(training_values))

    @property
    def bounds(self) -> tuple[float, float]:
        """The contract's [min, max], open ends as -+inf."""
        return (-math.inf if self.min is None else self.min, math.inf if self.max is None else self.max)

    def feed_bounds(self, limit: float = FLOAT32_MAX) -> tuple[float, float]:
        """The contract's bounds narrowed to what the graph's input dtype can hold."""
        low, high = self.bounds
        return max(low, -limit), min(high, limit)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
