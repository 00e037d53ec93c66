"""Models built outside the suite, the way their users build them: LightGBM (a library the training
image does not use) in a scikit-learn pipeline, converted with onnxmltools' LightGBM converter
registered in skl2onnx. Trained here on the churn sample data."""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mlops.contract import Contract, FeatureType, ProblemType
from mlops.training.dataset import model_inputs

update_registered_converter(
    lightgbm.LGBMClassifier,
    "LightGbmLGBMClassifier",
    calculate_linear_classifier_output_shapes,
    convert_lightgbm,
    options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
)


update_registered_converter(
    lightgbm.LGBMRegressor,
    "LightGbmLGBMRegressor",
    calculate_linear_regressor_output_shapes,
    convert_lightgbm,
    options={"split": None},
)


def lightgbm_pipeline(frame: pd.DataFrame, contract: Contract, *, labels: Any = None) -> Pipeline:
    """A fitted LightGBM pipeline on `frame` (read_dataset shape); `labels` replaces the target."""
    estimator: Any = (
        lightgbm.LGBMClassifier(n_estimators=40, num_leaves=15, random_state=3, verbose=-1)
        if contract.problem_type is ProblemType.CLASSIFICATION
        else lightgbm.LGBMRegressor(n_estimators=40, num_leaves=15, random_state=3, verbose=-1)
    )
    numeric = [f.name for f in contract.features if f.type is not FeatureType.CATEGORICAL]
    categorical = [f.name for f in contract.features if f.type is FeatureType.CATEGORICAL]
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", "passthrough", numeric),
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ],
                    sparse_threshold=0.0,
                ),
            ),
            ("model", estimator),
        ]
    )
    target = frame[contract.target.name] if labels is None else labels
    return pipeline.fit(model_inputs(frame, contract), np.asarray(target))


def to_onnx_bytes(
    pipeline: Pipeline,
    contract: Contract,
    *,
    zipmap: bool = False,
    rename: dict[str, str] | None = None,
) -> bytes:
    """The pipeline as its user would convert it: one [N, 1] input per column (renamed by `rename`)."""
    rename = rename or {}
    initial_types = [
        (
            rename.get(f.name, f.name),
            StringTensorType([None, 1]) if f.type is FeatureType.CATEGORICAL else FloatTensorType([None, 1]),
        )
        for f in contract.features
    ]
    if rename:  # the converter binds columns by name: the pipeline must see the renamed columns
        preprocess = pipeline.named_steps["preprocess"]
        preprocess.transformers_ = [
            (name, step, [rename.get(c, c) for c in columns]) for name, step, columns in preprocess.transformers_
        ]
    model = convert_sklearn(
        pipeline,
        initial_types=initial_types,
        options={id(pipeline.named_steps["model"]): {"zipmap": zipmap}}
        if contract.problem_type is ProblemType.CLASSIFICATION
        else None,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return model.SerializeToString()
