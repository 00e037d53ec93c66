"""A model's live-quality runs as the models API serves them: the latest result and a page of
summaries, newest first. The paging, the report-id rules and the reading of stored runs are the
drift history's (`mlops.drift.history.history_page`, `load_stored`); only the shapes differ.
Pydantic only: models_api has no numpy."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from mlops.drift.history import DEFAULT_PAGE, DriftResults, history_page, load_stored, time_of
from mlops.errors import NotFoundError
from mlops.layout import drift_report_id
from mlops.quality.result import QualityResult, QualityStatus
from mlops.registry.ports import ModelRegistry


class QualityResultNotFoundError(NotFoundError):
    pass


class QualitySummary(BaseModel):
    """One run in a model's live-quality history."""

    model_config = ConfigDict(frozen=True)

    report_id: str = Field(description="the run's id: its UTC time, YYYYMMDDTHHMMSSffffffZ")
    generated_at: datetime | None = None
    version: int | None = Field(default=None, description="the production version judged")
    status: QualityStatus | None = Field(default=None, description="null when the stored result is unreadable")
    metric: str | None = Field(default=None, description="the contract's metric")
    live: float | None = Field(default=None, description="its live value over the window")
    holdout: float | None = Field(default=None, description="its value on the version's holdout")
    below: bool | None = Field(default=None, description="below the minimum or the holdout margin")
    labelled_rows: int | None = None
    labels_joined: int | None = Field(default=None, description="labels joined in this run")
    labels_unmatched: int | None = None
    problem: str | None = Field(default=None, description="why the stored result could not be read")


class QualityHistory(BaseModel):
    """`latest`: the newest run's full result (first page only); `history`: newest first."""

    model_config = ConfigDict(frozen=True)

    model: str
    latest: QualityResult | None = None
    history: list[QualitySummary] = Field(default_factory=list)
    next: str | None = Field(default=None, description="pass as `next` for the following page; null on the last")


def summarize(report_id: str, result: QualityResult) -> QualitySummary:
    verdict = result.verdict
    return QualitySummary(
        report_id=report_id,
        generated_at=result.generated_at,
        version=result.version,
        status=result.status,
        metric=verdict.metric if verdict else None,
        live=verdict.live if verdict else None,
        holdout=verdict.holdout if verdict else None,
        below=verdict.below if verdict else None,
        labelled_rows=result.production.labelled_rows if result.production else 0,
        labels_joined=result.run.joined,
        labels_unmatched=result.run.unmatched,
    )


def quality_history(
    registry: ModelRegistry, results: DriftResults, name: str, *, limit: int = DEFAULT_PAGE, after: str | None = None
) -> QualityHistory:
    """A page of `name`'s live-quality runs, newest first. Raises BadRequestError (name, `after`,
    `limit`), ModelNotFoundError. No runs yet: an empty history."""
    latest, summaries, following = history_page(
        registry,
        results,
        name,
        limit=limit,
        after=after,
        load=lambda report_id: latest_quality(results, name, report_id),
        summarize=summarize,
        unreadable=lambda report_id, problem: QualitySummary(
            report_id=report_id, generated_at=time_of(report_id), problem=problem
        ),
    )
    return QualityHistory(model=name, latest=latest, history=summaries, next=following)


def latest_quality(results: DriftResults, name: str, report_id: str) -> QualityResult:
    """One stored run; raises QualityResultNotFoundError (none, or unreadable)."""
    return load_stored(results, name, report_id, QualityResult, QualityResultNotFoundError, "live-quality result")


def quality_at(results: DriftResults, name: str, at: datetime) -> QualityResult | None:
    """The newest readable live-quality run of `name` up to `at` (None: none yet, or unreadable)."""
    ids = results.report_ids(name, before=drift_report_id(at + timedelta(microseconds=1)), limit=1)
    if not ids:
        return None
    try:
        return latest_quality(results, name, ids[0])
    except NotFoundError:
        return None
