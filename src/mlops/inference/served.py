"""What predict needs of a registered version, as plain dataclasses (no pydantic).

The registry stores each version with the contract it was trained on, validated at registration
(`mlops.contract.parse_contract`). Predict reads only a few of its fields: importing pydantic and
the full records (`ModelVersion`, `Contract`) on its cold-start path measured 0.34-0.37 s on the
dev machine (pydantic 0.10 s, the model classes 0.24 s), so it decodes this light view instead, with the same feature rules
(`mlops.contract_rules.FeatureRule`) every other stage reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mlops.contract_rules import DEFAULT_CAPTURE_SAMPLE_RATE, FeatureRule, ProblemType, label_text
from mlops.errors import ConflictError, IntegrityError

# statuses a version never serves from again (mlops.registry.transitions: rejected is final, archived
# returns only by rollback); the registry's VersionStatus values, spelled here to keep pydantic out
UNSERVABLE_STATUSES = frozenset({"rejected", "archived"})


def require_servable(name: str, version: int, status: str) -> None:
    """Raise ConflictError (409) when a request pins a version that no longer serves."""
    if status in UNSERVABLE_STATUSES:
        raise ConflictError(f"model {name!r} v{version} is {status}; it no longer serves")


class ArtifactRef(Protocol):
    @property
    def bucket(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...


class LoadableVersion(Protocol):
    """What loading a model reads of a version: a `ServedVersion`, or the registry's `ModelVersion`
    (the dataset gate's label-flip check loads one)."""

    @property
    def model_name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def artifact(self) -> ArtifactRef: ...
    @property
    def contract(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ServedArtifact:
    bucket: str
    key: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class ServedVersion:
    """A registered version as predict loads it: where its artifact is and its contract document.
    The production version also carries the model's canary, when one is set."""

    model_name: str
    version: int
    artifact: ServedArtifact
    contract: dict[str, Any]
    canary: ServedCanary | None = None


@dataclass(frozen=True)
class ServedCanary:
    """A challenger answering `share` of the production traffic (set through the models API)."""

    version: ServedVersion
    share: float


@dataclass(frozen=True)
class ServingContract:
    """The parts of a (registered, so already validated) contract that serving reads."""

    name: str
    problem_type: ProblemType
    feature_rules: tuple[FeatureRule, ...]
    classes: tuple[str, ...]  # classification: the declared target classes as text (`label_text`)
    capture_sample_rate: float
    # classification with integer or boolean classes: label text -> the declared value predict answers
    label_values: dict[str, Any] | None = None

    @property
    def features(self) -> tuple[FeatureRule, ...]:
        """The feature rules under the name `Contract.features` has (each has `name` and `type`)."""
        return self.feature_rules

    @property
    def feature_names(self) -> list[str]:
        return [rule.name for rule in self.feature_rules]

    @property
    def classification(self) -> bool:
        return self.problem_type is ProblemType.CLASSIFICATION

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, source: str = "contract") -> ServingContract:
        """Raises IntegrityError when the stored document lacks what serving needs (the registry
        only stores validated contracts, so that means the item was altered)."""
        try:
            target = document["target"]
            return cls(
                name=str(document["name"]),
                problem_type=ProblemType(document["problem_type"]),
                feature_rules=tuple(FeatureRule.from_document(feature) for feature in document["features"]),
                classes=tuple(label_text(c) for c in target.get("classes") or ()),
                label_values=_label_values(target.get("classes") or ()),
                capture_sample_rate=float(
                    (document.get("monitoring") or {}).get("capture_sample_rate", DEFAULT_CAPTURE_SAMPLE_RATE)
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise IntegrityError(f"{source} is not a valid contract ({type(error).__name__}: {error})") from None


def _label_values(classes: list[Any]) -> dict[str, Any] | None:
    """Text -> declared label, when the declared labels are not text (predict answers `1`, `true`)."""
    if all(type(c) is str for c in classes):
        return None
    return {label_text(c): c for c in classes}
