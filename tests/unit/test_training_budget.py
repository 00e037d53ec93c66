"""The training memory budget: validation and training share one rule (mlops.training.budget)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlops.training import budget


@given(columns=st.integers(1, 2_000), object_bytes=st.integers(0, 3 * 1024**3))
def test_capacity_rows_is_the_largest_dataset_that_fits(columns: int, object_bytes: int) -> None:
    rows = budget.capacity_rows(columns, object_bytes)
    assert budget.over_budget(rows + 1, columns, object_bytes) is not None
    if rows > 0:
        assert budget.over_budget(rows, columns, object_bytes) is None


def test_over_budget_names_the_numbers() -> None:
    # the old contract defaults: 50 million rows, a 5 GiB object
    reason = budget.over_budget(50_000_000, 8, 5 * 1024**3)
    assert reason is not None
    assert "50,000,000 rows x 8 columns" in reason
    assert f"of {budget.TRAINING_MEMORY_MB} MB" in reason


def test_the_measured_sizes_fit_with_room() -> None:
    # scripts/bench_training_memory.py measured 1,727 MiB peak for 3M rows x 8 columns (117 MiB CSV)
    assert budget.estimated_peak_mib(3_000_000, 8, 117 * budget.MIB) > 1_727
    assert budget.over_budget(3_000_000, 8, 117 * budget.MIB) is None
