"""What a new dataset's statistics are compared with.

1. The production version, when the model has one: its baseline profile (features, stored beside
   the artifact at training), the label distribution of the dataset it was trained on (from that
   dataset's report, found through the registry lineage and the ledger), and the model itself for
   the label-flip check.
2. Otherwise the last accepted dataset of the model (its report carries its profile).
3. Otherwise nothing: the statistical checks are reported as skipped (the first dataset).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mlops.errors import NotFoundError
from mlops.ports import ObjectStore
from mlops.profile import BaselineProfile
from mlops.registry.records import ModelVersion
from mlops.validation.decisions import dataset_id
from mlops.validation.labelflip import ProductionModel, onnx_production_model
from mlops.validation.ledger import DatasetLedger, LedgerEntry
from mlops.validation.report import DatasetProfile, ValidationReport

logger = logging.getLogger(__name__)


class ProductionVersions(Protocol):
    def production(self, name: str) -> ModelVersion | None: ...


@dataclass(frozen=True)
class Reference:
    description: str
    profile: DatasetProfile | None
    model: ProductionModel | None = None


class ReferenceLoader:
    """Finds the reference of a model (see the module docstring). Reads only; raises what the
    stores raise except a missing object, which only narrows the reference."""

    def __init__(
        self,
        *,
        registry: ProductionVersions | None,
        artifacts: ObjectStore | None,
        ledger: DatasetLedger | None,
        reports: ObjectStore,
        data_bucket: str,
        model_loader: Callable[[ModelVersion, ObjectStore], ProductionModel | None] = onnx_production_model,
    ) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.ledger = ledger
        self.reports = reports
        self.data_bucket = data_bucket
        self.model_loader = model_loader

    def load(self, model_name: str) -> Reference | None:
        production = self._production(model_name)
        if production is not None and self.artifacts is not None:
            return self._from_production(production, self.artifacts)
        if self.ledger is None:
            return None
        last = self.ledger.last_accepted(model_name)
        profile = self._profile_of(last) if last is not None else None
        if last is None or profile is None:
            return None
        return Reference(f"the last accepted dataset {last.dataset_id} ({last.key})", profile)

    def _production(self, model_name: str) -> ModelVersion | None:
        if self.registry is None:
            return None
        try:
            return self.registry.production(model_name)
        except NotFoundError:
            return None

    def _from_production(self, version: ModelVersion, artifacts: ObjectStore) -> Reference:
        description = f"production {version.model_name} v{version.version}"
        try:
            baseline = BaselineProfile.model_validate_json(
                artifacts.get_bytes(version.artifact.bucket, version.artifact.baseline_key)
            )
        except NotFoundError:
            logger.warning("baseline %s of %s is missing", version.artifact.baseline_key, description)
            baseline = None
        trained_on = self._training_dataset(version)
        trained_profile = self._profile_of(trained_on) if trained_on is not None else None
        if baseline is not None:
            features = dict(baseline.features)
            rows = baseline.rows
        elif trained_profile is not None:
            features, rows = dict(trained_profile.features), trained_profile.rows
        else:
            features, rows = {}, 0
        label = trained_profile.label if trained_profile is not None else None
        profile = DatasetProfile(rows=rows, features=features, label=label) if features or label else None
        source = f" (baseline {version.artifact.baseline_key}" + (
            f", labels of dataset {trained_on.dataset_id})" if trained_on is not None else ")"
        )
        return Reference(description + source, profile, self.model_loader(version, artifacts))

    def _training_dataset(self, version: ModelVersion) -> LedgerEntry | None:
        dataset = version.lineage.get("dataset") or {}
        if self.ledger is None or not dataset.get("key"):
            return None
        the_id = dataset.get("dataset_id") or dataset_id(dataset["key"], dataset.get("version_id"))
        return self.ledger.get(version.model_name, the_id)

    def _profile_of(self, entry: LedgerEntry) -> DatasetProfile | None:
        try:
            report = ValidationReport.model_validate_json(self.reports.get_bytes(self.data_bucket, entry.report_key))
        except NotFoundError:
            return None
        return report.profile
