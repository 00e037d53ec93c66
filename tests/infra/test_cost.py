"""scripts/cost.py: it runs against the synthesized template, and its idle bill prices every resource
type the template has (an unknown type stops it instead of being counted as free)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.layers import REPO_ROOT
from scripts.cost import BY_TIME, IDLE_RULES, idle_costs


def test_cost_idle_rules_cover_every_resource_type_of_the_template(template: dict[str, Any]) -> None:
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert types <= set(IDLE_RULES), sorted(types - set(IDLE_RULES))
    assert len(idle_costs(template)) == len(template["Resources"])


def test_cost_stack_has_no_capacity_billed_by_the_hour_except_the_snapstart_cache(template: dict[str, Any]) -> None:
    by_time = {c.resource_type: c for c in idle_costs(template) if BY_TIME in c.note}
    assert set(by_time) <= {"AWS::Lambda::Function"}, by_time
    # one cached SnapStart version (predict at 1 GB) costs ~$3.95 a month, nothing else runs by the hour
    assert all(c.monthly_usd < 5 for c in by_time.values())


def _template(*resources: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {"Resources": {lid: {"Type": kind, "Properties": props} for lid, kind, props in resources}}


def test_cost_idle_prices_what_is_billed_when_nothing_happens() -> None:
    template = _template(
        ("Acl", "AWS::WAFv2::WebACL", {"Rules": [{"Statement": {"RateBasedStatement": {}}}] * 4}),
        ("Key", "AWS::KMS::Key", {}),
        (
            "Math",
            "AWS::CloudWatch::Alarm",
            {"Metrics": [{"MetricStat": {"Period": 60}}] * 2 + [{"Expression": "m1/m2"}]},
        ),
        ("Plain", "AWS::CloudWatch::Alarm", {"Period": 300}),
        ("OnDemand", "AWS::DynamoDB::Table", {"BillingMode": "PAY_PER_REQUEST"}),
        (
            "Provisioned",
            "AWS::DynamoDB::Table",
            {"ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}},
        ),
        ("Fn", "AWS::Lambda::Function", {"MemorySize": 1024, "SnapStart": {"ApplyOn": "PublishedVersions"}}),
        ("FnVersion", "AWS::Lambda::Version", {"FunctionName": {"Ref": "Fn"}}),
        ("Bucket", "AWS::S3::Bucket", {}),
    )
    monthly = {c.logical_id: round(c.monthly_usd, 2) for c in idle_costs(template)}
    assert monthly == {
        "Acl": 9.0,  # $5 + 4 x $1
        "Key": 1.0,
        "Math": 0.2,  # two alarm metrics; the expression is not one
        "Plain": 0.1,
        "OnDemand": 0.0,
        "Provisioned": round(730 * (5 * 0.00013 + 5 * 0.00065), 2),
        "Fn": round(2_628_000 * 0.0000015046, 2),
        "FnVersion": 0.0,
        "Bucket": 0.0,
    }
    by_time = {c.logical_id for c in idle_costs(template) if BY_TIME in c.note}
    assert by_time == {"Provisioned", "Fn"}


def test_cost_refuses_a_resource_type_it_cannot_price() -> None:
    with pytest.raises(SystemExit, match=r"AWS::RDS::DBInstance"):
        idle_costs(_template(("Db", "AWS::RDS::DBInstance", {})))


def test_cost_script_prints_per_million_and_idle_tables(template: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    result = subprocess.run(
        [sys.executable, "scripts/cost.py", "--template", str(path), "--iterations", "200"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for expected in (
        "1-record requests",
        "100-record requests",
        "API Gateway REST requests",
        "WAF requests inspected",
        "SageMaker serverless endpoint alone",
        "ml.c6i.large",
        "ml.t2.medium",
        "idle cost (no traffic)",
        "capacity billed by the hour:",
    ):
        assert expected in out, out
