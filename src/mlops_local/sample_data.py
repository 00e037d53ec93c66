"""Deterministic sample data for the `churn` contract (contracts/churn.json): no downloads.

`label_noise` flips that share of labels (a noisier dataset makes a weaker model); `drift`
shifts the feature distributions the way a changed customer base would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")


def churn_features(rows: int, *, seed: int = 7, drift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = np.clip(rng.gamma(2.0 - 0.8 * drift, 14.0, rows), 0, 240).round(0)
    plan = rng.choice(PLANS, rows, p=[0.5 - 0.3 * drift, 0.3, 0.2 + 0.3 * drift])
    base_charge = np.select([plan == "basic", plan == "standard"], [30.0, 60.0], 95.0)
    charges = np.clip(base_charge + rng.normal(10 * drift, 8.0, rows) + 40 * drift, 0, 1000).round(2)
    calls = np.clip(rng.poisson(1.5 + 3 * drift, rows), 0, 100).astype(float)
    usage = np.clip(rng.lognormal(2.5 + drift, 0.6, rows), 0, 10000).round(1)
    usage[rng.random(rows) < 0.05] = np.nan
    region = rng.choice(REGIONS, rows, p=[0.3, 0.3, 0.2, 0.2])
    autopay = rng.random(rows) < (0.55 - 0.3 * drift)
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "data_usage_gb": usage,
            "plan": plan,
            "region": region,
            "autopay": autopay,
        }
    )


def churn_dataset(rows: int, *, seed: int = 7, label_noise: float = 0.1, drift: float = 0.0) -> pd.DataFrame:
    frame = churn_features(rows, seed=seed, drift=drift)
    rng = np.random.default_rng(seed + 1)
    logit = (
        1.2
        - 0.06 * frame["tenure_months"]
        + 0.025 * (frame["monthly_charges"] - 60)
        + 0.45 * frame["support_calls"]
        - 0.8 * frame["autopay"].astype(float)
        + np.where(frame["plan"] == "premium", -0.5, 0.0)
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    flip = rng.random(rows) < label_noise
    churned = np.where(flip, ~churned, churned)
    frame["churned"] = np.where(churned, "yes", "no")
    return frame


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """JSON-ready inference records (NaN becomes null)."""
    cleaned = frame.astype(object).where(frame.notna(), None)
    return cleaned.to_dict(orient="records")  # type: ignore[return-value]
