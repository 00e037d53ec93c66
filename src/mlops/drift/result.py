"""What one drift run found for one model: the JSON the drift function stores and the API serves.

Pydantic only (no numpy): models_api reads and renders these without numpy in its layers.
The drift function builds it (`mlops.drift.decisions`), the report renders it
(`mlops.drift.report`), the notice quotes it. One schema for all three.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RESULT_SCHEMA_VERSION = 2


class DriftStatus(StrEnum):
    SCORED = "scored"
    INSUFFICIENT_DATA = "insufficient_data"  # too few rows to judge: reported, never scored


class DriftMethod(StrEnum):
    KS = "ks"  # two-sample Kolmogorov-Smirnov p-value (numeric, small windows)
    CHI_SQUARE = "chi_square"  # chi-square p-value (categorical, small windows)
    WASSERSTEIN = "wasserstein"  # Wasserstein distance / baseline std (numeric, large windows)
    JENSEN_SHANNON = "jensen_shannon"  # Jensen-Shannon distance (categorical, large windows)
    PSI = "psi"  # population stability index (any kind, when the contract asks for it)

    @property
    def gives_p_value(self) -> bool:
        """KS and chi-square give p-values (drift when below the threshold); the others distances
        (drift when above). The report and the notice word each decision by it."""
        return self in (DriftMethod.KS, DriftMethod.CHI_SQUARE)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Distribution(_Frozen):
    """Shares of baseline and window over the same buckets, for a plot (nulls excluded)."""

    buckets: list[str]  # labels: "(-inf, 1.5]", "(1.5, 3.2]", ... or category names
    baseline: list[float]
    current: list[float]


class FeatureDrift(_Frozen):
    name: str
    kind: Literal["numeric", "categorical"]
    method: DriftMethod
    statistic: float  # the method's value (a p-value for KS/chi-square, a distance otherwise)
    threshold: float  # drifted when statistic < threshold (p-values) or > threshold (distances)
    drifted: bool
    psi: float | None = None  # always computed, for continuity with earlier reports
    # the Holm-adjusted KS / chi-square p-value of this column (the statistic itself for those
    # methods; the significance a distance must also show); None with the PSI method
    p_value: float | None = None
    rows: int = 0  # non-null values compared
    distribution: Distribution | None = None


class DatasetDrift(_Frozen):
    drifted_features: list[str]
    share: float  # drifted features / features compared
    threshold: float  # the contract's drift share
    drifted: bool  # share >= threshold


class MissingValues(_Frozen):
    name: str
    baseline_share: float
    current_share: float
    spike: bool  # significantly and materially more missing values than in training


class OutOfRange(_Frozen):
    name: str
    share: float  # of non-null window values outside the training data's [min, max]
    threshold: float
    breached: bool


class Rejection(_Frozen):
    field: str
    reason: str  # unseen_category | out_of_range | wrong_type | missing | other
    count: int


class DataQuality(_Frozen):
    missing: list[MissingValues] = Field(default_factory=list)
    out_of_range: list[OutOfRange] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)
    requests_rejected: int = 0  # records predict refused in the window (400s)
    rejected_share: float = 0.0  # refused / (refused + answered)
    rejected_share_threshold: float = 0.05
    issues: list[str] = Field(default_factory=list)  # one sentence per problem, for people
    alarm: bool = False


class WindowInfo(_Frozen):
    rows: int  # rows of this version compared with its baseline
    other_version_rows: int = 0
    unreadable_rows: int = 0
    captures: int = 0  # capture objects read into this window
    late_captures: int = 0  # capture objects that landed later than the look-back: counted, not read
    late_captures_read: int = 0  # ... that landed late but inside the look-back: read into this window
    first_at: datetime | None = None
    last_at: datetime | None = None


class DriftResult(_Frozen):
    schema_version: int = RESULT_SCHEMA_VERSION
    model_name: str
    version: int
    generated_at: datetime
    status: DriftStatus
    min_window_rows: int
    window: WindowInfo
    regime: Literal["small", "large"] | None = None  # which tests the window's size chose
    features: list[FeatureDrift] = Field(default_factory=list)
    prediction: FeatureDrift | None = None
    dataset: DatasetDrift | None = None
    drift_detected: bool = False  # a feature or the prediction drifted: the drift alarm's signal
    drift_score: float | None = None  # the largest feature PSI (the earlier single number)
    data_quality: DataQuality = DataQuality()
    report_key: str | None = None  # the HTML page beside this JSON
