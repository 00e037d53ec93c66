"""The scikit-learn pipeline a contract declares: preprocessing per feature type, then the estimator."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops.contract import Contract, FeatureType
from mlops.training.onnx_io import MISSING_CATEGORY

ESTIMATOR_CLASSES: dict[str, type[BaseEstimator]] = {
    "logistic_regression": LogisticRegression,
    "random_forest_classifier": RandomForestClassifier,
    "gradient_boosting_classifier": GradientBoostingClassifier,
    "linear_regression": LinearRegression,
    "ridge": Ridge,
    "random_forest_regressor": RandomForestRegressor,
    "gradient_boosting_regressor": GradientBoostingRegressor,
}
LINEAR_ESTIMATORS = frozenset({"logistic_regression", "linear_regression", "ridge"})

# Applied when the contract leaves them out. Fully grown forests make ONNX files of tens of MB
# (see the project's facts notes); a bounded depth keeps artifacts small and cold starts fast.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 1000},
    "random_forest_classifier": {"n_estimators": 100, "max_depth": 12, "min_samples_leaf": 2},
    "random_forest_regressor": {"n_estimators": 100, "max_depth": 12, "min_samples_leaf": 2},
}

ESTIMATOR_STEP = "estimator"
PREPROCESS_STEP = "preprocess"


def effective_params(contract: Contract) -> dict[str, Any]:
    """The estimator params training uses: the contract's over the defaults, plus the seed where it applies."""
    name = contract.estimator.name
    params: dict[str, Any] = {**DEFAULT_PARAMS.get(name, {}), **contract.estimator.params}
    if "random_state" in ESTIMATOR_CLASSES[name]().get_params():
        params["random_state"] = contract.training.seed
    return dict(sorted(params.items()))


def build_pipeline(contract: Contract, training_inputs: pd.DataFrame) -> Pipeline:
    """An unfitted Pipeline for the contract. `training_inputs` (from model_inputs) supplies the
    categories of categorical features the contract does not enumerate."""
    name = contract.estimator.name
    numeric = [f.input_name for f in contract.features if f.type is not FeatureType.CATEGORICAL]
    categorical = [rule for rule in contract.feature_rules if rule.type is FeatureType.CATEGORICAL]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if name in LINEAR_ESTIMATORS:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        # open vocabulary: the values of the training data; any other is ignored at prediction time
        categories = [rule.encoder_categories(training_inputs[rule.input_name].tolist()) for rule in categorical]
        encode = Pipeline(
            [
                # Nulls reach the pipeline already as MISSING_CATEGORY (see onnx_io); empty strings
                # are nulls too. The ONNX converter supports string imputers only with a string
                # missing value, hence "" rather than NaN.
                ("impute", SimpleImputer(strategy="constant", missing_values="", fill_value=MISSING_CATEGORY)),
                ("onehot", OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", encode, [rule.input_name for rule in categorical]))
    preprocess = ColumnTransformer(transformers, sparse_threshold=0.0, verbose_feature_names_out=False)
    estimator = ESTIMATOR_CLASSES[name](**effective_params(contract))
    return Pipeline([(PREPROCESS_STEP, preprocess), (ESTIMATOR_STEP, estimator)])
