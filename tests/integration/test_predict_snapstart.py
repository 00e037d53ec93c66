"""Predict under SnapStart: one initialised snapshot is restored into many execution environments.

The Lambda runtime's `snapshot_restore_py` module is not installed here: a stand-in with the same
two registration functions records the hooks predict registers at import, and the tests call them
as the runtime would (before the snapshot once, after each restore).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from mlops.adapters import aws
from mlops.inference import prediction_ids
from mlops.training import TrainedModel, train_model
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_dataset
from tests.integration.test_predict_handler import (
    CONTRACT,
    Deployed,
    invoke,
    publish_production,
    rest_event,
    sample_records,
)
from tests.support.resources import create_resources


class RuntimeHooks(ModuleType):
    """The two functions of the runtime's `snapshot_restore_py`, recording what is registered."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before_snapshot: list[Callable[[], object]] = []
        self.after_restore: list[Callable[[], object]] = []

    def register_before_snapshot(self, hook: Callable[[], object]) -> Callable[[], object]:
        self.before_snapshot.append(hook)
        return hook

    def register_after_restore(self, hook: Callable[[], object]) -> Callable[[], object]:
        self.after_restore.append(hook)
        return hook

    def snapshot(self) -> None:
        for hook in self.before_snapshot:
            hook()

    def restore(self) -> None:
        for hook in self.after_restore:
            hook()


@pytest.fixture
def runtime_hooks(monkeypatch: pytest.MonkeyPatch) -> RuntimeHooks:
    hooks = RuntimeHooks()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", hooks)
    return hooks


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(churn_dataset(2_000), CONTRACT)


def _deploy(monkeypatch: pytest.MonkeyPatch, trained: TrainedModel) -> Deployed:
    resources = create_resources()
    sha256 = publish_production(resources, trained)
    for name, value in resources.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "predict")
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "300")  # a warm container would not look again soon
    return Deployed(resources, load_handler_module("predict"), sha256)


@pytest.fixture
def snapstarted(
    aws: str, monkeypatch: pytest.MonkeyPatch, trained: TrainedModel, runtime_hooks: RuntimeHooks
) -> Iterator[tuple[Deployed, RuntimeHooks]]:
    deployed = _deploy(monkeypatch, trained)
    yield deployed, runtime_hooks
    deployed.handler.service.shutdown()  # while the moto endpoint is set, not at interpreter exit


def _random_part(prediction_id: str) -> str:
    return prediction_id[8:28]  # after the 8 hex of the second, before the 4 of the record index


def test_predict_registers_restore_hooks_with_the_runtime(snapstarted: tuple[Deployed, RuntimeHooks]) -> None:
    deployed, hooks = snapstarted
    assert hooks.after_restore, "predict registered no after-restore hook"
    hooks.snapshot()
    hooks.restore()
    status, body = invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    assert status == 200, body


def test_predict_without_the_runtime_module_imports_and_serves(
    aws: str, monkeypatch: pytest.MonkeyPatch, trained: TrainedModel
) -> None:
    # Local mode, tests and a function without SnapStart: no `snapshot_restore_py`, nothing registered.
    assert "snapshot_restore_py" not in sys.modules
    deployed = _deploy(monkeypatch, trained)
    try:
        status, _ = invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    finally:
        deployed.handler.service.shutdown()
    assert status == 200


def test_restored_environments_draw_different_prediction_ids(snapstarted: tuple[Deployed, RuntimeHooks]) -> None:
    deployed, hooks = snapstarted
    # GIVEN an environment that answered once before its snapshot (its id pool is filled)
    invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    hooks.snapshot()
    frozen = (prediction_ids._pool, prediction_ids._taken, prediction_ids._second_text)
    drawn = []
    for _ in range(2):  # WHEN two environments are restored from that one snapshot
        prediction_ids._pool, prediction_ids._taken, prediction_ids._second_text = frozen
        hooks.restore()
        drawn.append(_random_part(prediction_ids.new_prediction_ids(1)[0]))
    # THEN their ids do not collide
    assert drawn[0] != drawn[1]


def test_restored_environments_do_not_share_the_random_state(snapstarted: tuple[Deployed, RuntimeHooks]) -> None:
    _, hooks = snapstarted
    hooks.snapshot()
    frozen = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(frozen)
        hooks.restore()
        draws.append(random.random())  # capture sampling draws from this generator
    assert draws[0] != draws[1]


def test_restore_recreates_the_aws_clients(snapstarted: tuple[Deployed, RuntimeHooks]) -> None:
    deployed, hooks = snapstarted
    invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    hooks.snapshot()
    before = aws.client("dynamodb")
    hooks.restore()
    after = aws.client("dynamodb")
    assert after is not before  # no connection pool or credentials carried over from the snapshot
    status, _ = invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    assert status == 200


def test_restore_rereads_the_production_pointer(
    snapstarted: tuple[Deployed, RuntimeHooks], trained: TrainedModel
) -> None:
    deployed, hooks = snapstarted
    # GIVEN a snapshot taken while v1 was production
    status, body = invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    assert (status, body["version"]) == (200, 1)
    hooks.snapshot()
    # WHEN v2 becomes production before the environment is restored (hours later, say)
    publish_production(deployed.resources, trained, version=2)
    hooks.restore()
    # THEN the restored environment serves v2 at once, not the snapshot's v1 for a refresh period
    status, body = invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    assert (status, body["version"]) == (200, 2)


def test_restore_keeps_the_snapshot_model_when_production_did_not_move(
    snapstarted: tuple[Deployed, RuntimeHooks],
) -> None:
    deployed, hooks = snapstarted
    invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    hooks.snapshot()
    hooks.restore()
    # the registry is asked again, the artifact is not fetched again: no S3 GET after the restore
    gets = []
    s3 = aws.client("s3")
    s3.meta.events.register("before-call.s3.GetObject", lambda **_: gets.append(1))
    status, body = invoke(deployed.handler, rest_event("churn", json.dumps({"records": sample_records(1)})))
    assert (status, body["version"], gets) == (200, 1, [])
