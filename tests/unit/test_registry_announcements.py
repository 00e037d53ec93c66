"""Registry announcements are at-least-once: a retry after a failed publish announces again."""

from __future__ import annotations

import pytest

from mlops.errors import MlopsError
from mlops.events import DetailType, ModelPromoted, ModelRegistered
from mlops.registry.records import RegistrationResult
from mlops.registry.service import register_trained_model
from tests.support.datasets import RecordingNotifier
from tests.support.fakes import FlakyPublisher, InMemoryObjectStore, RecordingPublisher
from tests.support.registry_fake import InMemoryRegistry, artifact_bytes, trained_event


def _register(
    registry: InMemoryRegistry,
    store: InMemoryObjectStore,
    publisher: RecordingPublisher,
    score: float,
    notifier: RecordingNotifier | None = None,
) -> RegistrationResult:
    data = artifact_bytes(f"churn-{score!r}")
    event = trained_event(score=score, artifact=data)
    store.put_bytes(event.artifact_bucket, event.artifact_key, data)
    return register_trained_model(
        event,
        registry=registry,
        store=store,
        publisher=publisher,
        artifact_bucket=event.artifact_bucket,
        actor="trainer",
        notifier=notifier,  # type: ignore[arg-type]  # records dict messages as given
    )


def test_register_trained_model_retry_after_a_failed_publish_announces_registration_and_promotion() -> None:
    store, notifier = InMemoryObjectStore(), RecordingNotifier()
    registry = InMemoryRegistry(artifacts=store)
    _register(registry, store, RecordingPublisher(), 0.8)  # v1 in production
    publisher = FlakyPublisher(failures=1)
    # GIVEN v2 was registered and promoted, but the bus refused its announcement
    with pytest.raises(MlopsError, match="refused"):
        _register(registry, store, publisher, 0.9, notifier=notifier)
    assert publisher.events == []
    assert notifier.messages == []

    # WHEN the delivery is retried (the artifact is now a duplicate)
    result = _register(registry, store, publisher, 0.9, notifier=notifier)

    # THEN the retry announces what the first attempt could not
    assert (result.created, result.version.version) == (False, 2)
    [registered] = publisher.of_type(DetailType.MODEL_REGISTERED)
    assert isinstance(registered, ModelRegistered)
    assert (registered.version, registered.promoted) == (2, True)
    [promoted] = publisher.of_type(DetailType.MODEL_PROMOTED)
    assert isinstance(promoted, ModelPromoted)
    assert (promoted.version, promoted.previous_version) == (2, 1)
    [(subject, message)] = notifier.messages
    assert "production is now v2" in subject
    assert (message["production_version"], message["previous_production"]) == (2, 1)  # type: ignore[index]


def test_register_trained_model_retry_of_an_unpromoted_version_announces_only_the_registration() -> None:
    store, notifier = InMemoryObjectStore(), RecordingNotifier()
    registry = InMemoryRegistry(artifacts=store)
    _register(registry, store, RecordingPublisher(), 0.8)
    with pytest.raises(MlopsError):
        _register(registry, store, FlakyPublisher(failures=1), 0.75, notifier=notifier)

    publisher = RecordingPublisher()
    _register(registry, store, publisher, 0.75, notifier=notifier)

    assert [(kind, detail.version, detail.promoted) for kind, detail in publisher.events] == [  # type: ignore[attr-defined]
        (DetailType.MODEL_REGISTERED, 2, False)
    ]
    assert notifier.messages == []
