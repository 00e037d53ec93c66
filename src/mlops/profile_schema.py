"""The baseline profile's schema (pydantic only, no numpy): what training stores beside each
artifact at `Artifact.baseline_key`.

Kept apart from `mlops.profile` (which builds profiles with numpy and re-exports these names) so
that functions without numpy in their layers, such as models_api, can read a stored profile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.contract_rules import MISSING_CATEGORY

OTHER = "__other__"  # categories never seen in training
MISSING = MISSING_CATEGORY  # null cells, counted as their own bucket (what the graph is fed for them)


class NumericProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["numeric"] = "numeric"
    # interior cut points (quantiles of the training data); bins are (-inf, e0], (e0, e1], ..., (en, inf)
    edges: list[float]
    proportions: list[float]  # len(edges) + 1 bins, then the share of nulls last
    count: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    # A finer histogram of the same non-null values for drift tests (about 100 quantile bins; its cut
    # points include `edges`, so decile bins are unions of fine bins). Same bin rule as `edges`.
    # Absent in baselines stored before it: drift then falls back to the decile bins.
    fine_edges: list[float] | None = None
    fine_counts: list[int] | None = None  # len(fine_edges) + 1 counts of finite values


class CategoricalProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["categorical"] = "categorical"
    proportions: dict[str, float]  # category -> share, with OTHER and MISSING buckets
    count: int


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class BaselineProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_name: str
    created_at: datetime
    rows: int
    features: dict[str, ColumnProfile]
    prediction: ColumnProfile
    # the training target (class shares, or the value's bins): live labels are compared to it
    # (mlops.quality). Absent in baselines stored before it: label drift is then not judged.
    target: ColumnProfile | None = None
