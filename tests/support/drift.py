"""Drift results for tests of the report, the notice and the drift routes: built by hand from a
seed (the statistics engine is tested on its own), shaped as the drift function stores them."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from mlops.drift.result import (
    DataQuality,
    DatasetDrift,
    Distribution,
    DriftMethod,
    DriftResult,
    DriftStatus,
    FeatureDrift,
    MissingValues,
    OutOfRange,
    Rejection,
    WindowInfo,
)
from mlops.errors import NotFoundError
from mlops.layout import drift_report_id

GENERATED_AT = datetime(2026, 12, 2, 10, 5, tzinfo=UTC)


def _shares(rng: random.Random, count: int) -> list[float]:
    weights = [rng.random() + 0.05 for _ in range(count)]
    total = sum(weights)
    return [w / total for w in weights]


def _numeric_buckets(count: int) -> list[str]:
    edges = [round(-2.0 + 4.0 * i / (count - 2), 2) for i in range(count - 1)]
    labels = [f"(-inf, {edges[0]}]"]
    labels += [f"({low}, {high}]" for low, high in itertools.pairwise(edges)]
    return [*labels, f"({edges[-1]}, inf)"]


def feature_drift(
    name: str,
    *,
    kind: str = "numeric",
    drifted: bool = False,
    regime: str = "large",
    levels: int = 5,
    seed: int = 0,
    rows: int = 5_000,
    bins: int = 10,
) -> FeatureDrift:
    """One feature's result, its decision as given; a distribution whose current shares move when drifted."""
    rng = random.Random(f"{name}-{seed}")
    buckets = _numeric_buckets(bins) if kind == "numeric" else [f"{name}-level-{i}" for i in range(levels)]
    baseline = _shares(rng, len(buckets))
    noise = 0.6 if drifted else 0.02
    current = [max(share * (1 + rng.uniform(-noise, noise)), 0.0) for share in baseline]
    total = sum(current)
    current = [share / total for share in current]
    if regime == "small":
        method = DriftMethod.KS if kind == "numeric" else DriftMethod.CHI_SQUARE
        statistic, threshold = (0.0004 if drifted else 0.41), 0.05
    else:
        method = DriftMethod.WASSERSTEIN if kind == "numeric" else DriftMethod.JENSEN_SHANNON
        statistic, threshold = (0.183 if drifted else 0.021), 0.1
    return FeatureDrift(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        method=method,
        statistic=statistic,
        threshold=threshold,
        drifted=drifted,
        psi=0.31 if drifted else 0.012,
        rows=rows,
        distribution=Distribution(buckets=buckets, baseline=baseline, current=current),
    )


def drift_result(
    *,
    model: str = "churn",
    version: int = 3,
    features: int = 6,
    drifted: tuple[int, ...] = (0, 3),
    categorical_every: int = 3,
    levels: int = 5,
    regime: str = "large",
    prediction_drifted: bool = True,
    generated_at: datetime = GENERATED_AT,
    data_quality: DataQuality | None = None,
    names: list[str] | None = None,
) -> DriftResult:
    """A scored result: `features` features (every `categorical_every`-th categorical), those at
    `drifted` drifted, the prediction drifted or not, a data-quality section with a missing spike."""
    names = names or [f"feature_{i:02d}" for i in range(features)]
    built = [
        feature_drift(
            name,
            kind="categorical" if i % categorical_every == categorical_every - 1 else "numeric",
            drifted=i in drifted,
            regime=regime,
            levels=levels,
            seed=i,
        )
        for i, name in enumerate(names)
    ]
    drifted_names = [f.name for f in built if f.drifted]
    share = len(drifted_names) / len(built)
    prediction = feature_drift("prediction", kind="categorical", drifted=prediction_drifted, levels=2, regime=regime)
    names = [*names, *names, *names]  # the data-quality rows name the first three (repeated when fewer)
    quality = data_quality or DataQuality(
        missing=[
            MissingValues(name=names[1], baseline_share=0.02, current_share=0.31, spike=True),
            MissingValues(name=names[2], baseline_share=0.0, current_share=0.001, spike=False),
        ],
        out_of_range=[OutOfRange(name=names[0], share=0.07, threshold=0.05, breached=True)],
        rejections=[
            Rejection(field=names[2], reason="unseen_category", count=80),
            Rejection(field=names[0], reason="out_of_range", count=12),
        ],
        requests_rejected=92,
        rejected_share=0.018,
        issues=[f"{names[1]}: 31.0% missing values, 2.0% in training"],
        alarm=True,
    )
    first = generated_at - timedelta(hours=1, minutes=5)
    return DriftResult(
        model_name=model,
        version=version,
        generated_at=generated_at,
        status=DriftStatus.SCORED,
        min_window_rows=100,
        window=WindowInfo(
            rows=5_000, other_version_rows=40, unreadable_rows=2, captures=12, first_at=first, last_at=generated_at
        ),
        regime=regime,  # type: ignore[arg-type]
        features=built,
        prediction=prediction,
        dataset=DatasetDrift(drifted_features=drifted_names, share=share, threshold=0.5, drifted=share >= 0.5),
        drift_detected=bool(drifted_names) or prediction_drifted,
        drift_score=max((f.psi or 0.0) for f in built),
        data_quality=quality,
    )


def insufficient_result(*, rows: int = 37, generated_at: datetime = GENERATED_AT) -> DriftResult:
    """A window too small to judge: reported, not scored."""
    return DriftResult(
        model_name="churn",
        version=3,
        generated_at=generated_at,
        status=DriftStatus.INSUFFICIENT_DATA,
        min_window_rows=100,
        window=WindowInfo(rows=rows, captures=1, first_at=generated_at - timedelta(minutes=50), last_at=generated_at),
    )


class InMemoryDriftResults:
    """DriftResults in memory: stored JSON per (model, report id)."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], bytes] = {}

    def add(self, result: DriftResult, report_id: str | None = None) -> str:
        report_id = report_id or drift_report_id(result.generated_at)
        self.stored[(result.model_name, report_id)] = result.model_dump_json().encode()
        return report_id

    def report_ids(self, model: str, *, before: str | None, limit: int) -> list[str]:
        ids = sorted((i for m, i in self.stored if m == model and (before is None or i < before)), reverse=True)
        return ids[:limit]

    def read(self, model: str, report_id: str) -> bytes:
        try:
            return self.stored[(model, report_id)]
        except KeyError:
            raise NotFoundError(f"{model}/{report_id} does not exist") from None
