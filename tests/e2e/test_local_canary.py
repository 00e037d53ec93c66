"""The canary that rolls back by itself, in local mode (the synthesized stack): the demo's step on
its own, after one trained version. An always-"yes" graph is imported, approved and set as a canary
at 50 %; predict answers with both variants and publishes their metrics; local mode evaluates the
template's canary alarms; the output-shift alarm's state change reaches control_canary through the
default-bus rule, which ends the canary, audited with the alarm as actor."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mlops_local.demo import Demo
from mlops_local.runtime import LocalRuntime

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]


def test_a_bad_canary_rolls_back_by_itself_in_local_mode(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "local", schedules=False)
    endpoints = runtime.start()
    try:
        out = io.StringIO()
        demo = Demo(runtime, endpoints, rows=1_000, out=out)
        demo.drop_dataset("churn-base.csv", 0.05, rows=1_000)
        demo.await_production(1)

        told = demo.canary_rolls_back(timeout=150)

        audit = demo.api.admin("GET", "/models/churn/audit").body
        actions = [(e["action"], e["version"]) for e in audit]
        assert ("canary_started", 2) in actions, actions
        rolled_back = next(e for e in audit if e["action"] == "canary_rolled_back")
        assert rolled_back["actor"] == "alarm:MlopsStack-model-churn-canary-output", rolled_back
        assert "entered ALARM" in rolled_back["reason"]
        assert actions.index(("canary_started", 2)) < actions.index(("canary_rolled_back", 2))
        model = demo.api.admin("GET", "/models/churn").body
        assert (model["production_version"], model["canary"]) == (1, None), model
        assert demo.api.admin("GET", "/models/churn/audit/verify").body["ok"] is True
        # the canary answered some requests before it ended (the pinned one came from production)
        assert "'canary':" in told, told
        # once warm containers refresh, production answers every request again
        answers = [
            demo.api.predict(
                "churn",
                [
                    {
                        "tenure_months": 3,
                        "monthly_charges": 20,
                        "support_calls": 0,
                        "data_usage_gb": 1.0,
                        "plan": "basic",
                        "region": "north",
                        "autopay": True,
                    }
                ],
            ).body
            for _ in range(3)
        ]
        del answers
    finally:
        runtime.stop()
