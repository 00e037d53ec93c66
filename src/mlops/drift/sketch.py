"""Mergeable statistics of one model version's captured traffic in a window, in flat memory.

A `WindowSketch` keeps counts, never rows: per numeric feature the counts over the baseline's fine
bins (the decile bins for baselines stored before them) plus nulls and the values below the
training minimum / above the training maximum (with how far out they lie, for the Wasserstein
distance); per categorical feature the counts per training category plus unseen (OTHER) and null
(MISSING); the prediction likewise (binary: probability of the contract's second class, as
training profiles it; multiclass: the label; regression: the value). Its size depends on the
baseline only, so a window of 10M rows costs what one of 100 rows does, and two sketches of the
same version add up (`merge`) so the drift function can work in chunks and keep the running sketch
in its state object (`to_json` / `from_json`).

`mlops.drift.decisions.evaluate` turns a sketch into a `DriftResult`.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.captures import CaptureBatch
from mlops.contract import Contract, ProblemType
from mlops.profile import (
    MISSING,
    OTHER,
    BaselineProfile,
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    category_of,
)

__all__ = [
    "SKETCH_FORMAT",
    "CategoricalCounts",
    "NumericCounts",
    "WindowSketch",
    "categories_of",
    "numeric_reference",
    "prediction_output",
]

SKETCH_FORMAT = 1


def numeric_reference(profile: NumericProfile) -> tuple[np.ndarray, np.ndarray]:
    """The bins a numeric feature is counted in and the baseline's counts of non-null values per bin:
    the fine histogram when the baseline has one, else the decile bins (counts from their shares)."""
    if profile.fine_edges is not None and profile.fine_counts is not None:
        return np.asarray(profile.fine_edges, dtype=np.float64), np.asarray(profile.fine_counts, dtype=np.float64)
    shares = np.asarray(profile.proportions[:-1], dtype=np.float64)  # the last share is the nulls'
    return np.asarray(profile.edges, dtype=np.float64), shares * profile.count


def categories_of(profile: CategoricalProfile) -> list[str]:
    """A categorical feature's buckets in sketch order: training categories (sorted), OTHER, MISSING."""
    return [*sorted(c for c in profile.proportions if c not in (OTHER, MISSING)), OTHER, MISSING]


def prediction_output(contract: Contract, baseline: BaselineProfile) -> str | None:
    """The capture output column that holds what the baseline profiled of the predictions."""
    if contract.problem_type is ProblemType.REGRESSION:
        return "value"
    if isinstance(baseline.prediction, CategoricalProfile):
        return "label"
    classes = contract.target.labels or ()
    return f"probability:{classes[1]}" if len(classes) == 2 else None


@dataclass
class NumericCounts:
    """One numeric column of a window: counts per baseline bin (non-null values), nulls, and the
    values outside the training [min, max] with their summed distance beyond it."""

    edges: np.ndarray = field(repr=False)
    low: float | None  # the training minimum (None: training had no finite value)
    high: float | None
    counts: np.ndarray
    nulls: int = 0
    below: int = 0
    above: int = 0
    below_excess: float = 0.0  # sum of (min - v) over values below the training minimum
    above_excess: float = 0.0  # sum of (v - max) over values above the training maximum

    @classmethod
    def empty(cls, profile: NumericProfile) -> NumericCounts:
        edges, _ = numeric_reference(profile)
        return cls(edges, profile.min, profile.max, np.zeros(edges.size + 1, dtype=np.int64))

    @property
    def values(self) -> int:
        return int(self.counts.sum())

    def add(self, values: np.ndarray) -> None:
        finite = values[np.isfinite(values)]
        self.nulls += int(values.size - finite.size)
        # the baseline's rule: bins are (-inf, e0], (e0, e1], ..., (en, inf)
        bucket = np.searchsorted(self.edges, finite, side="left")
        self.counts += np.bincount(bucket, minlength=self.counts.size)
        if self.low is not None and self.high is not None:
            below = finite[finite < self.low]
            above = finite[finite > self.high]
            self.below += int(below.size)
            self.above += int(above.size)
            self.below_excess += float((self.low - below).sum())
            self.above_excess += float((above - self.high).sum())

    def merge(self, other: NumericCounts) -> None:
        if other.counts.size != self.counts.size:
            raise ValueError("numeric counts over different bins cannot be merged")
        self.counts += other.counts
        self.nulls += other.nulls
        self.below += other.below
        self.above += other.above
        self.below_excess += other.below_excess
        self.above_excess += other.above_excess

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": [int(c) for c in self.counts],
            "nulls": self.nulls,
            "below": self.below,
            "above": self.above,
            "below_excess": self.below_excess,
            "above_excess": self.above_excess,
        }

    def load(self, document: dict[str, Any]) -> None:
        counts = np.asarray(document["counts"], dtype=np.int64)
        if counts.shape != self.counts.shape:
            raise ValueError(f"{counts.size} stored bins but the baseline has {self.counts.size}")
        self.counts = counts
        self.nulls = int(document["nulls"])
        self.below = int(document["below"])
        self.above = int(document["above"])
        self.below_excess = float(document["below_excess"])
        self.above_excess = float(document["above_excess"])


@dataclass
class CategoricalCounts:
    """One categorical column of a window: counts per training category, OTHER (unseen), MISSING."""

    categories: list[str] = field(repr=False)  # see `categories_of`
    counts: np.ndarray

    @classmethod
    def empty(cls, profile: CategoricalProfile) -> CategoricalCounts:
        categories = categories_of(profile)
        return cls(categories, np.zeros(len(categories), dtype=np.int64))

    @property
    def nulls(self) -> int:
        return int(self.counts[-1])

    @property
    def values(self) -> int:
        return int(self.counts[:-1].sum())

    def add(self, values: Sequence[object]) -> None:
        index = {category: i for i, category in enumerate(self.categories)}
        other, missing = len(self.categories) - 2, len(self.categories) - 1
        # Counter runs in C; the Python loop below is over distinct values only
        for value, count in Counter(values).items():
            category = category_of(value)
            self.counts[missing if category == MISSING else index.get(category, other)] += count

    def merge(self, other: CategoricalCounts) -> None:
        if other.categories != self.categories:
            raise ValueError("categorical counts over different categories cannot be merged")
        self.counts += other.counts

    def to_json(self) -> dict[str, Any]:
        return {"counts": [int(c) for c in self.counts]}

    def load(self, document: dict[str, Any]) -> None:
        counts = np.asarray(document["counts"], dtype=np.int64)
        if counts.shape != self.counts.shape:
            raise ValueError(f"{counts.size} stored categories but the baseline has {self.counts.size}")
        self.counts = counts


ColumnCounts = NumericCounts | CategoricalCounts


def _empty_column(profile: ColumnProfile) -> ColumnCounts:
    if isinstance(profile, NumericProfile):
        return NumericCounts.empty(profile)
    return CategoricalCounts.empty(profile)


@dataclass
class WindowSketch:
    """Counts of one model version's captured rows in a window (see the module docstring)."""

    version: int
    features: dict[str, ColumnCounts]  # contract order, features the baseline profiled
    prediction: ColumnCounts
    prediction_column: str | None  # the capture output column scored as the prediction
    rows: int = 0  # rows of `version`
    other_version_rows: int = 0  # rows of other versions: counted, not compared
    unreadable_rows: int = 0
    captures: int = 0  # capture batches added
    first_at: float | None = None  # epoch seconds of the earliest / latest row added
    last_at: float | None = None
    rejections: dict[tuple[str, str], int] = field(default_factory=dict)  # (field, reason) -> records

    @classmethod
    def empty(cls, contract: Contract, baseline: BaselineProfile, version: int) -> WindowSketch:
        features = {
            feature.name: _empty_column(baseline.features[feature.name])
            for feature in contract.features
            if feature.name in baseline.features
        }
        return cls(
            version=version,
            features=features,
            prediction=_empty_column(baseline.prediction),
            prediction_column=prediction_output(contract, baseline),
        )

    def add(self, batch: CaptureBatch) -> None:
        """Count one capture batch: its rows of this version, the others only as a number."""
        self.captures += 1
        self.unreadable_rows += batch.unreadable_rows
        for rejected in batch.rejected:
            key = (rejected.field, rejected.reason)
            self.rejections[key] = self.rejections.get(key, 0) + rejected.count
        if len(batch) == 0:
            return
        versions = np.asarray(batch.versions)
        mine = versions == self.version
        matched = int(mine.sum())
        self.other_version_rows += len(batch) - matched
        if matched == 0:
            return
        self.rows += matched
        every = matched == len(batch)
        at = np.asarray(batch.at, dtype=np.float64)
        if not every:
            at = at[mine]
        at = at[np.isfinite(at)]
        if at.size:
            self.first_at = float(at.min()) if self.first_at is None else min(self.first_at, float(at.min()))
            self.last_at = float(at.max()) if self.last_at is None else max(self.last_at, float(at.max()))
        for name, counts in self.features.items():
            _add_column(counts, batch.inputs.get(name), mine, every, matched)
        column = batch.outputs.get(self.prediction_column) if self.prediction_column else None
        _add_column(self.prediction, column, mine, every, matched)

    def merge(self, other: WindowSketch) -> None:
        """Add `other` (a sketch of the same version and baseline) into this one."""
        if other.version != self.version or other.features.keys() != self.features.keys():
            raise ValueError("only sketches of the same version and baseline can be merged")
        for name, counts in self.features.items():
            counts.merge(other.features[name])  # type: ignore[arg-type]
        self.prediction.merge(other.prediction)  # type: ignore[arg-type]
        self.rows += other.rows
        self.other_version_rows += other.other_version_rows
        self.unreadable_rows += other.unreadable_rows
        self.captures += other.captures
        self.first_at = _pick(min, self.first_at, other.first_at)
        self.last_at = _pick(max, self.last_at, other.last_at)
        for key, count in other.rejections.items():
            self.rejections[key] = self.rejections.get(key, 0) + count

    def to_json(self) -> dict[str, Any]:
        """A compact JSON-ready document (counts only; the bins come from the baseline)."""
        return {
            "format": SKETCH_FORMAT,
            "version": self.version,
            "rows": self.rows,
            "other_version_rows": self.other_version_rows,
            "unreadable_rows": self.unreadable_rows,
            "captures": self.captures,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "rejections": [[f, reason, count] for (f, reason), count in sorted(self.rejections.items())],
            "features": {name: counts.to_json() for name, counts in self.features.items()},
            "prediction": self.prediction.to_json(),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any], contract: Contract, baseline: BaselineProfile) -> WindowSketch:
        """The sketch `to_json` wrote. Raises ValueError when it does not fit `baseline`."""
        if document.get("format") != SKETCH_FORMAT:
            raise ValueError(f"unknown window sketch format {document.get('format')!r}")
        sketch = cls.empty(contract, baseline, int(document["version"]))
        if set(document["features"]) != set(sketch.features):
            raise ValueError("the stored sketch counts other features than the baseline profiles")
        try:
            for name, counts in sketch.features.items():
                counts.load(document["features"][name])
            sketch.prediction.load(document["prediction"])
            sketch.rows = int(document["rows"])
            sketch.other_version_rows = int(document["other_version_rows"])
            sketch.unreadable_rows = int(document["unreadable_rows"])
            sketch.captures = int(document["captures"])
            sketch.first_at = None if document["first_at"] is None else float(document["first_at"])
            sketch.last_at = None if document["last_at"] is None else float(document["last_at"])
            sketch.rejections = {(str(f), str(reason)): int(count) for f, reason, count in document["rejections"]}
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed window sketch: {error!r}") from None
        return sketch


def _add_column(counts: ColumnCounts, column: Sequence[object] | None, mine: np.ndarray, every: bool, n: int) -> None:
    if column is None:  # the batch has no such column: every row of it is a null here
        if isinstance(counts, NumericCounts):
            counts.nulls += n
        else:
            counts.counts[-1] += n
        return
    if isinstance(counts, NumericCounts):
        values = _floats(column)
        counts.add(values if every else values[mine])
    else:
        counts.add(column if every else list(itertools.compress(column, mine)))


def _floats(column: Sequence[object]) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls (numpy turns None into NaN by itself)."""
    try:
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        # a value that is no number (a malformed capture): that cell counts as a null
        return np.fromiter((_float(v) for v in column), dtype=np.float64, count=len(column))


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))
