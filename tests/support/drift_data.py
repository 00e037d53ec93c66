"""Seeded churn-like traffic for the drift statistics tests: columns, a baseline, capture batches.

Columns follow contracts/churn.json (numeric, categorical, boolean features; binary prediction as
the probability of "yes"). Shapes differ on purpose: skewed, integer counts, a nullable feature.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mlops.captures import CaptureBatch, Rejected
from mlops.contract import Contract, parse_contract
from mlops.profile import BaselineProfile, profile_categorical, profile_numeric

CONTRACT = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())
NUMERIC = ("tenure_months", "monthly_charges", "support_calls", "data_usage_gb")
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC).timestamp()


def traffic(
    rng: np.random.Generator,
    rows: int,
    *,
    shift: float = 0.0,
    missing_usage: float = 0.05,
    plan_shares: tuple[float, float, float] = (0.5, 0.3, 0.2),
) -> dict[str, np.ndarray]:
    """Columns of `rows` rows; `shift` moves monthly_charges by that many standard deviations (20)."""
    usage = rng.lognormal(2.0, 0.8, rows)
    usage[rng.random(rows) < missing_usage] = np.nan
    charges = rng.normal(70.0, 20.0, rows) + 20.0 * shift
    columns: dict[str, np.ndarray] = {
        "tenure_months": rng.gamma(2.0, 12.0, rows),
        "monthly_charges": charges,
        "support_calls": rng.poisson(1.5, rows).astype(np.float64),
        "data_usage_gb": usage,
        "plan": rng.choice(np.array(PLANS, dtype=object), rows, p=list(plan_shares)),
        "region": rng.choice(np.array(REGIONS, dtype=object), rows, p=[0.4, 0.3, 0.2, 0.1]),
        "autopay": rng.random(rows) < 0.6,
    }
    # the prediction depends on tenure and support calls only (not on the shifted/missing columns)
    logit = -1.0 - 0.03 * columns["tenure_months"] + 0.5 * columns["support_calls"]
    columns["probability:yes"] = 1.0 / (1.0 + np.exp(-logit))
    return columns


def baseline(columns: dict[str, np.ndarray], contract: Contract = CONTRACT) -> BaselineProfile:
    """The profile training would store for these columns (same functions as the trainer)."""
    features = {}
    for feature in contract.features:
        values = columns[feature.name]
        features[feature.name] = (
            profile_numeric(values) if feature.name in NUMERIC else profile_categorical(values.tolist())
        )
    return BaselineProfile(
        model_name=contract.name,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        rows=len(columns["plan"]),
        features=features,
        prediction=profile_numeric(columns["probability:yes"]),
    )


def batch(
    columns: dict[str, np.ndarray],
    *,
    version: int = 1,
    start: int = 0,
    stop: int | None = None,
    rejected: tuple[Rejected, ...] = (),
) -> CaptureBatch:
    """Rows [start, stop) as a capture batch (lists with None for nulls, as a decoded capture holds)."""
    stop = len(columns["plan"]) if stop is None else stop
    rows = stop - start

    def cells(name: str) -> list[object]:
        values = columns[name][start:stop]
        if values.dtype.kind == "f":
            return [None if v != v else v for v in values.tolist()]
        return values.tolist()

    probability = columns["probability:yes"][start:stop]
    return CaptureBatch(
        at=[T0 + i for i in range(start, stop)],
        versions=[version] * rows,
        prediction_ids=[f"p{i}" for i in range(start, stop)],
        inputs={f.name: cells(f.name) for f in CONTRACT.features},
        outputs={
            "label": ["yes" if p >= 0.5 else "no" for p in probability.tolist()],
            "probability:no": (1.0 - probability).tolist(),
            "probability:yes": probability.tolist(),
        },
        rejected=list(rejected),
    )
