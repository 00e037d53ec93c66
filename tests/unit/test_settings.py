"""Settings read from the environment: types, defaults, bounds, and errors naming the variable."""

from __future__ import annotations

import pytest

from mlops.settings import DriftSettings, PredictSettings, SettingsError

REQUIRED = {"REGISTRY_TABLE": "registry", "ARTIFACT_BUCKET": "artifacts"}


def test_settings_read_types_and_defaults() -> None:
    settings = PredictSettings.from_env({**REQUIRED, "MAX_RECORDS_PER_REQUEST": "20"})
    assert settings.registry_table == "registry"
    assert settings.max_records_per_request == 20
    assert settings.model_refresh_seconds == 5.0
    assert PredictSettings.env_defaults()["CAPTURE_MAX_RECORDS"] == "500"
    assert "REGISTRY_TABLE" not in PredictSettings.env_defaults()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "REGISTRY_TABLE is required; ARTIFACT_BUCKET is required"),
        ({**REQUIRED, "MAX_RECORDS_PER_REQUEST": "many"}, "MAX_RECORDS_PER_REQUEST: invalid literal"),
        ({**REQUIRED, "MAX_RECORDS_PER_REQUEST": "0"}, "MAX_RECORDS_PER_REQUEST: 0 is less than 1"),
        ({**REQUIRED, "MODEL_REFRESH_SECONDS": "-1"}, "MODEL_REFRESH_SECONDS: -1.0 is less than 0"),
    ],
)
def test_settings_refuse_a_bad_environment_naming_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        PredictSettings.from_env(environ)


def test_settings_are_frozen() -> None:
    settings = DriftSettings.from_env(REQUIRED)
    with pytest.raises(AttributeError):
        settings.settle_seconds = 1.0  # type: ignore[misc]
