"""Training's measured cost per estimator: written by `scripts/bench_training_scale.py --calibrate`.

Do not edit by hand; re-run the calibration on the machine named below and commit the result.
Per estimator: `bytes_per_cell` is the peak memory above the imported libraries per row x contract
column (reading, model inputs and fitting together); `cells_per_second` and `fixed_seconds` fit
read + fit + ONNX export + agreement check; `params` are the estimator params it ran with.
"""

MEASURED_ON = "2026-12-02 (rough: bench_training_memory.py, logistic regression only; others estimated)"
MACHINE = "2-core shared x86_64 build machine, Python 3.11"
CONTRACT = "contracts/churn.json (7 features + label: 8 columns), CSV"
RUNTIME_MIB = 250.0
ESTIMATORS: dict[str, dict[str, object]] = {
    "logistic_regression": {"bytes_per_cell": 62.0, "cells_per_second": 700_000.0, "fixed_seconds": 2.0, "params": {}},
    "random_forest_classifier": {
        "bytes_per_cell": 90.0,
        "cells_per_second": 150_000.0,
        "fixed_seconds": 2.0,
        "params": {"n_estimators": 100},
    },
    "gradient_boosting_classifier": {
        "bytes_per_cell": 80.0,
        "cells_per_second": 60_000.0,
        "fixed_seconds": 2.0,
        "params": {"n_estimators": 100},
    },
}
