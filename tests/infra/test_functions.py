"""Every function: shared defaults, its source metadata, its layers, and exactly its settings' variables."""

from __future__ import annotations

from typing import Any

import pytest

from infra.catalog import FUNCTIONS, PLATFORM_ENV_NAMES, FunctionSpec
from infra.constructs.function_defaults import EnvironmentMismatchError, check_environment
from mlops.settings import PredictSettings
from tests.infra.support import function_ids, resources

# Written out here, not read from infra.catalog (which builds the functions): a changed catalog
# entry must fail this test until someone decides the new number is right.
EXPECTED_SIZING = {  # folder: (memory MB, timeout s)
    "validate_dataset": (1769, 900),
    "train_model": (3008, 900),
    "retrain_model": (3008, 900),
    "register_model": (512, 60),
    "record_training_failure": (256, 60),
    "report_misplaced_upload": (256, 30),
    "predict": (1024, 10),
    "models_api": (512, 30),
    "detect_drift": (1024, 300),
    "record_feedback": (512, 30),
    "ingest_feedback": (1024, 900),
    "evaluate_quality": (1024, 900),
    "score_batch": (1769, 900),
    "control_canary": (256, 60),
    "score_shadow": (1024, 300),
}
# each layer by the packages its description names
EXPECTED_LAYERS = {
    "validate_dataset": {"aws-lambda-powertools", "src/mlops", "numpy", "pyarrow", "onnxruntime"},
    "register_model": {"aws-lambda-powertools", "src/mlops"},
    "record_training_failure": {"aws-lambda-powertools", "src/mlops"},
    "report_misplaced_upload": {"aws-lambda-powertools", "src/mlops"},
    "predict": {"aws-lambda-powertools", "src/mlops", "numpy", "onnxruntime", "graceful-shutdown"},
    "models_api": {"aws-lambda-powertools", "src/mlops"},
    "detect_drift": {"aws-lambda-powertools", "src/mlops", "numpy"},
    "record_feedback": {"aws-lambda-powertools", "src/mlops"},  # no numpy: predict's aims stay its own
    "ingest_feedback": {"aws-lambda-powertools", "src/mlops", "numpy", "pyarrow"},  # the dataset readers
    "evaluate_quality": {"aws-lambda-powertools", "src/mlops", "numpy"},
    # reads CSV/Parquet (pyarrow) and runs the model (onnxruntime)
    "score_batch": {"aws-lambda-powertools", "src/mlops", "numpy", "pyarrow", "onnxruntime"},
    "control_canary": {"aws-lambda-powertools", "src/mlops"},
    "score_shadow": {"aws-lambda-powertools", "src/mlops", "numpy", "onnxruntime"},
}
_LAYER_PACKAGES = (
    "aws-lambda-powertools",
    "src/mlops",
    "onnxruntime",
    "pyarrow",
    "numpy",
    "graceful-shutdown",
)  # onnxruntime names numpy


def _function(template: dict[str, Any], folder: str) -> dict[str, Any]:
    return template["Resources"][function_ids(template)[folder]]


def test_every_function_is_in_the_template(template: dict[str, Any]) -> None:
    assert set(function_ids(template)) == set(EXPECTED_SIZING)


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_function_env_names_equal_settings_declared_names(template: dict[str, Any], folder: str) -> None:
    spec = FUNCTIONS[folder]
    env = _function(template, folder)["Properties"]["Environment"]["Variables"]
    assert set(env) - set(PLATFORM_ENV_NAMES) == set(spec.settings.env_names())
    assert env["POWERTOOLS_SERVICE_NAME"] == folder.replace("_", "-")
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "MLOps"


@pytest.mark.parametrize("folder", sorted(EXPECTED_SIZING))
def test_function_shares_the_defaults(template: dict[str, Any], folder: str) -> None:
    resource = _function(template, folder)
    props = resource["Properties"]
    assert resource["Metadata"]["mlops:source"] == f"functions/{folder}"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["Architectures"] == ["x86_64"]
    assert (props["MemorySize"], props["Timeout"]) == EXPECTED_SIZING[folder]
    assert props["Timeout"] <= 900  # Lambda's maximum
    log_group = template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] > 0
    if folder in ("train_model", "retrain_model"):  # scikit-learn + pandas + pyarrow do not fit a zip
        assert props["PackageType"] == "Image"
        assert resource["Metadata"]["aws:asset:dockerfile-path"] == f"functions/{folder}/Dockerfile"
    else:
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == "handler.lambda_handler"
        assert "aws:asset:path" in resource["Metadata"]


@pytest.mark.parametrize("folder", sorted(EXPECTED_LAYERS))
def test_function_has_exactly_its_layers(template: dict[str, Any], folder: str) -> None:
    layers = resources(template, "AWS::Lambda::LayerVersion")
    refs = [ref["Ref"] for ref in _function(template, folder)["Properties"]["Layers"]]
    described = [layers[ref]["Properties"]["Description"] for ref in refs]
    packages = [next(p for p in _LAYER_PACKAGES if p in description) for description in described]
    # one layer per package, in any order (CDK may reorder them)
    assert sorted(packages) == sorted(EXPECTED_LAYERS[folder]), described


def test_train_has_reserved_concurrency(template: dict[str, Any]) -> None:
    assert _function(template, "train_model")["Properties"]["ReservedConcurrentExecutions"] == 2


def test_check_environment_rejects_undeclared_and_missing_variables() -> None:
    spec = FunctionSpec("predict", PredictSettings, memory_mb=128, timeout_seconds=3)
    complete = {"REGISTRY_TABLE": "t", "ARTIFACT_BUCKET": "b"}
    check_environment(spec, complete)
    with pytest.raises(EnvironmentMismatchError, match="DATA_BUCKET"):
        check_environment(spec, {**complete, "DATA_BUCKET": "d"})
    with pytest.raises(EnvironmentMismatchError, match="ARTIFACT_BUCKET"):
        check_environment(spec, {"REGISTRY_TABLE": "t"})


def test_train_model_gets_the_memory_its_dataset_budget_is_sized_for(template: dict[str, Any]) -> None:
    from mlops.training.capacity import TRAINING_MEMORY_MB

    # validation refuses datasets that do not fit this memory; the deployed function must have it
    assert _function(template, "train_model")["Properties"]["MemorySize"] == TRAINING_MEMORY_MB
