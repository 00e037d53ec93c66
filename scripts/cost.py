"""What serving costs: per million predictions (single records and 100-record batches) and the stack's
idle cost, from the synthesized template, measured handler durations and public prices.

    .venv/bin/python scripts/cost.py [--iterations 2000] [--predictions-per-month 10000000]
        [--template cdk.out/MlopsStack.template.json] [--cpu-scale auto|<factor>]

- Memory, architecture and SnapStart of predict come from the template (infra/catalog.py sets them),
  and so does the list of resources priced for the idle bill: what is deployed is what is priced.
- Handler durations are measured here (scripts/bench_inference.py's stand-in: moto, the churn model
  trained and promoted, the predict handler given API Gateway REST events), then scaled to the
  function's CPU share: Lambda gives a full vCPU at 1,769 MB and proportionally less below, and the
  handler is single-threaded, so a 1,024 MB function runs it ~1.73x slower than one core here.
- Prices: one dated table (PRICES), us-east-1, with the page each comes from.
The alternatives are priced for the same handler work: a SageMaker serverless endpoint of the same
memory, and one always-on real-time instance (ml.c6i.large, ml.t2.medium) at the given traffic.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from infra.catalog import SOURCE_METADATA_KEY  # noqa: E402

BATCH_SIZES = (1, 100)
FULL_VCPU_MB = 1769  # Lambda: one full vCPU at 1,769 MB, CPU proportional to memory
SECONDS_PER_MONTH = 730 * 3600  # AWS prices a month as 730 hours
ASSUMED_IDLE_RUN_SECONDS = 1.0  # a scheduled run with nothing new to read (assumed, not measured)
# Bytes per request and answer, for per-GB charges (1 record: ~200 B in, ~150 B out; log lines).
PAYLOAD_BYTES = {1: (200, 150), 100: (17_000, 14_000)}
PLATFORM_LOG_BYTES = 350  # Lambda's START/END/REPORT lines per invocation
ACCESS_LOG_BYTES = 450  # one JSON access-log line per API request (the stage's format)
XRAY_SAMPLED_SHARE = 0.05  # X-Ray's default rule: the first request each second, then 5 %

# ---- prices: us-east-1, on-demand, checked 2026-12-03 --------------------------------------------
PRICES_CHECKED = "2026-12-03"


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


LAMBDA_PRICING = "https://aws.amazon.com/lambda/pricing/"
PRICES: dict[str, Price] = {
    "lambda_gb_second_x86": Price(0.0000166667, "per GB-second (x86, first 6 billion GB-s a month)", LAMBDA_PRICING),
    "lambda_gb_second_arm": Price(0.0000133334, "per GB-second (Arm, first 7.5 billion GB-s a month)", LAMBDA_PRICING),
    "lambda_requests": Price(0.20 / 1e6, "per request", LAMBDA_PRICING),
    "snapstart_cache_gb_second": Price(0.0000015046, "per GB-second a SnapStart version is cached (min 3 h)", LAMBDA_PRICING),
    "snapstart_restore_gb": Price(0.0001397998, "per GB restored (each new environment)", LAMBDA_PRICING),
    "apigw_rest_request": Price(3.50 / 1e6, "per REST API request (first 333 million a month)", "https://aws.amazon.com/api-gateway/pricing/"),
    "waf_web_acl_month": Price(5.00, "per web ACL per month", "https://aws.amazon.com/waf/pricing/"),
    "waf_rule_month": Price(1.00, "per rule or rule group per web ACL per month", "https://aws.amazon.com/waf/pricing/"),
    "waf_request": Price(0.60 / 1e6, "per request inspected", "https://aws.amazon.com/waf/pricing/"),
    "cw_alarm_metric_month": Price(0.10, "per standard-resolution alarm metric per month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_alarm_high_res_month": Price(0.30, "per high-resolution alarm metric per month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_composite_alarm_month": Price(0.50, "per composite alarm per month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_dashboard_month": Price(3.00, "per dashboard per month (the account's first 3 are free)", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_logs_ingest_gb": Price(0.50, "per GB of log data ingested", "https://aws.amazon.com/cloudwatch/pricing/"),
    "xray_trace": Price(5.00 / 1e6, "per trace recorded", "https://aws.amazon.com/xray/pricing/"),
    "kms_key_month": Price(1.00, "per customer managed key per month (+$1 for each of its first two rotations)", "https://aws.amazon.com/kms/pricing/"),
    "secret_month": Price(0.40, "per secret per month", "https://aws.amazon.com/secrets-manager/pricing/"),
    "s3_put": Price(0.005 / 1000, "per PUT request (S3 Standard)", "https://aws.amazon.com/s3/pricing/"),
    "dynamodb_wcu_hour": Price(0.00065, "per provisioned write capacity unit-hour", "https://aws.amazon.com/dynamodb/pricing/provisioned/"),
    "dynamodb_rcu_hour": Price(0.00013, "per provisioned read capacity unit-hour", "https://aws.amazon.com/dynamodb/pricing/provisioned/"),
    "apigw_cache_hour_0_5gb": Price(0.020, "per hour of a 0.5 GB stage cache", "https://aws.amazon.com/api-gateway/pricing/"),
    "nat_gateway_hour": Price(0.045, "per NAT gateway hour", "https://aws.amazon.com/vpc/pricing/"),
    "sagemaker_serverless_gb_second": Price(0.00002, "per GB-second of serverless inference", "https://aws.amazon.com/sagemaker/pricing/"),
    "sagemaker_data_gb": Price(0.016, "per GB in or out of a serverless endpoint", "https://aws.amazon.com/sagemaker/pricing/"),
    "sagemaker_ml_c6i_large_hour": Price(0.102, "per hour, ml.c6i.large real-time inference (2 vCPU, 4 GiB)", "https://aws.amazon.com/sagemaker/pricing/"),
    "sagemaker_ml_t2_medium_hour": Price(0.056, "per hour, ml.t2.medium real-time inference (2 vCPU, 4 GiB)", "https://aws.amazon.com/sagemaker/pricing/"),
}  # fmt: skip
REAL_TIME_INSTANCES = {
    "ml.c6i.large": ("sagemaker_ml_c6i_large_hour", 2),
    "ml.t2.medium": ("sagemaker_ml_t2_medium_hour", 2),
}


def price(key: str) -> float:
    return PRICES[key].usd


# ---- the stack's idle bill: every resource type of the template, priced or free with a reason -------


@dataclass(frozen=True)
class IdleCost:
    logical_id: str
    resource_type: str
    monthly_usd: float
    note: str


Resources = dict[str, dict[str, Any]]
# Capacity billed for as long as it exists (by the hour or second), unlike a flat monthly fee per
# resource: the idle bill the stack aims to have none of.
BY_TIME = "capacity billed by the hour"
IdleRule = Callable[[str, dict[str, Any], Resources], tuple[float, str]]


def _free(reason: str) -> IdleRule:
    return lambda _lid, _resource, _all: (0.0, reason)


def _alarm(_lid: str, resource: dict[str, Any], _all: Resources) -> tuple[float, str]:
    props = resource["Properties"]
    metrics = [m for m in props.get("Metrics", []) if "MetricStat" in m] or [props]
    high_res = any((m.get("MetricStat", m).get("Period", props.get("Period", 60)) or 60) < 60 for m in metrics)
    key = "cw_alarm_high_res_month" if high_res else "cw_alarm_metric_month"
    return len(metrics) * price(key), f"{len(metrics)} alarm metric(s)"


def _web_acl(_lid: str, resource: dict[str, Any], _all: Resources) -> tuple[float, str]:
    rules = resource["Properties"].get("Rules", [])
    priced_groups = {"AWSManagedRulesBotControlRuleSet", "AWSManagedRulesATPRuleSet", "AWSManagedRulesACFPRuleSet"}
    for rule in rules:
        group = rule["Statement"].get("ManagedRuleGroupStatement", {}).get("Name")
        if group in priced_groups:
            raise SystemExit(f"{group} has its own subscription and request price: add it to scripts/cost.py")
    monthly = price("waf_web_acl_month") + len(rules) * price("waf_rule_month")
    return monthly, f"web ACL + {len(rules)} rules (managed groups: no extra fee)"


def _function(lid: str, resource: dict[str, Any], resources: Resources) -> tuple[float, str]:
    if "SnapStart" not in resource["Properties"]:
        return 0.0, "billed per request and GB-second only"
    versions = [
        v
        for v in resources.values()
        if v["Type"] == "AWS::Lambda::Version" and v["Properties"]["FunctionName"] == {"Ref": lid}
    ]
    gb = resource["Properties"].get("MemorySize", 128) / 1024
    monthly = len(versions) * gb * SECONDS_PER_MONTH * price("snapstart_cache_gb_second")
    return monthly, f"SnapStart cache of {len(versions)} published version(s) at {gb:.2f} GB: {BY_TIME}"


def _schedule(_lid: str, resource: dict[str, Any], resources: Resources) -> tuple[float, str]:
    props = resource["Properties"]
    expression = props.get("ScheduleExpression")
    if not expression:
        return 0.0, "event rule: free (its targets bill per event)"
    runs = _runs_per_month(expression)
    monthly = 0.0
    for target in props.get("Targets", []):
        function = resources.get(target["Arn"].get("Fn::GetAtt", [""])[0]) if isinstance(target["Arn"], dict) else None
        if function is None or function["Type"] != "AWS::Lambda::Function":
            continue
        gb = function["Properties"].get("MemorySize", 128) / 1024
        monthly += runs * (price("lambda_requests") + ASSUMED_IDLE_RUN_SECONDS * gb * price("lambda_gb_second_x86"))
    return monthly, f"{expression}: {runs:.0f} runs a month at an assumed {ASSUMED_IDLE_RUN_SECONDS:.0f} s each"


def _runs_per_month(expression: str) -> float:
    if expression.startswith("rate("):
        amount, unit = expression[5:-1].split()
        seconds = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}[unit]
        return SECONDS_PER_MONTH / (int(amount) * seconds)
    return 730.0  # cron(...): priced as hourly, an upper bound for the schedules this stack uses


def _table(_lid: str, resource: dict[str, Any], _all: Resources) -> tuple[float, str]:
    props = resource["Properties"]
    if props.get("BillingMode") == "PAY_PER_REQUEST" or (
        "BillingMode" not in props and "ProvisionedThroughput" not in props
    ):
        return 0.0, "on-demand: per request; storage (and PITR) per GB-month"
    throughput = props.get("ProvisionedThroughput", {})
    hourly = throughput.get("ReadCapacityUnits", 0) * price("dynamodb_rcu_hour") + throughput.get(
        "WriteCapacityUnits", 0
    ) * price("dynamodb_wcu_hour")
    return hourly * 730, f"PROVISIONED capacity: {BY_TIME}"


def _stage(_lid: str, resource: dict[str, Any], _all: Resources) -> tuple[float, str]:
    if resource["Properties"].get("CacheClusterEnabled"):
        return price("apigw_cache_hour_0_5gb") * 730, f"stage cache: {BY_TIME}"
    return 0.0, "no stage cache: per request only"


IDLE_RULES: dict[str, IdleRule] = {
    "AWS::WAFv2::WebACL": _web_acl,
    "AWS::WAFv2::WebACLAssociation": _free("association: free"),
    "AWS::KMS::Key": lambda *_: (price("kms_key_month"), "customer managed key (+ requests)"),
    "AWS::KMS::Alias": _free("free"),
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::CompositeAlarm": lambda *_: (price("cw_composite_alarm_month"), "composite alarm"),
    "AWS::CloudWatch::Dashboard": lambda *_: (price("cw_dashboard_month"), "dashboard"),
    "AWS::SecretsManager::Secret": lambda *_: (price("secret_month"), "secret"),
    "AWS::DynamoDB::Table": _table,
    "AWS::DynamoDB::GlobalTable": _table,
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::Version": _free("priced with its function (SnapStart cache)"),
    "AWS::Lambda::Alias": _free("free"),
    "AWS::Lambda::Permission": _free("free"),
    "AWS::Lambda::LayerVersion": _free("free (counts toward the 75 GB code storage quota)"),
    "AWS::Lambda::EventInvokeConfig": _free("free"),
    "AWS::Lambda::EventSourceMapping": _free("free (its function bills per invocation)"),
    "AWS::Events::Rule": _schedule,
    "AWS::Events::EventBus": _free("custom events billed per million published"),
    "AWS::Scheduler::Schedule": _free("per invocation beyond the free 14 million a month"),
    "AWS::S3::Bucket": _free("storage per GB-month and requests only"),
    "AWS::S3::BucketPolicy": _free("free"),
    "AWS::SQS::Queue": _free("per request only"),
    "AWS::SQS::QueuePolicy": _free("free"),
    "AWS::SNS::Topic": _free("per message only"),
    "AWS::SNS::TopicPolicy": _free("free"),
    "AWS::SNS::Subscription": _free("free"),
    "AWS::Logs::LogGroup": _free("ingestion per GB and storage per GB-month only"),
    "AWS::Logs::MetricFilter": _free("free (its metric is a custom metric when data arrives)"),
    "AWS::IAM::Role": _free("free"),
    "AWS::IAM::Policy": _free("free"),
    "AWS::IAM::ManagedPolicy": _free("free"),
    "AWS::ApiGateway::RestApi": _free("per request only"),
    "AWS::ApiGateway::Stage": _stage,
    "AWS::ApiGateway::Deployment": _free("free"),
    "AWS::ApiGateway::Resource": _free("free"),
    "AWS::ApiGateway::Method": _free("free"),
    "AWS::ApiGateway::Model": _free("free"),
    "AWS::ApiGateway::RequestValidator": _free("free"),
    "AWS::ApiGateway::GatewayResponse": _free("free"),
    "AWS::ApiGateway::Account": _free("free"),
    "AWS::ApiGateway::ApiKey": _free("free"),
    "AWS::ApiGateway::UsagePlan": _free("free"),
    "AWS::ApiGateway::UsagePlanKey": _free("free"),
    "AWS::StepFunctions::StateMachine": _free("standard workflows: per state transition only"),
    "AWS::Batch::ComputeEnvironment": _free("Fargate/managed: billed per job's vCPU and memory seconds"),
    "AWS::Batch::JobQueue": _free("free"),
    "AWS::Batch::JobDefinition": _free("free"),
    "AWS::ECR::Repository": _free("storage per GB-month"),
    "AWS::EC2::NatGateway": lambda *_: (price("nat_gateway_hour") * 730, f"NAT gateway: {BY_TIME}"),
    "Custom::S3BucketNotifications": _free("deploy-time custom resource (CDK's function runs at deploy only)"),
    "AWS::CDK::Metadata": _free("CDK bookkeeping"),
}


def idle_costs(template: dict[str, Any]) -> list[IdleCost]:
    """Each resource's monthly cost with no traffic; SystemExit naming any type this table does not know."""
    resources: Resources = template["Resources"]
    if unknown := sorted({r["Type"] for r in resources.values()} - set(IDLE_RULES)):
        raise SystemExit(f"resource types without an idle price in scripts/cost.py: {', '.join(unknown)}")
    costs = []
    for lid, resource in resources.items():
        monthly, note = IDLE_RULES[resource["Type"]](lid, resource, resources)
        costs.append(IdleCost(lid, resource["Type"], monthly, note))
    return costs


# ---- per million predictions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Serving:
    memory_mb: int
    arm: bool
    snap_start: bool
    waf: bool
    tracing: bool


def serving_of(template: dict[str, Any]) -> Serving:
    resources = template["Resources"]
    predict = next(
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r.get("Metadata", {}).get(SOURCE_METADATA_KEY) == "functions/predict"
    )
    return Serving(
        memory_mb=int(predict["MemorySize"]),
        arm=predict.get("Architectures") == ["arm64"],
        snap_start="SnapStart" in predict,
        waf=any(r["Type"] == "AWS::WAFv2::WebACL" for r in resources.values()),
        tracing=predict.get("TracingConfig", {}).get("Mode") == "Active",
    )


@dataclass(frozen=True)
class Line:
    item: str
    usd: float


def lambda_lines(serving: Serving, batch: int, handler_ms: float) -> list[Line]:
    """Cost lines of one million predictions answered in requests of `batch` records."""
    requests = 1e6 / batch
    gb = serving.memory_mb / 1024
    gb_second = price("lambda_gb_second_arm" if serving.arm else "lambda_gb_second_x86")
    billed_ms = math.ceil(handler_ms)  # Lambda bills duration in 1 ms steps
    into, out = PAYLOAD_BYTES[batch]
    lines = [
        Line("Lambda requests", requests * price("lambda_requests")),
        Line(f"Lambda duration ({billed_ms} ms billed x {gb:.2f} GB)", requests * billed_ms / 1000 * gb * gb_second),
        Line("API Gateway REST requests", requests * price("apigw_rest_request")),
    ]
    if serving.waf:
        lines.append(Line("WAF requests inspected", requests * price("waf_request")))
    log_gb = requests * (PLATFORM_LOG_BYTES + ACCESS_LOG_BYTES) / 1e9
    lines.append(Line("CloudWatch Logs (platform + access lines)", log_gb * price("cw_logs_ingest_gb")))
    if serving.tracing:
        lines.append(
            Line(
                f"X-Ray traces ({XRAY_SAMPLED_SHARE:.0%} sampled)", requests * XRAY_SAMPLED_SHARE * price("xray_trace")
            )
        )
    # captures: at most one object per 500 sampled records (CAPTURE_MAX_RECORDS), bounded by every record
    lines.append(Line("S3 PUTs for captures (upper bound)", 1e6 / 500 * price("s3_put")))
    del into, out  # request size does not change Lambda or API Gateway REST prices
    return lines


def sagemaker_serverless(serving: Serving, batch: int, handler_ms: float) -> float:
    requests = 1e6 / batch
    into, out = PAYLOAD_BYTES[batch]
    compute = requests * handler_ms / 1000 * serving.memory_mb / 1024 * price("sagemaker_serverless_gb_second")
    data = requests * (into + out) / 1e9 * price("sagemaker_data_gb")
    return compute + data


def real_time(instance: str, predictions_per_month: float, batch: int, handler_ms_one_core: float) -> tuple[float, int]:
    """(cost per million predictions, instances needed) for always-on instances at this traffic."""
    key, vcpus = REAL_TIME_INSTANCES[instance]
    busy_seconds = predictions_per_month / batch * handler_ms_one_core / 1000
    # at most 50 % busy on average: peaks and the serving stack around the model need the rest
    instances = max(1, math.ceil(busy_seconds / (SECONDS_PER_MONTH * vcpus * 0.5)))
    monthly = instances * 730 * price(key)
    return monthly / (predictions_per_month / 1e6), instances


# ---- measurement (scripts/bench_inference.py's stand-in and timer) ---------------------------------


def measure_handler_ms(iterations: int) -> dict[int, float]:
    """p50 milliseconds of the predict handler for each batch size, warm, one core of this machine."""
    from scripts.bench_inference import _Context, deployed_churn_model, percentiles, rest_event

    with deployed_churn_model():
        from mlops_local.handlers import load_handler_module
        from mlops_local.sample_data import churn_features, records

        handler = load_handler_module("predict")
        measured = {}
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # EMF lines of capture flushes
                for batch in BATCH_SIZES:
                    event = rest_event(json.dumps({"records": records(churn_features(batch, seed=batch))}))
                    if handler.lambda_handler(event, _Context())["statusCode"] != 200:
                        raise SystemExit(f"predict refused the {batch}-record benchmark request")
                    rounds = max(50, iterations // batch)
                    measured[batch] = percentiles(
                        lambda event=event: handler.lambda_handler(event, _Context()), rounds, warmup=min(300, rounds)
                    )[0]
        finally:
            handler.service.shutdown()
    return measured


# ---- report -------------------------------------------------------------------------------------------


def load_template(path: Path | None) -> dict[str, Any]:
    if path is not None:
        return json.loads(path.read_text())
    from infra.synth import synthesize_template

    return synthesize_template()


def render(
    template: dict[str, Any], measured_ms: dict[int, float], cpu_scale: float, predictions_per_month: float
) -> str:
    serving = serving_of(template)
    out = [
        f"prices: us-east-1 on-demand, checked {PRICES_CHECKED} (PRICES in scripts/cost.py, with sources)",
        f"predict: {serving.memory_mb} MB {'arm64' if serving.arm else 'x86_64'}, SnapStart "
        f"{'on' if serving.snap_start else 'off'}, WAF {'on' if serving.waf else 'off'}, "
        f"X-Ray {'active' if serving.tracing else 'off'}; CPU scale {cpu_scale:.2f}x (this machine's core -> Lambda)",
        "",
    ]
    for batch in BATCH_SIZES:
        handler_ms = measured_ms[batch] * cpu_scale
        lines = lambda_lines(serving, batch, handler_ms)
        total = sum(line.usd for line in lines)
        out.append(
            f"per million predictions, {batch}-record requests ({1e6 / batch:,.0f} requests): handler p50 "
            f"{measured_ms[batch]:.3f} ms here -> {handler_ms:.3f} ms in Lambda"
        )
        out += [f"  {line.item:<46} ${line.usd:>10.4f}" for line in lines]
        out.append(f"  {'total, this stack':<46} ${total:>10.4f}")
        serverless = sagemaker_serverless(serving, batch, handler_ms)
        out.append(f"  {'SageMaker serverless endpoint alone':<46} ${serverless:>10.4f}  (same memory and work)")
        for instance in REAL_TIME_INSTANCES:
            per_million, count = real_time(instance, predictions_per_month, batch, measured_ms[batch])
            label = f"SageMaker real-time endpoint, {count}x {instance}"
            out.append(f"  {label:<46} ${per_million:>10.4f}  at {predictions_per_month:,.0f} predictions a month")
        out.append("")
    out.append(
        "Lambda's billed duration also holds the runtime's own per-invocation work (about 1 ms, not measured\n"
        "here); the SageMaker endpoints are priced for the same handler work (their model server's own time per\n"
        "request is not included) and alone (SigV4 callers: no API keys, usage plan or WAF in front)."
    )
    gb = serving.memory_mb / 1024
    out.append(
        f"SnapStart: each new environment restores {gb:.2f} GB (${gb * price('snapstart_restore_gb'):.6f}); "
        f"the cached version costs ${gb * SECONDS_PER_MONTH * price('snapstart_cache_gb_second'):.2f} a month"
    )
    out.append("")
    costs = idle_costs(template)
    billed = [c for c in costs if c.monthly_usd > 0]
    out.append(f"idle cost (no traffic), {len(costs)} resources of {len({c.resource_type for c in costs})} types:")
    by_type: dict[str, list[IdleCost]] = {}
    for cost in billed:
        by_type.setdefault(cost.resource_type, []).append(cost)
    for resource_type, items in sorted(by_type.items(), key=lambda kv: -sum(c.monthly_usd for c in kv[1])):
        notes = sorted({c.note for c in items})
        out.append(
            f"  {resource_type:<34} {len(items):>3} x  ${sum(c.monthly_usd for c in items):>8.2f}/month  {'; '.join(notes)[:90]}"
        )
    free_types = sorted({c.resource_type for c in costs} - set(by_type))
    out.append(f"  free when idle: {', '.join(free_types)}")
    out.append(f"  total: ${sum(c.monthly_usd for c in costs):.2f}/month")
    hourly = [c for c in costs if BY_TIME in c.note]
    out.append(
        "  capacity billed by the hour: "
        + (", ".join(f"{c.logical_id} ({c.resource_type}, ${c.monthly_usd:.2f}/month)" for c in hourly) or "nothing")
    )
    return "\n".join(out)


def cpu_scale_for(memory_mb: int) -> float:
    return max(1.0, FULL_VCPU_MB / memory_mb)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2_000, help="single-record requests timed (batches: /100)")
    parser.add_argument("--predictions-per-month", type=float, default=10_000_000)
    parser.add_argument("--template", type=Path, help="a synthesized template (default: synthesize now)")
    parser.add_argument("--cpu-scale", default="auto", help="handler time in Lambda / here (auto: from memory)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    template = load_template(args.template)
    serving = serving_of(template)
    scale = cpu_scale_for(serving.memory_mb) if args.cpu_scale == "auto" else float(args.cpu_scale)
    idle_costs(template)  # an unpriced resource type fails before the measurement
    measured = measure_handler_ms(args.iterations)
    print(render(template, measured, scale, args.predictions_per_month))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
