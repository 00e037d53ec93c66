"""The events the stages exchange on the project's EventBridge bus, as typed models.

The `source` and detail types are the contract between stages: the CDK rules match on them and
the handlers parse the detail with these models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mlops.imports.drops import ImportDrop

EVENT_SOURCE = "mlops"


class DetailType:
    DATASET_VALIDATED = "DatasetValidated"
    DATASET_QUARANTINED = "DatasetQuarantined"
    DATASET_HELD = "DatasetHeld"
    MODEL_TRAINED = "ModelTrained"
    TRAINING_REJECTED = "TrainingRejected"
    TRAINING_FAILED = "TrainingFailed"
    MODEL_REGISTERED = "ModelRegistered"
    MODEL_PROMOTED = "ModelPromoted"
    MODEL_ROLLED_BACK = "ModelRolledBack"
    MODEL_APPROVED = "ModelApproved"
    MODEL_REJECTED = "ModelRejected"
    MODEL_ARCHIVED = "ModelArchived"
    MODEL_ALIAS_MOVED = "ModelAliasMoved"
    MODEL_IMPORT_REJECTED = "ModelImportRejected"
    BATCH_PART_REQUESTED = "BatchPartRequested"  # score_batch fans a large file out to itself
    BATCH_SCORED = "BatchScored"
    BATCH_REFUSED = "BatchRefused"


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DatasetRef(_Detail):
    """One exact object version of a dataset: what was validated is what gets trained on."""

    bucket: str
    key: str
    version_id: str | None = None
    sha256: str
    size_bytes: int
    rows: int
    # provenance, carried into the registry's lineage of a model trained on it
    uploader: str | None = None  # the S3 event's principal
    uploaded_at: str | None = None  # the S3 event's time (ISO 8601)
    dataset_id: str | None = None  # the validation ledger's id (reports/<model>/<dataset_id>.json)


class DatasetValidated(_Detail):
    model_name: str
    dataset: DatasetRef
    contract_digest: str
    report_key: str


class DatasetQuarantined(_Detail):
    model_name: str
    source_key: str
    quarantine_key: str
    report_key: str
    reasons: list[str]


class DatasetHeld(_Detail):
    """Schema sound but a statistical check failed: the dataset waits for a reviewer."""

    model_name: str
    dataset_id: str
    dataset: DatasetRef
    report_key: str
    reasons: list[str]


class SameDataScore(_Detail):
    """The candidate and the production version (the champion) scored on the same rows.

    `data` names the rows: "candidate_holdout" (the candidate's own holdout) or "recent_traffic"
    (recent labelled predictions). `champion_value` is None when the champion could not be scored,
    and `unavailable` says why (the policy then falls back to each version's own holdout).
    """

    data: str
    metric_name: str
    rows: int = 0
    candidate_value: float | None = None
    champion_version: int | None = None
    champion_sha256: str | None = None
    champion_value: float | None = None
    champion_metrics: dict[str, float] = Field(default_factory=dict)
    unavailable: str | None = None


class ImportSource(_Detail):
    """Where an imported (externally built) graph came from, and who brought it."""

    bucket: str
    key: str
    version_id: str | None = None
    sha256: str | None = None  # of the file as dropped (None: never read, e.g. too large)
    size_bytes: int
    importer: str  # who asked: the approver the models API signed into the upload, else the uploader
    uploaded_by: str | None = None  # the S3 event's principal
    uploaded_at: str | None = None
    reason: str = ""  # the importer's, from the models API request

    @classmethod
    def unread(cls, drop: ImportDrop) -> ImportSource:
        """What a drop says of itself before its object is read: no digest or size yet, and the
        uploader as the importer until the models API's record of who asked is found."""
        return cls(
            bucket=drop.bucket,
            key=drop.key,
            version_id=drop.version_id,
            size_bytes=0,
            importer=drop.uploaded_by or "unknown",
            uploaded_by=drop.uploaded_by,
            uploaded_at=drop.uploaded_at,
        )


class TrainedOn(_Detail):
    """Where and how a model was trained: the Lambda function, or the managed engine it was handed to."""

    engine: Literal["lambda", "sagemaker"]
    compute: str  # "3008 MB" (Lambda) or the instance type ("ml.m5.4xlarge")
    memory_mb: int
    job_id: str  # the Lambda request id, or the training job's name
    seconds: float = 0.0  # wall time of training, loading the dataset included


class ModelTrained(_Detail):
    model_name: str
    artifact_bucket: str
    artifact_key: str
    artifact_sha256: str
    artifact_bytes: int
    baseline_key: str
    metric_name: str
    metrics: dict[str, float]
    dataset: DatasetRef
    contract: dict[str, Any]
    contract_digest: str
    seed: int
    params: dict[str, Any]
    library_versions: dict[str, str]
    training_rows: int
    holdout_rows: int
    onnx_max_abs_diff: float
    # the champion scored on the candidate's data (empty in events from before it existed, or
    # when the model had no production version at training time)
    same_data: list[SameDataScore] = Field(default_factory=list)
    origin: Literal["trained", "imported"] = "trained"  # imported: built elsewhere, scored here
    imported: ImportSource | None = None  # set when origin is "imported"
    trained_on: TrainedOn | None = None  # absent in events from before issue 11 and in imports


class ModelImportRejected(_Detail):
    """An imported graph failed its checks or could not be scored; nothing was registered."""

    model_name: str
    source: ImportSource
    report_key: str | None = None
    problems: list[str]


class TrainingRejected(_Detail):
    model_name: str
    dataset: DatasetRef
    reason: str


class TrainingFailed(_Detail):
    """Training crashed, ran out of memory or time, or its event waited too long (see `reason`)."""

    model_name: str
    dataset: DatasetRef
    reason: str


class ModelRegistered(_Detail):
    model_name: str
    version: int
    status: str
    artifact_bucket: str
    artifact_key: str
    artifact_sha256: str
    metric_name: str
    metrics: dict[str, float]
    promoted: bool
    decision: str


class ModelPromoted(_Detail):
    model_name: str
    version: int
    previous_version: int | None = None
    artifact_bucket: str
    artifact_key: str
    artifact_sha256: str
    metric_name: str
    metrics: dict[str, float]
    reason: str
    actor: str = ""


class ModelRolledBack(_Detail):
    model_name: str
    from_version: int
    to_version: int
    artifact_bucket: str
    artifact_key: str
    artifact_sha256: str
    actor: str
    reason: str


class ModelStatusChanged(_Detail):
    """Detail of `ModelApproved`, `ModelRejected` and `ModelArchived`."""

    model_name: str
    version: int
    from_status: str
    to_status: str
    actor: str
    reason: str


class ModelAliasMoved(_Detail):
    model_name: str
    alias: str
    from_version: int | None = None
    to_version: int
    actor: str
    reason: str


class BatchPartRequested(_Detail):
    """One part of a batch job for score_batch to score (the job itself is in its ledger)."""

    job_id: str
    part: dict[str, Any]  # mlops.batch.plan.Part.as_dict()


class BatchScored(_Detail):
    """Every part of a batch file is scored; the summary is at `summary_key` (data bucket)."""

    model_name: str
    version: int
    artifact_sha256: str
    job_id: str
    source_key: str
    source_version_id: str | None = None
    summary_key: str
    rows: int
    scored: int
    rejected: int
    parts: int
    duration_seconds: float


class BatchRefused(_Detail):
    """A batch file could not be scored at all (its key, model, version or format); nothing was written
    but the summary naming the problem."""

    model_name: str
    source_key: str
    source_version_id: str | None = None
    summary_key: str
    reason: str
