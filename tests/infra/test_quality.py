"""cfn-lint finds no errors; cdk-nag AwsSolutions ran and passed; outputs are the stable names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import outputs


def test_cfn_lint_reports_no_errors(template: dict[str, Any]) -> None:
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_cdk_nag_ran_and_found_nothing_unacknowledged(template: dict[str, Any], cloud_assembly_dir: Path) -> None:
    # synthesis succeeded (the template fixture), and the report holds no failing plugin
    report = json.loads((cloud_assembly_dir / "validation-report.json").read_text())
    assert [r for r in report["pluginReports"] if r.get("conclusion") == "failure"] == []


def test_cdk_nag_fails_synth_on_a_violation() -> None:
    # GIVEN the same plugin setup as infra/app.py on a bucket without access logs
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = App()
    s3.Bucket(Stack(app, "Probe"), "Bucket", enforce_ssl=True)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # THEN synthesis fails: the checks are wired to fail, not only to warn
    with pytest.raises(Exception, match="AwsSolutions-S1"):
        app.synth()


def test_every_acknowledgement_has_a_reason(cloud_assembly_dir: Path) -> None:
    metadata = json.loads((cloud_assembly_dir / f"{outputs.STACK_NAME}.metadata.json").read_text())
    acknowledged = [
        (path, rule_id, reason)
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule_id, reason in entry["data"].items()
    ]
    assert acknowledged, "expected the stack's acknowledgements in the cloud assembly metadata"
    for path, rule_id, reason in acknowledged:
        assert "AwsSolutions-" in rule_id, (path, rule_id)
        assert len(reason.strip()) >= 20, (path, rule_id, reason)


def test_outputs_are_the_stable_names(template: dict[str, Any]) -> None:
    assert set(outputs.ALL) <= set(template["Outputs"])
