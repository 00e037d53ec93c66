"""Local mode's Step Functions: the template's state machines, run in-process when started.

moto records executions but runs none; this runner watches each state machine's RUNNING executions
on the stand-in and walks the template's own definition: a `sagemaker:createTrainingJob.sync` task
runs the training job's container entrypoint (the function folder the image is built from, found
by the image URI train_model's function uses) in a subprocess with the job's environment; a
`lambda:invoke` task invokes the function in-process; Catch, ResultPath, Succeed and Fail as
Step Functions applies them. The execution is then stopped on the stand-in with the outcome as its
cause (moto cannot mark it succeeded or failed), so a duplicate start by name starts nothing.

Only what the template uses is interpreted; anything else is a TemplateError at start.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_local.deployment import LocalDeployment
from mlops_local.functions import SOURCE_METADATA_KEY, FunctionRunner
from mlops_local.handlers import REPO_ROOT
from mlops_local.template import TemplateError

log = logging.getLogger("mlops_local")

TRAINING_JOB = ":states:::sagemaker:createTrainingJob.sync"
LAMBDA_INVOKE = ":states:::lambda:invoke"
IMAGE_CODE_ROOT = "/var/task/"  # where the Dockerfiles copy a function's folder (LAMBDA_TASK_ROOT)
OUTPUT_LINES = 20  # of a failed job's output, in the error's cause


class StateFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


@dataclass(frozen=True)
class Outcome:
    status: str  # SUCCEEDED | FAILED
    output: dict[str, Any]
    error: str = ""
    cause: str = ""


@dataclass(frozen=True)
class LocalStateMachine:
    logical_id: str
    arn: str
    definition: dict[str, Any]


class StateMachineRunner:
    def __init__(self, deployment: LocalDeployment, runner: FunctionRunner, log_dir: Path) -> None:
        self.deployment = deployment
        self.runner = runner
        self.log_dir = log_dir
        self.machines = [
            LocalStateMachine(
                resource.logical_id,
                deployment.function_arn(resource.logical_id),
                json.loads(deployment.resolve(resource.properties["DefinitionString"])),
            )
            for resource in deployment.template.of_type("AWS::StepFunctions::StateMachine")
        ]
        for machine in self.machines:
            _check_supported(machine)
        self.images = self._image_sources()
        self.history: list[tuple[str, Outcome]] = []  # (execution ARN, outcome), in completion order
        self._handled: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sfn = deployment.client("stepfunctions")

    def start(self, poll_seconds: float = 0.5) -> None:
        if not self.machines:
            return
        self._thread = threading.Thread(
            target=self._poll_forever, args=(poll_seconds,), name="state-machines", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll_forever(self, poll_seconds: float) -> None:
        while not self._stop.is_set():
            try:
                self.run_pending()
            except Exception:  # the next round tries again
                log.warning("state machine poll failed", exc_info=True)
            self._stop.wait(poll_seconds)

    def run_pending(self) -> int:
        """Run every RUNNING execution not run yet; returns how many ran."""
        ran = 0
        for machine in self.machines:
            listed = self._sfn.list_executions(stateMachineArn=machine.arn, statusFilter="RUNNING")["executions"]
            for execution in listed:
                arn = execution["executionArn"]
                if arn in self._handled:
                    continue
                self._handled.add(arn)
                document = json.loads(self._sfn.describe_execution(executionArn=arn)["input"] or "{}")
                outcome = self.execute(machine, document, execution["name"])
                self._sfn.stop_execution(executionArn=arn, error=outcome.error or "", cause=f"local: {outcome.status}")
                self.history.append((arn, outcome))
                log.info("state machine %s: execution %s %s", machine.logical_id, execution["name"], outcome.status)
                ran += 1
        return ran

    def execute(self, machine: LocalStateMachine, document: dict[str, Any], name: str) -> Outcome:
        states = machine.definition["States"]
        current, data = machine.definition["StartAt"], document
        while True:
            state = states[current]
            kind = state["Type"]
            if kind == "Succeed":
                return Outcome("SUCCEEDED", data)
            if kind == "Fail":
                return Outcome("FAILED", data, state.get("Error", ""), state.get("Cause", ""))
            try:
                result = self._task(state, data, name)
            except StateFailed as failure:
                catch = next(
                    (c for c in state.get("Catch", []) if {"States.ALL", failure.error} & set(c["ErrorEquals"])), None
                )
                if catch is None:
                    return Outcome("FAILED", data, failure.error, failure.cause)
                data = _place(data, catch.get("ResultPath", "$"), {"Error": failure.error, "Cause": failure.cause})
                current = catch["Next"]
                continue
            if "ResultSelector" in state:
                result = _parameters(state["ResultSelector"], result)
            data = _place(data, state.get("ResultPath", "$"), result)
            if state.get("End"):
                return Outcome("SUCCEEDED", data)
            current = state["Next"]

    # --- tasks --------------------------------------------------------------------------------

    def _task(self, state: dict[str, Any], data: dict[str, Any], execution: str) -> Any:
        parameters = _parameters(state["Parameters"], data)
        if state["Resource"].endswith(TRAINING_JOB):
            return self._training_job(parameters, execution)
        if state["Resource"].endswith(LAMBDA_INVOKE):
            logical_id = self.deployment.logical_id_of_arn(parameters["FunctionName"])
            if logical_id is None:
                raise TemplateError(f"a state invokes {parameters['FunctionName']}, which local mode does not run")
            invocation = self.runner.invoke(logical_id, parameters["Payload"], f"state machine {execution}")
            if not invocation.ok:
                raise StateFailed("Lambda.Unknown", invocation.error or "")
            return {"Payload": invocation.result, "StatusCode": 200}
        raise TemplateError(f"local mode does not run the task {state['Resource']}")

    def _training_job(self, parameters: dict[str, Any], execution: str) -> dict[str, Any]:
        """The SageMaker training job: its container entrypoint from the source tree, its environment."""
        algorithm = parameters["AlgorithmSpecification"]
        source = self.images.get(algorithm["TrainingImage"])
        if source is None:
            raise StateFailed("SageMaker.ClientError", f"image {algorithm['TrainingImage']} is no function's image")
        command = [sys.executable, *_entrypoint_files(algorithm["ContainerEntrypoint"], source)]
        job_name = parameters["TrainingJobName"]
        environment = {
            **os.environ,  # the stand-in's endpoint and credentials, as the runtime set them
            **{k: str(v) for k, v in parameters.get("Environment", {}).items()},
            "TRAINING_JOB_NAME": job_name,  # SageMaker sets it in the container
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(source)]),
        }
        self._record_job(parameters)
        started = time.monotonic()
        with (self.log_dir / "training-jobs.log").open("a") as job_log:
            job_log.write(f"--- {job_name} ({execution})\n")
            job_log.flush()
            completed = subprocess.run(  # noqa: S603 - the template's own entrypoint, in the source tree
                command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
            )
            job_log.write(completed.stdout)
        seconds = round(time.monotonic() - started)
        if completed.returncode != 0:
            tail = "\n".join(completed.stdout.splitlines()[-OUTPUT_LINES:])
            reason = f"AlgorithmError: the job exited with status {completed.returncode}: {tail}"
            cause = json.dumps({"TrainingJobName": job_name, "TrainingJobStatus": "Failed", "FailureReason": reason})
            raise StateFailed("SageMaker.AmazonSageMakerException", cause)
        return {"TrainingJobName": job_name, "TrainingJobStatus": "Completed", "TrainingTimeInSeconds": seconds}

    def _record_job(self, parameters: dict[str, Any]) -> None:
        """The job on the stand-in too (moto records it), so `describe_training_job` finds it."""
        try:
            self.deployment.client("sagemaker").create_training_job(
                **{k: v for k, v in parameters.items() if k != "Environment"},
                Environment={k: str(v)[:512] for k, v in parameters.get("Environment", {}).items()},
            )
        except Exception:  # observability only
            log.debug("training job not recorded on the stand-in", exc_info=True)

    def _image_sources(self) -> dict[str, Path]:
        """Image URI -> the function folder its image is built from (the functions that use it)."""
        sources: dict[str, Path] = {}
        for resource in self.deployment.template.of_type("AWS::Lambda::Function"):
            image = (resource.properties.get("Code") or {}).get("ImageUri")
            source = resource.metadata.get(SOURCE_METADATA_KEY)
            if image is not None and source is not None:
                sources.setdefault(str(self.deployment.resolve(image)), (REPO_ROOT / source).resolve())
        return sources


def _entrypoint_files(entrypoint: list[str], source: Path) -> list[str]:
    """["python3", "/var/task/job.py"] -> [<source>/job.py]: the interpreter is this one."""
    if not entrypoint or not entrypoint[0].startswith("python"):
        raise StateFailed("SageMaker.ClientError", f"local mode runs Python entrypoints only, not {entrypoint}")
    files = [
        str(source / a.removeprefix(IMAGE_CODE_ROOT)) if a.startswith(IMAGE_CODE_ROOT) else a for a in entrypoint[1:]
    ]
    return files


def _check_supported(machine: LocalStateMachine) -> None:
    for name, state in machine.definition["States"].items():
        if state["Type"] in {"Succeed", "Fail"}:
            continue
        if state["Type"] != "Task" or not state["Resource"].endswith((TRAINING_JOB, LAMBDA_INVOKE)):
            raise TemplateError(f"state machine {machine.logical_id}: local mode does not run state {name}")


def _path(data: Any, path: str) -> Any:
    """A JsonPath of plain field names (`$.a.b`), as the template uses."""
    value = data
    for part in [p for p in path.removeprefix("$").split(".") if p]:
        value = value[part]
    return value


def _parameters(template: Any, data: Any) -> Any:
    if isinstance(template, dict):
        return {
            (key.removesuffix(".$")): (_path(data, value) if key.endswith(".$") else _parameters(value, data))
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [_parameters(item, data) for item in template]
    return template


def _place(data: dict[str, Any], result_path: str | None, result: Any) -> dict[str, Any]:
    if result_path is None:  # ResultPath null: the input passes through
        return data
    if result_path == "$":
        return result if isinstance(result, dict) else {"value": result}
    parts = result_path.removeprefix("$.").split(".")
    placed = json.loads(json.dumps(data))
    target = placed
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = result
    return placed
