"""Choosing what answers (issue 13 items 1-2): a request pins a version or an alias, a canary takes
its share of the production traffic, each variant is measured, and nothing unverified serves."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mlops.errors import ConflictError, IntegrityError, ModelNotFoundError, NotFoundError, VersionNotFoundError
from mlops.inference.model import CANARY, CHAMPION, PINNED, ModelCache
from mlops.inference.served import ServedCanary, require_servable
from mlops.inference.service import PredictionService
from mlops.inference.variants import VARIANT_ERRORS, VARIANT_OUTPUT_MEAN, VARIANT_REQUESTS, VariantMetrics
from mlops.registry.records import ModelVersion, VersionStatus
from mlops.training import TrainedModel, train_model
from mlops_local.sample_data import churn_dataset, records
from tests.support.fakes import InMemoryObjectStore
from tests.unit.test_inference_model import BUCKET, CONTRACT, FakeClock, version_of


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(churn_dataset(1_000), CONTRACT)


class ServingRegistry:
    """The registry reads predict makes (production with its canary, pins, aliases) over versions
    kept in memory; statuses decide what may serve through the same rule as the DynamoDB adapter."""

    def __init__(self) -> None:
        self.versions: dict[int, ModelVersion] = {}
        self.production_version: int | None = None
        self.aliases: dict[str, int] = {}
        self.canary: tuple[int, float] | None = None

    def add(self, store: InMemoryObjectStore, data: bytes, number: int, status: VersionStatus) -> ModelVersion:
        version = version_of(data, number)
        artifact = version.artifact.model_copy(update={"key": f"models/churn/v{number}.onnx"})
        version = version.model_copy(update={"status": status, "artifact": artifact})
        store.put_bytes(BUCKET, version.artifact.key, data)
        self.versions[number] = version
        return version

    def production(self, name: str) -> object:
        if name != CONTRACT.name:
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        if self.production_version is None:
            return None
        production = self.versions[self.production_version]
        if self.canary is None:
            return production
        number, share = self.canary
        return _WithCanary(production, ServedCanary(self.versions[number], share))  # type: ignore[arg-type]

    def pinned(self, name: str, version: int) -> ModelVersion:
        if name != CONTRACT.name:
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        if version not in self.versions:
            raise VersionNotFoundError(f"model {name!r} has no version {version}")
        found = self.versions[version]
        require_servable(name, version, found.status.value)
        return found

    def aliased(self, name: str, alias: str) -> ModelVersion:
        if alias not in self.aliases:
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        return self.pinned(name, self.aliases[alias])


@dataclasses.dataclass(frozen=True)
class _WithCanary:
    production: ModelVersion
    canary: ServedCanary

    def __getattr__(self, item: str) -> object:
        return getattr(self.production, item)


class Shares:
    """A deterministic stand-in for random.random: cycles through the given draws."""

    def __init__(self, *draws: float) -> None:
        self.draws, self.calls = list(draws), 0

    def __call__(self) -> float:
        draw = self.draws[self.calls % len(self.draws)]
        self.calls += 1
        return draw


def _setup(trained: TrainedModel) -> tuple[InMemoryObjectStore, ServingRegistry]:
    store, registry = InMemoryObjectStore(), ServingRegistry()
    registry.add(store, trained.onnx_bytes, 1, VersionStatus.ARCHIVED)
    registry.add(store, trained.onnx_bytes, 2, VersionStatus.PRODUCTION)
    registry.add(store, trained.onnx_bytes, 3, VersionStatus.APPROVED)
    registry.add(store, trained.onnx_bytes, 4, VersionStatus.REJECTED)
    registry.production_version = 2
    return store, registry


def test_model_cache_pins_a_version_or_an_alias_and_refuses_what_no_longer_serves(trained: TrainedModel) -> None:
    store, registry = _setup(trained)
    registry.aliases["staging"] = 3
    cache = ModelCache(registry, store, refresh_seconds=30, clock=FakeClock())

    # WHEN requests pin v3, the staging alias, or nothing
    assert [(m.version, v) for m, v in [cache.choose("churn", version=3), cache.choose("churn", alias="staging")]] == [
        (3, PINNED),
        (3, PINNED),
    ]
    model, variant = cache.choose("churn")
    # THEN production answers unpinned requests, alone (no canary: no variant)
    assert (model.version, variant) == (2, None)

    # an unknown version or alias is 404 naming it; an archived or rejected version is 409 naming it
    with pytest.raises(VersionNotFoundError, match="no version 9"):
        cache.choose("churn", version=9)
    with pytest.raises(NotFoundError, match="no alias 'nightly'"):
        cache.choose("churn", alias="nightly")
    with pytest.raises(ConflictError, match=r"v1 is archived"):
        cache.choose("churn", version=1)
    with pytest.raises(ConflictError, match=r"v4 is rejected"):
        cache.choose("churn", version=4)
    with pytest.raises(ModelNotFoundError):
        cache.choose("nope", version=1)


def test_model_cache_follows_an_alias_move_within_the_refresh_time(trained: TrainedModel) -> None:
    store, registry = _setup(trained)
    registry.aliases["staging"] = 3
    clock = FakeClock()
    cache = ModelCache(registry, store, refresh_seconds=30, clock=clock)
    assert cache.choose("churn", alias="staging")[0].version == 3

    # WHEN the alias moves to v2 (the approver's audited move through the models API)
    registry.aliases["staging"] = 2
    clock.now += 29
    assert cache.choose("churn", alias="staging")[0].version == 3  # answered from memory until the recheck
    clock.now += 2
    # THEN the warm container follows it without a redeploy
    assert cache.choose("churn", alias="staging")[0].version == 2


def test_model_cache_never_serves_a_pinned_artifact_that_fails_its_digest(trained: TrainedModel) -> None:
    store, registry = _setup(trained)
    # GIVEN v3's artifact was overwritten after registration
    store.put_bytes(BUCKET, registry.versions[3].artifact.key, trained.onnx_bytes + b"tampered")
    cache = ModelCache(registry, store, clock=FakeClock())
    with pytest.raises(IntegrityError, match="does not match its registered digest"):
        cache.choose("churn", version=3)


def test_model_cache_routes_the_canary_share_and_drops_it_when_the_canary_cannot_load(
    trained: TrainedModel,
) -> None:
    store, registry = _setup(trained)
    registry.canary = (3, 0.25)
    draws = Shares(0.1, 0.3, 0.9, 0.24)
    clock = FakeClock()
    cache = ModelCache(registry, store, refresh_seconds=30, clock=clock, random_share=draws)
    answered = [(m.version, v) for m, v in (cache.choose("churn") for _ in range(4))]
    # draws below the share go to the canary, the rest to the champion
    assert answered == [(3, CANARY), (2, CHAMPION), (2, CHAMPION), (3, CANARY)]
    assert cache.get("churn").version == 2  # `get` is production whatever the canary

    # WHEN the canary ends (rollback or stop), the next refresh sends everything to production
    registry.canary = None
    clock.now += 31
    assert [(m.version, v) for m, v in (cache.choose("churn") for _ in range(3))] == [(2, None)] * 3

    # WHEN a canary's artifact fails its digest, the champion answers everything and the failure is reported
    store.put_bytes(BUCKET, registry.versions[3].artifact.key, b"not the registered bytes")
    cache = ModelCache(registry, store, refresh_seconds=30, clock=FakeClock(), random_share=Shares(0.0))
    registry.canary = (3, 0.5)
    assert cache.choose("churn")[0].version == 2
    [failure] = cache.drain_events()
    assert (failure.version, failure.serving_version) == (3, 2)


def test_prediction_service_measures_each_variant_while_a_canary_runs(trained: TrainedModel) -> None:
    store, registry = _setup(trained)
    clock = FakeClock()
    variants = VariantMetrics(flush_seconds=60, clock=clock)
    cache = ModelCache(registry, store, clock=clock, random_share=Shares(0.1, 0.9))
    service = PredictionService(cache, variants=variants)
    body = json.dumps(records(trained.holdout[CONTRACT.feature_names].head(4)))

    # no canary: the answer's shape is unchanged and nothing is measured
    answer = service.predict("churn", body)
    assert "variant" not in answer
    assert answer["version"] == 2
    assert service.predict("churn", body, version=3)["variant"] == PINNED
    clock.now += 61
    assert service.variant_windows() == []

    registry.canary = (3, 0.5)
    cache = ModelCache(registry, store, clock=clock, random_share=Shares(0.1, 0.9))
    service = PredictionService(cache, variants=variants)
    answers = [service.predict("churn", body) for _ in range(4)]
    assert [(a["variant"], a["version"]) for a in answers] == [(CANARY, 3), (CHAMPION, 2)] * 2
    assert service.variant_windows() == []  # not due yet
    clock.now += 60
    windows = {w.variant: w for w in service.variant_windows()}
    assert set(windows) == {CANARY, CHAMPION}
    canary = windows[CANARY].metrics()
    assert (canary[VARIANT_REQUESTS][0], canary[VARIANT_ERRORS][0]) == (2, 0)
    yes_share = sum(p["label"] == "yes" for p in answers[0]["predictions"]) / 4
    assert canary[VARIANT_OUTPUT_MEAN][0] == pytest.approx(yes_share)
    assert windows[CANARY].version == 3
    assert windows[CHAMPION].version == 2
    assert service.variant_windows() == []  # flushed
