"""Dataset keys: one rule for every stage (validate, train, review), and every key derived from a
dataset key (quarantine, report, summary) within S3's 1,024-byte limit."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.errors import ConflictError, MlopsError, NotFoundError
from mlops.events import DatasetValidated, DetailType
from mlops.layout import MAX_KEY_BYTES, QUARANTINE_PREFIX, REPORTS_PREFIX, dataset_key_problem, quarantine_key
from mlops.training.service import train_from_event
from mlops.validation import UNASSIGNED_MODEL, DatasetValidator, Disposition, UploadedObject, ValidationReport
from mlops.validation.ledger import DatasetState, LedgerChange, LedgerEntry
from mlops.validation.review import review_held_dataset
from tests.support import datasets as ds
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher

BUCKET, ARTIFACTS = "data", "artifacts"


class S3LimitedStore(InMemoryObjectStore):
    """Refuses keys over 1,024 UTF-8 bytes, as S3 does (moto and the plain fake do not)."""

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        if len(key.encode()) > MAX_KEY_BYTES:
            raise MlopsError(f"KeyTooLongError: {len(key.encode())} bytes")
        return super().put_bytes(bucket, key, data, content_type)


@dataclass
class World:
    store: InMemoryObjectStore
    publisher: RecordingPublisher
    ledger: ds.InMemoryDatasetLedger
    notifier: ds.RecordingNotifier

    @property
    def validator(self) -> DatasetValidator:
        return DatasetValidator(
            store=self.store,
            publisher=self.publisher,
            data_bucket=BUCKET,
            batch_rows=1_000,
            ledger=self.ledger,
            notifier=self.notifier,
        )

    def validate(self, key: str, data: bytes) -> Any:
        # an upload S3 itself would refuse never reaches the validator
        version = InMemoryObjectStore.put_bytes(self.store, BUCKET, key, data)
        return self.validator.validate(UploadedObject(BUCKET, key, version, len(data), "etag", "AWS:AIDAUPLOADER"))


@pytest.fixture
def world() -> World:
    store = S3LimitedStore()
    store.put_bytes(BUCKET, "contracts/churn.json", ds.churn_contract_bytes())
    return World(store, RecordingPublisher(), ds.InMemoryDatasetLedger(), ds.RecordingNotifier())


CLEAN = ds.to_csv(ds.churn_frame(300))

# key -> what the reason must mention (None: a sound dataset key)
KEYS: list[tuple[str, str | None]] = [
    ("datasets/churn/jan.csv", None),
    ("datasets/churn/2026/01/jan.csv.gz", None),
    ("datasets/churn/JAN 2026 (v2).CSV", None),
    ("datasets/churn/données.csv", None),
    ("datasets/churn/../../x.csv", "'..'"),
    ("datasets/churn/../fraud/x.csv", "'..'"),
    ("datasets/churn/./x.csv", "'.'"),
    ("datasets/churn//x.csv", "empty path segment"),
    ("datasets//churn/x.csv", "empty path segment"),
    ("datasets/churn/x.csv/", "empty path segment"),
    ("datasets/x.csv", "is not datasets/<model>/<file>"),
    ("datasets/Churn/x.csv", "not a valid model name"),
    ("datasets/churn/x\nrow.csv", "U+000A"),
    ("datasets/churn/x\x00.csv", "U+0000"),
    ("datasets/churn/x\x7f.csv", "U+007F"),
    ("datasets/churn/evil\u202ecsv.exe.csv", "U+202E"),
    ("datasets/churn/..\\..\\x.csv", "backslash"),
    ("datasets/churn/ /x.csv", "whitespace"),
    ("datasets/churn/x.xlsx", "unsupported file type"),
]


@pytest.mark.parametrize(("key", "mentions"), KEYS, ids=[repr(k) for k, _ in KEYS])
def test_dataset_key_rule_names_the_problem(key: str, mentions: str | None) -> None:
    problem = dataset_key_problem(key)

    if mentions is None:
        assert problem is None
    else:
        assert problem is not None
        assert mentions in problem


BAD_KEYS = [(k, m) for k, m in KEYS if m is not None and "xlsx" not in k]


@pytest.mark.parametrize(("key", "mentions"), BAD_KEYS, ids=[repr(k) for k, _ in BAD_KEYS])
def test_validate_bad_key_is_quarantined_and_recorded_with_the_reason(world: World, key: str, mentions: str) -> None:
    # GIVEN a clean dataset uploaded under a key that breaks the dataset-key rule
    outcome = world.validate(key, CLEAN)

    # THEN it is quarantined, never announced, and the ledger says why (under no model it claims)
    assert outcome.disposition is Disposition.QUARANTINED
    assert world.publisher.of_type(DetailType.DATASET_VALIDATED) == []
    entry = world.ledger.get(UNASSIGNED_MODEL, outcome.dataset_id)
    assert entry is not None
    assert entry.state is DatasetState.QUARANTINED
    assert any(mentions in reason and reason.startswith("key_layout") for reason in entry.reasons)
    assert world.ledger.by_state("churn", DatasetState.ACCEPTED) == []
    # the quarantined copy sits under quarantine/_unassigned/ with no '..' or control character
    assert entry.quarantine_key is not None
    assert entry.quarantine_key.startswith(f"{QUARANTINE_PREFIX}{UNASSIGNED_MODEL}/")
    assert re.fullmatch(r"[A-Za-z0-9._-]*~[0-9a-f]{16}[a-z.]*", entry.quarantine_key.rsplit("/", 1)[-1])
    assert (BUCKET, entry.quarantine_key) in world.store.objects
    assert (BUCKET, key) not in world.store.objects


GOOD_KEYS = [k for k, m in KEYS if m is None]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_every_key_validation_accepts_is_one_training_trains_on(world: World, key: str) -> None:
    # GIVEN a clean dataset accepted by validation
    data = ds.to_csv_gz(ds.churn_frame(300)) if key.endswith(".gz") else CLEAN
    outcome = world.validate(key, data)
    assert outcome.disposition is Disposition.VALIDATED, outcome.reasons
    [validated] = world.publisher.of_type(DetailType.DATASET_VALIDATED)
    assert isinstance(validated, DatasetValidated)

    # WHEN training receives the announcement
    trained = train_from_event(
        validated, store=world.store, publisher=world.publisher, data_bucket=BUCKET, artifact_bucket=ARTIFACTS
    )

    # THEN it trains (no stage refuses what another accepted)
    assert trained.trained, world.publisher.of_type(DetailType.TRAINING_REJECTED)


def test_review_refuses_to_approve_a_held_dataset_whose_key_breaks_the_rule(world: World) -> None:
    # GIVEN a held entry recorded before the rule existed, under a '..' key
    key = "datasets/churn/../../x.csv"
    version = world.store.put_bytes(BUCKET, key, CLEAN)
    change = LedgerChange(at="2026-11-28T10:00:00+00:00", state=DatasetState.HELD, actor="validate_dataset")
    held = LedgerEntry(
        model_name="churn",
        dataset_id="x.csv-0123456789abcdef",
        state=DatasetState.HELD,
        bucket=BUCKET,
        key=key,
        version_id=version,
        sha256="0" * 64,
        size_bytes=len(CLEAN),
        rows=300,
        contract_digest="d" * 64,
        report_key="reports/churn/x.csv-0123456789abcdef.json",
        decided_at=change.at,
        history=[change],
    )
    world.ledger.record(held)

    # WHEN a reviewer approves it THEN the approval is refused with the reason, nothing is announced
    with pytest.raises(ConflictError, match=re.escape("'..'")):
        review_held_dataset(
            world.ledger, world.store, world.publisher, "churn", held.dataset_id, "approve", "alice", "looks fine"
        )
    assert world.publisher.of_type(DetailType.DATASET_VALIDATED) == []
    assert world.ledger.get("churn", held.dataset_id).state is DatasetState.HELD  # it can still be rejected


# -- item 18: derived keys within S3's limit ------------------------------------------------------


def _key_of_bytes(total: int, *, model: str = "churn", filler: str = "a", suffix: str = ".csv") -> str:
    prefix = f"datasets/{model}/"
    room = total - len(prefix.encode()) - len(suffix.encode())
    body = filler * (room // len(filler.encode()))
    body += "a" * (room - len(body.encode()))
    key = prefix + body + suffix
    assert len(key.encode()) == total
    return key


AT_THE_LIMIT = [
    _key_of_bytes(MAX_KEY_BYTES),
    _key_of_bytes(MAX_KEY_BYTES - 1),
    _key_of_bytes(MAX_KEY_BYTES - 2),
    _key_of_bytes(MAX_KEY_BYTES, filler="é"),
    _key_of_bytes(MAX_KEY_BYTES, filler="€", suffix=".csv.gz"),
    _key_of_bytes(MAX_KEY_BYTES, filler="😀", suffix=".parquet"),
    _key_of_bytes(MAX_KEY_BYTES, model="a" * 63),
    "datasets/churn/../" + _key_of_bytes(MAX_KEY_BYTES - 18).removeprefix("datasets/"),
]


@pytest.mark.parametrize("key", AT_THE_LIMIT, ids=[f"{len(k.encode())}B-{k[-12:]!r}" for k in AT_THE_LIMIT])
def test_quarantine_key_of_a_key_at_the_limit_fits_and_stays_distinct(key: str) -> None:
    target = quarantine_key(key)

    assert len(target.encode()) <= MAX_KEY_BYTES
    assert target.startswith(QUARANTINE_PREFIX)
    assert target.encode().decode() == target  # cut on a character boundary
    # one byte more in the name is another quarantine key
    other = key[:-5] + ("b" if key[-5] != "b" else "c") + key[-4:]
    assert quarantine_key(other) != target


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=1100),
    model=st.sampled_from(["churn", "a" * 63, "Bad", ""]),
)
def test_every_derived_key_fits_s3s_limit(name: str, model: str) -> None:
    key = f"datasets/{model}/{name}"
    assert len(quarantine_key(key).encode()) <= MAX_KEY_BYTES


@pytest.mark.parametrize("key", AT_THE_LIMIT[:4] + AT_THE_LIMIT[-1:], ids=lambda k: f"{len(k.encode())}B")
def test_validate_dataset_at_the_key_limit_is_quarantined_where_s3_would_accept_it(world: World, key: str) -> None:
    # GIVEN a bad dataset whose key is as long as S3 allows (the store refuses longer keys, as S3 does)
    bad = ds.to_csv(ds.set_cell("plan", 2, "gold")(ds.churn_frame(300)))

    outcome = world.validate(key, bad)

    # THEN it is quarantined and every key written fits: report, summary, quarantined copy
    assert outcome.disposition is Disposition.QUARANTINED
    report = ValidationReport.model_validate_json(world.store.get_bytes(BUCKET, outcome.report_key))
    for written in (outcome.report_key, report.summary_key, outcome.quarantine_key):
        assert written is not None
        assert len(written.encode()) <= MAX_KEY_BYTES
        assert (BUCKET, written) in world.store.objects
    assert outcome.report_key.startswith(REPORTS_PREFIX)
    assert world.ledger.get(outcome.model_name, outcome.dataset_id).quarantine_key == outcome.quarantine_key
    with pytest.raises(NotFoundError):
        world.store.head(BUCKET, key)


def test_report_and_summary_keys_of_the_longest_model_and_id_fit() -> None:
    from mlops.layout import report_key, summary_key
    from mlops.validation.decisions import dataset_id

    the_id = dataset_id(_key_of_bytes(MAX_KEY_BYTES, model="a" * 63), "v" * 1024)
    for derived in (report_key("a" * 63, the_id), summary_key("a" * 63, the_id)):
        assert len(derived.encode()) <= MAX_KEY_BYTES
        assert the_id in derived
    assert json.dumps(the_id).isascii()


def test_validate_unsupported_file_type_is_quarantined_under_its_model(world: World) -> None:
    # GIVEN a sound path with a file type the gate does not read
    outcome = world.validate("datasets/churn/export.xlsx", b"PK\x03\x04")

    # THEN it is the model's quarantined upload (its owner finds it), with the reason
    assert outcome.disposition is Disposition.QUARANTINED
    assert outcome.model_name == "churn"
    assert outcome.quarantine_key == "quarantine/churn/export.xlsx"
    entry = world.ledger.get("churn", outcome.dataset_id)
    assert entry is not None
    assert any("unsupported file type" in reason for reason in entry.reasons)
