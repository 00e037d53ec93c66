"""A model's drift runs as the models API serves them: the latest result and a page of summaries,
newest first, and one run's result or its report page.

The drift function stores each run's `DriftResult` at `monitoring/<model>/reports/<report id>.json`
(mlops.layout); `DriftResults` reads them (S3 in Lambda, a fake in tests). Pydantic only: models_api
has no numpy. A stored result this code cannot read (an older schema, a broken object) is listed
with the reason instead of failing the request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.drift.report import render_html
from mlops.drift.result import DriftResult, DriftStatus
from mlops.errors import BadRequestError, NotFoundError
from mlops.layout import DRIFT_REPORT_ID_PATTERN, is_drift_report_id
from mlops.quality.result import QualityResult
from mlops.registry.names import require_model_name
from mlops.registry.ports import ModelRegistry

Result = TypeVar("Result")
Summary = TypeVar("Summary")
Stored = TypeVar("Stored", bound=BaseModel)

DEFAULT_PAGE = 10
MAX_PAGE = 50  # each summary is one read of a stored result


class DriftResults(Protocol):
    def report_ids(self, model: str, *, before: str | None, limit: int) -> list[str]:
        """Up to `limit` report ids of `model`, newest first, all older than `before` when given."""
        ...

    def read(self, model: str, report_id: str) -> bytes:
        """The stored result's JSON; raises NotFoundError when there is none."""
        ...


class DriftReportNotFoundError(NotFoundError):
    pass


class DriftSummary(BaseModel):
    """One run in a model's drift history."""

    model_config = ConfigDict(frozen=True)

    report_id: str = Field(description="the run's id: its UTC time, YYYYMMDDTHHMMSSffffffZ")
    generated_at: datetime | None = None
    version: int | None = Field(default=None, description="the model version the window was compared for")
    status: DriftStatus | None = Field(default=None, description="null when the stored result is unreadable")
    drift_detected: bool | None = None
    dataset_drift_share: float | None = Field(default=None, description="drifted features / features compared")
    dataset_drift_threshold: float | None = None
    drifted_features: list[str] = Field(default_factory=list)
    prediction_drifted: bool | None = None
    data_quality_alarm: bool | None = None
    window_rows: int | None = None
    problem: str | None = Field(default=None, description="why the stored result could not be read")


class DriftHistory(BaseModel):
    """`latest`: the newest run's full result (first page only); `history`: newest first."""

    model_config = ConfigDict(frozen=True)

    model: str
    latest: DriftResult | None = None
    history: list[DriftSummary] = Field(default_factory=list)
    next: str | None = Field(default=None, description="pass as `next` for the following page; null on the last")


def require_report_id(text: str, *, what: str = "report id") -> str:
    """Raises BadRequestError unless `text` is a drift report id."""
    if not is_drift_report_id(text):
        raise BadRequestError(f"{text[:80]!r} is not a drift {what} ({DRIFT_REPORT_ID_PATTERN})")
    return text


def summarize(report_id: str, result: DriftResult) -> DriftSummary:
    dataset = result.dataset
    return DriftSummary(
        report_id=report_id,
        generated_at=result.generated_at,
        version=result.version,
        status=result.status,
        drift_detected=result.drift_detected,
        dataset_drift_share=dataset.share if dataset else None,
        dataset_drift_threshold=dataset.threshold if dataset else None,
        drifted_features=[f.name for f in result.features if f.drifted],
        prediction_drifted=result.prediction.drifted if result.prediction else None,
        data_quality_alarm=result.data_quality.alarm,
        window_rows=result.window.rows,
    )


def drift_history(
    registry: ModelRegistry, results: DriftResults, name: str, *, limit: int = DEFAULT_PAGE, after: str | None = None
) -> DriftHistory:
    """A page of `name`'s drift runs, newest first, older than the `after` report id when given.
    Raises BadRequestError (name, `after`, `limit`), ModelNotFoundError. No runs yet: an empty history."""
    latest, summaries, following = history_page(
        registry,
        results,
        name,
        limit=limit,
        after=after,
        load=lambda report_id: _load(results, name, report_id),
        summarize=summarize,
        unreadable=lambda report_id, problem: DriftSummary(
            report_id=report_id, generated_at=_time_of(report_id), problem=problem
        ),
    )
    return DriftHistory(model=name, latest=latest, history=summaries, next=following)


def history_page(
    registry: ModelRegistry,
    results: DriftResults,
    name: str,
    *,
    limit: int,
    after: str | None,
    load: Callable[[str], Result],
    summarize: Callable[[str, Result], Summary],
    unreadable: Callable[[str, str], Summary],
) -> tuple[Result | None, list[Summary], str | None]:
    """(the newest result on the first page, a page of summaries newest first, the `next` token) of
    any stored runs keyed by report id (drift reports, live-quality results). `load` raises
    NotFoundError for a run that is unreadable or gone: it is listed through `unreadable`."""
    registry.get_model(require_model_name(name))
    if after is not None:
        require_report_id(after, what="`next` token (a report id)")
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequestError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    ids = results.report_ids(name, before=after, limit=limit + 1)
    page = ids[:limit]
    summaries: list[Summary] = []
    latest: Result | None = None
    for report_id in page:
        try:
            result = load(report_id)
        except NotFoundError as error:  # unreadable, or deleted since it was listed
            summaries.append(unreadable(report_id, str(error)))
            continue
        if after is None and report_id == page[0]:
            latest = result
        summaries.append(summarize(report_id, result))
    return latest, summaries, page[-1] if len(ids) > limit else None


def drift_result(registry: ModelRegistry, results: DriftResults, name: str, report_id: str) -> DriftResult:
    """One run's stored result. Raises BadRequestError, ModelNotFoundError, DriftReportNotFoundError
    (no such run, or a stored object this API cannot read: the message says which)."""
    registry.get_model(require_model_name(name))
    return _load(results, name, require_report_id(report_id))


def drift_page(
    registry: ModelRegistry,
    results: DriftResults,
    name: str,
    report_id: str,
    *,
    live_quality: Callable[[datetime], QualityResult | None] = lambda _: None,
) -> str:
    """One run's report page, rendered from its stored result (the same page the drift function
    stores beside it, by the current renderer), with the live quality `live_quality` gives for the
    run's time (`mlops.quality.history.quality_at`), if any."""
    result = drift_result(registry, results, name, report_id)
    return render_html(result, live_quality(result.generated_at))


def _load(results: DriftResults, name: str, report_id: str) -> DriftResult:
    return load_stored(results, name, report_id, DriftResult, DriftReportNotFoundError, "drift report")


def load_stored(
    results: DriftResults, name: str, report_id: str, schema: type[Stored], missing: type[NotFoundError], what: str
) -> Stored:
    """A stored run as `schema`; raises `missing` for no such run or a form this code cannot read."""
    try:
        data = results.read(name, report_id)
    except NotFoundError:
        raise missing(f"{name} has no {what} {report_id}") from None
    try:
        return schema.model_validate_json(data)
    except ValidationError as error:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
        raise missing(
            f"{name}'s {what} {report_id} is stored in a form this API cannot read "
            f"(an older schema or a damaged object): {problem}"
        ) from None


def time_of(report_id: str) -> datetime | None:
    """A report id's time (None for a malformed one)."""
    return _time_of(report_id)


def _time_of(report_id: str) -> datetime | None:
    try:
        return datetime.strptime(report_id, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
