"""validate_dataset as a gate: format and limits, provenance, statistics against a reference,
label flips, and the three outcomes (accepted, held, quarantined) with ledger, report, summary,
event and notification; then a reviewer's decision on a held dataset."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.errors import BadRequestError, ConflictError, NotFoundError
from mlops.events import DatasetHeld, DatasetValidated, DetailType
from mlops.layout import quarantine_key
from mlops.validation import DatasetValidator, Disposition, UploadedObject, ValidationReport
from mlops.validation.decisions import dataset_id, is_valid_dataset_id
from mlops.validation.labelflip import ProductionModel
from mlops.validation.reference import Reference, ReferenceLoader
from mlops.validation.report import STATISTICAL_CHECKS, CheckName, DatasetState
from mlops.validation.review import ReviewDecision, review_held_dataset
from mlops.validation.stats import DuplicateCounter
from tests.support import datasets as ds
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher

BUCKET = "data"
UPLOADER = "AWS:AIDAUPLOADER"


@dataclass
class Gate:
    store: InMemoryObjectStore
    publisher: RecordingPublisher
    ledger: ds.InMemoryDatasetLedger
    notifier: ds.RecordingNotifier
    model: ProductionModel | None = None
    uploads: int = 0
    contract: dict[str, Any] = field(default_factory=lambda: json.loads(ds.churn_contract_bytes()))

    @property
    def validator(self) -> DatasetValidator:
        loader = ReferenceLoader(
            registry=None, artifacts=None, ledger=self.ledger, reports=self.store, data_bucket=BUCKET
        )
        gate = self

        class WithModel:
            def load(self, model_name: str) -> Reference | None:
                found = loader.load(model_name)
                if gate.model is None:
                    return found
                return Reference("production churn v1 (test)", found.profile if found else None, gate.model)

        return DatasetValidator(
            store=self.store,
            publisher=self.publisher,
            data_bucket=BUCKET,
            batch_rows=1_000,
            ledger=self.ledger,
            references=WithModel(),  # type: ignore[arg-type]
            notifier=self.notifier,
        )

    def set_contract(self, **data: Any) -> None:
        self.contract["data"].update(data)
        self.store.put_bytes(BUCKET, "contracts/churn.json", json.dumps(self.contract).encode())

    def validate(self, name: str, data: bytes, *, uploader: str = UPLOADER) -> Any:
        key = f"datasets/churn/{name}"
        version = self.store.put_bytes(BUCKET, key, data)
        upload = UploadedObject(BUCKET, key, version, len(data), "etag", uploader, "2026-11-28T10:00:00Z")
        return self.validator.validate(upload)

    def report(self, outcome: Any) -> ValidationReport:
        return ValidationReport.model_validate_json(self.store.get_bytes(BUCKET, outcome.report_key))

    def exists(self, key: str) -> bool:
        return (BUCKET, key) in self.store.objects


@pytest.fixture
def gate() -> Gate:
    store = InMemoryObjectStore()
    store.put_bytes(BUCKET, "contracts/churn.json", ds.churn_contract_bytes())
    return Gate(store, RecordingPublisher(), ds.InMemoryDatasetLedger(), ds.RecordingNotifier())


BASELINE_ROWS = 2_000


def _baseline() -> pd.DataFrame:
    return ds.churn_frame(BASELINE_ROWS, seed=7)


def _new(rows: int = 1_500, seed: int = 8) -> pd.DataFrame:
    return ds.churn_frame(rows, seed=seed)


def _accept_baseline(gate: Gate) -> None:
    outcome = gate.validate("baseline.csv", ds.to_csv(_baseline()))
    assert outcome.disposition is Disposition.VALIDATED, outcome.reasons


# -- accepted --------------------------------------------------------------------------------


def test_first_dataset_is_accepted_without_a_reference_and_recorded(gate: Gate) -> None:
    outcome = gate.validate("first.csv", ds.to_csv(_baseline()))

    assert outcome.disposition is Disposition.VALIDATED
    entry = gate.ledger.get("churn", outcome.dataset_id)
    assert entry is not None
    assert entry.state is DatasetState.ACCEPTED
    assert entry.uploader == UPLOADER
    assert entry.uploaded_at == "2026-11-28T10:00:00Z"
    report = gate.report(outcome)
    assert report.state is DatasetState.ACCEPTED
    assert report.profile is not None
    assert report.profile.rows == BASELINE_ROWS
    [reference] = [c for c in report.checks if c.name is CheckName.REFERENCE]
    assert "no reference yet" in reference.details
    summary = gate.store.get_bytes(BUCKET, report.summary_key or "").decode()
    assert summary.startswith("ACCEPTED: s3://data/datasets/churn/first.csv")
    [event] = gate.publisher.of_type(DetailType.DATASET_VALIDATED)
    assert isinstance(event, DatasetValidated)
    assert (event.dataset.uploader, event.dataset.dataset_id) == (UPLOADER, outcome.dataset_id)
    assert gate.notifier.messages == []


def test_next_clean_dataset_is_compared_with_the_last_accepted_and_accepted(gate: Gate) -> None:
    _accept_baseline(gate)

    outcome = gate.validate("next.csv", ds.to_csv(_new()))

    assert outcome.disposition is Disposition.VALIDATED, outcome.reasons
    report = gate.report(outcome)
    ran = {c.name for c in report.checks}
    assert {CheckName.FEATURE_SHIFT, CheckName.LABEL_SHIFT, CheckName.OUT_OF_RANGE, CheckName.DUPLICATE_ROWS} <= ran
    assert "baseline.csv" in (report.reference or "")


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("semicolons.csv", lambda: _new().to_csv(index=False, sep=";").encode()),
        ("tabs.csv", lambda: _new().to_csv(index=False, sep="\t").encode()),
        ("latin.csv", lambda: _new().to_csv(index=False).encode("latin-1")),
    ],
)
def test_delimiter_is_detected_from_the_header(gate: Gate, name: str, build: Callable[[], bytes]) -> None:
    assert gate.validate(name, build()).disposition is Disposition.VALIDATED


# -- held: schema sound, statistics not ------------------------------------------------------


def _shift_tenure(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(tenure_months=np.minimum(frame["tenure_months"] * 3 + 30, 240))


def _more_churn(frame: pd.DataFrame) -> pd.DataFrame:
    changed = frame.copy()
    changed.loc[: int(len(frame) * 0.7), "churned"] = "yes"
    return changed


def _expensive(frame: pd.DataFrame) -> pd.DataFrame:
    changed = frame.copy()
    changed.loc[:200, "monthly_charges"] = 900.0  # within the contract (<= 1000), never seen before
    return changed


@dataclass(frozen=True)
class Held:
    id: str
    build: Callable[[], pd.DataFrame]
    check: CheckName
    column: str | None = None
    with_model: bool = False


HELD = [
    Held("feature shift", lambda: _shift_tenure(_new()), CheckName.FEATURE_SHIFT, "tenure_months"),
    Held("label shift", lambda: _more_churn(_new()), CheckName.LABEL_SHIFT, "churned"),
    Held("outside the observed range", lambda: _expensive(_new()), CheckName.OUT_OF_RANGE),
    Held("flood of duplicate rows", lambda: ds.flood_duplicates(_new(), 300), CheckName.DUPLICATE_ROWS),
    Held("label-flipped copy", lambda: ds.flip_labels(_baseline(), 0.3), CheckName.LABEL_FLIP, with_model=True),
]


def _oracle(frame: pd.DataFrame, holdout_error: float = 0.05) -> ProductionModel:
    """A 'model' that knows the clean labels of `frame` (looked up by two features)."""
    truth = {
        (round(t, 6), round(m, 6)): label
        for t, m, label in zip(frame["tenure_months"], frame["monthly_charges"], frame["churned"], strict=True)
    }

    def predict(table: pa.Table) -> list[str]:
        keys = zip(table.column("tenure_months").to_pylist(), table.column("monthly_charges").to_pylist(), strict=True)
        return [truth.get((round(t, 6), round(m, 6)), "no") for t, m in keys]

    return ProductionModel("churn v1 (oracle)", holdout_error, predict)


@pytest.mark.parametrize("case", HELD, ids=[c.id for c in HELD])
def test_statistical_failure_holds_the_dataset_for_review(gate: Gate, case: Held) -> None:
    # GIVEN an accepted baseline (and a production model, for the label-flip check)
    _accept_baseline(gate)
    if case.with_model:
        gate.model = _oracle(_baseline())

    # WHEN a schema-sound dataset that fails one statistical check arrives
    outcome = gate.validate("suspicious.csv", ds.to_csv(case.build()))

    # THEN it is held: left in place, not announced for training, recorded, reported and notified
    assert outcome.disposition is Disposition.HELD, outcome.reasons
    assert gate.exists("datasets/churn/suspicious.csv")
    report = gate.report(outcome)
    failed = [c for c in report.checks if not c.passed]
    assert failed, report.reasons
    assert all(c.name in STATISTICAL_CHECKS for c in failed), report.reasons
    [check] = [c for c in failed if c.name is case.check and c.column == case.column]
    assert check.value is not None
    assert check.threshold is not None
    assert check.value > check.threshold
    entry = gate.ledger.get("churn", outcome.dataset_id)
    assert entry is not None
    assert entry.state is DatasetState.HELD
    [held] = gate.publisher.of_type(DetailType.DATASET_HELD)
    assert isinstance(held, DatasetHeld)
    assert held.dataset_id == outcome.dataset_id
    assert len(gate.publisher.of_type(DetailType.DATASET_VALIDATED)) == 1  # the baseline only
    [(subject, message)] = gate.notifier.messages
    assert subject == "Dataset held for review: churn"
    assert f"FAILED {case.check.value}" in message


def test_clean_copy_agrees_with_the_production_model(gate: Gate) -> None:
    _accept_baseline(gate)
    gate.model = _oracle(_baseline())

    outcome = gate.validate("again.csv", ds.to_csv(_baseline().sample(frac=0.5, random_state=3)))

    assert outcome.disposition is Disposition.VALIDATED, outcome.reasons
    [check] = [c for c in gate.report(outcome).checks if c.name is CheckName.LABEL_FLIP]
    assert check.passed
    assert check.value is not None
    assert check.value < 0.01


def test_redelivery_of_a_held_dataset_does_nothing_again(gate: Gate) -> None:
    _accept_baseline(gate)
    data = ds.to_csv(ds.flood_duplicates(_new(), 300))
    key = "datasets/churn/dups.csv"
    version = gate.store.put_bytes(BUCKET, key, data)
    upload = UploadedObject(BUCKET, key, version, len(data), "etag", UPLOADER)
    first = gate.validator.validate(upload)
    events = len(gate.publisher.events)

    second = gate.validator.validate(upload)

    assert second.disposition is Disposition.HELD
    assert second.report_key == first.report_key
    assert len(gate.publisher.events) == events
    assert len(gate.notifier.messages) == 1


# -- quarantined: format, limits, schema, provenance ------------------------------------------


def _parquet_named_csv() -> bytes:
    return ds.to_parquet(_new(300))


@dataclass(frozen=True)
class Refused:
    id: str
    file: str
    build: Callable[[], bytes]
    check: CheckName
    mentions: str
    column: str | None = None
    contract: dict[str, Any] = field(default_factory=dict)
    uploader: str = UPLOADER


REFUSED = [
    Refused("gzip named csv", "a.csv", lambda: ds.to_csv_gz(_new(300)), CheckName.FORMAT, "look like gzip"),
    Refused("parquet named csv", "a.csv", _parquet_named_csv, CheckName.FORMAT, "look like parquet"),
    Refused("spreadsheet named csv", "a.csv", lambda: b"PK\x03\x04" + b"\x00" * 200, CheckName.FORMAT, "zip"),
    Refused(
        "gzip holding parquet", "a.csv.gz", lambda: ds.gzip.compress(_parquet_named_csv()), CheckName.FORMAT, "holds"
    ),
    Refused("utf-16 csv", "a.csv", lambda: ds.to_csv(_new(300)).decode().encode("utf-16"), CheckName.FORMAT, "utf-16"),
    Refused("gzip bomb", "bomb.csv.gz", lambda: ds.gzip_bomb(40 * 1024 * 1024), CheckName.LIMITS, "exceeds"),
    Refused(
        "gzip over the declared size",
        "a.csv.gz",
        lambda: ds.to_csv_gz(_new(3_000)),
        CheckName.LIMITS,
        "max_decompressed_bytes",
        contract={"max_decompressed_bytes": 10_000, "max_compression_ratio": 1e6},
    ),
    Refused(
        "too many columns",
        "a.csv",
        lambda: ds.to_csv(_new(300).assign(**{f"x{i}": 0 for i in range(20)})),
        CheckName.LIMITS,
        "28 columns",
        contract={"max_columns": 10},
    ),
    Refused(
        "too many rows",
        "a.csv",
        lambda: ds.to_csv(_new(3_000)),
        CheckName.ROW_COUNT,
        "more than",
        contract={"max_rows": 1_500},
    ),
    Refused(
        "uploader not allowed",
        "a.csv",
        lambda: ds.to_csv(_new(300)),
        CheckName.PROVENANCE,
        "AWS:AIDAINTRUDER",
        contract={"allowed_uploaders": ["AWS:AIDAUPLOADER", "AWS:AROAPIPELINE:*"]},
        uploader="AWS:AIDAINTRUDER",
    ),
    Refused(
        "too many nulls",
        "a.csv",
        lambda: ds.to_csv(_new(300).assign(data_usage_gb=None)),
        CheckName.NULL_RATE,
        "300 of 300 rows",
        column="data_usage_gb",
    ),
    Refused(
        "repeated id",
        "a.csv",
        lambda: ds.to_csv(_new(300).assign(customer_id=[f"c{i % 299}" for i in range(300)])),
        CheckName.UNIQUE_ID,
        "1 repeated",
        column="customer_id",
        contract={"id_columns": ["customer_id"]},
    ),
    Refused(
        "formula in a numeric cell",
        "a.csv",
        lambda: ds.to_csv(ds.set_cell("tenure_months", 4, "=1+1")(_new(300))),
        CheckName.TYPE,
        "row 4 (text)",
        column="tenure_months",
    ),
    Refused(
        "formula in a category",
        "a.csv",
        lambda: ds.to_csv(ds.set_cell("plan", 2, '=HYPERLINK("http://x","basic")')(_new(300))),
        CheckName.CATEGORIES,
        "row 2 (text)",
        column="plan",
    ),
    Refused(
        "invalid utf-8",
        "a.csv",
        lambda: ds.to_csv(ds.set_cell("plan", 5, "b\xe4sic")(_new(300))).replace("bäsic".encode(), b"b\xe4sic"),
        CheckName.READABLE,
        "UTF8",
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_dataset_is_quarantined_with_report_summary_and_notification(gate: Gate, case: Refused) -> None:
    if case.contract:
        gate.set_contract(**case.contract)

    outcome = gate.validate(case.file, case.build(), uploader=case.uploader)

    assert outcome.disposition is Disposition.QUARANTINED, outcome.reasons
    key = f"datasets/churn/{case.file}"
    assert not gate.exists(key)
    assert gate.exists(quarantine_key(key))
    report = gate.report(outcome)
    failing = [c for c in report.checks if not c.passed and c.name is case.check and c.column == case.column]
    assert failing, report.reasons
    assert case.mentions in failing[0].details
    entry = gate.ledger.get("churn", outcome.dataset_id)
    assert entry is not None
    assert entry.state is DatasetState.QUARANTINED
    summary = gate.store.get_bytes(BUCKET, report.summary_key or "").decode()
    assert summary.startswith("QUARANTINED")
    assert f"FAILED {case.check.value}" in summary
    [(subject, _)] = gate.notifier.messages
    assert subject == "Dataset quarantined: churn"


def test_schema_failure_quarantines_even_when_statistics_would_hold(gate: Gate) -> None:
    _accept_baseline(gate)
    frame = ds.set_cell("plan", 3, "gold")(_shift_tenure(_new()))

    outcome = gate.validate("both.csv", ds.to_csv(frame))

    assert outcome.disposition is Disposition.QUARANTINED


# -- review ----------------------------------------------------------------------------------


def _held(gate: Gate) -> Any:
    _accept_baseline(gate)
    outcome = gate.validate("dups.csv", ds.to_csv(ds.flood_duplicates(_new(), 300)))
    assert outcome.disposition is Disposition.HELD
    return outcome


def test_review_approve_starts_training_on_the_exact_version_and_audits(gate: Gate) -> None:
    outcome = _held(gate)

    entry = review_held_dataset(
        gate.ledger, gate.store, gate.publisher, "churn", outcome.dataset_id, "approve", "alice", "known promo export"
    )

    assert entry.state is DatasetState.ACCEPTED
    assert [(c.state, c.actor) for c in entry.history] == [
        (DatasetState.HELD, "validate_dataset"),
        (DatasetState.ACCEPTED, "alice"),
    ]
    event = gate.publisher.of_type(DetailType.DATASET_VALIDATED)[-1]
    assert isinstance(event, DatasetValidated)
    assert (event.dataset.key, event.dataset.version_id) == (outcome.key, outcome.version_id)
    assert event.dataset.uploader == UPLOADER


def test_review_reject_quarantines_and_audits(gate: Gate) -> None:
    outcome = _held(gate)

    entry = review_held_dataset(
        gate.ledger, gate.store, gate.publisher, "churn", outcome.dataset_id, ReviewDecision.REJECT, "bob", "poisoned"
    )

    assert entry.state is DatasetState.QUARANTINED
    assert not gate.exists(outcome.key)
    assert gate.exists(quarantine_key(outcome.key))
    assert entry.history[-1].reason == "poisoned"
    assert gate.publisher.of_type(DetailType.DATASET_QUARANTINED)


def test_review_a_second_different_decision_conflicts_and_the_same_one_retries(gate: Gate) -> None:
    outcome = _held(gate)
    review = review_held_dataset
    review(gate.ledger, gate.store, gate.publisher, "churn", outcome.dataset_id, "reject", "bob", "poisoned")

    with pytest.raises(ConflictError):
        review(gate.ledger, gate.store, gate.publisher, "churn", outcome.dataset_id, "approve", "alice", "fine")
    again = review(gate.ledger, gate.store, gate.publisher, "churn", outcome.dataset_id, "reject", "bob", "retry")

    assert again.state is DatasetState.QUARANTINED
    assert gate.publisher.of_type(DetailType.DATASET_VALIDATED)[-1].dataset.key != outcome.key  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("dataset", "decision", "actor", "reason", "error"),
    [
        ("nope-0123456789abcdef", "approve", "alice", "x", NotFoundError),
        ("nope", "approve", "alice", "x", BadRequestError),  # not an id the validator makes
        ("a/b-0123456789abcdef", "approve", "alice", "x", BadRequestError),
        ("a#b-0123456789abcdef", "approve", "alice", "x", BadRequestError),
        (None, "maybe", "alice", "x", BadRequestError),
        (None, "approve", " ", "x", BadRequestError),
        (None, "approve", "alice", "", BadRequestError),
    ],
)
def test_review_refuses_bad_requests(
    gate: Gate, dataset: str | None, decision: str, actor: str, reason: str, error: type
) -> None:
    outcome = _held(gate)
    with pytest.raises(error):
        review_held_dataset(
            gate.ledger, gate.store, gate.publisher, "churn", dataset or outcome.dataset_id, decision, actor, reason
        )


@settings(max_examples=200, deadline=None)
@given(key=st.text(max_size=300), version_id=st.none() | st.text(max_size=40))
def test_every_dataset_id_the_validator_makes_matches_the_pattern(key: str, version_id: str | None) -> None:
    the_id = dataset_id(key, version_id)
    assert is_valid_dataset_id(the_id), the_id
    assert "/" not in the_id
    assert "#" not in the_id


def test_review_of_an_accepted_dataset_conflicts(gate: Gate) -> None:
    _accept_baseline(gate)
    [entry] = gate.ledger.entries.values()
    with pytest.raises(ConflictError):
        review_held_dataset(gate.ledger, gate.store, gate.publisher, "churn", entry.dataset_id, "reject", "bob", "x")


# -- properties --------------------------------------------------------------------------------

_POPULATION = ds.churn_frame(3_000, seed=21)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(min_value=200, max_value=2_500), seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_clean_sample_of_the_baseline_never_fails_the_statistical_checks(rows: int, seed: int) -> None:
    store = InMemoryObjectStore()
    store.put_bytes(BUCKET, "contracts/churn.json", ds.churn_contract_bytes())
    gate = Gate(store, RecordingPublisher(), ds.InMemoryDatasetLedger(), ds.RecordingNotifier())
    assert gate.validate("population.csv", ds.to_csv(_POPULATION)).disposition is Disposition.VALIDATED
    sample = _POPULATION.sample(n=rows, random_state=seed)

    outcome = gate.validate("sample.csv", ds.to_csv(sample))

    report = gate.report(outcome)
    assert [c.reason for c in report.checks if not c.passed] == []
    assert outcome.disposition is Disposition.VALIDATED


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=3_000),
    st.integers(min_value=16, max_value=64),
)
def test_duplicate_counter_is_exact_below_its_bound_and_bounded_above(values: list[int], bound: int) -> None:
    from mlops.validation.stats import hash_numbers

    counter = DuplicateCounter(max_exact=bound)
    hashes = hash_numbers(np.asarray(values, dtype=np.float64))
    for start in range(0, len(hashes), 100):
        counter.add(hashes[start : start + 100])

    repeated, kept = counter.duplicates()

    distinct = len(set(values))
    if counter.exact:
        assert repeated == len(values) - distinct
        assert kept == 1.0
    assert len(counter._hashes) <= bound
