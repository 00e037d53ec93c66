"""Notifier on Amazon SNS for dataset outcomes: the human summary as plain text."""

from __future__ import annotations

from typing import Any

from mlops.adapters.aws import client

_SUBJECT_LIMIT = 100  # SNS rejects longer subjects
_MESSAGE_LIMIT = 250_000  # SNS messages are at most 256 KB


class SnsSummaryNotifier:
    def __init__(self, topic_arn: str, sns: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._sns = sns

    def notify(self, subject: str, message: str) -> None:
        sns = self._sns or client("sns")
        sns.publish(TopicArn=self.topic_arn, Subject=subject[:_SUBJECT_LIMIT], Message=message[:_MESSAGE_LIMIT])
