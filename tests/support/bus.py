"""Observe the project's bus as a consumer would: a rule with an SQS target, then read the queue."""

from __future__ import annotations

import json
from typing import Any

import boto3

from mlops.events import EVENT_SOURCE


def tap_bus(bus_name: str, detail_types: list[str] | None = None, *, name: str = "bus-tap") -> str:
    """A queue receiving the bus's `mlops` events (of `detail_types`, if given); returns its URL."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern: dict[str, list[str]] = {"source": [EVENT_SOURCE]}
    if detail_types:
        pattern["detail-type"] = list(detail_types)
    events.put_rule(Name=name, EventBusName=bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every event waiting in the queue (removed as read)."""
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        messages.extend(json.loads(m["Body"]) for m in batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch]
        )
    return messages
