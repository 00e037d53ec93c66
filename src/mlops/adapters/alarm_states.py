"""Alarm states from CloudWatch (the canary bake check asks before promoting)."""

from __future__ import annotations

from typing import Any

from mlops.adapters.aws import client


class CloudWatchAlarmStates:
    def __init__(self, cloudwatch: Any | None = None) -> None:
        self._cloudwatch = cloudwatch

    def in_alarm(self, names: list[str]) -> list[str]:
        """Those of `names` whose metric alarm is in ALARM (an alarm not created yet is not)."""
        cloudwatch = self._cloudwatch or client("cloudwatch")
        response = cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"])
        return sorted(a["AlarmName"] for a in response.get("MetricAlarms", []) if a.get("StateValue") == "ALARM")
