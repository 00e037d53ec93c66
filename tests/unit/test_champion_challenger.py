"""A fair champion/challenger with real scikit-learn: training scores the production graph on the
candidate's holdout, and registration's promotion policy decides on those same-data scores."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.contract import parse_contract
from mlops.events import DatasetRef, DatasetValidated, ModelTrained
from mlops.layout import contract_key
from mlops.registry.records import AuditAction
from mlops.training.service import train_from_event
from mlops.training.traffic import TrafficWindow
from tests.support.challenger import easy_rows, hard_rows, risk_contract, risk_rows, write_labelled_traffic
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher
from tests.support.registry_fake import InMemoryRegistry

DATA, ARTIFACTS = "data", "artifacts"


class Pipeline:
    """train_model then register_model, with in-memory stores and a registry that verifies artifacts."""

    def __init__(self) -> None:
        self.store = InMemoryObjectStore()
        self.registry = InMemoryRegistry(artifacts=self.store)
        self.publisher = RecordingPublisher()

    def upload(self, frame: pd.DataFrame, name: str, contract: dict[str, Any]) -> DatasetValidated:
        text = json.dumps(contract)
        self.store.put_bytes(DATA, contract_key("risk"), text.encode(), "application/json")
        data = frame.to_csv(index=False).encode()
        key = f"datasets/risk/{name}.csv"
        version = self.store.put_bytes(DATA, key, data, "text/csv")
        ref = DatasetRef(
            bucket=DATA,
            key=key,
            version_id=version,
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            rows=len(frame),
        )
        return DatasetValidated(
            model_name="risk", dataset=ref, contract_digest=parse_contract(text).digest, report_key="r.json"
        )

    def train(
        self,
        frame: pd.DataFrame,
        name: str,
        contract: dict[str, Any] | None = None,
        traffic: TrafficWindow | None = None,
    ) -> ModelTrained:
        event = self.upload(frame, name, contract or risk_contract())
        outcome = train_from_event(
            event,
            store=self.store,
            publisher=self.publisher,
            data_bucket=DATA,
            artifact_bucket=ARTIFACTS,
            registry=self.registry,
            traffic=traffic,
        )
        assert isinstance(outcome.detail, ModelTrained), outcome.detail
        return outcome.detail

    def train_and_register(  # type: ignore[no-untyped-def]
        self,
        frame: pd.DataFrame,
        name: str,
        contract: dict[str, Any] | None = None,
        traffic: TrafficWindow | None = None,
    ):
        trained = self.train(frame, name, contract, traffic)
        return trained, self.registry.register(trained, actor="register_model")


@pytest.fixture(scope="module")
def champion_data() -> pd.DataFrame:
    return hard_rows()


@pytest.fixture(scope="module")
def easy_data() -> pd.DataFrame:
    return easy_rows()


def test_promotion_declines_a_candidate_whose_holdout_was_easier_when_production_scores_better_on_it(
    champion_data: pd.DataFrame, easy_data: pd.DataFrame
) -> None:
    # GIVEN production v1 trained on plenty of noisy rows (its own holdout is hard)
    flow = Pipeline()
    _, first = flow.train_and_register(champion_data, "hard")
    assert first.promoted
    # WHEN a candidate is trained on a small, easy upload: it scores higher on its own holdout
    trained, result = flow.train_and_register(easy_data, "easy")
    assert trained.metrics["roc_auc"] > first.version.metrics["roc_auc"]
    # THEN production scored on the candidate's holdout does better, so the candidate is not promoted
    [score] = trained.same_data
    assert (score.data, score.champion_version, score.rows) == ("candidate_holdout", 1, trained.holdout_rows)
    assert score.champion_sha256 == first.version.artifact.sha256
    assert score.candidate_value == trained.metrics["roc_auc"]
    assert score.champion_value is not None
    assert score.champion_value > score.candidate_value
    assert not result.promoted
    assert "the candidate's holdout" in result.decision
    assert f"{trained.holdout_rows} rows" in result.decision
    assert f"{score.champion_value:.6g}" in result.decision
    assert f"{score.candidate_value:.6g}" in result.decision
    assert flow.registry.get_model("risk").production_version == 1
    declined = [e for e in flow.registry.audit_events("risk") if e.action == AuditAction.PROMOTION_DECLINED.value]
    assert declined[-1].reason == result.decision
    assert flow.registry.get_version("risk", 2).lineage["same_data"][0]["champion_value"] == score.champion_value


def test_promotion_takes_a_candidate_with_a_harder_holdout_that_beats_production_on_it(
    champion_data: pd.DataFrame, easy_data: pd.DataFrame
) -> None:
    # GIVEN production v1 trained on the small easy upload (its own holdout flatters it)
    flow = Pipeline()
    _, first = flow.train_and_register(easy_data, "easy")
    # WHEN a candidate trained on plenty of noisy rows scores lower on its own (harder) holdout
    trained, result = flow.train_and_register(champion_data, "hard")
    assert trained.metrics["roc_auc"] < first.version.metrics["roc_auc"]
    # THEN on the candidate's holdout it beats production, and it is promoted
    [score] = trained.same_data
    assert score.champion_value is not None
    assert score.champion_value < trained.metrics["roc_auc"]
    assert result.promoted
    assert result.decision.startswith(f"on the candidate's holdout ({trained.holdout_rows} rows): roc_auc")


def test_a_champion_artifact_that_fails_verification_is_never_loaded_and_the_reason_is_recorded(
    champion_data: pd.DataFrame, easy_data: pd.DataFrame
) -> None:
    # GIVEN production v1 whose stored artifact was replaced by another valid graph of the same contract
    flow = Pipeline()
    _, first = flow.train_and_register(champion_data, "hard")
    impostor = train_model_bytes(risk_rows(400, noise=0.1, seed=9))
    artifact = first.version.artifact
    flow.store.put_bytes(artifact.bucket, artifact.key, impostor)
    # WHEN a candidate is trained
    trained, result = flow.train_and_register(easy_data, "easy")
    # THEN the champion is not scored (the impostor would have scored), and the policy says why
    [score] = trained.same_data
    assert score.champion_value is None
    assert score.unavailable is not None
    assert "does not match its registered digest" in score.unavailable
    assert "compared on each version's own holdout (production v1 could not be scored" in result.decision


def test_a_champion_whose_features_the_candidate_lacks_is_not_scored_and_the_old_comparison_says_why(
    champion_data: pd.DataFrame, easy_data: pd.DataFrame
) -> None:
    flow = Pipeline()
    flow.train_and_register(champion_data, "hard")
    narrower = risk_contract()
    narrower["features"] = narrower["features"][:-1]  # the candidate no longer reads x29
    trained, result = flow.train_and_register(easy_data.drop(columns=["x29"]), "easy", narrower)
    [score] = trained.same_data
    assert score.unavailable == "production v1 could not be scored: the rows lack its features ['x29']"
    assert "compared on each version's own holdout" in result.decision


def test_production_with_other_features_is_fed_through_its_own_contract(
    champion_data: pd.DataFrame, easy_data: pd.DataFrame
) -> None:
    # GIVEN production reads 29 features; the candidate adds x29 as a nullable feature (compatible)
    flow = Pipeline()
    older = risk_contract()
    older["features"] = older["features"][:-1]
    flow.train_and_register(champion_data.drop(columns=["x29"]), "hard", older)
    wider = risk_contract(x29={"nullable": True})
    trained, result = flow.train_and_register(easy_data, "easy", wider)
    # THEN production is scored on the candidate's holdout all the same
    [score] = trained.same_data
    assert score.champion_value is not None
    assert "same data" in result.decision


def test_a_candidate_that_would_reject_requests_production_accepts_is_not_promoted_and_the_audit_says_why(
    champion_data: pd.DataFrame, easy_data: pd.DataFrame
) -> None:
    # GIVEN production trained on the easy upload, and a candidate that beats it on the same data
    flow = Pipeline()
    flow.train_and_register(easy_data, "easy")
    # WHEN the candidate's contract narrows x0 to [-1, 1] (production accepts any number)
    narrowed = risk_contract(x0={"min": -1, "max": 1})
    _, result = flow.train_and_register(champion_data.assign(x0=champion_data.x0.clip(-1, 1)), "hard", narrowed)
    # THEN it is not promoted automatically, and the audited reason names the break
    assert "beats production v1" in result.decision
    assert not result.promoted
    expected = "schema: the candidate would reject requests production v1 accepts: x0: range narrowed from [-inf, inf] to [-1, 1]"
    assert expected in result.decision
    [declined] = [e for e in flow.registry.audit_events("risk") if e.action == AuditAction.PROMOTION_DECLINED.value]
    assert declined.reason == result.decision
    assert flow.registry.get_version("risk", 2).promotion_decision == result.decision


def test_model_trained_events_from_before_same_data_still_parse() -> None:
    from tests.support.registry_fake import trained_event

    document = trained_event().model_dump(mode="json")
    del document["same_data"]
    assert ModelTrained.model_validate(document).same_data == []


def train_model_bytes(frame: pd.DataFrame) -> bytes:
    from mlops.training.trainer import train_model

    return train_model(frame, parse_contract(risk_contract())).onnx_bytes


def test_a_leaky_candidate_that_wins_its_holdout_but_loses_on_recent_labelled_traffic_is_not_promoted(
    champion_data: pd.DataFrame,
) -> None:
    # GIVEN production v1, and 600 served predictions of the real distribution labelled since
    flow = Pipeline()
    flow.train_and_register(champion_data, "hard")
    served = datetime.now(UTC) - timedelta(hours=5)
    write_labelled_traffic(flow.store, ARTIFACTS, risk_rows(600, noise=1.0, seed=5), answered_at=served)
    # WHEN a candidate is trained on an upload whose x29 leaks the label (in its holdout too)
    leaky = risk_rows(400, noise=1.0, seed=3)
    leaky["x29"] = np.where(leaky["label"] == "yes", 3.0, -3.0)
    trained, result = flow.train_and_register(leaky, "leaky", traffic=TrafficWindow(ARTIFACTS))
    # THEN it beats production on its own holdout, loses on the traffic, and is not promoted
    holdout, traffic = trained.same_data
    assert (holdout.data, traffic.data) == ("candidate_holdout", "recent_traffic")
    assert holdout.candidate_value is not None
    assert holdout.champion_value is not None
    assert holdout.candidate_value > holdout.champion_value
    assert traffic.rows == 600
    assert traffic.candidate_value is not None
    assert traffic.champion_value is not None
    assert traffic.candidate_value < traffic.champion_value
    assert not result.promoted
    assert result.decision.startswith("on recent labelled traffic (600 rows): roc_auc")
    assert "does not beat production v1" in result.decision


def test_too_little_labelled_traffic_is_recorded_as_unavailable_and_the_holdout_decides(
    champion_data: pd.DataFrame, easy_data: pd.DataFrame
) -> None:
    flow = Pipeline()
    flow.train_and_register(easy_data, "easy")
    served = datetime.now(UTC) - timedelta(hours=1)
    write_labelled_traffic(flow.store, ARTIFACTS, risk_rows(50, noise=1.0, seed=5), answered_at=served, labelled=0.5)
    trained, result = flow.train_and_register(champion_data, "hard", traffic=TrafficWindow(ARTIFACTS, min_rows=200))
    _, traffic = trained.same_data
    assert traffic.unavailable == (
        "25 labelled rows of recent traffic, 200 needed (25 labels read, 0 without a captured prediction)"
    )
    assert result.promoted
    assert result.decision.startswith("on the candidate's holdout")


def _with(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(document))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = changed
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value
    return changed


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"target__classes": ["no", "yes", "maybe"], "metric__name": "accuracy"},
            "its classes ['no', 'yes'] differ from the candidate's ['no', 'yes', 'maybe']",
        ),
        ({"target__name": "churned"}, "it predicts 'label', the candidate 'churned'"),
        (
            {"features__0__type": "categorical"},
            "features read as another type: x (numeric, candidate categorical)",
        ),
        ({}, "artifact of churn v1 is missing"),  # nothing stored at the artifact's key
    ],
)
def test_a_champion_that_cannot_be_scored_fairly_says_why(changes: dict[str, Any], reason: str) -> None:
    from mlops.registry.records import candidate_from_trained
    from mlops.training.champion import score_champion
    from tests.support.registry_fake import contract_document, trained_event

    champion = candidate_from_trained(trained_event(), 1, datetime.now(UTC))
    candidate = parse_contract(_with(contract_document(), **changes))
    rows = pd.DataFrame({"x": [1.0, 2.0], "plan": ["a", "b"], candidate.target.name: ["no", "yes"]})
    score = score_champion(
        champion, InMemoryObjectStore(), rows, candidate, data="candidate_holdout", candidate_value=0.9
    )
    assert score.champion_value is None
    assert score.unavailable is not None
    assert score.unavailable.startswith("production v1 could not be scored: ")
    assert reason in score.unavailable
