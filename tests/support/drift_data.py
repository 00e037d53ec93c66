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
    return predicted(columns)


def predicted(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns with the model's probability of "yes": it depends on tenure and support calls
    only (not on the columns the tests shift or blank)."""
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


# ---- a wider contract: the shapes that made small windows alarm (a 30-level categorical) ----

LEVELS = tuple(f"level_{i:02d}" for i in range(30))
LEVEL_SHARES = (1.0 / np.arange(1, 31)) / (1.0 / np.arange(1, 31)).sum()  # Zipf: the rarest ~0.8 %
WIDE = parse_contract(
    {
        "name": "wide",
        "problem_type": "classification",
        "target": {"name": "label", "classes": ["no", "yes"]},
        "features": [
            {"name": "normal", "type": "numeric"},
            {"name": "skewed", "type": "numeric"},
            {"name": "heavy", "type": "numeric"},
            {"name": "counts", "type": "numeric"},
            {"name": "bimodal", "type": "numeric", "nullable": True},
            {"name": "small_set", "type": "categorical"},
            {"name": "many_levels", "type": "categorical", "nullable": True},
            {"name": "flag", "type": "boolean"},
        ],
        "estimator": {"name": "logistic_regression"},
        "metric": {"name": "accuracy"},
    }
)


def wide_traffic(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    bimodal = np.where(rng.random(rows) < 0.3, rng.normal(-2, 0.5, rows), rng.normal(2, 1, rows))
    bimodal[rng.random(rows) < 0.05] = np.nan
    levels = rng.choice(np.array(LEVELS, dtype=object), rows, p=LEVEL_SHARES)
    levels[rng.random(rows) < 0.05] = None
    columns = {
        "normal": rng.normal(10, 2, rows),
        "skewed": rng.lognormal(0, 1, rows),
        "heavy": rng.standard_t(3, rows),
        "counts": rng.poisson(2.0, rows).astype(np.float64),
        "bimodal": bimodal,
        "small_set": rng.choice(np.array(["a", "b", "c"], dtype=object), rows, p=[0.6, 0.3, 0.1]),
        "many_levels": levels,
        "flag": rng.random(rows) < 0.3,
    }
    columns["probability:yes"] = 1.0 / (1.0 + np.exp(-(columns["normal"] - 10) / 2 - 0.2 * columns["counts"]))
    return columns


def wide_baseline(columns: dict[str, np.ndarray]) -> BaselineProfile:
    features = {
        f.name: profile_numeric(columns[f.name])
        if f.type == "numeric"
        else profile_categorical(columns[f.name].tolist())
        for f in WIDE.features
    }
    return BaselineProfile(
        model_name=WIDE.name,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        rows=len(columns["normal"]),
        features=features,
        prediction=profile_numeric(columns["probability:yes"]),
    )


def wide_batch(columns: dict[str, np.ndarray], version: int = 1) -> CaptureBatch:
    rows = len(columns["normal"])
    return CaptureBatch(
        at=[T0] * rows,
        versions=[version] * rows,
        prediction_ids=[""] * rows,
        inputs={
            f.name: [None if isinstance(v, float) and v != v else v for v in columns[f.name].tolist()]
            for f in WIDE.features
        },
        outputs={"probability:yes": columns["probability:yes"].tolist()},
    )
