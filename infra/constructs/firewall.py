"""A WAFv2 web ACL (REGIONAL) on the API stage: a per-IP rate limit and AWS managed rule groups.

On by default; `cdk deploy -c waf=false` turns it off for development (the API then relies on its
usage-plan throttle alone). `-c wafRateLimit=<n>` sets the per-IP limit (requests per five minutes).
Every rule publishes CloudWatch metrics and samples; the blocked-requests alarm is in alarms.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from mlops.request_limits import WAF_RATE_LIMIT_PER_IP, WAF_RATE_WINDOW_SECONDS

WAF_CONTEXT_KEY = "waf"
RATE_LIMIT_CONTEXT_KEY = "wafRateLimit"
# per client IP per five minutes: about 6.7 requests/s sustained, far above one interactive client
# and well under the stage throttle (50/s), so one address cannot take the whole stage
DEFAULT_RATE_LIMIT = WAF_RATE_LIMIT_PER_IP
RATE_WINDOW_SECONDS = WAF_RATE_WINDOW_SECONDS
MIN_RATE_LIMIT = 10  # WAF's floor for rate-based rules
RATE_RULE = "RateLimitPerIp"
# (rule name, AWS managed rule group); the order is the evaluation priority after the rate rule
MANAGED_RULE_GROUPS = (
    ("AwsIpReputation", "AWSManagedRulesAmazonIpReputationList"),
    ("AwsKnownBadInputs", "AWSManagedRulesKnownBadInputsRuleSet"),
    ("AwsCommonRules", "AWSManagedRulesCommonRuleSet"),
)
RULE_NAMES = (RATE_RULE, *(name for name, _ in MANAGED_RULE_GROUPS))  # each one's CloudWatch `Rule`
# The common rule set blocks bodies over 8 KB: a 100-record predict batch is larger. Counted, not
# blocked; API Gateway (10 MB) and Lambda (6 MB) bound the body, the function bounds the records.
COUNTED_COMMON_RULES = ("SizeRestrictions_BODY",)


class FirewallContextError(ValueError):
    """A deploy-time WAF setting is not what the stack accepts (the message names the key)."""


@dataclass(frozen=True)
class FirewallSettings:
    enabled: bool = True
    rate_limit: int = DEFAULT_RATE_LIMIT


def firewall_settings(context: Mapping[str, Any]) -> FirewallSettings:
    """Parse the `waf` and `wafRateLimit` context values (CLI values arrive as text)."""
    enabled = context.get(WAF_CONTEXT_KEY)
    if enabled is None:
        enabled = True
    elif isinstance(enabled, str) and enabled.strip().lower() in ("true", "false"):
        enabled = enabled.strip().lower() == "true"
    elif not isinstance(enabled, bool):
        raise FirewallContextError(f"{WAF_CONTEXT_KEY}: expected true or false, got {enabled!r}")
    limit = context.get(RATE_LIMIT_CONTEXT_KEY, DEFAULT_RATE_LIMIT)
    try:
        limit = int(str(limit).strip())
    except ValueError:
        raise FirewallContextError(f"{RATE_LIMIT_CONTEXT_KEY}: expected a whole number, got {limit!r}") from None
    if limit < MIN_RATE_LIMIT:
        raise FirewallContextError(f"{RATE_LIMIT_CONTEXT_KEY}: at least {MIN_RATE_LIMIT} (WAF's minimum), got {limit}")
    return FirewallSettings(enabled=enabled, rate_limit=limit)


def firewall_settings_from_context(scope: Construct) -> FirewallSettings:
    keys = (WAF_CONTEXT_KEY, RATE_LIMIT_CONTEXT_KEY)
    return firewall_settings({key: value for key in keys if (value := scope.node.try_get_context(key)) is not None})


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


class ApiFirewall(Construct):
    """The web ACL and its association with the stage; `web_acl_metric_name` is its CloudWatch `WebACL`."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: apigw.Stage, settings: FirewallSettings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.web_acl_metric_name = f"{Stack.of(self).stack_name}-api"
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=RATE_RULE,
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP", limit=settings.rate_limit, evaluation_window_sec=RATE_WINDOW_SECONDS
                    )
                ),
                visibility_config=_visibility(RATE_RULE),
            )
        ]
        for priority, (rule_name, group) in enumerate(MANAGED_RULE_GROUPS, start=1):
            overrides = None
            if group == "AWSManagedRulesCommonRuleSet":
                overrides = [
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=name, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for name in COUNTED_COMMON_RULES
                ]
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name=rule_name,
                    priority=priority,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name=group, rule_action_overrides=overrides
                        )
                    ),
                    visibility_config=_visibility(rule_name),
                )
            )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            # the name and the metric name are one: CloudWatch's `WebACL` dimension is this value
            name=self.web_acl_metric_name,
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            description="mlops API: per-IP rate limit and AWS managed rule groups",
            rules=rules,
            visibility_config=_visibility(self.web_acl_metric_name),
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
