"""The synthesized template, once per test session (a cold synth costs 10-15 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def cloud_assembly_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def template(cloud_assembly_dir: Path) -> dict[str, Any]:
    """The stack's template as a dict; synthesis also ran cdk-nag (a violation fails it)."""
    from infra.synth import synthesize_template

    return synthesize_template(cloud_assembly_dir)


@pytest.fixture(scope="session")
def assertions(template: dict[str, Any]):  # -> aws_cdk.assertions.Template
    from aws_cdk.assertions import Template

    return Template.from_json(template)
