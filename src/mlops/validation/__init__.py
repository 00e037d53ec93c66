"""Dataset validation: check an uploaded dataset against its model's contract, write a report,
announce it (DatasetValidated) or quarantine it (DatasetQuarantined). numpy/pyarrow only."""

from mlops.validation.checks import DatasetChecker
from mlops.validation.readers import DatasetFormat, ReadResult, format_of, read_csv, read_parquet
from mlops.validation.report import CheckName, CheckResult, DatasetInfo, Offending, Outcome, ValidationReport
from mlops.validation.service import (
    UNASSIGNED_MODEL,
    DatasetValidator,
    Disposition,
    SeekableOpener,
    UploadedObject,
    ValidationOutcome,
    dataset_id,
)

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
