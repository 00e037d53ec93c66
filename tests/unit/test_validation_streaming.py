"""The streaming validator's fast paths give the answers of the plain ones: dictionary-encoded
Parquet text vs plain text, any batch size, numpy shortcuts vs pyarrow kernels."""

from __future__ import annotations

import io
import math
from collections import Counter
from unittest.mock import patch

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.contract_rules import FLOAT32_MAX
from mlops.validation import CheckName, DatasetChecker
from mlops.validation import stats as stats_module
from mlops.validation.readers import read_parquet
from mlops.validation.report import CheckResult, DatasetProfile
from mlops.validation.stats import DuplicateCounter, StatsCollector, _mix, hash_numbers
from tests.support import datasets as ds

FINITE_OR_NOT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan]),
    st.none(),
)


def _messy_table(rows: int = 2_000) -> pa.Table:
    """The churn sample with something wrong in every kind of column, spread over the rows."""
    frame = ds.churn_frame(rows)
    for row, column, value in [
        (3, "region", "mars"),
        (1_500, "region", "venus"),
        (10, "plan", ""),
        (11, "plan", None),
        (1_999, "churned", "perhaps"),
        (40, "tenure_months", -3.0),
        (41, "tenure_months", -0.0),
        (42, "monthly_charges", math.inf),
        (43, "support_calls", math.nan),
        (900, "data_usage_gb", None),
    ]:
        frame = ds.set_cell(column, row, value)(frame)
    return pa.Table.from_pandas(frame, preserve_index=False)


def _reference() -> DatasetProfile:
    checker, stats = _checker(None)
    table = pa.Table.from_pandas(ds.churn_frame(1_000, seed=3), preserve_index=False)
    checker.set_columns(table.column_names)
    for batch in table.to_batches(max_chunksize=1_000):
        checker.check_batch(batch)
    return stats.profile(checker.observed())


def _checker(reference: DatasetProfile | None) -> tuple[DatasetChecker, StatsCollector]:
    contract = ds.churn_contract()
    stats = StatsCollector(contract, reference, seed=5)
    return DatasetChecker(contract, stats), stats


def _run(table: pa.Table, batch_rows: int, reference: DatasetProfile | None) -> tuple[list[CheckResult], ...]:
    checker, stats = _checker(reference)
    checker.set_columns(table.column_names)
    for batch in table.to_batches(max_chunksize=batch_rows):
        checker.check_batch(batch)
    return checker.results(), stats.results(), [stats.profile(checker.observed())]


@pytest.mark.parametrize("batch_rows", [1, 7, 333, 2_000])
def test_checks_and_statistics_do_not_depend_on_the_batch_size(batch_rows: int) -> None:
    # GIVEN the same rows cut into batches of different sizes
    table = _messy_table()
    reference = _reference()

    # THEN every check, statistic and profile (drawn from the sample) is the same
    assert _run(table, batch_rows, reference) == _run(table, 500, reference)


def test_stats_sample_is_the_same_rows_in_the_same_order_for_any_batch_size() -> None:
    table = pa.Table.from_pandas(ds.churn_frame(30_000), preserve_index=False)
    samples = []
    for batch_rows in (1_000, 16_384, 30_000):
        checker, stats = _checker(None)
        checker.set_columns(table.column_names)
        for batch in table.to_batches(max_chunksize=batch_rows):
            checker.check_batch(batch)
        samples.append(stats.sample)

    assert samples[0] is not None
    assert samples[0].num_rows == ds.churn_contract().data.sample_rows
    assert samples[0].equals(samples[1])
    assert samples[0].equals(samples[2])
    assert samples[0].column("autopay").type == pa.string()  # booleans spelled as profiles spell them


@pytest.mark.parametrize("row_group_size", [128, 700, 5_000])
def test_read_parquet_encoded_text_reports_what_plain_text_does(row_group_size: int) -> None:
    # GIVEN a Parquet file (read with its text categories dictionary-encoded) and the same rows as plain text
    table = _messy_table()
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    data = sink.getvalue()
    reference = _reference()

    checker, stats = _checker(reference)
    result = read_parquet(io.BytesIO(data), io.BytesIO(data), checker, batch_rows=1_000)

    assert result.complete
    plain = _run(table, 1_000, reference)
    assert (checker.results(), stats.results(), [stats.profile(checker.observed())]) == plain
    [regions] = [c for c in checker.results() if c.name is CheckName.CATEGORIES and c.column == "region"]
    assert [(o.row, o.kind) for o in regions.first_offending] == [(3, "text"), (1_500, "text")]
    [plan_nulls] = [c for c in checker.results() if c.name is CheckName.NULLS and c.column == "plan"]
    assert [(o.row, o.kind) for o in plan_nulls.first_offending] == [(10, "empty"), (11, "null")]


def test_read_parquet_batches_hold_whole_row_groups() -> None:
    class Counting(DatasetChecker):
        sizes: list[int] = []

        def check_batch(self, batch: pa.RecordBatch) -> None:
            Counting.sizes.append(batch.num_rows)
            super().check_batch(batch)

    data = ds.to_parquet(ds.churn_frame(10_000), row_group_size=4_000)
    checker = Counting(ds.churn_contract())

    read_parquet(io.BytesIO(data), io.BytesIO(data), checker, batch_rows=1_000)

    assert Counting.sizes == [4_000, 4_000, 2_000]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(FINITE_OR_NOT, max_size=20), min_size=1, max_size=5))
def test_numeric_checks_match_the_definition_on_any_floats(batches: list[list[float | None]]) -> None:
    # GIVEN float batches with NaN, infinities, signed zeros and nulls
    checker = DatasetChecker(ds.churn_contract())
    checker.set_columns(["tenure_months"])
    for values in batches:
        checker.check_batch(pa.record_batch({"tenure_months": pa.array(values, pa.float64())}))

    cells = [v for values in batches for v in values]
    # a feature's number is fed to the graph as float32: beyond its range it would be +-inf
    finite = [v for v in cells if v is not None and math.isfinite(v) and abs(v) <= FLOAT32_MAX]
    by_check = {c.name: c for c in checker.results() if c.column == "tenure_months"}
    observed = checker.observed()["tenure_months"]
    assert (observed.min, observed.max) == ((min(finite), max(finite)) if finite else (None, None))
    assert by_check[CheckName.FINITE].failing_rows == sum(v is not None for v in cells) - len(finite)
    assert by_check[CheckName.RANGE].failing_rows == sum(not 0 <= v <= 240 for v in finite)
    assert by_check[CheckName.NULLS].failing_rows == sum(v is None for v in cells)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0]))))
def test_hash_numbers_is_the_documented_hash(values: list[float]) -> None:
    numbers = np.asarray(values, dtype=np.float64)
    expected = _mix(np.where(numbers == 0, 0.0, numbers).view(np.uint64) + np.uint64(0x632BE59BD9B4E019))
    expected[np.isnan(numbers)] = stats_module._NULL_HASH

    assert (hash_numbers(numbers) == expected).all()
    if not np.isnan(numbers).any():
        assert (hash_numbers(numbers, np.empty(len(numbers), np.uint64), finite=True) == expected).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.floats(min_value=-5, max_value=5), st.sampled_from([math.nan, math.inf, -math.inf]))),
    st.lists(st.floats(min_value=-5, max_value=5), min_size=1, max_size=40),
)
def test_numeric_bins_count_what_a_binary_search_counts(values: list[float], edges: list[float]) -> None:
    numbers = np.asarray(values, dtype=np.float64)
    bins = stats_module._NumericBins(np.sort(np.asarray(edges)), np.zeros(len(edges) + 2, dtype=np.int64))

    bins.add(numbers, finite=bool(np.isfinite(numbers).all()))

    finite = numbers[np.isfinite(numbers)]
    expected = np.bincount(np.searchsorted(bins.edges, finite, side="left"), minlength=len(edges) + 1)
    assert bins.counts.tolist() == [*expected.tolist(), len(numbers) - len(finite)]


@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(st.lists(st.integers(min_value=0, max_value=300), max_size=200), max_size=12),
    flush=st.integers(min_value=1, max_value=300),
)
def test_duplicate_counter_counts_every_repeat_whatever_the_flushes(chunks: list[list[int]], flush: int) -> None:
    counter = DuplicateCounter()
    with patch.object(stats_module, "_FLUSH_HASHES", flush):
        for chunk in chunks:
            counter.add(np.asarray(chunk, dtype=np.uint64))

    seen = Counter(v for chunk in chunks for v in chunk)
    assert counter.duplicates() == (float(sum(seen.values()) - len(seen)), 1.0)
    assert counter._hashes.tolist() == sorted(seen)
    assert counter._counts.tolist() == [seen[v] for v in sorted(seen)]
