"""The validation report: what was checked, what failed and why, for one exact object version.

The report is written next to the data (`reports/<model>/<dataset id>.json`) whatever the outcome,
so a quarantined upload always comes with the reasons.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

MAX_OFFENDING = 5  # offending rows quoted per check; the count covers all of them


class CheckName(StrEnum):
    KEY_LAYOUT = "key_layout"  # datasets/<model>/<file> with a supported suffix
    CONTRACT = "contract"  # contracts/<model>.json exists and is valid
    OBJECT_SIZE = "object_size"  # 0 < size <= contract.data.max_object_bytes
    READABLE = "readable"  # the parser read the whole object (CSV/gzip/Parquet)
    MISSING_COLUMNS = "missing_columns"
    UNEXPECTED_COLUMNS = "unexpected_columns"
    DUPLICATE_COLUMNS = "duplicate_columns"
    TYPE = "type"  # per column: values parse as the declared type
    NULLS = "nulls"  # per column: no nulls unless nullable
    FINITE = "finite"  # per numeric column: no NaN / +-inf
    RANGE = "range"  # per numeric column: within min/max
    CATEGORIES = "categories"  # per categorical column: one of the declared categories
    TARGET = "target"  # target values in target.classes (classification) or target min/max (regression)
    ROW_COUNT = "row_count"  # contract.data.min_rows <= rows <= max_rows


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class Offending(BaseModel):
    model_config = ConfigDict(frozen=True)

    row: int  # 1-based data row number (the CSV header is not a data row)
    value: str | None


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: CheckName
    column: str | None = None
    passed: bool
    details: str = ""
    failing_rows: int | None = None  # how many rows failed this check, when it is a row-level check
    first_offending: list[Offending] = Field(default_factory=list)

    @property
    def reason(self) -> str:
        where = f"{self.name.value}({self.column})" if self.column else self.name.value
        return f"{where}: {self.details}"


class DatasetInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    version_id: str | None
    etag: str | None = None
    size_bytes: int
    format: str | None = None  # csv, csv.gz, parquet
    sha256: str | None = None  # None when the bytes were not read (e.g. too large)
    rows: int | None = None
    uploader: str | None = None  # userIdentity.principalId of the S3 event


class ValidationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    report_version: int = 1
    dataset_id: str
    model_name: str
    dataset: DatasetInfo
    contract_key: str | None
    contract_digest: str | None
    outcome: Outcome
    checks: list[CheckResult]
    reasons: list[str]
    quarantine_key: str | None = None
    validated_at: str
    timings_ms: dict[str, float]

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED


def failed_reasons(checks: list[CheckResult]) -> list[str]:
    return [check.reason for check in checks if not check.passed]
