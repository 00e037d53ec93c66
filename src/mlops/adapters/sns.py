"""Notifier on Amazon SNS: production changes to the alarm topic's subscribers."""

from __future__ import annotations

import json
from typing import Any

from mlops.adapters.aws import client

_SUBJECT_LIMIT = 100  # SNS rejects longer subjects


class SnsNotifier:
    def __init__(self, topic_arn: str, sns: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._sns = sns

    def notify(self, subject: str, message: dict[str, Any]) -> None:
        sns = self._sns or client("sns")
        sns.publish(
            TopicArn=self.topic_arn,
            Subject=subject[:_SUBJECT_LIMIT],
            Message=json.dumps(message, sort_keys=True, default=str),
        )
