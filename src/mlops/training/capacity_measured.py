"""Training's measured cost per estimator: written by `scripts/bench_training_scale.py --calibrate`.

Do not edit by hand; re-run the calibration and commit the result. Per estimator, a line through the
smallest and largest size trained (fresh process each, peak from VmHWM, the columnar reader):
peak MiB above the imports (RUNTIME_MIB) and the object = `fixed_mib` + rows x columns x
`bytes_per_cell`; seconds (read + fit + ONNX export + agreement check) = `fixed_seconds` + rows x
columns / `cells_per_second`; `params` are what the time scales against (trees); `runs` the raw
measurements. Timings come from a shared 2-core machine under load (other builds running), so they
are slower than a dedicated core: conservative for Lambda, whose 3008 MB function has ~1.7 vCPU.
"""

MEASURED_ON = "2026-12-03"
MACHINE = "2 cores AMD EPYC, shared: load 15 (forest, boosting runs), 7 (logistic regression runs), Python 3.11.7"
CONTRACT = "contracts/churn.json (7 features + label: 8 columns), CSV, default params"
RUNTIME_MIB = 253.5
ESTIMATORS: dict[str, dict[str, object]] = {
    "logistic_regression": {
        "bytes_per_cell": 47.3,
        "fixed_mib": 51.1,
        "cells_per_second": 1104010,
        "fixed_seconds": 5.76,
        "params": {},
        "measured_on": "2026-12-03",
        "runs": [
            {"rows": 1000000, "object_bytes": 41043042, "peak": 704.4, "seconds": 13.0},
            {"rows": 3000000, "object_bytes": 123123275, "peak": 1504.0, "seconds": 27.5},
        ],
    },
    "random_forest_classifier": {
        "bytes_per_cell": 62.8,
        "fixed_mib": 334.6,
        "cells_per_second": 22830,
        "fixed_seconds": 81.57,
        "params": {"n_estimators": 100},
        "measured_on": "2026-12-03",
        "runs": [
            {"rows": 100000, "object_bytes": 4103530, "peak": 640.1, "seconds": 116.6},
            {"rows": 300000, "object_bytes": 12311520, "peak": 743.6, "seconds": 105.1},
        ],
    },
    "gradient_boosting_classifier": {
        "bytes_per_cell": 50.9,
        "fixed_mib": 18.7,
        "cells_per_second": 33353,
        "fixed_seconds": 42.81,
        "params": {"n_estimators": 100},
        "measured_on": "2026-12-03",
        "runs": [
            {"rows": 100000, "object_bytes": 4103530, "peak": 315.6, "seconds": 66.8},
            {"rows": 300000, "object_bytes": 12311520, "peak": 400.5, "seconds": 114.8},
        ],
    },
}
