"""`train_model`: fit the contract's pipeline, judge it on a holdout, export it to ONNX, verify the export."""

from __future__ import annotations

import hashlib
import platform
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pyarrow
import skl2onnx
import sklearn
from sklearn import metrics as skmetrics
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from mlops.contract import Contract, FeatureType, ProblemType, positive_class
from mlops.errors import TrainingRejectedError
from mlops.profile import BaselineProfile, ColumnProfile, profile_categorical, profile_numeric
from mlops.training.dataset import inputs_feed, model_inputs
from mlops.training.export import check_agreement, to_onnx
from mlops.training.pipeline import build_pipeline, effective_params

MIN_TRAINING_ROWS = 20


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Pipeline
    onnx_bytes: bytes
    sha256: str
    metrics: dict[str, float]
    profile: BaselineProfile
    params: dict[str, Any]
    seed: int
    library_versions: dict[str, str]
    training_rows: int
    holdout_rows: int
    onnx_max_abs_diff: float
    holdout: pd.DataFrame

    @property
    def metric_name(self) -> str:
        """The contract's metric (the first key of `metrics`)."""
        return next(iter(self.metrics))

    @property
    def metric_value(self) -> float:
        """Value of the contract's metric on the holdout (the first key of `metrics`)."""
        return next(iter(self.metrics.values()))


def library_versions() -> dict[str, str]:
    return {
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
    }


def train_model(frame: pd.DataFrame, contract: Contract) -> TrainedModel:
    """Train the contract's model on `frame` (as returned by read_dataset).

    Deterministic: the same rows and contract give the same metrics and the same ONNX bytes.
    Raises TrainingRejectedError when the data cannot make a model (too few rows, a class missing,
    labels outside the contract) or the ONNX export fails to convert or to agree with scikit-learn.
    """
    frame = frame.reset_index(drop=True)
    y = target_values(frame, contract)
    train_index, holdout_index = split_holdout(frame, y, contract)
    y_train, y_holdout = y[train_index], y[holdout_index]

    # The rows as read are taken apart again after fitting: during the fit (the peak) only the
    # model inputs are held beside the frame (scripts/bench_training_scale.py).
    train_inputs = model_inputs(frame.iloc[train_index], contract)
    holdout_inputs = model_inputs(frame.iloc[holdout_index], contract)
    pipeline = build_pipeline(contract, train_inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # unknown categories in holdout are expected
        try:
            pipeline.fit(train_inputs, y_train)
        except ValueError as error:
            raise TrainingRejectedError(f"{contract.estimator.name} cannot fit the data: {error}") from error
        predictions = pipeline.predict(holdout_inputs)
        probabilities = (
            pipeline.predict_proba(holdout_inputs) if contract.problem_type is ProblemType.CLASSIFICATION else None
        )

    classes = [str(c) for c in pipeline.classes_] if probabilities is not None else []
    metrics = holdout_metrics(contract, y_holdout, predictions, probabilities, classes)
    if not all(np.isfinite(v) for v in metrics.values()):
        raise TrainingRejectedError(f"holdout metrics are not finite: {metrics}")

    onnx_bytes = to_onnx(pipeline, contract, classes)
    agreement = check_agreement(
        onnx_bytes,
        inputs_feed(holdout_inputs, contract),
        contract,
        expected_labels=np.asarray(predictions) if probabilities is not None else None,
        expected_values=probabilities if probabilities is not None else np.asarray(predictions, dtype=np.float64),
    )
    sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    train_frame, holdout = frame.iloc[train_index], frame.iloc[holdout_index]
    return TrainedModel(
        pipeline=pipeline,
        onnx_bytes=onnx_bytes,
        sha256=sha256,
        metrics=metrics,
        profile=baseline_profile(contract, train_frame, predictions, probabilities, classes, y_train),
        params=effective_params(contract),
        seed=contract.training.seed,
        library_versions=library_versions(),
        training_rows=len(train_frame),
        holdout_rows=len(holdout),
        onnx_max_abs_diff=agreement.max_abs_diff,
        holdout=holdout.reset_index(drop=True)[contract.columns],
    )


def target_values(frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    """The target column as labels (str) or values (float64). Raises TrainingRejectedError."""
    target = contract.target.name
    if target not in frame.columns:
        raise TrainingRejectedError(f"the dataset has no target column {target!r}")
    column = frame[target]
    if column.isna().any():
        raise TrainingRejectedError(f"target {target!r} has {int(column.isna().sum())} null values")
    if contract.problem_type is ProblemType.REGRESSION:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise TrainingRejectedError(f"target {target!r} has non-numeric or infinite values")
        return values
    labels = np.array([str(v) for v in column.tolist()], dtype=object)
    declared = list(contract.target.labels or ())
    unknown = sorted(set(labels.tolist()) - set(declared))
    if unknown:
        raise TrainingRejectedError(f"target {target!r} has labels outside the contract's classes: {unknown[:10]}")
    counts = pd.Series(labels).value_counts()
    scarce = [c for c in declared if counts.get(c, 0) < 2]
    if scarce:
        raise TrainingRejectedError(f"classes {scarce} have fewer than 2 rows; every declared class needs examples")
    return labels


def split_holdout(frame: pd.DataFrame, y: np.ndarray, contract: Contract) -> tuple[np.ndarray, np.ndarray]:
    """Row indexes of the training part and the holdout: THE split (contract seed and fraction,
    stratified for classification) that training and imports both score on."""
    if len(frame) < MIN_TRAINING_ROWS:
        raise TrainingRejectedError(f"{len(frame)} rows are too few to train (need at least {MIN_TRAINING_ROWS})")
    stratify = y if contract.problem_type is ProblemType.CLASSIFICATION else None
    try:
        train_index, holdout_index = train_test_split(
            np.arange(len(frame)),
            test_size=contract.training.holdout_fraction,
            random_state=contract.training.seed,
            stratify=stratify,
        )
    except ValueError as error:
        raise TrainingRejectedError(f"cannot split a holdout: {error}") from error
    return np.sort(train_index), np.sort(holdout_index)


def holdout_metrics(
    contract: Contract,
    y_true: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray | None,
    classes: list[str],
) -> dict[str, float]:
    """The metrics of predictions against the truth; `probabilities` columns follow `classes`
    (None for regression). Raises ValueError when a metric cannot be computed on the rows."""
    values: dict[str, float] = {}
    if probabilities is None:
        values["r2"] = float(skmetrics.r2_score(y_true, predictions))
        values["rmse"] = float(np.sqrt(skmetrics.mean_squared_error(y_true, predictions)))
        values["mae"] = float(skmetrics.mean_absolute_error(y_true, predictions))
    else:
        values["accuracy"] = float(skmetrics.accuracy_score(y_true, predictions))
        values["f1_macro"] = float(skmetrics.f1_score(y_true, predictions, average="macro"))
        positive = positive_class(contract)
        if positive is not None:
            values["roc_auc"] = float(
                skmetrics.roc_auc_score(y_true == positive, probabilities[:, classes.index(positive)])
            )
        values["log_loss"] = float(skmetrics.log_loss(y_true, probabilities, labels=classes))
    # the contract's metric first, so consumers can read "the" metric without a lookup
    return {contract.metric.name: values[contract.metric.name], **values}


def baseline_profile(
    contract: Contract,
    train_frame: pd.DataFrame,
    predictions: np.ndarray,
    probabilities: np.ndarray | None,
    classes: list[str],
    y_train: np.ndarray,
) -> BaselineProfile:
    features: dict[str, ColumnProfile] = {}
    for feature in contract.features:
        column = train_frame[feature.name]
        if feature.type is FeatureType.NUMERIC:
            features[feature.name] = profile_numeric(column.to_numpy(dtype=np.float64, na_value=np.nan))
        else:  # booleans profile as the categories "true"/"false"
            features[feature.name] = profile_categorical(column.tolist())
    # Predictions on the holdout: out-of-sample, so they look like what production will see.
    prediction: ColumnProfile
    positive = positive_class(contract)
    if probabilities is not None and positive is not None:
        prediction = profile_numeric(probabilities[:, classes.index(positive)])
    elif probabilities is not None:
        prediction = profile_categorical([str(p) for p in predictions])
    else:
        prediction = profile_numeric(np.asarray(predictions, dtype=np.float64))
    return BaselineProfile(
        model_name=contract.name,
        created_at=datetime.now(UTC),
        rows=len(train_frame),
        features=features,
        prediction=prediction,
        target=(
            profile_numeric(np.asarray(y_train, dtype=np.float64))
            if probabilities is None
            else profile_categorical([str(label) for label in y_train])
        ),
    )
