"""What train_model can load: the one memory rule validation and training both apply.

Calibrated with `scripts/bench_training_memory.py` (fresh process per size, peak RSS from VmHWM,
the churn contract: 8 columns, CSV) on 2026-12-02:

    rows       file MiB   imports MiB   peak MiB   (before the lean reader: peak MiB)
    300,000        12         250          415          472
    1,000,000      39         250          764          946
    3,000,000     117         250        1,727        2,172 (shared/notes/facts.md)
    1,000,000 (Parquet) 5     249          751          942

The peak above the imports grows with rows x columns (about 60 bytes per cell) plus the object's
bytes, which training holds to check their SHA-256. Light on purpose (no numpy): validation imports it.
"""

from __future__ import annotations

import math

# The train_model function's memory (infra/catalog.py deploys exactly this).
TRAINING_MEMORY_MB = 3008
# Interpreter plus numpy, pandas, pyarrow, scikit-learn, skl2onnx and onnxruntime imported.
RUNTIME_MIB = 300  # measured 250
# Peak bytes per cell (row x contract column) above the imports and the object, reading and
# training: measured about 60, planned with a quarter more for other mixes of column types.
BYTES_PER_CELL = 75
# Share of the function's memory a dataset may plan to use: the rest absorbs what the estimate
# misses (estimator internals, allocator fragmentation).
PLANNED_SHARE = 0.85
MIB = 1024 * 1024


def estimated_peak_mib(rows: int, columns: int, object_bytes: int) -> float:
    """Peak memory (MiB) train_model needs for a dataset of `rows` x `columns` stored in `object_bytes`."""
    return RUNTIME_MIB + (object_bytes + rows * columns * BYTES_PER_CELL) / MIB


def budget_mib(memory_mb: int = TRAINING_MEMORY_MB) -> float:
    return memory_mb * PLANNED_SHARE


def capacity_rows(columns: int, object_bytes: int, memory_mb: int = TRAINING_MEMORY_MB) -> int:
    """The most rows of `columns` columns training can load, for an object of `object_bytes`."""
    spare = (budget_mib(memory_mb) - RUNTIME_MIB) * MIB - object_bytes
    return max(0, math.floor(spare / (columns * BYTES_PER_CELL)))


def over_budget(rows: int, columns: int, object_bytes: int, memory_mb: int = TRAINING_MEMORY_MB) -> str | None:
    """Why training cannot load this dataset, or None when it fits the budget."""
    needed = estimated_peak_mib(rows, columns, object_bytes)
    if needed <= budget_mib(memory_mb):
        return None
    return (
        f"training would need about {needed:,.0f} MiB to load {rows:,} rows x {columns} columns "
        f"({object_bytes / MIB:,.0f} MiB object); its budget is {budget_mib(memory_mb):,.0f} MiB of "
        f"{memory_mb} MB, at most {capacity_rows(columns, object_bytes, memory_mb):,} rows of this object"
    )
