"""The demo's story end to end: the synthesized stack in local mode, driven over HTTPS and boto3."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mlops_local.demo import Demo
from mlops_local.runtime import LocalRuntime

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]


def test_demo_story_every_step_happens(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "local", schedules=False)
    endpoints = runtime.start()
    try:
        out = io.StringIO()
        demo = Demo(runtime, endpoints, rows=20_000, out=out)

        ok = demo.run()

        assert ok, demo.story.summary() + "\n" + out.getvalue()
        assert demo.numbers["drift_score"] >= 0.2
        assert demo.numbers["drop_to_production_v1"] < 120
        invocations = (tmp_path / "local" / "logs" / "invocations.log").read_text()
        for function in ("validate_dataset", "train_model", "register_model", "predict", "models_api", "detect_drift"):
            assert function in invocations
    finally:
        runtime.stop()
