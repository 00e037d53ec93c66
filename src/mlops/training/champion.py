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

import logging
from typing import Protocol

import numpy as np
import pandas as pd

from mlops.contract import Contract, ProblemType, parse_contract
from mlops.errors import ContractError, IntegrityError, NotFoundError
from mlops.events import SameDataScore
from mlops.ports import ObjectStore
from mlops.registry.records import ModelVersion
from mlops.training.dataset import frame_feed, model_inputs
from mlops.training.onnx_io import OUTPUT_LABEL, OUTPUT_PROBABILITIES, OUTPUT_VALUE

logger = logging.getLogger(__name__)

CANDIDATE_HOLDOUT = "candidate_holdout"
_FEED_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(string)": object}
RECENT_TRAFFIC = "recent_traffic"


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


def score_champion(
    champion: ModelVersion,
    store: ObjectStore,
    rows: pd.DataFrame,
    contract: Contract,
    *,
    data: str,
    candidate_value: float | None,
) -> SameDataScore:
    """The champion's metrics on `rows` (features and the target of the candidate's `contract`),
    judged by the candidate's contract metric. Never raises for an unscorable champion: the
    returned score's `unavailable` says why."""
    from mlops.training.trainer import holdout_metrics  # scikit-learn: only when a champion exists

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
        predictions, probabilities, classes = _predict(champion, store, rows, champion_contract)
        y_true = _targets(rows, contract)
        metrics = holdout_metrics(contract, y_true, predictions, probabilities, classes)
    # ValueError: a metric that cannot be computed on these rows (e.g. one class only)
    except (_Unscorable, IntegrityError, NotFoundError, ContractError, ValueError) as error:
        logger.warning("%s not scored on the %s: %s", label, data, error)
        return base.model_copy(update={"unavailable": f"{label} could not be scored: {error}"})
    value = metrics.get(contract.metric.name)
    if value is None or not np.isfinite(value):
        return base.model_copy(update={"unavailable": f"{label} has no finite {contract.metric.name} on these rows"})
    return base.model_copy(update={"champion_value": float(value), "champion_metrics": metrics})


def _contract_of(version: ModelVersion) -> Contract:
    return parse_contract(version.contract, source=f"contract of {version.model_name} v{version.version}")


def _check_comparable(champion: Contract, candidate: Contract) -> None:
    if champion.problem_type is not candidate.problem_type:
        raise _Unscorable(f"it solves {champion.problem_type.value}, the candidate {candidate.problem_type.value}")
    if champion.target.name != candidate.target.name:
        raise _Unscorable(f"it predicts {champion.target.name!r}, the candidate {candidate.target.name!r}")
    if set(champion.target.classes or ()) != set(candidate.target.classes or ()):
        raise _Unscorable(
            f"its classes {list(champion.target.classes or ())} differ from the candidate's "
            f"{list(candidate.target.classes or ())}"
        )
    ours = {f.name: f.type for f in candidate.features}
    missing = [f.name for f in champion.features if f.name not in ours]
    if missing:
        raise _Unscorable(f"the candidate's data lacks its features {missing}")
    retyped = [
        f"{f.name} ({f.type.value}, candidate {ours[f.name].value})"
        for f in champion.features
        if ours[f.name] is not f.type
    ]
    if retyped:
        raise _Unscorable(f"features read as another type: {', '.join(retyped)}")


def _predict(
    champion: ModelVersion, store: ObjectStore, rows: pd.DataFrame, contract: Contract
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    from mlops.inference.model import load_model  # verifies the digest before onnxruntime loads the bytes

    loaded = load_model(champion, store, max_records=max(len(rows), 1))
    dtypes = {item.name: _FEED_DTYPES.get(item.type, np.float32) for item in loaded.session.get_inputs()}
    feed = {
        name: values.astype(dtypes[name], copy=False)
        for name, values in frame_feed(model_inputs(rows, contract), contract).items()
    }
    try:
        if contract.problem_type is ProblemType.CLASSIFICATION:
            labels, probabilities = loaded.session.run([OUTPUT_LABEL, OUTPUT_PROBABILITIES], feed)
            predictions = np.array([str(v) for v in np.asarray(labels).reshape(-1).tolist()], dtype=object)
            scores = np.asarray(probabilities, dtype=np.float64)
            # float32 rows sum to 1 within ~1e-7; log_loss warns about anything else
            scores = scores / np.where(scores.sum(axis=1, keepdims=True) > 0, scores.sum(axis=1, keepdims=True), 1.0)
            return predictions, scores, list(loaded.classes)
        (values,) = loaded.session.run([OUTPUT_VALUE], feed)
    except Exception as error:  # onnxruntime raises its own exception types per failure
        raise _Unscorable(f"onnxruntime cannot run it on these rows ({error})") from None
    return np.asarray(values, dtype=np.float64).reshape(-1), None, []


def _targets(rows: pd.DataFrame, contract: Contract) -> np.ndarray:
    column = rows[contract.target.name]
    if contract.problem_type is ProblemType.REGRESSION:
        return column.to_numpy(dtype=np.float64)
    return np.array([str(v) for v in column.tolist()], dtype=object)
