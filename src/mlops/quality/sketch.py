"""Live quality of one model version as a mergeable sketch: counts and sums, never rows.

Classification: a confusion matrix over the contract's classes (accuracy, F1), the sum of
-log p(true class) (log loss, rows normalised and clipped as scikit-learn does), and per scored
class two histograms of that class's probability over `AUC_BINS` equal bins of [0, 1], one for
rows of that class and one for the others (ROC AUC). Binary: the contract's positive class (the
second one listed, as training scores roc_auc); multiclass: one-vs-rest, macro-averaged.
Regression: n, the sums of squared and absolute errors, the labels' mean and squared deviations
(merged with Chan's formula) for R2, and the labels' counts over the baseline target's bins.

Two sketches of the same version and classes add up (`merge`), so late labels update a past hour
and a window is a merge of hours; the size depends on the contract only, not on the labelled rows.

ROC AUC from bins: pairs (positive, negative) in different bins are ordered as their exact scores
are; a pair in the same bin counts 1/2 (the exact AUC counts 0, 1/2 or 1). So the binned AUC is
within `0.5 * sum_b pos_b * neg_b / (P * N)` of scikit-learn's, which `roc_auc_error_bound`
reports for every value (0 when no two rows of different truth share a bin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops.captures import PROBABILITY_PREFIX
from mlops.contract import Contract, ProblemType, positive_class
from mlops.profile import CategoricalProfile, NumericProfile, numeric_counts

AUC_BINS = 1000
SKETCH_FORMAT = 1
_EPS = float(np.finfo(np.float64).eps)  # scikit-learn's log_loss clipping for float64 probabilities


@dataclass
class LabelledRows:
    """Joined rows of one version: the true labels and the captured outputs, as columns."""

    labels: list[Any]  # class text, or a value
    outputs: dict[str, list[Any]]  # "label" | "value" | "probability:<class>"

    def __len__(self) -> int:
        return len(self.labels)


class QualitySketch:
    """Counts of one version's labelled predictions; `metrics()` turns them into scores."""

    def __init__(self, contract: Contract, target_edges: Sequence[float] | None = None) -> None:
        self.regression = contract.problem_type is ProblemType.REGRESSION
        self.classes: list[str] = list(contract.target.labels or ())
        positive = positive_class(contract)
        self.scored: list[str] = [positive] if positive is not None else list(self.classes)
        self.target_edges = list(target_edges) if target_edges is not None else None
        size = len(self.classes)
        self.confusion = np.zeros((size, size), dtype=np.int64)
        self.log_loss_sum = 0.0
        self.log_loss_rows = 0
        self.auc = np.zeros((len(self.scored), 2, AUC_BINS), dtype=np.int64)  # [class][of class, other][bin]
        self.rows = 0
        self.unusable = 0  # rows without a usable label or prediction (an unknown class, a missing output)
        self.sse = self.sae = self.mean = self.m2 = 0.0
        self.value_counts = np.zeros(len(self.target_edges) + 1 if self.target_edges is not None else 0, np.int64)

    # -- adding rows ---------------------------------------------------------------------------
    def add(self, rows: LabelledRows) -> None:
        if len(rows) == 0:
            return
        if self.regression:
            self._add_regression(rows)
        else:
            self._add_classification(rows)

    def _add_classification(self, rows: LabelledRows) -> None:
        index = {name: position for position, name in enumerate(self.classes)}
        truth = np.array([index.get(str(label), -1) for label in rows.labels], dtype=np.int64)
        predicted_column = rows.outputs.get("label") or [None] * len(rows)
        predicted = np.array([index.get(str(label), -1) for label in predicted_column], dtype=np.int64)
        usable = (truth >= 0) & (predicted >= 0)
        self.unusable += int((~usable).sum())
        truth, predicted = truth[usable], predicted[usable]
        np.add.at(self.confusion, (truth, predicted), 1)
        self.rows += int(usable.sum())
        probabilities = self._probabilities(rows, usable)
        if probabilities is None:
            return
        finite = np.all(np.isfinite(probabilities), axis=1) & (probabilities.sum(axis=1) > 0)
        probabilities, truth = probabilities[finite], truth[finite]
        normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
        chosen = np.clip(normalised[np.arange(len(truth)), truth], _EPS, 1 - _EPS)
        self.log_loss_sum += float(-np.log(chosen).sum())
        self.log_loss_rows += len(truth)
        for slot, name in enumerate(self.scored):
            column = self.classes.index(name)
            bins = np.clip((np.clip(probabilities[:, column], 0.0, 1.0) * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)
            is_class = truth == column
            self.auc[slot, 0] += np.bincount(bins[is_class], minlength=AUC_BINS)
            self.auc[slot, 1] += np.bincount(bins[~is_class], minlength=AUC_BINS)

    def _probabilities(self, rows: LabelledRows, usable: np.ndarray) -> np.ndarray | None:
        columns = [rows.outputs.get(f"{PROBABILITY_PREFIX}{name}") for name in self.classes]
        if any(column is None for column in columns):
            return None  # a graph without probabilities: accuracy and F1 only
        matrix = np.array(
            [[math.nan if value is None else value for value in column] for column in columns],  # type: ignore[union-attr]
            dtype=np.float64,
        ).T
        return matrix[usable]

    def _add_regression(self, rows: LabelledRows) -> None:
        truth = np.array([_number(label) for label in rows.labels], dtype=np.float64)
        predicted = np.array([_number(value) for value in rows.outputs.get("value") or [None] * len(rows)])
        usable = np.isfinite(truth) & np.isfinite(predicted)
        self.unusable += int((~usable).sum())
        truth, predicted = truth[usable], predicted[usable]
        if truth.size == 0:
            return
        errors = predicted - truth
        self.sse += float(np.dot(errors, errors))
        self.sae += float(np.abs(errors).sum())
        self._merge_moments(truth.size, float(truth.mean()), float(((truth - truth.mean()) ** 2).sum()))
        if self.target_edges is not None:
            self.value_counts += np.asarray(numeric_counts(truth, self.target_edges)[:-1], dtype=np.int64)

    def _merge_moments(self, count: int, mean: float, m2: float) -> None:
        total = self.rows + count
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.rows * count / total
        self.mean += delta * count / total
        self.rows = total

    # -- merging and storing -------------------------------------------------------------------
    def merge(self, other: QualitySketch) -> None:
        if (self.regression, self.classes, self.target_edges) != (other.regression, other.classes, other.target_edges):
            raise ValueError("sketches of different classes or target bins do not merge")
        if self.regression:
            if other.rows:
                self._merge_moments(other.rows, other.mean, other.m2)
            self.sse += other.sse
            self.sae += other.sae
            self.value_counts += other.value_counts
        else:
            self.rows += other.rows
            self.confusion += other.confusion
            self.log_loss_sum += other.log_loss_sum
            self.log_loss_rows += other.log_loss_rows
            self.auc += other.auc
        self.unusable += other.unusable

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"format": SKETCH_FORMAT, "rows": self.rows, "unusable": self.unusable}
        if self.regression:
            document.update(
                sse=self.sse, sae=self.sae, mean=self.mean, m2=self.m2, value_counts=self.value_counts.tolist()
            )
        else:
            document.update(
                confusion=self.confusion.tolist(),
                log_loss_sum=self.log_loss_sum,
                log_loss_rows=self.log_loss_rows,
                # sparse: most of the bins of an hour are empty
                auc={
                    name: [{str(b): int(n) for b, n in enumerate(row) if n} for row in self.auc[slot]]
                    for slot, name in enumerate(self.scored)
                },
            )
        return document

    @classmethod
    def from_json(
        cls, document: dict[str, Any], contract: Contract, target_edges: Sequence[float] | None = None
    ) -> QualitySketch:
        """Raises ValueError (or KeyError) for a document of another format or shape."""
        if document.get("format") != SKETCH_FORMAT:
            raise ValueError(f"quality sketch format {document.get('format')!r} is not {SKETCH_FORMAT}")
        sketch = cls(contract, target_edges)
        sketch.rows = int(document["rows"])
        sketch.unusable = int(document["unusable"])
        if sketch.regression:
            sketch.sse, sketch.sae = float(document["sse"]), float(document["sae"])
            sketch.mean, sketch.m2 = float(document["mean"]), float(document["m2"])
            counts = np.asarray(document["value_counts"], dtype=np.int64)
            if counts.shape != sketch.value_counts.shape:
                raise ValueError("the stored label bins do not fit the baseline's target bins")
            sketch.value_counts = counts
            return sketch
        confusion = np.asarray(document["confusion"], dtype=np.int64)
        if confusion.shape != sketch.confusion.shape:
            raise ValueError("the stored confusion matrix does not fit the contract's classes")
        sketch.confusion = confusion
        sketch.log_loss_sum = float(document["log_loss_sum"])
        sketch.log_loss_rows = int(document["log_loss_rows"])
        for slot, name in enumerate(sketch.scored):
            for side, row in enumerate(document["auc"][name]):
                for b, n in row.items():
                    sketch.auc[slot, side, int(b)] = int(n)
        return sketch

    # -- scores --------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """The scores these rows support, by the names training's holdout metrics use (plus `f1`:
        binary the positive class's F1, multiclass macro; `roc_auc_error_bound`). Empty: no rows."""
        if self.rows == 0:
            return {}
        if self.regression:
            values = {"rmse": math.sqrt(self.sse / self.rows), "mae": self.sae / self.rows}
            if self.m2 > 0:
                values["r2"] = 1.0 - self.sse / self.m2
            return values
        confusion = self.confusion.astype(np.float64)
        true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
        hits = np.diag(confusion)
        present = (true_counts + predicted_counts) > 0
        per_class = np.divide(2 * hits, true_counts + predicted_counts, out=np.zeros_like(hits), where=present)
        values = {
            "accuracy": float(hits.sum() / confusion.sum()),
            "f1_macro": float(per_class[present].mean()),
        }
        positive = positive_class_of(self)
        values["f1"] = float(per_class[self.classes.index(positive)]) if positive is not None else values["f1_macro"]
        if self.log_loss_rows:
            values["log_loss"] = self.log_loss_sum / self.log_loss_rows
        aucs = [_binned_auc(self.auc[slot, 0], self.auc[slot, 1]) for slot in range(len(self.scored))]
        if aucs and all(auc is not None for auc in aucs):
            values["roc_auc"] = float(np.mean([auc[0] for auc in aucs if auc]))
            values["roc_auc_error_bound"] = float(np.mean([auc[1] for auc in aucs if auc]))
        return values

    def label_counts(self) -> dict[str, int]:
        """Classification: labelled rows per true class. Regression: per baseline target bin."""
        if self.regression:
            return {str(b): int(n) for b, n in enumerate(self.value_counts)}
        return {name: int(n) for name, n in zip(self.classes, self.confusion.sum(axis=1), strict=True)}


def positive_class_of(sketch: QualitySketch) -> str | None:
    return sketch.scored[0] if len(sketch.classes) == 2 else None


def label_drift(sketch: QualitySketch, target: NumericProfile | CategoricalProfile | None) -> float | None:
    """PSI of the labels' class shares (or value bins) against the training target's, None when
    the baseline has no target profile or there are no labels."""
    from mlops.drift.stability import stability_index

    if target is None or sketch.rows == 0:
        return None
    if isinstance(target, CategoricalProfile):
        counts = sketch.label_counts()
        total = sum(counts.values())
        if not total:
            return None
        return stability_index([target.proportions.get(c, 0.0) for c in counts], [n / total for n in counts.values()])
    finite_share = 1.0 - target.proportions[-1]  # the last proportion is the null share
    expected = [p / finite_share for p in target.proportions[:-1]] if finite_share > 0 else []
    total = int(sketch.value_counts.sum())
    if not total or len(expected) != len(sketch.value_counts):
        return None
    return stability_index(expected, [int(n) / total for n in sketch.value_counts])


def _binned_auc(of_class: np.ndarray, others: np.ndarray) -> tuple[float, float] | None:
    """(AUC, error bound) from the two histograms; None when either side is empty."""
    positives, negatives = int(of_class.sum()), int(others.sum())
    if positives == 0 or negatives == 0:
        return None
    below = np.concatenate(([0], np.cumsum(others)[:-1]))  # negatives in lower bins
    pairs = float(positives) * float(negatives)
    same_bin = float(np.dot(of_class.astype(np.float64), others.astype(np.float64)))
    wins = float(np.dot(of_class.astype(np.float64), below.astype(np.float64)))
    return (wins + 0.5 * same_bin) / pairs, 0.5 * same_bin / pairs


def _number(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
