"""Dataset validation: check an uploaded dataset against its model's contract, write a report,
announce it (DatasetValidated) or quarantine it (DatasetQuarantined). numpy/pyarrow only.

The names below load on first use (PEP 562), so importing a light submodule (`ledger`,
`decisions`, `review`) does not pull in numpy/pyarrow: models_api reviews held datasets and
its layers ship neither.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.validation.checks import DatasetChecker
    from mlops.validation.decisions import dataset_id
    from mlops.validation.readers import DatasetFormat, ReadResult, format_of, read_csv, read_parquet
    from mlops.validation.report import (
        CheckName,
        CheckResult,
        DatasetInfo,
        Offending,
        Outcome,
        ValidationReport,
    )
    from mlops.validation.service import (
        UNASSIGNED_MODEL,
        DatasetValidator,
        Disposition,
        SeekableOpener,
        UploadedObject,
        ValidationOutcome,
    )

_HOME = {
    "DatasetChecker": "checks",
    "dataset_id": "decisions",
    **dict.fromkeys(("DatasetFormat", "ReadResult", "format_of", "read_csv", "read_parquet"), "readers"),
    **dict.fromkeys(("CheckName", "CheckResult", "DatasetInfo", "Offending", "Outcome", "ValidationReport"), "report"),
    **dict.fromkeys(
        (
            "UNASSIGNED_MODEL",
            "DatasetValidator",
            "Disposition",
            "SeekableOpener",
            "UploadedObject",
            "ValidationOutcome",
        ),
        "service",
    ),
}

__all__ = [
    "UNASSIGNED_MODEL",
    "CheckName",
    "CheckResult",
    "DatasetChecker",
    "DatasetFormat",
    "DatasetInfo",
    "DatasetValidator",
    "Disposition",
    "Offending",
    "Outcome",
    "ReadResult",
    "SeekableOpener",
    "UploadedObject",
    "ValidationOutcome",
    "ValidationReport",
    "dataset_id",
    "format_of",
    "read_csv",
    "read_parquet",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
