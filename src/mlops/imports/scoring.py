"""Score an imported graph on the holdout the suite holds, exactly as training scores its own models:
the same split (`split_holdout`), the same feed (`frame_feed`), metrics and baseline profile."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import pandas as pd

from mlops.contract import Contract, ProblemType
from mlops.imports.graph import CheckedGraph, GraphRejectedError
from mlops.profile import BaselineProfile
from mlops.training.dataset import frame_feed
from mlops.training.onnx_io import OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_VALUE
from mlops.training.trainer import baseline_profile, holdout_metrics, split_holdout, target_values

# A label may disagree with its probabilities' argmax only where two classes tie this closely.
TIE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ScoredImport:
    metrics: dict[str, float]  # the contract's metric first
    profile: BaselineProfile
    training_rows: int  # rows of the split's training part (the profile's reference; not what the model saw)
    holdout_rows: int


def score_graph(onnx_bytes: bytes, graph: CheckedGraph, frame: pd.DataFrame, contract: Contract) -> ScoredImport:
    """Run the graph on the holdout of `frame` (as read_dataset returns it).

    Raises GraphRejectedError when onnxruntime cannot load or run it, or its answers are unusable
    (wrong shapes, labels outside the classes, labels that contradict the probabilities, non-finite
    values); TrainingRejectedError when the data cannot be split (as training would).
    """
    frame = frame.reset_index(drop=True)
    y = target_values(frame, contract)
    train_index, holdout_index = split_holdout(frame, y, contract)
    holdout = frame.iloc[holdout_index]
    feed = {
        name: array.astype(graph.feed_dtypes[name], copy=False) for name, array in frame_feed(holdout, contract).items()
    }
    try:
        session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, feed), strict=True))
    except Exception as error:  # onnxruntime raises its own types (Fail, InvalidGraph, NotImplemented, ...)
        raise GraphRejectedError([f"onnxruntime cannot run the graph: {str(error)[:300]}"]) from None
    rows = len(holdout)
    if contract.problem_type is ProblemType.CLASSIFICATION:
        predictions, probabilities = _classification_outputs(outputs, graph.classes, rows)
        classes = list(graph.classes)
    else:
        predictions, probabilities, classes = _regression_outputs(outputs, rows), None, []
    metrics = holdout_metrics(contract, y[holdout_index], predictions, probabilities, classes)
    train_frame = frame.iloc[train_index]
    return ScoredImport(
        metrics=metrics,
        profile=baseline_profile(contract, train_frame, predictions, probabilities, classes, y[train_index]),
        training_rows=len(train_frame),
        holdout_rows=rows,
    )


def _classification_outputs(
    outputs: dict[str, np.ndarray], classes: tuple[str, ...], rows: int
) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(outputs[OUTPUT_LABEL]).reshape(-1)
    probabilities = np.asarray(outputs[OUTPUT_PROBABILITIES], dtype=np.float64)
    if labels.shape != (rows,) or probabilities.shape != (rows, len(classes)):
        raise GraphRejectedError(
            [
                f"outputs: expected {OUTPUT_LABEL!r} of shape ({rows},) and {OUTPUT_PROBABILITIES!r} of shape "
                f"({rows}, {len(classes)}) for {rows} holdout rows, found {labels.shape} and {probabilities.shape}"
            ]
        )
    if not np.all(np.isfinite(probabilities)):
        raise GraphRejectedError([f"output {OUTPUT_PROBABILITIES!r}: non-finite values on the holdout"])
    text = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in labels.tolist()], dtype=object)
    unknown = sorted(set(text.tolist()) - set(classes))
    if unknown:
        raise GraphRejectedError(
            [f"output {OUTPUT_LABEL!r}: labels {unknown[:5]} are not among the classes {list(classes)}"]
        )
    # the label must be the most probable class, or the probability columns are not in `classes` order
    index = {c: i for i, c in enumerate(classes)}
    chosen = probabilities[np.arange(rows), [index[label] for label in text.tolist()]]
    contradicting = int(np.sum(chosen < probabilities.max(axis=1) - TIE_TOLERANCE))
    if contradicting:
        raise GraphRejectedError(
            [
                f"outputs: on {contradicting} of {rows} holdout rows the label is not the most probable class; "
                f"the probability columns are not in the order {list(classes)}"
            ]
        )
    return text, probabilities


def _regression_outputs(outputs: dict[str, np.ndarray], rows: int) -> np.ndarray:
    values = np.asarray(outputs[OUTPUT_VALUE], dtype=np.float64)
    if values.size != rows:
        raise GraphRejectedError(
            [f"output {OUTPUT_VALUE!r}: {values.size} values for {rows} holdout rows (shape {values.shape})"]
        )
    values = values.reshape(-1)
    if not np.all(np.isfinite(values)):
        raise GraphRejectedError([f"output {OUTPUT_VALUE!r}: non-finite values on the holdout"])
    return values
