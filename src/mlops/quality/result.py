"""What one live-quality run found for one model: the JSON the quality function stores and the
API serves. Pydantic only (no numpy): models_api and the drift report read these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

QUALITY_SCHEMA_VERSION = 1


class QualityStatus(StrEnum):
    SCORED = "scored"  # the production version had `min_labels` labelled rows in the window
    INSUFFICIENT_DATA = "insufficient_data"  # reported, never judged


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class VersionQuality(_Frozen):
    """One version's live scores over the window, beside its holdout scores."""

    version: int
    labelled_rows: int
    unusable_rows: int = 0  # labelled rows with a label or an output the scores cannot use
    # accuracy, f1_macro, f1, roc_auc, roc_auc_error_bound, log_loss | rmse, mae, r2
    metrics: dict[str, float] = Field(default_factory=dict)
    holdout: dict[str, float] = Field(default_factory=dict)  # the registry version's `metrics`
    label_counts: dict[str, int] = Field(default_factory=dict)  # per class, or per target bin
    label_drift_psi: float | None = None  # vs the training target; None: the baseline has no target profile
    label_drifted: bool = False


class QualityVerdict(_Frozen):
    """The production version's contract metric, live vs the minimum and the holdout."""

    metric: str
    higher_is_better: bool
    live: float
    holdout: float | None
    minimum: float | None
    margin: float
    below_minimum: bool
    below_holdout: bool

    @property
    def below(self) -> bool:
        return self.below_minimum or self.below_holdout


class RunCounts(_Frozen):
    """What this run read and joined (all versions)."""

    label_objects_read: int = 0
    late_label_objects: int = 0
    labels: int = 0
    duplicates: int = 0
    conflicts: int = 0
    joined: int = 0
    unmatched: int = 0
    other_version: int = 0  # joined rows answered by a version other than production
    capture_objects_read: int = 0


class QualityResult(_Frozen):
    schema_version: int = QUALITY_SCHEMA_VERSION
    model_name: str
    version: int  # the production version judged
    generated_at: datetime
    status: QualityStatus
    window_hours: float
    window_start: datetime  # predictions answered since then are in the window
    min_labels: int
    f1_averaging: str  # "binary, positive class 'yes'" or "macro"
    auc_bins: int
    production: VersionQuality | None = None
    verdict: QualityVerdict | None = None  # None unless scored
    other_versions: list[VersionQuality] = Field(default_factory=list)
    label_drift_threshold: float
    run: RunCounts = RunCounts()
