"""Know the work before doing it: the memory and time training needs, and where it can run.

`plan_training` turns a dataset's rows, columns (the contract's) and object bytes, known once
validation has read it (DatasetRef.rows / size_bytes), and the contract's estimator into a
TrainingPlan from measurements kept in `capacity_measured.py` (written by
`scripts/bench_training_scale.py --calibrate`): peak = imports + the estimator's fixed MiB + the
object + cells x bytes per cell; seconds = fixed + cells / cells per second, scaled by the trees. Validation and training both decide with it, so the
rule lives here once. Light on purpose (no numpy): validation imports it.

Where: the train_model Lambda when the plan fits its memory and 15-minute timeout with margin;
otherwise the managed engine (`MANAGED_ENGINE_AVAILABLE`: mlops.training.engine, a SageMaker
training job) up to its memory; `refusal` says why a dataset past both cannot train.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mlops.training import capacity_measured as measured

if TYPE_CHECKING:
    from mlops.contract import Contract

# The train_model function's memory (infra/catalog.py deploys exactly this).
TRAINING_MEMORY_MB = 3008
LAMBDA_MAX_MEMORY_MB = 10_240
LAMBDA_TIMEOUT_SECONDS = 15 * 60
# Share of the function's memory / timeout a plan may use: the rest absorbs what the estimate
# misses (allocator fragmentation, a slower CPU than the calibration machine, S3 reads).
PLANNED_SHARE = 0.85
PLANNED_TIME_SHARE = 0.7
# A dataset past Lambda's budget trains on the managed engine (mlops.training.engine: a SageMaker
# training job) instead of being refused, unless it is past the engine's memory too.
MANAGED_ENGINE_AVAILABLE = True
# The engine's instance (infra/constructs/managed_training.py deploys exactly this): memory-optimised,
# since scikit-learn trains on one core and memory is what runs out.
MANAGED_ENGINE_INSTANCE_TYPE = "ml.r5.2xlarge"
MANAGED_ENGINE_MEMORY_MB = 65_536
MIB = 1024 * 1024
# Lambda memory is set in 1 MB steps; plans ask in 64 MB steps, at least 512 MB.
MEMORY_STEP_MB = 64
MIN_MEMORY_MB = 512


class TrainingPlace(StrEnum):
    LAMBDA = "lambda"
    MANAGED_ENGINE = "managed_engine"


@dataclass(frozen=True)
class TrainingPlan:
    """What training a dataset will take, and where it fits."""

    rows: int
    columns: int
    object_bytes: int
    estimator: str
    peak_mib: float
    seconds: float
    fits_lambda: bool
    reason: str
    memory_mb: int  # the memory to ask for: the peak with margin, in MEMORY_STEP_MB steps
    lambda_memory_mb: int  # what the train_model function has

    @property
    def where(self) -> TrainingPlace:
        return TrainingPlace.LAMBDA if self.fits_lambda else TrainingPlace.MANAGED_ENGINE


def plan_training(
    rows: int,
    columns: int,
    object_bytes: int,
    estimator: str,
    params: Mapping[str, Any] | None = None,
    *,
    lambda_memory_mb: int = TRAINING_MEMORY_MB,
) -> TrainingPlan:
    """The peak memory and time training `rows` x `columns` (an object of `object_bytes`) with
    `estimator` and `params` needs, and whether the train_model function (`lambda_memory_mb`) holds it."""
    cost = _cost(estimator)
    peak_mib = measured.RUNTIME_MIB + cost.fixed_mib + (object_bytes + rows * columns * cost.bytes_per_cell) / MIB
    seconds = cost.fixed_seconds + rows * columns / cost.cells_per_second * _work_factor(cost, params or {})
    memory_mb = max(MIN_MEMORY_MB, math.ceil(peak_mib / PLANNED_SHARE / MEMORY_STEP_MB) * MEMORY_STEP_MB)
    memory_budget = lambda_memory_mb * PLANNED_SHARE
    time_budget = LAMBDA_TIMEOUT_SECONDS * PLANNED_TIME_SHARE
    shape = f"{rows:,} rows x {columns} columns ({object_bytes / MIB:,.0f} MiB object) with {estimator}"
    problems = []
    if peak_mib > memory_budget:
        problems.append(
            f"about {peak_mib:,.0f} MiB, over its budget of {memory_budget:,.0f} MiB of {lambda_memory_mb} MB"
            f" (it would ask for {memory_mb} MB; Lambda allows at most {LAMBDA_MAX_MEMORY_MB})"
        )
    if seconds > time_budget:
        problems.append(
            f"about {seconds:,.0f} s, over its budget of {time_budget:,.0f} s of Lambda's {LAMBDA_TIMEOUT_SECONDS} s"
        )
    if problems:
        reason = f"training {shape} needs " + " and ".join(problems)
    else:
        reason = (
            f"training {shape} needs about {peak_mib:,.0f} MiB and {seconds:,.0f} s: "
            f"fits train_model's {lambda_memory_mb} MB and {LAMBDA_TIMEOUT_SECONDS} s"
        )
    return TrainingPlan(
        rows=rows,
        columns=columns,
        object_bytes=object_bytes,
        estimator=estimator,
        peak_mib=peak_mib,
        seconds=seconds,
        fits_lambda=not problems,
        reason=reason,
        memory_mb=memory_mb,
        lambda_memory_mb=lambda_memory_mb,
    )


def plan_dataset(
    rows: int, object_bytes: int, contract: Contract, *, lambda_memory_mb: int | None = None
) -> TrainingPlan:
    """The plan for a dataset of `rows` in `object_bytes` trained as `contract` declares (its columns, its estimator)."""
    return plan_training(
        rows,
        len(contract.columns),
        object_bytes,
        contract.estimator.name,
        contract.estimator.params,
        lambda_memory_mb=TRAINING_MEMORY_MB if lambda_memory_mb is None else lambda_memory_mb,
    )


def fits_memory(plan: TrainingPlan, memory_mb: int | None = None) -> bool:
    """Whether the plan's peak fits the budget of `memory_mb` (default the plan's Lambda memory); time aside."""
    return plan.peak_mib <= (plan.lambda_memory_mb if memory_mb is None else memory_mb) * PLANNED_SHARE


def refusal(plan: TrainingPlan) -> str | None:
    """Why the dataset cannot be trained anywhere, or None. The one place that refuses by size."""
    if plan.fits_lambda:
        return None
    if not MANAGED_ENGINE_AVAILABLE:
        return plan.reason
    if fits_memory(plan, MANAGED_ENGINE_MEMORY_MB):
        return None
    return (
        f"{plan.reason}; the managed engine ({MANAGED_ENGINE_INSTANCE_TYPE}) holds at most "
        f"{MANAGED_ENGINE_MEMORY_MB * PLANNED_SHARE:,.0f} MiB"
    )


def capacity_rows(
    columns: int,
    object_bytes: int,
    estimator: str,
    params: Mapping[str, Any] | None = None,
    *,
    lambda_memory_mb: int = TRAINING_MEMORY_MB,
) -> int:
    """The most rows of `columns` columns the train_model function can train, for an object of `object_bytes`."""
    low, high = 0, 1
    while plan_training(high, columns, object_bytes, estimator, params, lambda_memory_mb=lambda_memory_mb).fits_lambda:
        low, high = high, high * 2
        if high > 10**12:
            return low
    while high - low > 1:  # plans grow with rows: bisect for the last that fits
        middle = (low + high) // 2
        fits = plan_training(middle, columns, object_bytes, estimator, params, lambda_memory_mb=lambda_memory_mb)
        low, high = (middle, high) if fits.fits_lambda else (low, middle)
    return low


@dataclass(frozen=True)
class _Cost:
    bytes_per_cell: float
    fixed_mib: float
    cells_per_second: float
    fixed_seconds: float
    params: Mapping[str, Any]


# Estimators not measured on their own take the measured one whose work is alike (the same
# algorithm on a continuous target); the linear regressions cost at most what logistic regression does.
_ALIKE = {
    "random_forest_regressor": "random_forest_classifier",
    "gradient_boosting_regressor": "gradient_boosting_classifier",
    "linear_regression": "logistic_regression",
    "ridge": "logistic_regression",
}


def _cost(estimator: str) -> _Cost:
    entry = measured.ESTIMATORS.get(estimator) or measured.ESTIMATORS.get(_ALIKE.get(estimator, ""))
    if entry is None:
        raise ValueError(f"no training measurement for estimator {estimator!r}; run bench_training_scale --calibrate")
    return _Cost(
        bytes_per_cell=float(entry["bytes_per_cell"]),  # type: ignore[arg-type]
        fixed_mib=float(entry.get("fixed_mib", 0.0)),  # type: ignore[arg-type]
        cells_per_second=float(entry["cells_per_second"]),  # type: ignore[arg-type]
        fixed_seconds=float(entry["fixed_seconds"]),  # type: ignore[arg-type]
        params=entry.get("params", {}),  # type: ignore[arg-type]
    )


def _work_factor(cost: _Cost, params: Mapping[str, Any]) -> float:
    """Ensembles' time grows with their number of trees: the contract's against the measured run's."""
    measured_trees = cost.params.get("n_estimators")
    trees = params.get("n_estimators", measured_trees)
    if not measured_trees or not isinstance(trees, int | float) or isinstance(trees, bool):
        return 1.0
    return max(float(trees) / float(measured_trees), 0.01)
