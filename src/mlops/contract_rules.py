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

import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MODEL_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
# A column is named as in the file: any text CSV and Parquet allow, except control characters and
# names of only spaces, up to MAX_COLUMN_NAME_LENGTH characters. Where an identifier is needed (the
# ONNX graph's inputs), `input_name` maps it to one.
MAX_COLUMN_NAME_LENGTH = 256
COLUMN_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
_COLUMN_NAME_RE = re.compile(COLUMN_NAME_PATTERN)
# names that are already identifiers are their own input name (models trained before names were free)
INPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
_INPUT_NAME_RE = re.compile(INPUT_NAME_PATTERN)
_NOT_IDENTIFIER_RE = re.compile(r"[^A-Za-z0-9]+")
_INPUT_SLUG_LENGTH = 48
# a registry alias (`staging`, `challenger`, ...); here (stdlib only) because predict checks pins too
ALIAS_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
_ALIAS_RE = re.compile(ALIAS_PATTERN)

MISSING_CATEGORY = "__missing__"  # a null category as the graph sees it; also the profiles' null bucket
FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32: the graph's numeric inputs
FLOAT64_MAX = 1.7976931348623157e308
NULL_CATEGORY_TEXTS = frozenset({"", MISSING_CATEGORY})  # category texts that stand for a null
DEFAULT_FEEDBACK_HORIZON_HOURS = 7 * 24.0  # how late a label may arrive (mlops.feedback) unless the contract says
DEFAULT_CAPTURE_SAMPLE_RATE = 1.0  # share of predictions captured for drift when the contract says nothing
# Cells a CSV reader reads as null (empty, and the usual spellings of "missing"); "NaN" is not one
# of them: it parses as a number and fails the finite check. Dataset checks and batch scoring read it.
CSV_NULL_TEXT = ("", "NULL", "null", "NA", "N/A")
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


def column_name_problem(name: str) -> str | None:
    """Why `name` cannot name a column (None when it can)."""
    if len(name) > MAX_COLUMN_NAME_LENGTH:
        return f"column name {name[:40]!r}... is {len(name)} characters long; at most {MAX_COLUMN_NAME_LENGTH}"
    if not _COLUMN_NAME_RE.fullmatch(name):
        return f"column name {name!r} is empty, blank or holds a control character"
    return None


def input_name(column: str) -> str:
    """The identifier that stands for a column wherever a name must be one (ONNX graph inputs).

    Deterministic and stdlib-only (predict computes it): an identifier (`INPUT_NAME_PATTERN`) is
    itself; any other name becomes an ASCII slug of it plus 10 hex of its SHA-256, e.g.
    "mean radius" -> "mean_radius_<hex>". A slug cannot equal another identifier by accident; the
    contract still refuses two columns with one input name (`duplicate_input_names`).
    """
    if _INPUT_NAME_RE.fullmatch(column):
        return column
    ascii_text = unicodedata.normalize("NFKD", column).encode("ascii", "ignore").decode()
    slug = _NOT_IDENTIFIER_RE.sub("_", ascii_text).strip("_")[:_INPUT_SLUG_LENGTH]
    if not slug or slug[0].isdigit():
        slug = f"c_{slug}".rstrip("_")
    return f"{slug}_{hashlib.sha256(column.encode()).hexdigest()[:10]}"


def duplicate_input_names(columns: Iterable[str]) -> list[str]:
    """Columns whose input name another (different) column also maps to; [] when none."""
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for column in columns:
        other = seen.setdefault(input_name(column), column)
        if other != column:
            clashes.extend(c for c in (other, column) if c not in clashes)
    return clashes


def label_text(label: object) -> str:
    """A class label as every stage handles it, text: true/false for booleans, digits for integers.
    (A contract may declare `classes: [0, 1]` or `[false, true]`; predict answers in that type.)"""
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)


def label_reader(classes: Iterable[object]) -> Callable[[str], str] | None:
    """How a cell's text (a dataset's target, a feedback file's label) reads as a label text of
    `classes`: booleans through `BOOLEAN_TEXT` (True, 1, FALSE...), integers through their number
    ("1.0" -> "1"), text as it is. A text that is none of them is returned as it is (and refused
    by whoever checks it against the classes). None for text classes: a cell is its label."""
    kinds = {type(c) for c in classes}
    if kinds == {bool}:
        return _boolean_label
    if kinds == {int}:
        return _integer_label
    return None


def _boolean_label(text: str) -> str:
    truth = BOOLEAN_TEXT.get(text.strip().lower())
    return text if truth is None else label_text(truth)


def _integer_label(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


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
    def input_name(self) -> str:
        """The graph input this feature feeds (`input_name` of its column)."""
        return input_name(self.name)

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
