"""Every function: shared defaults, its source metadata, its layers, and exactly its settings' variables."""

from __future__ import annotations

from typing import Any

import pytest

from infra.catalog import FUNCTIONS, PLATFORM_ENV_NAMES, FunctionSpec
from infra.constructs.function_defaults import EnvironmentMismatchError, check_environment
from mlops.settings import PredictSettings
from tests.infra.support import function_ids, resources


def _function(template: dict[str, Any], folder: str) -> dict[str, Any]:
    return template["Resources"][function_ids(template)[folder]]


def test_every_catalog_function_is_in_the_template(template: dict[str, Any]) -> None:
    assert set(function_ids(template)) == set(FUNCTIONS)


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_function_env_names_equal_settings_declared_names(template: dict[str, Any], folder: str) -> None:
    spec = FUNCTIONS[folder]
    env = _function(template, folder)["Properties"]["Environment"]["Variables"]
    assert set(env) - set(PLATFORM_ENV_NAMES) == set(spec.settings.env_names())
    assert env["POWERTOOLS_SERVICE_NAME"] == folder.replace("_", "-")
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "MLOps"


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_function_shares_the_defaults(template: dict[str, Any], folder: str) -> None:
    spec = FUNCTIONS[folder]
    resource = _function(template, folder)
    props = resource["Properties"]
    assert resource["Metadata"]["mlops:source"] == f"functions/{folder}"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["Architectures"] == ["x86_64"]
    assert props["MemorySize"] == spec.memory_mb
    assert props["Timeout"] == spec.timeout_seconds
    log_group = template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] > 0
    if spec.container_image:
        assert props["PackageType"] == "Image"
        assert resource["Metadata"]["aws:asset:dockerfile-path"] == f"functions/{folder}/Dockerfile"
    else:
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == "handler.lambda_handler"
        assert "aws:asset:path" in resource["Metadata"]


@pytest.mark.parametrize("folder", sorted(f for f, s in FUNCTIONS.items() if not s.container_image))
def test_function_layers_follow_the_catalog(template: dict[str, Any], folder: str) -> None:
    layers = resources(template, "AWS::Lambda::LayerVersion")
    refs = [ref["Ref"] for ref in _function(template, folder)["Properties"]["Layers"]]
    described = [layers[ref]["Properties"]["Description"] for ref in refs]
    from infra.layers import LAYERS

    # layers do not overlap, so their order does not matter (CDK may reorder them)
    assert sorted(described) == sorted(LAYERS[name].description for name in FUNCTIONS[folder].layers)


def test_train_has_reserved_concurrency(template: dict[str, Any]) -> None:
    assert _function(template, "train_model")["Properties"]["ReservedConcurrentExecutions"] >= 1


def test_check_environment_rejects_undeclared_and_missing_variables() -> None:
    spec = FunctionSpec("predict", PredictSettings, memory_mb=128, timeout_seconds=3)
    complete = {"REGISTRY_TABLE": "t", "ARTIFACT_BUCKET": "b"}
    check_environment(spec, complete)
    with pytest.raises(EnvironmentMismatchError, match="DATA_BUCKET"):
        check_environment(spec, {**complete, "DATA_BUCKET": "d"})
    with pytest.raises(EnvironmentMismatchError, match="ARTIFACT_BUCKET"):
        check_environment(spec, {"REGISTRY_TABLE": "t"})


def test_train_model_gets_the_memory_its_dataset_budget_is_sized_for(template: dict[str, Any]) -> None:
    from mlops.training.budget import TRAINING_MEMORY_MB

    # validation refuses datasets that do not fit this memory; the deployed function must have it
    assert _function(template, "train_model")["Properties"]["MemorySize"] == TRAINING_MEMORY_MB
