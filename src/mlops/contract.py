"""The model contract: what a model is, what data it accepts, how it is trained and judged.

A contract is a small JSON (or YAML) document validated by the pydantic models below. Every
stage reads the same contract: validation checks datasets against it, training builds the
pipeline it declares, inference checks each request record against it, drift monitoring uses
its thresholds.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mlops.contract_rules import (
    COLUMN_NAME_PATTERN,
    DEFAULT_CAPTURE_SAMPLE_RATE,
    DEFAULT_FEEDBACK_HORIZON_HOURS,
    MAX_COLUMN_NAME_LENGTH,
    MODEL_NAME_PATTERN,
    FeatureRule,
    FeatureType,
    ProblemType,
    column_name_problem,
    duplicate_input_names,
    is_valid_model_name,
    label_text,
)
from mlops.errors import ContractError

__all__ = [
    "COLUMN_NAME_PATTERN",
    "MODEL_NAME_PATTERN",
    "Contract",
    "Feature",
    "FeatureRule",
    "FeatureType",
    "ProblemType",
    "contract_json_schema",
    "is_valid_model_name",
    "parse_contract",
]


# Estimators we know how to train, convert to ONNX and serve; the params each accepts.
SUPPORTED_ESTIMATORS: dict[str, tuple[ProblemType, frozenset[str]]] = {
    "logistic_regression": (ProblemType.CLASSIFICATION, frozenset({"C", "max_iter", "class_weight", "tol"})),
    "random_forest_classifier": (
        ProblemType.CLASSIFICATION,
        frozenset({"n_estimators", "max_depth", "min_samples_leaf", "max_features", "class_weight"}),
    ),
    "gradient_boosting_classifier": (
        ProblemType.CLASSIFICATION,
        frozenset({"n_estimators", "max_depth", "learning_rate", "subsample", "min_samples_leaf"}),
    ),
    "linear_regression": (ProblemType.REGRESSION, frozenset({"fit_intercept"})),
    "ridge": (ProblemType.REGRESSION, frozenset({"alpha", "fit_intercept"})),
    "random_forest_regressor": (
        ProblemType.REGRESSION,
        frozenset({"n_estimators", "max_depth", "min_samples_leaf", "max_features"}),
    ),
    "gradient_boosting_regressor": (
        ProblemType.REGRESSION,
        frozenset({"n_estimators", "max_depth", "learning_rate", "subsample", "min_samples_leaf"}),
    ),
}

# metric name -> (problem type, higher is better). The threshold's name says the direction:
# `at_least` for a higher-is-better score, `at_most` for a lower-is-better error.
SUPPORTED_METRICS: dict[str, tuple[ProblemType, bool]] = {
    "accuracy": (ProblemType.CLASSIFICATION, True),
    "f1_macro": (ProblemType.CLASSIFICATION, True),
    "roc_auc": (ProblemType.CLASSIFICATION, True),
    "log_loss": (ProblemType.CLASSIFICATION, False),
    "r2": (ProblemType.REGRESSION, True),
    "rmse": (ProblemType.REGRESSION, False),
    "mae": (ProblemType.REGRESSION, False),
}

ParamValue = int | float | str | bool | None

EstimatorName = StrEnum("EstimatorName", {name: name for name in SUPPORTED_ESTIMATORS})  # type: ignore[misc]
MetricName = StrEnum("MetricName", {name: name for name in SUPPORTED_METRICS})  # type: ignore[misc]


def metric_direction(name: str) -> str:
    """ "higher is better" or "lower is better"."""
    return "higher is better" if SUPPORTED_METRICS[name][1] else "lower is better"


def _estimator_schema() -> dict[str, Any]:
    return {
        "type": "string",
        "enum": list(SUPPORTED_ESTIMATORS),
        "description": "the model to train; each solves one problem type and accepts only its listed params: "
        + "; ".join(
            f"{name} ({problem.value}: {', '.join(sorted(params))})"
            for name, (problem, params) in SUPPORTED_ESTIMATORS.items()
        ),
    }


def _metric_schema() -> dict[str, Any]:
    return {
        "type": "string",
        "enum": list(SUPPORTED_METRICS),
        "description": "the holdout metric that gates and ranks versions: "
        + "; ".join(
            f"{name} ({problem.value}, {metric_direction(name)}: threshold {'at_least' if higher else 'at_most'})"
            for name, (problem, higher) in SUPPORTED_METRICS.items()
        ),
        "x-higher-is-better": {name: higher for name, (_, higher) in SUPPORTED_METRICS.items()},
    }


def _column_name(name: str) -> str:
    if problem := column_name_problem(name):
        raise ValueError(problem)
    return name


# A column as named in the file (spaces, punctuation, unicode); `FeatureRule.input_name` is its identifier.
ColumnName = Annotated[
    str,
    AfterValidator(_column_name),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_COLUMN_NAME_LENGTH,
            "pattern": COLUMN_NAME_PATTERN,
            "description": "the column's name exactly as in the file's header (any text without control characters)",
        }
    ),
]


class _Strict(BaseModel):
    # a field's docstring is its description in the JSON schema (and docs/contracts.md)
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Feature(_Strict):
    """One input column of the model."""

    name: ColumnName
    type: FeatureType
    """numeric (finite numbers), categorical (text) or boolean (true/false, 1/0 in files)"""
    nullable: bool = False
    """whether a row may leave it empty (fed as a null: the median or a "missing" category fills it)"""
    min: float | None = None
    """numeric only: the smallest accepted value (none: unbounded)"""
    max: float | None = None
    """numeric only: the largest accepted value (none: unbounded)"""
    categories: tuple[str, ...] | None = None
    """categorical only: the accepted values (none: any text; values unseen in training count as none of them)"""
    show_values: bool = False
    """validation reports quote this column's bad cell values (else only row numbers and kinds)"""

    @model_validator(mode="after")
    def _constraints_fit_type(self) -> Feature:
        _ = self.rule  # building the rule refuses a declaration that contradicts itself
        return self

    @property
    def input_name(self) -> str:
        """The model input this feature feeds (an identifier, `mlops.contract_rules.input_name`)."""
        return self.rule.input_name

    @property
    def rule(self) -> FeatureRule:
        """This feature's input rules (raises ValueError when the declaration contradicts itself)."""
        return FeatureRule(self.name, self.type, self.nullable, self.min, self.max, self.categories)


class TargetMissing(StrEnum):
    DROP = "drop"
    QUARANTINE = "quarantine"


class Target(_Strict):
    """The column the model predicts."""

    name: ColumnName
    classes: tuple[StrictStr, ...] | tuple[StrictBool, ...] | tuple[StrictInt, ...] | None = None
    """classification: the class labels, all text, all integers or both booleans (predict answers in that type); the second of two is the positive class"""
    min: float | None = None
    """regression: the smallest plausible target value"""
    max: float | None = None
    """regression: the largest plausible target value"""

    @field_validator("classes", mode="before")
    @classmethod
    def _one_kind_of_label(cls, classes: Any) -> Any:
        if not isinstance(classes, list | tuple) or not classes:
            return classes
        kinds = {
            bool if type(c) is bool else int if type(c) is int else str if type(c) is str else None for c in classes
        }
        if len(kinds) != 1 or None in kinds:
            raise ValueError(f"classes must be all text, all integers or all booleans, got {list(classes)}")
        if kinds == {bool} and sorted(classes) != [False, True]:
            raise ValueError("boolean classes are [false, true] (each once)")
        if len({label_text(c) for c in classes}) != len(classes):
            raise ValueError(f"classes must not repeat a label: {list(classes)}")
        return classes

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The classes as every stage handles them (text, `label_text`); None for regression."""
        return None if self.classes is None else tuple(label_text(c) for c in self.classes)

    missing: TargetMissing = TargetMissing.QUARANTINE
    """rows without a target: quarantine refuses the dataset (the default: an unlabelled row often means an upstream join failed, and dropping rows changes what the model learns, so that is the author's explicit choice); drop leaves them out of training, counted in the validation report and bounded by data.max_null_fraction"""


class Estimator(_Strict):
    """The scikit-learn estimator trained after the contract's preprocessing (imputation, scaling, one-hot)."""

    name: Annotated[EstimatorName, WithJsonSchema(_estimator_schema())]
    params: dict[str, ParamValue] = Field(default_factory=dict)
    """hyperparameters of the estimator (only those listed for it; the rest keep scikit-learn's defaults)"""

    @model_validator(mode="after")
    def _known_params(self) -> Estimator:
        allowed = SUPPORTED_ESTIMATORS[self.name][1]
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ValueError(f"unsupported params for {self.name}: {unknown}; allowed: {sorted(allowed)}")
        return self


class Metric(_Strict):
    """The holdout metric: a version is promoted only when it meets the threshold and beats production."""

    name: Annotated[MetricName, WithJsonSchema(_metric_schema())]
    at_least: float | None = None
    """a score (higher is better: accuracy, f1_macro, roc_auc, r2) must be at least this to be promoted"""
    at_most: float | None = None
    """an error (lower is better: log_loss, rmse, mae) must be at most this to be promoted"""
    min_improvement: Annotated[float, Field(ge=0)] = 0.0
    """a challenger must beat the production version by at least this much (in the metric's direction)"""

    @model_validator(mode="before")
    @classmethod
    def _legacy_minimum(cls, data: Any) -> Any:
        """Contracts before the threshold said its direction wrote `minimum` for both (a maximum for errors)."""
        if not isinstance(data, dict) or "minimum" not in data:
            return data
        data = dict(data)
        minimum = data.pop("minimum")
        if minimum is None:
            return data
        if data.get("at_least") is not None or data.get("at_most") is not None:
            raise ValueError("minimum is the old name of at_least / at_most: set one of them only")
        higher = SUPPORTED_METRICS.get(str(data.get("name")), (None, True))[1]
        data["at_least" if higher else "at_most"] = minimum
        return data

    @model_validator(mode="after")
    def _threshold_in_its_direction(self) -> Metric:
        if self.higher_is_better and self.at_most is not None:
            raise ValueError(f"{self.name} is a score (higher is better): its threshold is at_least, not at_most")
        if not self.higher_is_better and self.at_least is not None:
            raise ValueError(f"{self.name} is an error (lower is better): its threshold is at_most, not at_least")
        return self

    @property
    def higher_is_better(self) -> bool:
        return SUPPORTED_METRICS[self.name][1]

    @property
    def threshold(self) -> float | None:
        """The contract's bound on the metric: `at_least` or `at_most`, by its direction."""
        return self.at_least if self.higher_is_better else self.at_most

    def meets_threshold(self, value: float) -> bool:
        threshold = self.threshold
        if threshold is None:
            return True
        return value >= threshold if self.higher_is_better else value <= threshold

    def beats(self, challenger: float, champion: float) -> bool:
        if self.higher_is_better:
            return challenger >= champion + self.min_improvement and challenger > champion
        return challenger <= champion - self.min_improvement and challenger < champion


class PromotionMode(StrEnum):
    AUTO = "auto"  # promoted when it meets the threshold and beats production by the margin
    MANUAL = "manual"  # eligible versions wait for an approver


class Promotion(_Strict):
    """How an eligible version reaches production."""

    mode: PromotionMode = PromotionMode.AUTO
    """auto: promoted when it meets the threshold and beats production by min_improvement; manual: waits for an approver"""
    four_eyes: bool = False
    """two different people for production: the approver of a version may not promote it, and nothing is promoted automatically"""


class Training(_Strict):
    """How the dataset is split and the estimator seeded."""

    seed: int = 42
    """random seed of the split and the estimator: the same data and contract give the same model"""
    holdout_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """share of rows held out to score the model (stratified by class for classification)"""


class DataChecks(_Strict):
    """What an uploaded dataset must satisfy (validate_dataset). Every field has a default."""

    min_rows: Annotated[int, Field(ge=1)] = 50
    """fewer rows quarantine the dataset"""
    # The defaults of the upper bounds stay as they were: they are part of every contract's digest.
    max_rows: Annotated[int, Field(ge=1)] = 50_000_000
    """more rows quarantine the dataset (validation also refuses what training's memory cannot hold: the lesser limit applies)"""
    max_object_bytes: Annotated[int, Field(ge=1)] = 5 * 1024**3
    """a larger uploaded object is quarantined unread"""
    max_decompressed_bytes: Annotated[int, Field(ge=1)] = 20 * 1024**3
    """a gzip CSV inflating past this is quarantined"""
    max_compression_ratio: Annotated[float, Field(gt=1)] = 100.0
    """gzip output / object size past this is quarantined (compression bombs)"""
    max_columns: Annotated[int, Field(ge=1)] = 1_000
    """a file with more columns is quarantined"""
    csv_delimiter: Literal[",", ";", "\t", "|"] | None = None
    """the CSV delimiter; none: detected from the header line"""
    csv_encoding: Literal["utf-8", "latin-1", "cp1252"] = "utf-8"
    """the CSV text encoding"""
    max_null_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    """largest share of empty cells in a nullable column"""
    id_columns: tuple[ColumnName, ...] = ()
    """extra columns that must be present and unique on every row (not features)"""
    max_feature_psi: Annotated[float, Field(gt=0)] = 0.25
    """largest PSI of a feature against the reference (production baseline, else the last accepted dataset) before the dataset is held"""
    max_label_psi: Annotated[float, Field(gt=0)] = 0.1
    """largest PSI of the target against the reference before the dataset is held"""
    max_out_of_range_fraction: Annotated[float, Field(ge=0, le=1)] = 0.02
    """largest share of a feature's values outside the reference's range before the dataset is held"""
    max_duplicate_fraction: Annotated[float, Field(ge=0, le=1)] = 0.05
    """largest share of duplicate rows before the dataset is held"""
    max_disagreement_rise: Annotated[float, Field(gt=0, le=1)] = 0.1
    """label-flip poisoning: the production model's disagreement with the new labels may exceed its holdout error by at most this"""
    sample_rows: Annotated[int, Field(ge=100, le=100_000)] = 10_000
    """rows sampled for the statistics against the reference"""
    allowed_uploaders: tuple[str, ...] | None = None
    """provenance: fnmatch patterns on the uploader principal (S3 event principalId); none: anyone"""


class DriftTests(_Strict):
    """How a window's drift is judged (mlops.drift.decisions). Defaults follow Evidently's
    DataDriftPreset, except that the p-value tests are held to a family-wise false-alarm rate."""

    method: Literal["auto", "psi"] = "auto"
    """auto: by the window's size (small_window_max_rows); psi: every feature by PSI > psi_alarm_threshold"""
    small_window_max_rows: Annotated[int, Field(ge=1)] = 1_000
    """windows (and features) with at most this many values: KS / chi-square p-values; above: Wasserstein distance / baseline std (numeric) and Jensen-Shannon distance (categorical)"""
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.01
    """the chance a window without drift raises the drift alarm through the p-value tests (Holm's correction over the features and the prediction)"""
    wasserstein_threshold: Annotated[float, Field(gt=0)] = 0.1
    """large windows: a numeric feature drifts past this Wasserstein distance / baseline std"""
    jensen_shannon_threshold: Annotated[float, Field(gt=0, le=1)] = 0.1
    """large windows: a categorical feature drifts past this Jensen-Shannon distance"""
    distance_needs_significance: bool = True
    """a distance over its threshold counts only when the column's KS / chi-square test (Holm, alpha) agrees: near the small-window size a distance alone is noisy"""
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """dataset drift: at least this share of the features drifted"""


class QualityChecks(_Strict):
    """Data quality of live traffic, its own signal (a missing-value spike is not drift)."""

    missing_increase: Annotated[float, Field(gt=0, le=1)] = 0.1
    """a missing-value spike: the missing share rose by at least this much (absolute) and significantly"""
    out_of_range_share: Annotated[float, Field(ge=0, le=1)] = 0.02
    """share of a feature's non-null values outside the training data's [min, max] (or unseen categories)"""
    rejected_share: Annotated[float, Field(ge=0, le=1)] = 0.05
    """records predict refused (400) / all records it was sent"""


class FeedbackRules(_Strict):
    """Ground truth for served predictions (mlops.feedback): how late a label may arrive."""

    horizon_hours: Annotated[float, Field(gt=0, le=24 * 366)] = DEFAULT_FEEDBACK_HORIZON_HOURS
    """a label for a prediction answered longer ago than this is refused (the quality join has judged its window by then)"""


class LiveQuality(_Strict):
    """How live quality (labels joined to captured predictions, mlops.quality) is judged."""

    min_labels: Annotated[int, Field(ge=1)] = 200
    """labelled rows of the production version in the window before its quality is judged"""
    window_hours: Annotated[float, Field(gt=0, le=24 * 366)] = 24.0
    """the window: predictions answered in the last this many hours (a late label updates its hour)"""
    margin: Annotated[float, Field(ge=0)] = 0.05
    """judged below when worse than the version's holdout score by more than this: absolute for scores (accuracy, f1_macro, roc_auc, r2), a share of the holdout value for errors (log_loss, rmse, mae)"""


class Retraining(_Strict):
    """When a model retrains on evidence (mlops.retraining): its triggers' gates and training set."""

    schedule: (
        Annotated[str, Field(pattern=r"^(rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$")] | None
    ) = None
    """EventBridge schedule expression, e.g. "rate(7 days)"; None: alarms and approvers only"""
    cooldown_hours: Annotated[float, Field(ge=0, le=24 * 366)] = 6.0
    """no retraining starts within this many hours of the last one (an admin may override)"""
    min_new_labels: Annotated[int, Field(ge=1)] = 200
    """labelled predictions answered since the last accepted dataset was uploaded (an approver skips it)"""
    window_hours: Annotated[float, Field(gt=0, le=24 * 366)] = 168.0
    """labelled traffic added to the last accepted dataset: predictions of the last this many hours"""
    max_traffic_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 100_000
    """at most this many rows of labelled traffic are added (the bounded read of mlops.training.traffic)"""


class Monitoring(_Strict):
    """How served traffic is captured and judged."""

    psi_alarm_threshold: Annotated[float, Field(gt=0)] = 0.2
    """a feature drifts when its PSI exceeds this (drift.method psi)"""
    min_window_rows: Annotated[int, Field(ge=1)] = 100
    """captured rows a window needs before drift is judged"""
    capture_sample_rate: Annotated[float, Field(ge=0, le=1)] = DEFAULT_CAPTURE_SAMPLE_RATE
    """share of predictions captured for drift and quality"""
    drift: DriftTests = DriftTests()
    """how a window's drift is judged"""
    quality: QualityChecks = QualityChecks()
    """data quality of live traffic"""
    feedback: FeedbackRules = FeedbackRules()
    """ground truth for served predictions"""
    live_quality: LiveQuality = LiveQuality()
    """how live quality is judged"""


class Contract(_Strict):
    """A model contract: what a model is, what data it accepts, how it is trained and judged."""

    name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    """the model's name: lowercase letters, digits and dashes, starting with a letter (the upload prefix datasets/<name>/)"""
    description: str = ""
    """free text for people"""
    problem_type: ProblemType
    """classification or regression"""
    target: Target
    """the column the model predicts"""
    features: Annotated[tuple[Feature, ...], Field(min_length=1)]
    """the model's input columns, in order"""
    estimator: Estimator
    """what to train"""
    metric: Metric
    """how a version is scored and gated"""
    training: Training = Training()
    """split and seed"""
    data: DataChecks = DataChecks()
    """what an uploaded dataset must satisfy"""
    monitoring: Monitoring = Monitoring()
    """capture, drift, data quality, feedback and live quality"""
    promotion: Promotion = Promotion()
    """how a version reaches production"""
    retraining: Retraining = Retraining()
    """when the model retrains on evidence"""

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature names: {duplicates}")
        if self.target.name in names:
            raise ValueError(f"target {self.target.name!r} is also listed as a feature")
        if clashes := duplicate_input_names(names):
            raise ValueError(f"features {clashes} map to the same model input name; rename one")
        if SUPPORTED_ESTIMATORS[self.estimator.name][0] is not self.problem_type:
            raise ValueError(f"estimator {self.estimator.name} does not solve {self.problem_type.value}")
        if SUPPORTED_METRICS[self.metric.name][0] is not self.problem_type:
            raise ValueError(f"metric {self.metric.name} does not judge {self.problem_type.value}")
        if self.problem_type is ProblemType.CLASSIFICATION:
            if not self.target.classes or len(self.target.classes) < 2:
                raise ValueError("target.classes must list at least two classes for classification")
            if self.metric.name == "roc_auc" and len(self.target.classes) != 2:
                raise ValueError("roc_auc needs exactly two target classes")
        elif self.target.classes is not None:
            raise ValueError("target.classes applies only to classification")
        if self.data.min_rows > self.data.max_rows:
            raise ValueError("data.min_rows is greater than data.max_rows")
        if clashing := sorted(set(self.data.id_columns) & {*names, self.target.name}):
            raise ValueError(f"data.id_columns {clashing} are also features or the target")
        return self

    @property
    def feature_rules(self) -> tuple[FeatureRule, ...]:
        """Each feature's input rules, in contract order."""
        return tuple(feature.rule for feature in self.features)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def columns(self) -> list[str]:
        return [*self.feature_names, self.target.name]

    def canonical_json(self) -> str:
        # defaults added later (the promotion policy, four_eyes off, a feature's show_values off, the
        # monitoring drift tests, quality checks, feedback rules and live quality) are
        # left out, so contracts written before them keep their digest
        document = self.model_dump(mode="json")
        # the threshold as contracts before at_least/at_most wrote it: the same contract, the same digest
        metric = document["metric"]
        metric["minimum"] = metric.pop("at_least") if self.metric.higher_is_better else metric.pop("at_most")
        metric.pop("at_least", None)
        metric.pop("at_most", None)
        if self.target.missing is TargetMissing.QUARANTINE:
            del document["target"]["missing"]
        if self.retraining == Retraining():
            del document["retraining"]
        if self.promotion == Promotion():
            del document["promotion"]
        elif not self.promotion.four_eyes:
            del document["promotion"]["four_eyes"]
        for feature in document["features"]:
            if not feature.get("show_values"):
                feature.pop("show_values", None)
        for part, default in (
            ("drift", DriftTests()),
            ("quality", QualityChecks()),
            ("feedback", FeedbackRules()),
            ("live_quality", LiveQuality()),
        ):
            if getattr(self.monitoring, part) == default:
                del document["monitoring"][part]
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def positive_class(contract: Contract) -> str | None:
    """For binary classification, the class whose probability is profiled and scored by roc_auc
    (training's holdout and live quality): the second class the contract lists (e.g. "yes" of
    ["no", "yes"])."""
    classes = contract.target.labels or ()
    return classes[1] if contract.problem_type is ProblemType.CLASSIFICATION and len(classes) == 2 else None


def parse_contract(document: str | bytes | dict[str, Any], *, source: str = "contract") -> Contract:
    """Parse and validate a contract from JSON/YAML text or a mapping.

    Raises ContractError naming each offending field.
    """
    data: Any = document
    if isinstance(document, bytes | str):
        text = document.decode() if isinstance(document, bytes) else document
        try:
            data = json.loads(text)
        except json.JSONDecodeError as json_error:
            data = _load_yaml(text, source, json_error)
    if not isinstance(data, dict):
        raise ContractError(f"{source}: a contract must be a mapping, got {type(data).__name__}")
    try:
        return Contract.model_validate(data)
    except ValidationError as error:
        raise ContractError(f"{source}: " + "; ".join(_describe_errors(error.errors(), data))) from None


# A contract is written as JSON or YAML (the same document); `mlops contracts publish` stores it in
# the data bucket as canonical JSON (`contracts/<model>.json`), the only form the functions read,
# so their packages need no YAML parser.
CONTRACT_SUFFIXES = (".json", ".yaml", ".yml")


def contract_files(directory: Path) -> list[Path]:
    """The contract documents of a directory (JSON or YAML), by file name; none when it does not exist."""
    return sorted(p for p in directory.glob("*") if p.suffix.lower() in CONTRACT_SUFFIXES and p.is_file())


def contract_json_schema() -> dict[str, Any]:
    return Contract.model_json_schema()


def record_json_schema(contract: Contract) -> dict[str, Any]:
    """A prediction record of `contract` as JSON Schema (what mlops.inference.records enforces):
    every feature present (a nullable one may be null or missing), numbers within min/max,
    categories among those declared, booleans true/false; other fields are ignored."""
    properties: dict[str, Any] = {}
    for feature in contract.features:
        if feature.type is FeatureType.NUMERIC:
            schema: dict[str, Any] = {"type": "number"}
            if feature.min is not None:
                schema["minimum"] = feature.min
            if feature.max is not None:
                schema["maximum"] = feature.max
        elif feature.type is FeatureType.CATEGORICAL:
            schema = {"type": "string", "enum": list(feature.categories)} if feature.categories else {"type": "string"}
        else:
            schema = {"type": "boolean"}
        properties[feature.name] = {"anyOf": [schema, {"type": "null"}]} if feature.nullable else schema
    return {
        "title": f"PredictRecord ({contract.name})",
        "type": "object",
        "properties": properties,
        "required": [f.name for f in contract.features if not f.nullable],
    }


def predict_request_schema(contracts: list[Contract], max_records: int | None = None) -> dict[str, Any]:
    """The predict body, `{"records": [...]}` or a bare list of 1 to `max_records` records, each one of
    the contracts' records (a model answers 400 for a record of another contract)."""
    records = [record_json_schema(c) for c in sorted(contracts, key=lambda c: c.name)]
    record = records[0] if len(records) == 1 else {"anyOf": records} if records else {"type": "object"}
    batch: dict[str, Any] = {"type": "array", "minItems": 1, "items": record}
    if max_records is not None:
        batch["maxItems"] = max_records
    return {
        "title": "PredictRequest",
        "oneOf": [{"type": "object", "required": ["records"], "properties": {"records": batch}}, batch],
    }


def _describe_errors(errors: list[Any], document: dict[str, Any]) -> list[str]:
    """One line per problem, a list item named by its column (`features[3] 'mean radius'.type`).

    pydantic also reports a list whose items failed as too short (its valid items only are
    counted): that says nothing the items' own errors do not, so it is left out.
    """
    failed_lists = {tuple(e["loc"][:-2]) for e in errors if len(e["loc"]) >= 2 and isinstance(e["loc"][-2], int)}
    failed_lists |= {tuple(e["loc"][:-1]) for e in errors if e["loc"] and isinstance(e["loc"][-1], int)}
    lines = []
    for error in errors:
        if error["type"] == "too_short" and tuple(error["loc"]) in failed_lists:
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{_location(error['loc'], document)}: {message}")
    return list(dict.fromkeys(lines))


def _location(loc: tuple[Any, ...], document: Any) -> str:
    """`features.3.type` as `features[3] 'mean radius'.type`: the position and the item's name."""
    text = ""
    node = document
    for index, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list | tuple) and part < len(node) else None
            naming_error = loc[index + 1 :] == ("name",)  # its message quotes the name already
            if isinstance(node, dict) and isinstance(node.get("name"), str) and not naming_error:
                text += f" {node['name']!r}"
        else:
            text += f".{part}" if text else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text or "(document)"


def _load_yaml(text: str, source: str, json_error: json.JSONDecodeError) -> Any:
    try:
        import yaml  # only the CLI, synthesis and local mode read YAML; the bucket holds canonical JSON
    except ImportError:  # pragma: no cover - Lambda layers ship no YAML parser
        raise ContractError(f"{source}: not valid JSON ({json_error})") from None
    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ContractError(f"{source}: neither valid JSON nor YAML ({error})") from None


def _yaml_loader() -> Any:
    """PyYAML's SafeLoader with YAML 1.2's booleans: only true/false. YAML 1.1 also reads yes, no,
    on and off as booleans, which would turn `categories: [yes, no]` or `classes: [no, yes]` into
    true/false instead of the labels the file holds."""
    import re

    import yaml

    class ContractLoader(yaml.SafeLoader):
        pass

    ContractLoader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    ContractLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    return ContractLoader
