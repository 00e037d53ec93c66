"""Every dataset version ends in exactly one recorded state, whatever step fails on the way.

Each scenario runs once to list its side-effecting steps (report, summary, event, move, notice,
ledger); then, for every step, a fresh world fails at that step, and the same delivery is
retried as Lambda would retry it. The retry must end in the state a run without failure records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops.events import DetailType
from mlops.layout import quarantine_key
from mlops.validation import DatasetValidator, Disposition, UploadedObject
from mlops.validation.ledger import DatasetState, LedgerEntry
from mlops.validation.reference import ReferenceLoader
from tests.support import datasets as ds
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher

BUCKET = "data"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


class InjectedFault(Exception):
    """The failure a test injects (a throttled call, a timeout)."""


@dataclass
class Faults:
    """Counts the validator's side-effecting steps once armed; fails the one numbered `fail_at`."""

    fail_at: int | None = None
    armed: bool = False
    steps: list[str] = field(default_factory=list)

    def step(self, name: str) -> None:
        if not self.armed:
            return
        self.steps.append(name)
        if len(self.steps) - 1 == self.fail_at:
            self.fail_at = None  # fail once: the retry succeeds
            raise InjectedFault(name)


class FaultyStore(InMemoryObjectStore):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.faults.step(f"put {key.rsplit('.', 1)[-1]}")
        return super().put_bytes(bucket, key, data, content_type)

    def move(self, bucket: str, key: str, version_id: str | None, new_key: str) -> str:
        self.faults.step("move")
        data, _, content_type = self._get(bucket, key, version_id)
        new_version = InMemoryObjectStore.put_bytes(self, bucket, new_key, data, content_type)  # one step, not two
        del self.objects[(bucket, key)]
        return new_version


class FaultyPublisher(RecordingPublisher):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def publish(self, detail_type: str, detail: Any) -> None:
        self.faults.step(f"publish {detail_type}")
        super().publish(detail_type, detail)


class FaultyNotifier(ds.RecordingNotifier):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def notify(self, subject: str, message: str) -> None:
        self.faults.step("notify")
        super().notify(subject, message)


class FaultyLedger(ds.InMemoryDatasetLedger):
    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        self.faults.step("ledger")
        return super().record(entry)


@dataclass
class World:
    faults: Faults
    store: FaultyStore
    publisher: FaultyPublisher
    notifier: FaultyNotifier
    ledger: FaultyLedger

    @property
    def validator(self) -> DatasetValidator:
        return DatasetValidator(
            store=self.store,
            publisher=self.publisher,
            data_bucket=BUCKET,
            batch_rows=1_000,
            clock=lambda: NOW,
            ledger=self.ledger,
            references=ReferenceLoader(
                registry=None, artifacts=None, ledger=self.ledger, reports=self.store, data_bucket=BUCKET
            ),
            notifier=self.notifier,
        )

    def upload(self, key: str, data: bytes) -> UploadedObject:
        version = InMemoryObjectStore.put_bytes(self.store, BUCKET, key, data)
        return UploadedObject(BUCKET, key, version, len(data), "etag", "AWS:AIDAUPLOADER", "2026-11-28T09:59:00Z")


def _world(fail_at: int | None) -> World:
    faults = Faults(fail_at)
    world = World(faults, FaultyStore(faults), FaultyPublisher(faults), FaultyNotifier(faults), FaultyLedger(faults))
    world.store.put_bytes(BUCKET, "contracts/churn.json", ds.churn_contract_bytes())
    return world


def _quarantined(world: World) -> UploadedObject:
    return world.upload("datasets/churn/bad.csv", ds.to_csv(ds.set_cell("plan", 2, "gold")(ds.churn_frame(300))))


def _held(world: World) -> UploadedObject:
    baseline = world.upload("datasets/churn/baseline.csv", ds.to_csv(ds.churn_frame(2_000, seed=7)))
    assert world.validator.validate(baseline).disposition is Disposition.VALIDATED
    return world.upload("datasets/churn/flood.csv", ds.to_csv(ds.flood_duplicates(ds.churn_frame(1_500, seed=8), 300)))


def _accepted(world: World) -> UploadedObject:
    return world.upload("datasets/churn/clean.csv", ds.to_csv(ds.churn_frame(300)))


SCENARIOS: dict[str, tuple[Callable[[World], UploadedObject], DatasetState]] = {
    "quarantined": (_quarantined, DatasetState.QUARANTINED),
    "held": (_held, DatasetState.HELD),
    "accepted": (_accepted, DatasetState.ACCEPTED),
}


def _run(scenario: str, fail_at: int | None) -> tuple[World, UploadedObject, LedgerEntry | None]:
    world = _world(fail_at)
    setup, _ = SCENARIOS[scenario]
    upload = setup(world)
    world.faults.armed = True
    first: LedgerEntry | None = None
    try:
        outcome = world.validator.validate(upload)
        first = world.ledger.get(outcome.model_name, outcome.dataset_id)
    except InjectedFault:
        pass
    return world, upload, first


def _steps(scenario: str) -> list[str]:
    world, _, entry = _run(scenario, None)
    assert entry is not None
    return world.faults.steps


CASES = [(scenario, at, step) for scenario in SCENARIOS for at, step in enumerate(_steps(scenario))]


def test_the_scenarios_cover_every_step() -> None:
    assert _steps("quarantined") == [
        "put json",
        "put txt",
        f"publish {DetailType.DATASET_QUARANTINED}",
        "move",
        "notify",
        "ledger",
    ]
    assert "ledger" in _steps("held")
    assert "ledger" in _steps("accepted")


@pytest.mark.parametrize(("scenario", "fail_at", "step"), CASES, ids=[f"{s}-{n}-{step}" for s, n, step in CASES])
def test_validate_retry_after_a_failure_at_any_step_records_exactly_one_state(
    scenario: str, fail_at: int, step: str
) -> None:
    # GIVEN the state a run without failure records
    _, _, expected = _run(scenario, None)
    assert expected is not None
    # AND a run that fails at `step`
    world, upload, first = _run(scenario, fail_at)
    assert first is None, f"the failure at {step} was swallowed"

    # WHEN the same delivery is retried
    outcome = world.validator.validate(upload)

    # THEN the dataset has exactly one recorded state, the same as without the failure
    entry = world.ledger.get("churn", outcome.dataset_id)
    assert entry is not None, f"no ledger entry after a failure at {step}: {outcome.disposition}"
    assert entry == expected
    assert [e for e in world.ledger.entries.values() if e.key == upload.key] == [entry]
    assert outcome.disposition.value == {"accepted": "validated"}.get(scenario, scenario)
    # AND every side effect of the decision happened (at least once: S3 and Lambda retry anyway)
    if scenario == "quarantined":
        assert (BUCKET, quarantine_key(upload.key)) in world.store.objects
        assert (BUCKET, upload.key) not in world.store.objects
        assert world.publisher.of_type(DetailType.DATASET_QUARANTINED)
        assert any("Dataset quarantined" in subject for subject, _ in world.notifier.messages)
    elif scenario == "held":
        assert world.publisher.of_type(DetailType.DATASET_HELD)
        assert any("Dataset held" in subject for subject, _ in world.notifier.messages)
    else:
        assert world.publisher.of_type(DetailType.DATASET_VALIDATED)
    report = json.loads(world.store.get_bytes(BUCKET, entry.report_key))
    assert report["state"] == expected.state.value

    # AND a further delivery changes nothing
    events, notices = len(world.publisher.events), len(world.notifier.messages)
    again = world.validator.validate(upload)
    assert again.dataset_id == outcome.dataset_id
    assert (len(world.publisher.events), len(world.notifier.messages)) == (events, notices)
    assert world.ledger.get("churn", outcome.dataset_id) == expected
