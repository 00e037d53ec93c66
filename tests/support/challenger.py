"""Data for the fair champion/challenger tests: one linear rule, noise sets how hard a holdout is."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FEATURES = 30
WEIGHTS = np.linspace(1.0, -1.0, FEATURES) + 0.3


def risk_contract(**feature_overrides: dict[str, Any]) -> dict[str, Any]:
    """A 30-feature binary classification contract ("risk"); overrides per feature name."""
    features = [{"name": f"x{i}", "type": "numeric"} for i in range(FEATURES)]
    for feature in features:
        feature.update(feature_overrides.get(feature["name"], {}))
    return {
        "name": "risk",
        "problem_type": "classification",
        "target": {"name": "label", "classes": ["no", "yes"]},
        "features": features,
        "estimator": {"name": "logistic_regression", "params": {}},
        "metric": {"name": "roc_auc", "minimum": 0.6},
        "data": {"min_rows": 50},
    }


def risk_rows(rows: int, noise: float, seed: int) -> pd.DataFrame:
    """Labels from one linear rule plus noise: more noise, a harder holdout."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(FEATURES)])
    frame["label"] = np.where(x @ WEIGHTS + rng.normal(scale=noise, size=rows) > 0, "yes", "no")
    return frame


def hard_rows() -> pd.DataFrame:
    """Plenty of rows, heavy label noise: a model that learns the rule well, judged on a hard holdout."""
    return risk_rows(4000, noise=3.0, seed=1)


def easy_rows() -> pd.DataFrame:
    """Few rows, little noise: a weaker model judged on an easy holdout."""
    return risk_rows(150, noise=0.3, seed=2)
