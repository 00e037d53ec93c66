"""Batch parts: CSV byte ranges cut after line breaks (row numbers carried), Parquet row groups,
batch keys and pinned versions, and the text cells a CSV row becomes."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.batch.plan import MAX_PARTS, Part, PlanError, RowGroup, covers, plan_csv, plan_parquet
from mlops.batch.scoring import cell_values, column_values
from mlops.contract_rules import FeatureRule, FeatureType
from mlops.layout import batch_job_id, batch_key_problem, batch_target


def csv_bytes(rows: list[str]) -> bytes:
    return ("a,b\n" + "".join(f"{row}\n" for row in rows)).encode()


def rows_of(data: bytes, part: Part) -> list[str]:
    return data[part.begin : part.end].decode().splitlines()


def test_plan_csv_small_file_is_one_part_after_the_header() -> None:
    data = csv_bytes(["1,2", "3,4"])
    header, parts = plan_csv(io.BytesIO(data), len(data), part_bytes=1024)
    assert header == b"a,b\n"
    assert parts == [Part(0, 4, len(data), 1)]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=200),
    part_bytes=st.integers(min_value=1, max_value=300),
    trailing_newline=st.booleans(),
)
def test_plan_csv_parts_tile_the_file_at_line_breaks_and_number_rows(
    lengths: list[int], part_bytes: int, trailing_newline: bool
) -> None:
    # GIVEN rows of any length (the last one maybe without a line break) and any part size
    rows = [f"{index}:" + "x" * length for index, length in enumerate(lengths, start=1)]
    data = csv_bytes(rows)
    if not trailing_newline:
        data = data[:-1]
    # WHEN the file is planned, read through a stream in small blocks
    header, parts = plan_csv(io.BytesIO(data), len(data), part_bytes)
    # THEN the parts cover every byte after the header once, each cut after a line break
    assert header == b"a,b\n"
    assert covers(parts, len(header), len(data))
    assert [part.index for part in parts] == list(range(len(parts)))
    for part in parts[:-1]:
        assert data[part.end - 1 : part.end] == b"\n"
    # and each part's first row number is the file's: every row is in exactly one part, in order
    seen: list[str] = []
    for part in parts:
        lines = rows_of(data, part)
        assert lines, "no empty part"
        assert lines[0] == rows[part.first_row - 1]
        seen.extend(lines)
    assert seen == rows


def test_plan_csv_reads_blocks_across_cut_points(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a read size smaller than a line, so cut points and line breaks fall in later blocks
    monkeypatch.setattr("mlops.batch.plan.READ_BYTES", 7)
    rows = [f"{i}," + "y" * 20 for i in range(1, 51)]
    data = csv_bytes(rows)
    _, parts = plan_csv(io.BytesIO(data), len(data), part_bytes=100)
    assert len(parts) > 5
    assert covers(parts, 4, len(data))
    assert [rows_of(data, p)[0] for p in parts] == [rows[p.first_row - 1] for p in parts]


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"", "empty"), (b"\n", "empty"), (b"a,b", "no rows after it")],
)
def test_plan_csv_refuses_a_file_without_a_header_line(data: bytes, problem: str) -> None:
    with pytest.raises(PlanError, match=problem):
        plan_csv(io.BytesIO(data), len(data), 10)


def test_plan_csv_refuses_more_parts_than_the_ledger_holds() -> None:
    data = csv_bytes(["1,2"] * (MAX_PARTS + 50))
    with pytest.raises(PlanError, match="raise the part size"):
        plan_csv(io.BytesIO(data), len(data), part_bytes=1)


def test_plan_parquet_groups_whole_row_groups_up_to_the_part_size() -> None:
    groups = [RowGroup(100, 400), RowGroup(100, 400), RowGroup(50, 900), RowGroup(10, 50)]
    parts = plan_parquet(groups, part_bytes=850)
    assert parts == [Part(0, 0, 2, 1, 200), Part(1, 2, 3, 201, 50), Part(2, 3, 4, 251, 10)]


def test_plan_parquet_refuses_a_file_without_row_groups() -> None:
    with pytest.raises(PlanError, match="no row groups"):
        plan_parquet([], part_bytes=100)


@pytest.mark.parametrize(
    ("key", "target"),
    [
        ("batch/churn/file.csv", ("churn", None)),
        ("batch/churn/v3/file.csv", ("churn", 3)),
        ("batch/churn/december/v3/file.parquet", ("churn", None)),  # only the first folder pins
        ("batch/churn/v3.csv", ("churn", None)),  # a file named v3, not a folder
        ("batch/churn/vintage/file.csv", ("churn", None)),  # a folder, not v<digits>
    ],
)
def test_batch_target_reads_the_model_and_a_pinned_version(key: str, target: tuple[str, int | None]) -> None:
    assert batch_key_problem(key) is None
    assert batch_target(key) == target


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("batch/churn/file.csv.gz", "unsupported file type"),
        ("batch/Churn/file.csv", "not a valid model name"),
        ("batch/churn/../x.csv", "'.' or '..'"),
        ("datasets/churn/file.csv", "not under batch/"),
        ("batch/churn/v0/file.csv", "'v0' is not a valid version"),  # versions start at 1
        ("batch/churn/v007/file.csv", "'v007' is not a valid version"),
        ("batch/churn/v99999999999999999999/file.csv", "'v99999999999999999999' is not a valid version"),
    ],
)
def test_batch_key_problem_names_the_problem(key: str, problem: str) -> None:
    assert problem in (batch_key_problem(key) or "")


def test_batch_job_id_is_stable_per_object_version() -> None:
    first = batch_job_id("batch/churn/file.csv", "v1")
    assert first == batch_job_id("batch/churn/file.csv", "v1")
    assert first != batch_job_id("batch/churn/file.csv", "v2")
    assert first.startswith("file-")


@pytest.mark.parametrize(
    ("rule", "texts", "values"),
    [
        (
            FeatureRule("n", FeatureType.NUMERIC),
            ["1", "2.5", "", "NA", "abc", "nan", None],
            [1.0, 2.5, None, None, "abc", pytest.approx(float("nan"), nan_ok=True), None],
        ),
        (
            FeatureRule("b", FeatureType.BOOLEAN),
            ["true", "False", "1", "0", "maybe", ""],
            [True, False, True, False, "maybe", None],
        ),
        (FeatureRule("c", FeatureType.CATEGORICAL), ["basic", "", "NULL", "Basic"], ["basic", None, None, "Basic"]),
    ],
)
def test_cell_values_turn_csv_text_into_request_values(
    rule: FeatureRule, texts: list[str | None], values: list[object]
) -> None:
    assert cell_values(rule, texts) == values


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["", "NA", "N/A", "null", "NULL", "true", " TRUE ", "0", "1", "yes", "1e3", "-2.5", " 7 "]),
            st.sampled_from(["nan", "inf", "-Infinity", "1_000", "0x10", "abc", "3.", ".5", "+4"]),
            st.floats(allow_nan=False).map(repr),
            st.text(max_size=4),
        ),
        max_size=30,
    ),
    kind=st.sampled_from(list(FeatureType)),
)
def test_column_values_agree_with_cell_values(texts: list[str | None], kind: FeatureType) -> None:
    # GIVEN any text column: the vectorised path must give exactly what the per-cell rule gives
    rule = FeatureRule("f", kind)
    expected = cell_values(rule, texts)
    found = column_values(rule, pa.array(texts, pa.string()))
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        if isinstance(want, float) and want != want:
            assert isinstance(got, float)
            assert got != got
        else:
            assert got == want
            assert type(got) is type(want)
