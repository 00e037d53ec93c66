"""TrainingStarter on Step Functions: one execution of the managed-training state machine per name."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mlops.adapters.aws import client
from mlops.training.engine import Started


class StepFunctionsStarter:
    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, document: dict[str, Any]) -> Started:
        """Start the execution `name` (at most once: a name already used starts nothing)."""
        try:
            response = client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(document, sort_keys=True)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return Started(self._execution_arn(name), new=False)
            raise
        # a duplicate of a running execution (same name and input) gets its ARN back: nothing new starts,
        # but Step Functions does not say which it was
        return Started(response["executionArn"], new=True)

    def _execution_arn(self, name: str) -> str:
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"
