"""validate_dataset domain: each rule, the report it writes, and where the object ends up."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.events import DatasetQuarantined, DatasetValidated, DetailType
from mlops.layout import quarantine_key
from mlops.training import capacity, capacity_measured
from mlops.validation import (
    UNASSIGNED_MODEL,
    CheckName,
    DatasetChecker,
    DatasetValidator,
    Disposition,
    Outcome,
    UploadedObject,
    ValidationReport,
    dataset_id,
    read_csv,
)
from tests.support import datasets as ds
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher

BUCKET = "data"
ROWS = 300


@dataclass
class World:
    store: InMemoryObjectStore
    publisher: RecordingPublisher
    validator: DatasetValidator

    def upload(self, key: str, data: bytes, *, uploader: str = "AWS:AIDAUPLOADER") -> UploadedObject:
        version = self.store.put_bytes(BUCKET, key, data)
        return UploadedObject(BUCKET, key, version, len(data), etag="etag", uploader=uploader)

    def report(self, key: str) -> ValidationReport:
        return ValidationReport.model_validate_json(self.store.get_bytes(BUCKET, key))

    def exists(self, key: str) -> bool:
        return (BUCKET, key) in self.store.objects


@pytest.fixture
def world() -> World:
    store = InMemoryObjectStore()
    store.put_bytes(BUCKET, "contracts/churn.json", ds.churn_contract_bytes())
    publisher = RecordingPublisher()
    return World(
        store, publisher, DatasetValidator(store=store, publisher=publisher, data_bucket=BUCKET, batch_rows=1_000)
    )


def _frame() -> pd.DataFrame:
    return ds.churn_frame(ROWS)


def _text_column(column: str, row: int, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A Parquet file whose numeric column is stored as text, with one bad cell."""

    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        changed = ds.set_cell(column, row, value)(frame)
        changed[column] = changed[column].astype(str)
        return changed

    return mutate


# -- passing datasets ------------------------------------------------------------------------

PASSING = [
    ("clean.csv", lambda: ds.to_csv(_frame())),
    ("clean.csv.gz", lambda: ds.to_csv_gz(_frame())),
    ("clean.parquet", lambda: ds.to_parquet(_frame())),
    ("CLEAN.CSV", lambda: ds.to_csv(_frame())),
    ("crlf.csv", lambda: ds.to_csv(_frame()).replace(b"\n", b"\r\n")),
    ("bom.csv", lambda: b"\xef\xbb\xbf" + ds.to_csv(_frame())),
    ("row-groups.parquet", lambda: ds.to_parquet(_frame(), row_group_size=64)),
    ("reordered.csv", lambda: ds.to_csv(_frame()[list(reversed(_frame().columns))])),
]


@pytest.mark.parametrize(("name", "build"), PASSING, ids=[name for name, _ in PASSING])
def test_validate_clean_dataset_passes_and_announces_the_exact_version(
    world: World, name: str, build: Callable[[], bytes]
) -> None:
    # GIVEN a clean churn dataset
    data = build()
    upload = world.upload(f"datasets/churn/{name}", data)

    # WHEN it is validated
    outcome = world.validator.validate(upload)

    # THEN it passes, stays in place and DatasetValidated names the exact bytes
    assert outcome.disposition is Disposition.VALIDATED, outcome.reasons
    assert world.exists(upload.key)
    report = world.report(outcome.report_key or "")
    assert report.outcome is Outcome.PASSED
    assert report.reasons == []
    assert report.dataset.sha256 == hashlib.sha256(data).hexdigest()
    assert report.dataset.rows == ROWS
    assert report.dataset.uploader == "AWS:AIDAUPLOADER"
    assert report.contract_digest == ds.churn_contract().digest
    assert {"head", "contract", "read", "total"} <= set(report.timings_ms)
    [event] = world.publisher.of_type(DetailType.DATASET_VALIDATED)
    assert isinstance(event, DatasetValidated)
    assert event.dataset.model_dump() == {
        "bucket": BUCKET,
        "key": upload.key,
        "version_id": upload.version_id,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "rows": ROWS,
        "uploader": "AWS:AIDAUPLOADER",
        "uploaded_at": report.dataset.uploaded_at,
        "dataset_id": report.dataset_id,
    }
    assert event.report_key == outcome.report_key
    assert event.contract_digest == ds.churn_contract().digest
    assert world.publisher.of_type(DetailType.DATASET_QUARANTINED) == []


# -- failing datasets ------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    file: str
    build: Callable[[], bytes]
    check: CheckName
    column: str | None = None
    mentions: str = ""  # text the failing check's details must contain
    row: int | None = None  # the first offending row the check must name
    kind: str | None = None  # the kind of value it must name (the value itself is never shown)


def _csv(mutation: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[], bytes]:
    return lambda: ds.to_csv(mutation(_frame()))


BAD = [
    Bad("missing column", "a.csv", _csv(ds.drop_column("region")), CheckName.MISSING_COLUMNS, mentions="region"),
    Bad(
        "extra column",
        "a.csv",
        _csv(ds.add_column("favourite_colour", "red")),
        CheckName.UNEXPECTED_COLUMNS,
        mentions="favourite_colour",
    ),
    Bad(
        "duplicated column",
        "a.csv",
        lambda: ds.duplicate_header_csv(_frame(), "plan"),
        CheckName.DUPLICATE_COLUMNS,
        mentions="plan",
    ),
    Bad(
        "text in numeric",
        "a.csv",
        _csv(ds.set_cell("tenure_months", 3, "abc")),
        CheckName.TYPE,
        "tenure_months",
        "row 3 (text)",
        3,
        "text",
    ),
    Bad(
        "decimal comma",
        "a.csv",
        lambda: (
            ds.to_csv(_frame()).replace(b"\n", b"\n", 1).replace(b",basic,", b",basic,", 1)
            + b'"1,5",30.0,1.0,2.0,basic,north,True,no\n'
        ),
        CheckName.TYPE,
        "tenure_months",
        "(text)",
        ROWS + 1,
        "text",
    ),
    Bad(
        "text in boolean",
        "a.csv",
        _csv(ds.set_cell("autopay", 8, "maybe")),
        CheckName.TYPE,
        "autopay",
        "row 8 (text)",
        8,
        "text",
    ),
    Bad(
        "null in non-nullable",
        "a.csv",
        _csv(ds.set_cell("plan", 10, None)),
        CheckName.NULLS,
        "plan",
        "row 10",
        10,
        None,
    ),
    Bad(
        "null numeric",
        "a.csv",
        _csv(ds.set_cell("monthly_charges", 11, None)),
        CheckName.NULLS,
        "monthly_charges",
        "row 11",
        11,
        None,
    ),
    Bad(
        "NaN text",
        "a.csv",
        _csv(ds.set_cell("monthly_charges", 4, "NaN")),
        CheckName.FINITE,
        "monthly_charges",
        "row 4 (NaN)",
        4,
        "NaN",
    ),
    Bad(
        "-inf",
        "a.csv",
        _csv(ds.set_cell("support_calls", 6, "-inf")),
        CheckName.FINITE,
        "support_calls",
        "row 6 (infinity)",
        6,
        "infinity",
    ),
    Bad(
        "above max",
        "a.csv",
        _csv(ds.set_cell("tenure_months", 7, 500)),
        CheckName.RANGE,
        "tenure_months",
        "row 7 (number)",
        7,
        "number",
    ),
    Bad(
        "below min",
        "a.csv",
        _csv(ds.set_cell("monthly_charges", 2, -1.5)),
        CheckName.RANGE,
        "monthly_charges",
        "row 2 (number)",
        2,
        "number",
    ),
    Bad(
        "unknown category",
        "a.csv",
        _csv(ds.set_cell("plan", 2, "gold")),
        CheckName.CATEGORIES,
        "plan",
        "row 2 (text)",
        2,
        "text",
    ),
    Bad(
        "unknown target class",
        "a.csv",
        _csv(ds.set_cell("churned", 5, "maybe")),
        CheckName.TARGET,
        "churned",
        "row 5 (text)",
        5,
        "text",
    ),
    Bad("null target", "a.csv", _csv(ds.set_cell("churned", 9, None)), CheckName.NULLS, "churned", "row 9", 9, None),
    Bad("too few rows", "a.csv", _csv(ds.head(50)), CheckName.ROW_COUNT, mentions="50 data rows"),
    Bad("0-byte file", "a.csv", lambda: b"", CheckName.OBJECT_SIZE, mentions="empty"),
    Bad("0-byte parquet", "a.parquet", lambda: b"", CheckName.OBJECT_SIZE, mentions="empty"),
    Bad("header-only CSV", "a.csv", lambda: ds.header_only_csv(_frame()), CheckName.ROW_COUNT, mentions="0 data rows"),
    Bad("ragged CSV", "a.csv", lambda: ds.ragged_csv(_frame(), 5), CheckName.READABLE, mentions="Expected 8 columns"),
    Bad("not gzip", "a.csv.gz", _csv(lambda f: f), CheckName.FORMAT, mentions="key says csv.gz"),
    Bad(
        "truncated gzip",
        "a.csv.gz",
        lambda: ds.truncated(ds.to_csv_gz(_frame())),
        CheckName.READABLE,
        mentions="csv.gz",
    ),
    Bad(
        "truncated parquet",
        "a.parquet",
        lambda: ds.truncated(ds.to_parquet(_frame())),
        CheckName.READABLE,
        mentions="parquet",
    ),
    Bad("CSV named parquet", "a.parquet", _csv(lambda f: f), CheckName.FORMAT, mentions="look like text"),
    Bad(
        "parquet text in numeric",
        "a.parquet",
        lambda: ds.to_parquet(_text_column("support_calls", 12, "lots")(_frame())),
        CheckName.TYPE,
        "support_calls",
        "row 12 (text)",
        12,
        "text",
    ),
    Bad(
        "parquet wrong column type",
        "a.parquet",
        lambda: ds.to_parquet(_frame().assign(tenure_months=pd.Timestamp("2026-01-01"))),
        CheckName.TYPE,
        "tenure_months",
        "timestamp",
    ),
    Bad(
        "parquet missing column",
        "a.parquet",
        lambda: ds.to_parquet(_frame().drop(columns=["churned"])),
        CheckName.MISSING_COLUMNS,
        mentions="churned",
    ),
    Bad(
        "parquet unknown class",
        "a.parquet",
        lambda: ds.to_parquet(ds.set_cell("churned", 3, "perhaps")(_frame())),
        CheckName.TARGET,
        "churned",
        "row 3 (text)",
        3,
        "text",
    ),
    Bad("unsupported suffix", "a.json", lambda: b"{}", CheckName.KEY_LAYOUT, mentions="unsupported file type"),
    Bad(
        "CR-only line endings",
        "a.csv",
        lambda: ds.to_csv(_frame()).replace(b"\n", b"\r"),
        CheckName.READABLE,
        mentions="new-line character",
    ),
    Bad(
        "header longer than a CSV field may be",
        "a.csv",
        lambda: b"a" * 300_000 + b"\n" + ds.to_csv(_frame()),
        CheckName.READABLE,
        mentions="field limit",
    ),
    Bad(
        "parquet column named twice",
        "a.parquet",
        lambda: _parquet_with_repeated_column("plan"),
        CheckName.DUPLICATE_COLUMNS,
        mentions="plan",
    ),
]


def _parquet_with_repeated_column(name: str) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(_frame(), preserve_index=False)
    doubled = pa.Table.from_arrays([*table.columns, table[name]], names=[*table.column_names, name])
    sink = io.BytesIO()
    pq.write_table(doubled, sink)
    return sink.getvalue()


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_validate_bad_dataset_is_quarantined_with_a_report_naming_the_problem(world: World, case: Bad) -> None:
    # GIVEN a dataset that breaks one rule
    upload = world.upload(f"datasets/churn/{case.file}", case.build())

    # WHEN it is validated
    outcome = world.validator.validate(upload)

    # THEN it is quarantined, with a report whose failing check names the problem
    assert outcome.disposition is Disposition.QUARANTINED
    assert not world.exists(upload.key)
    assert world.exists(quarantine_key(upload.key))
    report = world.report(outcome.report_key or "")
    assert report.outcome is Outcome.FAILED
    assert report.quarantine_key == quarantine_key(upload.key)
    failing = [c for c in report.checks if not c.passed and c.name is case.check and c.column == case.column]
    assert failing, f"no failing {case.check} check for {case.column}: {report.reasons}"
    assert case.mentions in failing[0].details
    if case.row is not None:
        assert failing[0].first_offending[0].row == case.row
        assert failing[0].first_offending[0].kind == (case.kind or "null")
        assert failing[0].first_offending[0].value is None
    [event] = world.publisher.of_type(DetailType.DATASET_QUARANTINED)
    assert isinstance(event, DatasetQuarantined)
    assert event.source_key == upload.key
    assert event.quarantine_key == quarantine_key(upload.key)
    assert event.report_key == outcome.report_key
    assert any(case.mentions in reason for reason in event.reasons)
    assert world.publisher.of_type(DetailType.DATASET_VALIDATED) == []


def test_validate_one_bad_cell_fails_only_its_own_checks(world: World) -> None:
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(ds.set_cell("plan", 2, "gold")(_frame())))

    report = world.report(world.validator.validate(upload).report_key or "")

    assert [(c.name, c.column) for c in report.checks if not c.passed] == [(CheckName.CATEGORIES, "plan")]


def test_validate_reports_first_five_offending_rows_and_counts_all(world: World) -> None:
    frame = _frame()
    frame.loc[[1, 4, 9, 19, 29, 39, 49], "region"] = "mars"  # data rows 2, 5, 10, 20, 30, 40, 50
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(frame))

    report = world.report(world.validator.validate(upload).report_key or "")

    [check] = [c for c in report.checks if c.name is CheckName.CATEGORIES and c.column == "region"]
    assert check.failing_rows == 7
    assert [o.row for o in check.first_offending] == [2, 5, 10, 20, 30]


def test_validate_nullable_column_accepts_nulls(world: World) -> None:
    frame = _frame()
    assert frame["data_usage_gb"].isna().any()  # the sample has missing usage
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(frame))

    assert world.validator.validate(upload).disposition is Disposition.VALIDATED


@pytest.mark.parametrize(
    ("contract", "mentions"),
    [
        (None, "no contract for model 'churn'"),
        (b"{not json", "invalid contract"),
        (json.dumps({**json.loads(ds.churn_contract_bytes()), "problem_type": "clustering"}).encode(), "problem_type"),
        (json.dumps({**json.loads(ds.churn_contract_bytes()), "name": "other"}).encode(), "declares model 'other'"),
    ],
    ids=["unknown model", "not json", "invalid field", "name mismatch"],
)
def test_validate_without_a_valid_contract_quarantines(world: World, contract: bytes | None, mentions: str) -> None:
    # GIVEN a missing or invalid contract
    del world.store.objects[(BUCKET, "contracts/churn.json")]
    if contract is not None:
        world.store.put_bytes(BUCKET, "contracts/churn.json", contract)
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(_frame()))

    # WHEN a dataset arrives for that model
    outcome = world.validator.validate(upload)

    # THEN it is quarantined and the report names the contract problem
    assert outcome.disposition is Disposition.QUARANTINED
    report = world.report(outcome.report_key or "")
    [check] = [c for c in report.checks if c.name is CheckName.CONTRACT]
    assert not check.passed
    assert mentions in check.details
    assert report.contract_digest is None


def test_validate_object_larger_than_the_contract_allows_is_not_read(world: World) -> None:
    contract = json.loads(ds.churn_contract_bytes())
    contract["data"]["max_object_bytes"] = 1_000
    world.store.put_bytes(BUCKET, "contracts/churn.json", json.dumps(contract).encode())
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(_frame()))

    report = world.report(world.validator.validate(upload).report_key or "")

    [check] = [c for c in report.checks if c.name is CheckName.OBJECT_SIZE]
    assert not check.passed
    assert "exceeds" in check.details
    assert report.dataset.sha256 is None


def test_validate_too_many_rows_fails_row_count(world: World) -> None:
    contract = json.loads(ds.churn_contract_bytes())
    contract["data"].update(min_rows=10, max_rows=100)
    world.store.put_bytes(BUCKET, "contracts/churn.json", json.dumps(contract).encode())
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(_frame()))

    outcome = world.validator.validate(upload)

    assert outcome.disposition is Disposition.QUARANTINED
    assert any("300 data rows" in reason for reason in outcome.reasons)


@pytest.mark.parametrize(
    ("key", "mentions"),
    [
        ("datasets/jan.csv", "is not datasets/<model>/<file>"),
        ("datasets/Churn/jan.csv", "not a valid model name"),
    ],
)
def test_validate_key_outside_the_layout_is_quarantined_under_unassigned(world: World, key: str, mentions: str) -> None:
    upload = world.upload(key, ds.to_csv(_frame()))

    outcome = world.validator.validate(upload)

    assert outcome.disposition is Disposition.QUARANTINED
    assert outcome.report_key is not None
    assert outcome.report_key.startswith(f"reports/{UNASSIGNED_MODEL}/")
    assert world.exists(quarantine_key(key))
    assert mentions in world.report(outcome.report_key).reasons[0]


def test_validate_key_outside_datasets_is_skipped(world: World) -> None:
    upload = world.upload("elsewhere/churn/a.csv", ds.to_csv(_frame()))

    outcome = world.validator.validate(upload)

    assert outcome.disposition is Disposition.SKIPPED
    assert world.exists(upload.key)
    assert world.publisher.events == []


def test_validate_missing_version_does_nothing(world: World) -> None:
    # GIVEN an upload deleted before it is processed
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(_frame()))
    del world.store.objects[(BUCKET, upload.key)]

    outcome = world.validator.validate(upload)

    assert outcome.disposition is Disposition.MISSING
    assert outcome.report_key is None
    assert world.publisher.events == []
    assert [key for _, key in world.store.objects if key.startswith("reports/")] == []


def test_validate_second_delivery_after_quarantine_does_no_double_work(world: World) -> None:
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(ds.set_cell("plan", 2, "gold")(_frame())))
    first = world.validator.validate(upload)

    second = world.validator.validate(upload)

    assert second.disposition is Disposition.MISSING
    assert second.report_key == first.report_key
    assert second.quarantine_key == first.quarantine_key
    assert len(world.publisher.events) == 1


def test_validate_failure_to_publish_leaves_the_object_in_place_for_the_retry(world: World) -> None:
    class Down(RecordingPublisher):
        def publish(self, detail_type: str, detail: Any) -> None:
            raise ConnectionError("bus unavailable")

    validator = DatasetValidator(store=world.store, publisher=Down(), data_bucket=BUCKET)
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(ds.set_cell("plan", 2, "gold")(_frame())))

    with pytest.raises(ConnectionError):
        validator.validate(upload)

    assert world.exists(upload.key)  # the retry will find it and redo the same work
    assert world.validator.validate(upload).disposition is Disposition.QUARANTINED


def test_dataset_id_is_deterministic_per_key_and_version() -> None:
    first = dataset_id("datasets/churn/jan 2026=v1.csv", "v1")

    assert first == dataset_id("datasets/churn/jan 2026=v1.csv", "v1")
    assert first != dataset_id("datasets/churn/jan 2026=v1.csv", "v2")
    assert first.startswith("jan-2026-v1.csv-")


def test_read_csv_numbers_rows_across_blocks_and_hashes_every_byte() -> None:
    # GIVEN a CSV read in many small blocks, with bad cells far apart
    frame = ds.churn_frame(3_000)
    frame = ds.set_cell("region", 1_234, "mars")(ds.set_cell("region", 2_999, "venus")(frame))
    data = ds.to_csv(frame)
    checker = DatasetChecker(ds.churn_contract())

    result = read_csv(io.BytesIO(data), checker, block_bytes=4_096)

    assert result.complete
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.bytes_read == len(data)
    [check] = [c for c in checker.results() if c.name is CheckName.CATEGORIES and c.column == "region"]
    assert [(o.row, o.kind, o.value) for o in check.first_offending] == [(1_234, "text", None), (2_999, "text", None)]


def test_read_csv_gzip_hashes_the_compressed_bytes() -> None:
    data = gzip.compress(ds.to_csv(_frame()))
    checker = DatasetChecker(ds.churn_contract())

    result = read_csv(io.BytesIO(data), checker, compressed=True)

    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert checker.rows == ROWS


def test_read_csv_network_failure_is_raised_not_reported() -> None:
    class Flaky(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 100:
                raise ConnectionResetError("connection reset by peer")
            return super().read(size if size is not None and size < 64 else 64)

    with pytest.raises(ConnectionResetError):
        read_csv(Flaky(ds.to_csv(_frame())), DatasetChecker(ds.churn_contract()), block_bytes=1_024)


def test_validate_parquet_in_many_batches_numbers_rows_globally(world: World) -> None:
    frame = ds.set_cell("churned", 2_500, "perhaps")(ds.churn_frame(3_000))
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, row_group_size=700)
    upload = world.upload("datasets/churn/big.parquet", sink.getvalue())

    report = world.report(world.validator.validate(upload).report_key or "")

    [check] = [c for c in report.checks if c.name is CheckName.TARGET]
    assert [(o.row, o.kind, o.value) for o in check.first_offending] == [(2_500, "text", None)]
    assert report.dataset.rows == 3_000


def test_read_csv_streams_in_blocks_never_the_whole_object() -> None:
    class Recording(io.BytesIO):
        largest = 0

        def read(self, size: int | None = -1) -> bytes:
            assert size is not None, "the whole object was requested"
            assert size >= 0, "the whole object was requested"
            data = super().read(size)
            Recording.largest = max(Recording.largest, len(data))
            return data

    data = ds.to_csv(ds.churn_frame(40_000))
    checker = DatasetChecker(ds.churn_contract())

    result = read_csv(Recording(data), checker, block_bytes=16_384)

    assert result.complete
    assert checker.rows == 40_000
    assert Recording.largest <= 64 * 1024  # header peek chunk; blocks are 16 KiB


REGRESSION_CONTRACT = {
    "name": "charges",
    "problem_type": "regression",
    "target": {"name": "monthly_charges", "min": 0, "max": 500},
    "features": [{"name": "tenure_months", "type": "numeric"}, {"name": "plan", "type": "categorical"}],
    "estimator": {"name": "ridge"},
    "metric": {"name": "rmse"},
    "data": {"min_rows": 10},
}


def test_validate_regression_target_outside_its_range_is_named(world: World) -> None:
    world.store.put_bytes(BUCKET, "contracts/charges.json", json.dumps(REGRESSION_CONTRACT).encode())
    frame = _frame()[["tenure_months", "plan", "monthly_charges"]]
    upload = world.upload("datasets/charges/a.csv", ds.to_csv(ds.set_cell("monthly_charges", 6, 900)(frame)))

    outcome = world.validator.validate(upload)

    assert outcome.disposition is Disposition.QUARANTINED
    report = world.report(outcome.report_key or "")
    [check] = [c for c in report.checks if c.name is CheckName.TARGET]
    offending = check.first_offending[0]
    assert (check.column, offending.row, offending.kind, offending.value) == ("monthly_charges", 6, "number", None)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=240, allow_nan=False), min_size=1, max_size=50))
def test_read_csv_any_in_range_number_as_text_passes_type_and_range(values: list[float]) -> None:
    # any finite number Python writes (repr: 1e-05, 240.0, 5e-324) is read back as a number
    contract = ds.churn_contract()
    checker = DatasetChecker(contract)
    lines = ["tenure_months", *(repr(v) for v in values)]

    read_csv(io.BytesIO(("\n".join(lines) + "\n").encode()), checker)

    by_name = {c.name: c for c in checker.results() if c.column == "tenure_months"}
    assert by_name[CheckName.TYPE].passed
    assert by_name[CheckName.RANGE].passed
    assert checker.rows == len(values)


# train_model's deployed memory, and one with room for its libraries and nothing else
JUST_THE_LIBRARIES_MB = math.floor(capacity_measured.RUNTIME_MIB / capacity.PLANNED_SHARE)  # not a byte for data


@pytest.mark.parametrize(
    ("memory_mb", "disposition"),
    [(capacity.TRAINING_MEMORY_MB, Disposition.VALIDATED), (JUST_THE_LIBRARIES_MB, Disposition.QUARANTINED)],
)
def test_validate_quarantines_a_dataset_training_cannot_load(
    world: World, memory_mb: int, disposition: Disposition, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN train_model with `memory_mb`, and no managed engine to take what it cannot
    monkeypatch.setattr(capacity, "MANAGED_ENGINE_AVAILABLE", False)
    validator = DatasetValidator(
        store=world.store,
        publisher=world.publisher,
        data_bucket=BUCKET,
        batch_rows=1_000,
        training_memory_mb=memory_mb,
    )
    upload = world.upload("datasets/churn/a.csv", ds.to_csv(_frame()))

    outcome = validator.validate(upload)

    # THEN a dataset it could not load never reaches it: quarantined, and the report says why
    assert outcome.disposition is disposition
    report = world.report(outcome.report_key or "")
    [check] = [c for c in report.checks if c.name is CheckName.TRAINING_CAPACITY]
    assert check.passed is (disposition is Disposition.VALIDATED)
    if not check.passed:
        assert "needs about" in check.details
        assert any(reason.startswith("training_capacity") for reason in outcome.reasons), outcome.reasons


def test_validate_passes_a_dataset_past_lambda_to_the_managed_engine_once_one_exists(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a train_model too small for the dataset, and the managed engine wired
    monkeypatch.setattr(capacity, "MANAGED_ENGINE_AVAILABLE", True)
    validator = DatasetValidator(
        store=world.store,
        publisher=world.publisher,
        data_bucket=BUCKET,
        batch_rows=1_000,
        training_memory_mb=JUST_THE_LIBRARIES_MB,
    )
    outcome = validator.validate(world.upload("datasets/churn/a.csv", ds.to_csv(_frame())))
    # THEN validation does not refuse it: the plan says where it trains
    assert outcome.disposition is Disposition.VALIDATED
    [check] = [c for c in world.report(outcome.report_key or "").checks if c.name is CheckName.TRAINING_CAPACITY]
    assert check.passed
    assert "trains on managed_engine" in check.details
