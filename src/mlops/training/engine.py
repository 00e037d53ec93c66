"""Training past Lambda's budget: the dataset is handed to the managed engine, a SageMaker training
job that runs train_model's own image and training code (`functions/train_model/job.py`), started
and watched by a Step Functions state machine (infra/constructs/managed_training.py).

Why SageMaker and not AWS Batch on Fargate: see docs (report of issue 11): no VPC to run, per-second
billing without a minimum, an optimized `.sync` integration, a stopping condition for the timeout.

Light on purpose (pydantic only): the hand-off is decided before any training package is needed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Protocol

from mlops.events import DatasetValidated
from mlops.training.capacity import MANAGED_ENGINE_INSTANCE_TYPE
from mlops.training.outcome import dataset_id_of

ENGINE = "sagemaker"
# SageMaker: training job names match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; Step Functions: 80 characters
_NAME_PREFIX = "train-"
_MODEL_CHARS = 24
_DIGEST_CHARS = 24
# SageMaker caps an environment value at 512 characters; the job reads the rest from the ledger
MAX_ENVIRONMENT_VALUE = 512


@dataclass(frozen=True)
class Started:
    execution_id: str
    new: bool  # False: an execution of this name already existed (a duplicate event): nothing started


class TrainingStarter(Protocol):
    def start(self, name: str, document: dict[str, Any]) -> Started:
        """Start the engine's run called `name` with `document` as its input, at most once per name."""
        ...


@dataclass(frozen=True)
class ManagedEngine:
    """Where datasets past Lambda's budget train."""

    starter: TrainingStarter
    instance_type: str = MANAGED_ENGINE_INSTANCE_TYPE  # its memory: capacity.MANAGED_ENGINE_MEMORY_MB
    # datasets of at least this many rows go to the engine whatever the memory plan says (0: by plan only);
    # local mode lowers it so a small "big" dataset shows the path
    min_rows: int = 0


@dataclass(frozen=True)
class HandOff:
    engine: str
    job_name: str
    execution_id: str
    new: bool
    reason: str  # why the dataset does not train in Lambda


def job_name(event: DatasetValidated) -> str:
    """One name per dataset version and contract: the state machine execution's and the training job's.
    A duplicate DatasetValidated event computes the same name, so it starts nothing new."""
    ref = event.dataset
    identity = "\n".join((ref.bucket, ref.key, ref.version_id or "null", ref.sha256, event.contract_digest))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:_DIGEST_CHARS]
    model = re.sub(r"[^a-zA-Z0-9]+", "-", event.model_name)[:_MODEL_CHARS].strip("-") or "model"
    return f"{_NAME_PREFIX}{model}-{digest}"


def execution_input(event: DatasetValidated, name: str) -> dict[str, Any]:
    """The state machine's input: the event (the failure path reports on it) and what the job reads."""
    return {
        "detail": event.model_dump(mode="json"),
        "job": {"name": name, "model_name": event.model_name, "dataset_id": dataset_id_of(event.dataset)},
    }


def hand_off_problem(event: DatasetValidated) -> str | None:
    """Why this dataset cannot be handed to the engine (None when it can)."""
    too_long = [
        label
        for label, value in (("model name", event.model_name), ("dataset id", dataset_id_of(event.dataset)))
        if len(value) > MAX_ENVIRONMENT_VALUE
    ]
    if too_long:
        return f"its {' and '.join(too_long)} exceed the {MAX_ENVIRONMENT_VALUE} characters a training job's environment holds"
    return None


def why_managed(rows: int, over_lambda: str | None, engine: ManagedEngine) -> str | None:
    """Why a dataset trains on the managed engine rather than in Lambda; None when Lambda takes it."""
    if over_lambda is not None:
        return over_lambda
    if engine.min_rows and rows >= engine.min_rows:
        return f"{rows:,} rows reach the managed-training threshold of {engine.min_rows:,} rows"
    return None
