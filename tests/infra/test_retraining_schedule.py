"""A contract's `retraining.schedule` becomes its own rule whose target input names the model
(retrain_model reads `{"retrain": {"model": ..., "schedule": ...}}`); the model alarms' rule is
unchanged. A separate synthesis: the repository's churn contract declares no schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.contract import parse_contract
from tests.infra.support import function_ids, resources, target_function_id

CHURN = json.loads((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())


@pytest.fixture(scope="module")
def scheduled_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import infra.stack
    from infra.synth import synthesize_template

    weekly = parse_contract({**CHURN, "retraining": {"schedule": "rate(7 days)", "cooldown_hours": 12}})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(infra.stack, "load_contracts", lambda directory=None: [weekly])
        return synthesize_template(tmp_path_factory.mktemp("cdk.out.scheduled"))


def test_a_contract_schedule_invokes_retrain_model_with_the_model_as_input(scheduled_template: dict[str, Any]) -> None:
    retrain = function_ids(scheduled_template)["retrain_model"]
    scheduled = [
        rule["Properties"]
        for rule in resources(scheduled_template, "AWS::Events::Rule").values()
        if rule["Properties"].get("ScheduleExpression") == "rate(7 days)"
    ]
    assert len(scheduled) == 1
    (target,) = scheduled[0]["Targets"]
    assert target_function_id(target["Arn"]) == retrain
    assert json.loads(target["Input"]) == {"retrain": {"model": "churn", "schedule": "rate(7 days)"}}
    assert "Arn" in target["DeadLetterConfig"]
