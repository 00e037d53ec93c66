"""The validation report: what was checked, what failed and why, for one exact object version.

The report is written next to the data (`reports/<model>/<dataset id>.json`) whatever the outcome,
so a quarantined upload always comes with the reasons.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from mlops.profile import ColumnProfile
from mlops.validation.ledger import DatasetState  # re-exported: the ledger owns the states

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
    TRAINING_CAPACITY = "training_capacity"  # rows x columns fit train_model's memory (mlops.training.capacity)
    FORMAT = "format"  # the bytes are what the key claims (Parquet PAR1, gzip 1f8b, text CSV)
    LIMITS = "limits"  # decompressed size, compression ratio, column count
    PROVENANCE = "provenance"  # the uploader is allowed by the contract
    NULL_RATE = "null_rate"  # per nullable column: share of nulls <= data.max_null_fraction
    UNIQUE_ID = "unique_id"  # per declared id column: no value twice
    REFERENCE = "reference"  # what the statistics compare against (informational)
    FEATURE_SHIFT = "feature_shift"  # per feature: PSI against the reference
    LABEL_SHIFT = "label_shift"  # PSI of the target against the reference
    OUT_OF_RANGE = "out_of_observed_range"  # share of rows outside the reference's observed values
    DUPLICATE_ROWS = "duplicate_rows"  # share of exact duplicate rows
    LABEL_FLIP = "label_flip"  # production model's disagreement with the labels vs its holdout error


# Checks whose failure holds a dataset for review instead of quarantining it (the schema is sound).
STATISTICAL_CHECKS = frozenset(
    {
        CheckName.FEATURE_SHIFT,
        CheckName.LABEL_SHIFT,
        CheckName.OUT_OF_RANGE,
        CheckName.DUPLICATE_ROWS,
        CheckName.LABEL_FLIP,
    }
)


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    HELD = "held"


class DatasetProfile(BaseModel):
    """What an accepted dataset looked like: the reference for the next upload's statistics."""

    model_config = ConfigDict(frozen=True)

    rows: int
    features: dict[str, ColumnProfile]
    label: ColumnProfile | None = None


class Offending(BaseModel):
    """One failing row: its number and the kind of value it holds. The value itself only for a
    feature the contract marks `show_values` (cells may hold personal or secret data)."""

    model_config = ConfigDict(frozen=True)

    row: int  # 1-based data row number (the CSV header is not a data row)
    kind: str = ""  # null, empty, text, number, NaN, infinity, boolean ("" in reports before kinds)
    value: str | None = None

    @property
    def described(self) -> str:
        """`row 5: 'twelve'` when the value may be shown, else `row 5 (text)`."""
        return f"row {self.row}: {self.value!r}" if self.value is not None else f"row {self.row} ({self.kind})"


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: CheckName
    column: str | None = None
    passed: bool
    details: str = ""
    failing_rows: int | None = None  # how many rows failed this check, when it is a row-level check
    first_offending: list[Offending] = Field(default_factory=list)
    value: float | None = None  # the measured statistic (PSI, share, rate), when there is one
    threshold: float | None = None  # the contract's limit for `value`

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
    uploaded_at: str | None = None  # eventTime of the S3 event (else the object's LastModified)


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
    state: DatasetState | None = None  # None only in reports written before the ledger existed
    summary_key: str | None = None  # the short human summary beside this report
    reference: str | None = None  # what the statistics compared against
    profile: DatasetProfile | None = None  # of the schema-sound dataset (the next upload's reference)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED


def failed_reasons(checks: list[CheckResult]) -> list[str]:
    return [check.reason for check in checks if not check.passed]


def summary_text(report: ValidationReport) -> str:
    """A short human summary: outcome, which checks ran, which failed and by how much, first rows.

    Cell values appear only for columns the contract marks `show_values`, quoted with repr():
    a spreadsheet formula is shown as the text it is.
    """
    info = report.dataset
    state = report.state.value if report.state else report.outcome.value
    lines = [
        f"{state.upper()}: s3://{info.bucket}/{info.key} (version {info.version_id})",
        f"model {report.model_name}, dataset id {report.dataset_id}, checked {report.validated_at}",
        f"uploaded by {info.uploader or 'unknown'} at {info.uploaded_at or 'unknown'}; {info.size_bytes} bytes, "
        f"{info.rows if info.rows is not None else '?'} rows, sha256 {info.sha256 or 'not read'}",
    ]
    if report.reference:
        lines.append(f"statistics compared with {report.reference}")
    failed = [c for c in report.checks if not c.passed]
    ran = sorted({c.name.value for c in report.checks})
    lines.append(f"{len(report.checks)} checks ran ({', '.join(ran)}); {len(failed)} failed")
    for check in failed:
        where = f"{check.name.value}({check.column})" if check.column else check.name.value
        measured = ""
        if check.value is not None and check.threshold is not None:
            measured = f" [{check.value:.4g} vs limit {check.threshold:.4g}]"
        lines.append(f"  FAILED {where}{measured}: {check.details}")
        if check.first_offending:
            rows = ", ".join(o.described for o in check.first_offending)
            lines.append(f"         first offending rows: {rows}")
    if report.quarantine_key:
        lines.append(f"moved to {report.quarantine_key}")
    return "\n".join(lines) + "\n"
