"""Baseline profiles built by mlops.profile from synthetic training data (numpy), for the tests
of compare's training data drift."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from mlops.profile import BaselineProfile, profile_categorical, profile_numeric


def training_baseline(
    *, shift: float = 0.0, seed: int = 0, rows: int = 2_000, pro_share: float = 0.3, model: str = "churn"
) -> BaselineProfile:
    """The profile a trainer would store for features `x` (normal, mean `shift`) and `plan`
    (basic/pro), and the predicted probabilities of a fixed logistic model on `x`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, rows)
    plan = rng.choice(["basic", "pro"], size=rows, p=[1 - pro_share, pro_share])
    return BaselineProfile(
        model_name=model,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        rows=rows,
        features={"x": profile_numeric(x), "plan": profile_categorical(plan.tolist())},
        prediction=profile_numeric(1.0 / (1.0 + np.exp(-2.0 * x))),
    )
