"""EventPublisher on Amazon EventBridge."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mlops.adapters.aws import client
from mlops.errors import MlopsError
from mlops.events import EVENT_SOURCE


class EventBridgePublisher:
    def __init__(self, bus_name: str, events: Any | None = None) -> None:
        self.bus_name = bus_name
        self._events = events

    def publish(self, detail_type: str, detail: BaseModel) -> None:
        events = self._events or client("events")
        response = events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": detail.model_dump_json(),
                    "EventBusName": self.bus_name,
                }
            ]
        )
        # put_events reports per-entry failures in a 200 response: never drop one silently.
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise MlopsError(f"EventBridge refused {detail_type}: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}")
