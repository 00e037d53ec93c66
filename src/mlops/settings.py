"""Typed settings per function, read once from the environment.

The CDK construct that creates a function passes exactly the variables its settings class
declares (`env_names()`), and an infra test checks it, so a typo cannot reach a deployment.

Plain frozen dataclasses, no pydantic: the predict function reads its settings on its cold-start
path, where importing pydantic alone measured 0.10-0.12 s (2026-12-02, dev machine). Each field
names its variable with `env(...)`; its annotation (str, int or float) is the type the text is
read as; `ge` bounds it from below.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Self

from mlops.imports.drops import MAX_IMPORT_BYTES  # stdlib only

_CONVERTERS = {"str": str, "int": int, "float": float}


class SettingsError(ValueError):
    """The environment does not satisfy a settings class (the message names each variable)."""


def env(name: str, default: Any = MISSING, *, ge: float | None = None) -> Any:
    """A settings field read from the environment variable `name`; without a default it is required."""
    return field(default=default, metadata={"env": name, "ge": ge})


@dataclass(frozen=True, kw_only=True)
class _Settings:
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Raises SettingsError naming every missing or malformed variable."""
        environment = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems = []
        for item in fields(cls):
            name = item.metadata["env"]
            if name not in environment:
                if item.default is MISSING:
                    problems.append(f"{name} is required")
                continue
            try:
                values[item.name] = _read(item, environment[name])
            except ValueError as error:
                problems.append(f"{name}: {error}")
        if problems:
            raise SettingsError(f"{cls.__name__}: " + "; ".join(problems))
        return cls(**values)

    @classmethod
    def env_names(cls) -> list[str]:
        return [item.metadata["env"] for item in fields(cls)]

    @classmethod
    def env_defaults(cls) -> dict[str, str]:
        """Env name -> default value (as text) of the optional fields."""
        return {item.metadata["env"]: str(item.default) for item in fields(cls) if item.default is not MISSING}


def _read(item: Field[Any], text: str) -> Any:
    kind = item.type if isinstance(item.type, str) else item.type.__name__
    value = _CONVERTERS[kind](text)  # ValueError names the text it could not read
    low = item.metadata["ge"]
    if low is not None and value < low:
        raise ValueError(f"{value} is less than {low}")
    return value


@dataclass(frozen=True, kw_only=True)
class ValidateSettings(_Settings):
    data_bucket: str = env("DATA_BUCKET")
    event_bus_name: str = env("EVENT_BUS_NAME")
    idempotency_table: str = env("IDEMPOTENCY_TABLE")
    batch_rows: int = env("VALIDATION_BATCH_ROWS", 16_384, ge=1_000)
    # the dataset ledger's own table, and the registry (read only: the production model to compare against)
    ledger_table: str = env("LEDGER_TABLE")
    registry_table: str = env("REGISTRY_TABLE")
    artifact_bucket: str = env("ARTIFACT_BUCKET")
    # quarantines and holds are announced here (the monitoring alarm topic); empty: not announced
    alarm_topic_arn: str = env("ALARM_TOPIC_ARN", "")


@dataclass(frozen=True, kw_only=True)
class _TrafficWindowSettings(_Settings):
    """Training scores both versions on the newest labelled traffic (captures/ + labels/ of the artifact
    bucket) within TRAFFIC_WINDOW_HOURS (0: off), when at least TRAFFIC_MIN_ROWS rows are labelled; at
    most TRAFFIC_MAX_ROWS. One declaration for train_model and the managed engine's job."""

    traffic_window_hours: float = env("TRAFFIC_WINDOW_HOURS", 168.0, ge=0)
    traffic_min_rows: int = env("TRAFFIC_MIN_ROWS", 200, ge=1)
    traffic_max_rows: int = env("TRAFFIC_MAX_ROWS", 20_000, ge=1)


@dataclass(frozen=True, kw_only=True)
class TrainSettings(_TrafficWindowSettings):
    data_bucket: str = env("DATA_BUCKET")
    artifact_bucket: str = env("ARTIFACT_BUCKET")
    event_bus_name: str = env("EVENT_BUS_NAME")
    idempotency_table: str = env("IDEMPOTENCY_TABLE")
    ledger_table: str = env("LEDGER_TABLE")  # records the training outcome of a dataset
    # read only: the production version, scored on the candidate's holdout (fair champion/challenger)
    registry_table: str = env("REGISTRY_TABLE")
    # ... and both versions on the newest labelled traffic (_TrafficWindowSettings)
    # rejections and failures are announced here (the monitoring alarm topic); empty: not announced
    alarm_topic_arn: str = env("ALARM_TOPIC_ARN", "")
    # imported ONNX files (models/<model>/incoming/ of the data bucket) larger than this are refused unread
    max_import_bytes: int = env("MAX_IMPORT_BYTES", MAX_IMPORT_BYTES, ge=1)
    # the managed engine's state machine (a SageMaker training job): datasets past train_model's budget
    # train there; empty: no engine (they are refused as before)
    training_state_machine_arn: str = env("TRAINING_STATE_MACHINE_ARN", "")
    # datasets of at least this many rows go to the engine whatever their plan (0: by plan only; local
    # mode's demo lowers it to show the path)
    managed_training_min_rows: int = env("MANAGED_TRAINING_MIN_ROWS", 0, ge=0)


@dataclass(frozen=True, kw_only=True)
class TrainJobSettings(_TrafficWindowSettings):
    """The managed engine's job (functions/train_model/job.py): train_model's training, outside Lambda.

    The state machine sets the job's variables: these, and which dataset (MODEL_NAME, DATASET_ID)."""

    data_bucket: str = env("DATA_BUCKET")
    artifact_bucket: str = env("ARTIFACT_BUCKET")
    event_bus_name: str = env("EVENT_BUS_NAME")
    ledger_table: str = env("LEDGER_TABLE")
    registry_table: str = env("REGISTRY_TABLE")
    alarm_topic_arn: str = env("ALARM_TOPIC_ARN", "")
    model_name: str = env("MODEL_NAME")
    dataset_id: str = env("DATASET_ID")
    instance_type: str = env("ENGINE_INSTANCE_TYPE")
    job_name: str = env("TRAINING_JOB_NAME")  # SageMaker sets it in every training container
    # the metrics' `service` dimension: train_model's, so dashboards and alarms count both paths alike
    service_name: str = env("METRICS_SERVICE", "train-model")


@dataclass(frozen=True, kw_only=True)
class RetrainSettings(_Settings):
    """retrain_model: a drift/quality alarm, a contract's schedule or an approver -> gates -> a training
    set under datasets/ of the data bucket (mlops.retraining)."""

    data_bucket: str = env("DATA_BUCKET")  # contracts/ read, datasets/<model>/retrain-* written
    artifact_bucket: str = env("ARTIFACT_BUCKET")  # captures/ and labels/ read
    registry_table: str = env("REGISTRY_TABLE")  # production version; retraining audit events
    ledger_table: str = env("LEDGER_TABLE")  # the last accepted dataset (read only)
    # the model alarms' names start with this (`<stack>-model-`); `<model>-drift|quality` follows
    alarm_name_prefix: str = env("ALARM_NAME_PREFIX")


@dataclass(frozen=True, kw_only=True)
class TrainingFailureSettings(_Settings):
    """record_training_failure: train_model's on-failure destination -> ledger training_failed."""

    ledger_table: str = env("LEDGER_TABLE")  # the dataset ledger
    event_bus_name: str = env("EVENT_BUS_NAME")
    alarm_topic_arn: str = env("ALARM_TOPIC_ARN", "")


@dataclass(frozen=True, kw_only=True)
class MisplacedUploadSettings(_Settings):
    """report_misplaced_upload: a data file outside datasets/ -> a notice under misplaced/."""

    data_bucket: str = env("DATA_BUCKET")


@dataclass(frozen=True, kw_only=True)
class RegisterSettings(_Settings):
    registry_table: str = env("REGISTRY_TABLE")
    ledger_table: str = env("LEDGER_TABLE")  # records the registration outcome of a dataset
    artifact_bucket: str = env("ARTIFACT_BUCKET")
    event_bus_name: str = env("EVENT_BUS_NAME")
    idempotency_table: str = env("IDEMPOTENCY_TABLE")
    # SNS topic told about production changes; empty: nobody is notified
    alarm_topic_arn: str = env("ALARM_TOPIC_ARN", "")


@dataclass(frozen=True, kw_only=True)
class CanarySettings(_Settings):
    """control_canary: a canary alarm entering ALARM rolls the canary back; a schedule promotes a
    canary that baked without alarms (mlops.registry.canary_control)."""

    registry_table: str = env("REGISTRY_TABLE")  # the canary on the model item; audit events, chained
    artifact_bucket: str = env("ARTIFACT_BUCKET")  # the promotion gate reads the artifact back
    event_bus_name: str = env("EVENT_BUS_NAME")  # ModelPromoted, as any promotion announces
    alarm_topic_arn: str = env("ALARM_TOPIC_ARN", "")  # told about production changes
    # the model alarms' names start with this (`<stack>-model-`); `<model>-canary-<signal>` follows
    alarm_name_prefix: str = env("ALARM_NAME_PREFIX")


@dataclass(frozen=True, kw_only=True)
class ShadowSettings(_Settings):
    """score_shadow: production's captures scored by each model's shadow version (mlops.shadow)."""

    registry_table: str = env("REGISTRY_TABLE")  # models, their shadow and production versions (read only)
    artifact_bucket: str = env("ARTIFACT_BUCKET")  # captures/ and models/ read; monitoring/<model>/shadow-state.json
    max_objects_per_run: int = env("SHADOW_MAX_OBJECTS_PER_RUN", 200, ge=1)


@dataclass(frozen=True, kw_only=True)
class PredictSettings(_Settings):
    registry_table: str = env("REGISTRY_TABLE")
    artifact_bucket: str = env("ARTIFACT_BUCKET")
    # how long a warm container trusts its cached production pointer (rollback pickup time)
    model_refresh_seconds: float = env("MODEL_REFRESH_SECONDS", 5.0, ge=0)
    # how long a cached version is served while the registry cannot confirm it (then 503)
    model_stale_seconds: float = env("MODEL_STALE_SECONDS", 300.0, ge=0)
    # a production version that fails to load is retried after this delay, doubling up to the maximum
    model_load_retry_seconds: float = env("MODEL_LOAD_RETRY_SECONDS", 5.0, ge=0.001)
    model_load_retry_max_seconds: float = env("MODEL_LOAD_RETRY_MAX_SECONDS", 300.0, ge=0.001)
    capture_max_records: int = env("CAPTURE_MAX_RECORDS", 500, ge=1)
    capture_max_age_seconds: float = env("CAPTURE_MAX_AGE_SECONDS", 60.0, ge=0)
    max_records_per_request: int = env("MAX_RECORDS_PER_REQUEST", 1_000, ge=1)
    # while a canary runs: how often each variant's requests, errors, latency and output mean are
    # published (several datapoints per one-minute alarm period; nothing is published without a canary)
    variant_metrics_seconds: float = env("VARIANT_METRICS_SECONDS", 10.0, ge=0)


@dataclass(frozen=True, kw_only=True)
class FeedbackSettings(_Settings):
    """record_feedback: labels in through the API, label objects out under labels/ (mlops.feedback)."""

    registry_table: str = env("REGISTRY_TABLE")  # the production version's contract (read only)
    artifact_bucket: str = env("ARTIFACT_BUCKET")  # label objects under labels/
    # how long a warm container trusts a model's label rules (a new contract applies within it)
    contract_cache_seconds: float = env("FEEDBACK_CONTRACT_CACHE_SECONDS", 60.0, ge=0)


@dataclass(frozen=True, kw_only=True)
class FeedbackFileSettings(_Settings):
    """ingest_feedback: label files under feedback/ of the data bucket (mlops.feedback_files)."""

    data_bucket: str = env("DATA_BUCKET")  # the files, their reports, quarantine/_feedback/
    artifact_bucket: str = env("ARTIFACT_BUCKET")  # label objects under labels/
    registry_table: str = env("REGISTRY_TABLE")  # the production version's contract (read only)
    idempotency_table: str = env("IDEMPOTENCY_TABLE")
    batch_rows: int = env("FEEDBACK_BATCH_ROWS", 16_384, ge=1_000)


@dataclass(frozen=True, kw_only=True)
class BatchSettings(_Settings):
    """score_batch: files under batch/<model>/ of the data bucket scored into predictions/ (mlops.batch)."""

    data_bucket: str = env("DATA_BUCKET")  # batch/ read; predictions/ written
    registry_table: str = env("REGISTRY_TABLE")  # the production (or pinned) version (read only)
    batch_ledger_table: str = env("BATCH_LEDGER_TABLE")  # jobs and their completed parts
    event_bus_name: str = env("EVENT_BUS_NAME")  # BatchPartRequested (to itself), BatchScored, BatchRefused
    # input bytes per part (one invocation). 64 MiB of a narrow CSV is ~1.7M rows: ~40 s at the
    # ~44k rows/s scripts/bench_batch.py measured, and its predictions (~90 bytes a row) fit the
    # function's 512 MB of /tmp, where a part's outputs are written before upload
    part_bytes: int = env("BATCH_PART_BYTES", 64 * 1024 * 1024, ge=1024)
    batch_rows: int = env("BATCH_ROWS", 50_000, ge=100)  # rows validated and run per model call


@dataclass(frozen=True, kw_only=True)
class ModelsApiSettings(_Settings):
    registry_table: str = env("REGISTRY_TABLE")
    ledger_table: str = env("LEDGER_TABLE")  # lists datasets by state, records reviews
    data_bucket: str = env("DATA_BUCKET")  # a rejected held dataset moves to quarantine/ here
    artifact_bucket: str = env("ARTIFACT_BUCKET")  # drift results under monitoring/, baselines to compare
    event_bus_name: str = env("EVENT_BUS_NAME")
    alarm_topic_arn: str = env("ALARM_TOPIC_ARN", "")
    # comma-separated shell patterns of IAM principal ARNs per role (mlops.registry.access)
    admin_principals: str = env("ADMIN_PRINCIPALS", "")
    approver_principals: str = env("APPROVER_PRINCIPALS", "")
    reader_principals: str = env("READER_PRINCIPALS", "")
    # the usage plan issued client API keys join, by name (mlops.client_keys); empty: /clients answers 503
    client_usage_plan_name: str = env("CLIENT_USAGE_PLAN_NAME", "")


@dataclass(frozen=True, kw_only=True)
class DriftSettings(_Settings):
    registry_table: str = env("REGISTRY_TABLE")
    artifact_bucket: str = env("ARTIFACT_BUCKET")
    # captures flushed more recently wait for the next run (the one settle time; mlops.drift.monitor):
    # one still landing then is read from the look-back below the marker, so this can stay short
    settle_seconds: float = env("DRIFT_SETTLE_SECONDS", 10.0, ge=0)
    # a window this large is judged even while a backlog remains
    max_window_rows: int = env("DRIFT_MAX_WINDOW_ROWS", 10_000_000, ge=1)
    # drift and data-quality notices (mlops.drift.notice) go here; empty: none are sent
    notice_topic_arn: str = env("DRIFT_NOTICE_TOPIC_ARN", "")
    # the models API's base URL (https://<api>/<stage>): notices link the report page under it
    report_base_url: str = env("REPORT_BASE_URL", "")


@dataclass(frozen=True, kw_only=True)
class QualitySettings(_Settings):
    """evaluate_quality: labels joined to captures (mlops.quality.join.JoinLimits reads these)."""

    registry_table: str = env("REGISTRY_TABLE")
    artifact_bucket: str = env("ARTIFACT_BUCKET")
    # a label object stamped this long ago has landed (its batch id starts with its arrival time)
    settle_seconds: float = env("QUALITY_SETTLE_SECONDS", 120.0, ge=0)
    # captures of a minute's predictions are flushed within this long after the minute ends
    # (predict flushes at CAPTURE_MAX_AGE_SECONDS, 60 s, or on shutdown; a quiet container later)
    capture_lag_seconds: float = env("QUALITY_CAPTURE_LAG_SECONDS", 600.0, ge=0)
    # ready label keys remembered this long, so an object that lands late is still found
    lookback_seconds: float = env("QUALITY_LOOKBACK_SECONDS", 900.0, ge=0)
