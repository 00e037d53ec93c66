"""`npx cdk synth` through the real CLI (no Docker, no credentials) succeeds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.layers import REPO_ROOT
from infra.outputs import STACK_NAME


@pytest.mark.slow
def test_cdk_cli_synth_succeeds(tmp_path: Path) -> None:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed")
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1"}
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "CDK_CONTEXT_JSON"):
        env.pop(name, None)
    result = subprocess.run(
        [npx, "--no-install", "cdk", "synth", "--quiet", "--output", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    template = json.loads((tmp_path / f"{STACK_NAME}.template.json").read_text())
    assert "DataBucketName" in template["Outputs"]


def test_synth_context_merges_cdk_json_flags() -> None:
    from infra.synth import cli_context

    flags = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context = cli_context()
    assert all(context[key] == value for key, value in flags.items())
    assert context["aws:cdk:enable-asset-metadata"] is True
