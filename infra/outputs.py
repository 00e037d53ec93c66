"""Stable CloudFormation output names: scripts, local mode and tests read them from here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names are read by the CLI too, which should not start jsii to learn them
    from aws_cdk import CfnOutput, Stack

STACK_NAME = "MlopsStack"

DATA_BUCKET_NAME = "DataBucketName"
ARTIFACT_BUCKET_NAME = "ArtifactBucketName"
ACCESS_LOG_BUCKET_NAME = "AccessLogBucketName"
REGISTRY_TABLE_NAME = "RegistryTableName"
LEDGER_TABLE_NAME = "LedgerTableName"
IDEMPOTENCY_TABLE_NAME = "IdempotencyTableName"
EVENT_BUS_NAME = "EventBusName"
DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
API_URL = "ApiUrl"
API_KEY_ID = "ApiKeyId"
ALARM_TOPIC_ARN = "AlarmTopicArn"

ALL = (
    DATA_BUCKET_NAME,
    ARTIFACT_BUCKET_NAME,
    ACCESS_LOG_BUCKET_NAME,
    REGISTRY_TABLE_NAME,
    LEDGER_TABLE_NAME,
    IDEMPOTENCY_TABLE_NAME,
    EVENT_BUS_NAME,
    DEAD_LETTER_QUEUE_URL,
    API_URL,
    API_KEY_ID,
    ALARM_TOPIC_ARN,
)


def add_output(stack: Stack, name: str, value: str, description: str) -> CfnOutput:
    """An output whose logical id is exactly `name` (one of the constants above)."""
    from aws_cdk import CfnOutput

    if name not in ALL:
        raise ValueError(f"{name} is not a declared output name")
    output = CfnOutput(stack, name, value=value, description=description)
    output.override_logical_id(name)
    return output
