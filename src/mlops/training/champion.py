"""The champion on the candidate's data: score the production version's ONNX graph on the rows the
candidate was judged on, so the promotion policy compares the two on the same data.

The graph is loaded by `mlops.inference.model.load_model`, which hashes the exact bytes it fetched
against the registry's SHA-256 before onnxruntime sees them (hashing the object and then fetching
it again would verify one read and load another). Production's contract may differ from the
candidate's: it is fed through its own features, and a difference that makes a fair score
impossible (a feature the data lacks or reads as another type, other classes) leaves the champion
unscored with the reason, as does an artifact that fails verification. Errors of the stores
themselves propagate (a retry may succeed).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnxruntime as ort
import pandas as pd

from mlops.contract import Contract, ProblemType, parse_contract
from mlops.errors import ContractError, IntegrityError, NotFoundError
from mlops.events import SameDataScore
from mlops.ports import ObjectStore
from mlops.registry.policy import CANDIDATE_HOLDOUT, RECENT_TRAFFIC
from mlops.registry.records import ModelVersion
from mlops.training.dataset import frame_feed
from mlops.training.onnx_io import META_CLASSES, OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_VALUE
from mlops.training.traffic import LabelledTraffic, TrafficWindow, recent_labelled_traffic

if TYPE_CHECKING:
    from mlops.training.trainer import TrainedModel

logger = logging.getLogger(__name__)

_FEED_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(string)": object}


class ProductionVersions(Protocol):
    def production(self, name: str) -> ModelVersion | None: ...


class _Unscorable(Exception):
    """The champion cannot be scored fairly on these rows (the message says why)."""


def production_version(registry: ProductionVersions | None, name: str) -> ModelVersion | None:
    """The model's production version, None when there is none (or no registry to ask)."""
    if registry is None:
        return None
    try:
        return registry.production(name)
    except NotFoundError:  # the model was never registered
        return None


def same_data_scores(
    registry: ProductionVersions | None,
    store: ObjectStore,
    candidate: TrainedModel,
    contract: Contract,
    traffic: TrafficWindow | None = None,
) -> list[SameDataScore]:
    """The production version (if any) and the candidate on the same rows: the candidate's holdout,
    and recent labelled traffic when a `traffic` window is given (too few rows: an unavailable score)."""
    champion = production_version(registry, contract.name)
    if champion is None:
        return []
    scorer = ChampionScorer(champion, store)
    scores = [scorer.score(candidate.holdout, contract, data=CANDIDATE_HOLDOUT, candidate_value=candidate.metric_value)]
    if traffic is not None:
        labelled = recent_labelled_traffic(store, contract.name, contract.target.name, traffic)
        scores.append(score_on_traffic(scorer, candidate.onnx_bytes, labelled, contract, min_rows=traffic.min_rows))
    return scores


class ChampionScorer:
    """Scores one production version on sets of rows; its graph is fetched, verified and loaded
    once, on first use (an artifact that fails verification is never loaded, and every score says why)."""

    def __init__(self, champion: ModelVersion, store: ObjectStore) -> None:
        self.champion = champion
        self.store = store
        self._loaded: Any = None
        self._load_error: Exception | None = None

    def score(
        self, rows: pd.DataFrame, contract: Contract, *, data: str, candidate_value: float | None
    ) -> SameDataScore:
        """The champion's metrics on `rows` (features and the target of the candidate's `contract`),
        judged by the candidate's contract metric. Never raises for an unscorable champion: the
        returned score's `unavailable` says why."""
        champion = self.champion
        base = SameDataScore(
            data=data,
            metric_name=contract.metric.name,
            rows=len(rows),
            candidate_value=candidate_value,
            champion_version=champion.version,
            champion_sha256=champion.artifact.sha256,
        )
        label = f"production v{champion.version}"
        try:
            champion_contract = _contract_of(champion)
            _check_comparable(champion_contract, contract)
            _require_columns(rows, champion_contract, "its", fill_nullable=False)
            loaded = self._model()
            metrics = graph_metrics(loaded.session, list(loaded.classes), rows, champion_contract, contract)
        # ValueError: a metric that cannot be computed on these rows (e.g. one class only)
        except (_Unscorable, IntegrityError, NotFoundError, ContractError, ValueError) as error:
            logger.warning("%s not scored on the %s: %s", label, data, error)
            return base.model_copy(update={"unavailable": f"{label} could not be scored: {error}"})
        value = metrics.get(contract.metric.name)
        if value is None or not np.isfinite(value):
            return base.model_copy(
                update={"unavailable": f"{label} has no finite {contract.metric.name} on these rows"}
            )
        return base.model_copy(update={"champion_value": float(value), "champion_metrics": metrics})

    def _model(self) -> Any:
        from mlops.inference.model import load_model  # verifies the digest before onnxruntime loads the bytes

        if self._load_error is not None:
            raise self._load_error
        if self._loaded is None:
            try:
                self._loaded = load_model(self.champion, self.store, max_records=1)
            except (IntegrityError, NotFoundError) as error:
                self._load_error = error
                raise
        return self._loaded


def score_champion(
    champion: ModelVersion,
    store: ObjectStore,
    rows: pd.DataFrame,
    contract: Contract,
    *,
    data: str,
    candidate_value: float | None,
) -> SameDataScore:
    """`ChampionScorer(champion, store).score(...)` for one set of rows."""
    return ChampionScorer(champion, store).score(rows, contract, data=data, candidate_value=candidate_value)


def score_on_traffic(
    scorer: ChampionScorer, candidate_onnx: bytes, traffic: LabelledTraffic, contract: Contract, *, min_rows: int
) -> SameDataScore:
    """Both graphs on recent labelled traffic, when there are at least `min_rows` labelled rows."""
    rows = traffic.frame
    base = SameDataScore(
        data=RECENT_TRAFFIC,
        metric_name=contract.metric.name,
        rows=len(rows),
        champion_version=scorer.champion.version,
        champion_sha256=scorer.champion.artifact.sha256,
    )
    if len(rows) < min_rows:
        return base.model_copy(
            update={
                "unavailable": f"{len(rows)} labelled rows of recent traffic, {min_rows} needed "
                f"({traffic.labels_read} labels read, {traffic.unmatched} without a captured prediction)"
            }
        )
    try:
        session = ort.InferenceSession(candidate_onnx, providers=["CPUExecutionProvider"])
        classes = json.loads(session.get_modelmeta().custom_metadata_map.get(META_CLASSES) or "[]")
        rows = _require_columns(rows, contract, "the candidate's", fill_nullable=True)
        ours = graph_metrics(session, [str(c) for c in classes], rows, contract, contract)[contract.metric.name]
    except (_Unscorable, ValueError, KeyError) as error:
        return base.model_copy(update={"unavailable": f"the candidate could not be scored on recent traffic: {error}"})
    return scorer.score(rows, contract, data=RECENT_TRAFFIC, candidate_value=ours)


def graph_metrics(
    session: ort.InferenceSession,
    classes: list[str],
    rows: pd.DataFrame,
    graph_contract: Contract,
    judge: Contract,
) -> dict[str, float]:
    """A graph's metrics on `rows`: fed through its own contract's features, judged by `judge`'s
    target and metrics. Raises _Unscorable (the graph cannot run on them) or ValueError (a metric
    cannot be computed on them)."""
    from mlops.training.trainer import holdout_metrics  # scikit-learn: only when there is something to score

    predictions, probabilities = _run(session, rows, graph_contract)
    return holdout_metrics(
        judge, _targets(rows, judge), predictions, probabilities, classes if probabilities is not None else []
    )


def _require_columns(rows: pd.DataFrame, contract: Contract, whose: str, *, fill_nullable: bool) -> pd.DataFrame:
    absent = [f for f in contract.features if f.name not in rows.columns]
    fillable = [f.name for f in absent if fill_nullable and f.nullable]
    missing = [f.name for f in absent if f.name not in fillable]
    if missing:
        raise _Unscorable(f"the rows lack {whose} features {missing}")
    return rows.assign(**dict.fromkeys(fillable)) if fillable else rows


def _contract_of(version: ModelVersion) -> Contract:
    return parse_contract(version.contract, source=f"contract of {version.model_name} v{version.version}")


def _check_comparable(champion: Contract, candidate: Contract) -> None:
    if champion.problem_type is not candidate.problem_type:
        raise _Unscorable(f"it solves {champion.problem_type.value}, the candidate {candidate.problem_type.value}")
    if champion.target.name != candidate.target.name:
        raise _Unscorable(f"it predicts {champion.target.name!r}, the candidate {candidate.target.name!r}")
    if set(champion.target.labels or ()) != set(candidate.target.labels or ()):
        raise _Unscorable(
            f"its classes {list(champion.target.classes or ())} differ from the candidate's "
            f"{list(candidate.target.classes or ())}"
        )
    ours = {f.name: f.type for f in candidate.features}
    retyped = [
        f"{f.name} ({f.type.value}, candidate {ours[f.name].value})"
        for f in champion.features
        if f.name in ours and ours[f.name] is not f.type
    ]
    if retyped:
        raise _Unscorable(f"features read as another type: {', '.join(retyped)}")


def _run(session: ort.InferenceSession, rows: pd.DataFrame, contract: Contract) -> tuple[np.ndarray, np.ndarray | None]:
    dtypes = {item.name: _FEED_DTYPES.get(item.type, np.float32) for item in session.get_inputs()}
    try:
        feed = {name: values.astype(dtypes[name], copy=False) for name, values in frame_feed(rows, contract).items()}
    except Exception as error:  # the error would quote the value: only its kind goes into reasons and logs
        raise _Unscorable(f"a value of the rows cannot be fed to its inputs ({type(error).__name__})") from None
    try:
        if contract.problem_type is ProblemType.CLASSIFICATION:
            labels, probabilities = session.run([OUTPUT_LABEL, OUTPUT_PROBABILITIES], feed)
            predictions = np.array([str(v) for v in np.asarray(labels).reshape(-1).tolist()], dtype=object)
            scores = np.asarray(probabilities, dtype=np.float64)
            # float32 rows sum to 1 within ~1e-7; log_loss warns about anything else
            totals = scores.sum(axis=1, keepdims=True)
            return predictions, scores / np.where(totals > 0, totals, 1.0)
        (values,) = session.run([OUTPUT_VALUE], feed)
    except Exception as error:  # onnxruntime raises its own exception types per failure
        raise _Unscorable(f"the graph cannot run on these rows ({type(error).__name__}: {error})") from None
    return np.asarray(values, dtype=np.float64).reshape(-1), None


def _targets(rows: pd.DataFrame, contract: Contract) -> np.ndarray:
    column = rows[contract.target.name]
    if contract.problem_type is ProblemType.REGRESSION:
        return column.to_numpy(dtype=np.float64)
    return np.array([str(v) for v in column.tolist()], dtype=object)
