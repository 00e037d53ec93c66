"""Typed settings per function, read once from the environment.

The CDK construct that creates a function passes exactly the variables its settings class
declares (`env_names()`), and an infra test checks it, so a typo cannot reach a deployment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        return cls.model_validate({name: env[name] for name in cls.env_names() if name in env})

    @classmethod
    def env_names(cls) -> list[str]:
        return [field.alias or name for name, field in cls.model_fields.items()]


class ValidateSettings(_Settings):
    data_bucket: str = Field(alias="DATA_BUCKET")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    batch_rows: Annotated[int, Field(ge=1_000)] = Field(default=16_384, alias="VALIDATION_BATCH_ROWS")
    # the dataset ledger's own table, and the registry (read only: the production model to compare against)
    ledger_table: str = Field(alias="LEDGER_TABLE")
    registry_table: str = Field(alias="REGISTRY_TABLE")
    artifact_bucket: str = Field(alias="ARTIFACT_BUCKET")
    # quarantines and holds are announced here (the monitoring alarm topic); empty: not announced
    alarm_topic_arn: str = Field(default="", alias="ALARM_TOPIC_ARN")


class TrainSettings(_Settings):
    data_bucket: str = Field(alias="DATA_BUCKET")
    artifact_bucket: str = Field(alias="ARTIFACT_BUCKET")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    ledger_table: str = Field(alias="LEDGER_TABLE")  # records the training outcome of a dataset
    # rejections and failures are announced here (the monitoring alarm topic); empty: not announced
    alarm_topic_arn: str = Field(default="", alias="ALARM_TOPIC_ARN")


class TrainingFailureSettings(_Settings):
    """record_training_failure: train_model's on-failure destination -> ledger training_failed."""

    ledger_table: str = Field(alias="LEDGER_TABLE")  # the dataset ledger
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    alarm_topic_arn: str = Field(default="", alias="ALARM_TOPIC_ARN")


class RegisterSettings(_Settings):
    registry_table: str = Field(alias="REGISTRY_TABLE")
    ledger_table: str = Field(alias="LEDGER_TABLE")  # records the registration outcome of a dataset
    artifact_bucket: str = Field(alias="ARTIFACT_BUCKET")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    # SNS topic told about production changes; empty: nobody is notified
    alarm_topic_arn: str = Field(default="", alias="ALARM_TOPIC_ARN")


class PredictSettings(_Settings):
    registry_table: str = Field(alias="REGISTRY_TABLE")
    artifact_bucket: str = Field(alias="ARTIFACT_BUCKET")
    # how long a warm container trusts its cached production pointer (rollback pickup time)
    model_refresh_seconds: Annotated[float, Field(ge=0)] = Field(default=5.0, alias="MODEL_REFRESH_SECONDS")
    # how long a cached version is served while the registry cannot confirm it (then 503)
    model_stale_seconds: Annotated[float, Field(ge=0)] = Field(default=300.0, alias="MODEL_STALE_SECONDS")
    # a production version that fails to load is retried after this delay, doubling up to the maximum
    model_load_retry_seconds: Annotated[float, Field(gt=0)] = Field(default=5.0, alias="MODEL_LOAD_RETRY_SECONDS")
    model_load_retry_max_seconds: Annotated[float, Field(gt=0)] = Field(
        default=300.0, alias="MODEL_LOAD_RETRY_MAX_SECONDS"
    )
    capture_max_records: Annotated[int, Field(ge=1)] = Field(default=500, alias="CAPTURE_MAX_RECORDS")
    capture_max_age_seconds: Annotated[float, Field(ge=0)] = Field(default=60.0, alias="CAPTURE_MAX_AGE_SECONDS")
    max_records_per_request: Annotated[int, Field(ge=1)] = Field(default=1_000, alias="MAX_RECORDS_PER_REQUEST")


class ModelsApiSettings(_Settings):
    registry_table: str = Field(alias="REGISTRY_TABLE")
    ledger_table: str = Field(alias="LEDGER_TABLE")  # lists datasets by state, records reviews
    data_bucket: str = Field(alias="DATA_BUCKET")  # a rejected held dataset moves to quarantine/ here
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    alarm_topic_arn: str = Field(default="", alias="ALARM_TOPIC_ARN")
    # comma-separated shell patterns of IAM principal ARNs per role (mlops.registry.access)
    admin_principals: str = Field(default="", alias="ADMIN_PRINCIPALS")
    approver_principals: str = Field(default="", alias="APPROVER_PRINCIPALS")
    reader_principals: str = Field(default="", alias="READER_PRINCIPALS")


class DriftSettings(_Settings):
    registry_table: str = Field(alias="REGISTRY_TABLE")
    artifact_bucket: str = Field(alias="ARTIFACT_BUCKET")
    # captures younger than this wait for the next run: a batch flushed a moment earlier by
    # another container may still be landing, and the window only moves forward
    settle_seconds: Annotated[float, Field(ge=0)] = Field(default=10.0, alias="DRIFT_SETTLE_SECONDS")
