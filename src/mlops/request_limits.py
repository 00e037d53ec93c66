"""What one request to the API may carry and how fast a client may send: the limits the stack
deploys (infra reads these) and the predict route's OpenAPI description states."""

from __future__ import annotations

API_GATEWAY_PAYLOAD_MB = 10  # API Gateway answers 413 above it
# a synchronous Lambda invoke carries at most 6 MB: the whole proxy event (headers included), so the
# body's share is a little less; API Gateway's 10 MB is never reached by a body Lambda accepts
LAMBDA_PAYLOAD_MB = 6
USAGE_PLAN_RATE_PER_SECOND = 50  # steady, per API key (and the stage's default)
USAGE_PLAN_BURST = 100
# each client key issued through the models API (/clients): its usage plan's throttle and daily quota
CLIENT_KEY_RATE_PER_SECOND = 20
CLIENT_KEY_BURST = 40
CLIENT_KEY_QUOTA_PER_DAY = 200_000
WAF_RATE_LIMIT_PER_IP = 2000  # the web ACL's default per client IP; deploy-time `-c wafRateLimit=<n>`
WAF_RATE_WINDOW_SECONDS = 300


def predict_limits_description(max_records: int) -> str:
    """The predict route's limits, for its OpenAPI description."""
    window_minutes = WAF_RATE_WINDOW_SECONDS // 60
    return (
        f"Limits: at most {max_records:,} records per request (400 above it, naming the count). "
        f"The body must stay under Lambda's {LAMBDA_PAYLOAD_MB} MB synchronous payload (the whole request "
        f"event counts); API Gateway refuses bodies over {API_GATEWAY_PAYLOAD_MB} MB with 413. Each API key's "
        f"usage plan allows {USAGE_PLAN_RATE_PER_SECOND} requests per second with bursts of {USAGE_PLAN_BURST} "
        f"(429 above it). When the stack's web ACL is on, more than {WAF_RATE_LIMIT_PER_IP:,} requests per "
        f"client IP in {window_minutes} minutes (the deployed default) are refused with 403 until the rate falls."
    )
