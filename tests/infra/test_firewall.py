"""The API's web ACL: on by default, a per-IP rate rule and AWS managed rule groups, metrics on every
rule, associated with the stage, its blocks alarmed through the serving composite; `waf=false` removes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.constructs.firewall import (
    DEFAULT_RATE_LIMIT,
    FirewallContextError,
    FirewallSettings,
    firewall_settings,
)
from mlops_local.template import NOT_EMULATED_TYPES
from tests.infra.support import resources

WEB_ACL = "AWS::WAFv2::WebACL"
ASSOCIATION = "AWS::WAFv2::WebACLAssociation"
MANAGED_GROUPS = {
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
}


def _web_acl(template: dict[str, Any]) -> dict[str, Any]:
    [acl] = resources(template, WEB_ACL).values()
    return acl["Properties"]


def _rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in _web_acl(template)["Rules"]}


def test_web_acl_is_regional_and_associated_with_the_api_stage(template: dict[str, Any]) -> None:
    acl_id, acl = next(iter(resources(template, WEB_ACL).items()))
    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert acl["Properties"]["DefaultAction"] == {"Allow": {}}
    [association] = resources(template, ASSOCIATION).values()
    props = association["Properties"]
    assert props["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    # arn:aws:apigateway:<region>::/restapis/<id>/stages/<stage>
    [stage_id] = resources(template, "AWS::ApiGateway::Stage")
    parts = props["ResourceArn"]["Fn::Join"][1]
    assert "::/restapis/" in parts
    assert {"Ref": stage_id} in parts


def test_web_acl_limits_each_client_ip_by_rate(template: dict[str, Any]) -> None:
    rule = _rules(template)["RateLimitPerIp"]
    assert rule["Action"] == {"Block": {}}
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement == {"AggregateKeyType": "IP", "Limit": DEFAULT_RATE_LIMIT, "EvaluationWindowSec": 300}
    assert rule["Priority"] == 0  # a flood is refused before the managed groups inspect it


def test_web_acl_uses_the_aws_managed_rule_groups(template: dict[str, Any]) -> None:
    groups = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]: rule
        for rule in _rules(template).values()
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert set(groups) == MANAGED_GROUPS
    for rule in groups.values():
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
        assert rule["OverrideAction"] == {"None": {}}  # the groups' own block actions apply
    # the common set's 8 KB body limit would refuse a 100-record predict batch: counted, not blocked
    overrides = groups["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert overrides == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]


def test_every_rule_and_the_web_acl_publish_metrics(template: dict[str, Any]) -> None:
    acl = _web_acl(template)
    configs = [acl["VisibilityConfig"], *(rule["VisibilityConfig"] for rule in acl["Rules"])]
    assert len(configs) == 5
    for config in configs:
        assert config["CloudWatchMetricsEnabled"] is True
        assert config["SampledRequestsEnabled"] is True
    assert len({config["MetricName"] for config in configs}) == len(configs)
    assert acl["Name"] == acl["VisibilityConfig"]["MetricName"]


def test_blocked_requests_alarm_watches_the_web_acl_and_feeds_serving(template: dict[str, Any]) -> None:
    acl = _web_acl(template)
    alarms = {
        lid: a["Properties"]
        for lid, a in resources(template, "AWS::CloudWatch::Alarm").items()
        if a["Properties"].get("MetricName") == "BlockedRequests"
    }
    [(alarm_id, alarm)] = alarms.items()
    assert alarm["Namespace"] == "AWS/WAFV2"
    dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dims["WebACL"] == acl["Name"]
    assert dims["Rule"] == "ALL"
    assert dims["Region"] == {"Ref": "AWS::Region"}
    assert not alarm.get("AlarmActions")  # only composites notify
    [serving] = [
        c["Properties"]
        for c in resources(template, "AWS::CloudWatch::CompositeAlarm").values()
        if c["Properties"]["AlarmName"] == "MlopsStack-serving-health"
    ]
    assert alarm_id in str(serving["AlarmRule"])


@pytest.fixture(scope="module")
def template_without_waf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from infra.synth import synthesize_template

    # `cdk deploy -c waf=false` passes text; cdk-nag runs during synthesis (APIG3 then needs its reason)
    return synthesize_template(tmp_path_factory.mktemp("nowaf"), context={"waf": "false"})


def test_waf_false_context_removes_the_web_acl_and_its_alarm(template_without_waf: dict[str, Any]) -> None:
    assert not resources(template_without_waf, WEB_ACL)
    assert not resources(template_without_waf, ASSOCIATION)
    names = {a["Properties"]["AlarmName"] for a in resources(template_without_waf, "AWS::CloudWatch::Alarm").values()}
    assert "MlopsStack-waf-blocked-requests" not in names


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, FirewallSettings(enabled=True, rate_limit=DEFAULT_RATE_LIMIT)),
        ({"waf": "false"}, FirewallSettings(enabled=False)),
        ({"waf": False}, FirewallSettings(enabled=False)),
        ({"waf": "TRUE", "wafRateLimit": "300"}, FirewallSettings(enabled=True, rate_limit=300)),
        ({"wafRateLimit": 10}, FirewallSettings(rate_limit=10)),
    ],
)
def test_firewall_settings_read_the_context(context: dict[str, Any], expected: FirewallSettings) -> None:
    assert firewall_settings(context) == expected


@pytest.mark.parametrize(
    ("context", "key"),
    [({"waf": "off"}, "waf"), ({"wafRateLimit": "many"}, "wafRateLimit"), ({"wafRateLimit": 9}, "wafRateLimit")],
)
def test_firewall_settings_refuse_bad_values_naming_the_key(context: dict[str, Any], key: str) -> None:
    with pytest.raises(FirewallContextError, match=rf"^{key}: "):
        firewall_settings(context)


def test_local_mode_declares_the_waf_types_not_emulated() -> None:
    assert NOT_EMULATED_TYPES[WEB_ACL]
    assert NOT_EMULATED_TYPES[ASSOCIATION]


def test_rate_limit_context_reaches_the_rule(tmp_path: Path) -> None:
    from infra.synth import synthesize_template

    template = synthesize_template(tmp_path, context={"wafRateLimit": "500"})
    assert _rules(template)["RateLimitPerIp"]["Statement"]["RateBasedStatement"]["Limit"] == 500


def test_pipeline_dashboard_graphs_blocked_requests_per_rule(template: dict[str, Any]) -> None:
    from tests.infra.test_monitoring import _dashboard

    acl = _web_acl(template)
    widgets = _dashboard(template, "MlopsStack-pipeline")["widgets"]
    [graph] = [w for w in widgets if w["properties"].get("title") == "Requests blocked by the web ACL, per rule"]
    rules = set()
    for metric in graph["properties"]["metrics"]:
        assert metric[:2] == ["AWS/WAFV2", "BlockedRequests"]
        dims = dict(zip(metric[2:-1:2], metric[3:-1:2], strict=False))
        assert dims["WebACL"] == acl["Name"]
        rules.add(dims["Rule"])
    assert rules == {rule["Name"] for rule in acl["Rules"]}
