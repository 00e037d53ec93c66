"""Predict's read of the registry: the production version of a model, as a plain `ServedVersion`.

The same two strongly consistent GetItems as `DynamoRegistry.production()` (a rollback is seen at
once), without the registry's pydantic records and rules: predict pays for neither at cold start.
"""

from __future__ import annotations

from typing import Any

from mlops.adapters.aws import client
from mlops.adapters.registry_items import MODEL_SK, from_item, item_key, model_pk, version_sk
from mlops.contract_rules import is_valid_model_name
from mlops.errors import IntegrityError, ModelNotFoundError
from mlops.inference.served import ServedArtifact, ServedVersion


class DynamoServedVersions:
    """Reads production versions from the registry table. Raises ModelNotFoundError."""

    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def production(self, name: str) -> ServedVersion | None:
        """The production version, or None when the model has none."""
        if not is_valid_model_name(name):
            raise ModelNotFoundError(f"no model named {name!r}")
        model = self._get(model_pk(name), MODEL_SK)
        if model is None:
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        production = model.get("production_version")
        if production is None:
            return None
        item = self._get(model_pk(name), version_sk(int(production)))
        if item is None:  # the pointer and its version are written in one transaction
            raise IntegrityError(f"{name}: production v{production} has no version item")
        return served_version(item)

    def registered(self, name: str, version: int) -> ServedVersion | None:
        """One registered version, whatever its status (batch scoring pins one); None if absent."""
        if not is_valid_model_name(name):
            raise ModelNotFoundError(f"no model named {name!r}")
        item = self._get(model_pk(name), version_sk(version))
        return None if item is None else served_version(item)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(TableName=self.table_name, Key=item_key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None


def served_version(item: dict[str, Any]) -> ServedVersion:
    """A version item (decoded) -> what predict loads. Raises IntegrityError for a malformed item."""
    try:
        artifact = item["artifact"]
        return ServedVersion(
            model_name=str(item["model_name"]),
            version=int(item["version"]),
            artifact=ServedArtifact(
                bucket=str(artifact["bucket"]),
                key=str(artifact["key"]),
                sha256=str(artifact["sha256"]),
                size_bytes=int(artifact["size_bytes"]),
            ),
            contract=dict(item["contract"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise IntegrityError(f"registry item {item.get('pk')}/{item.get('sk')} is malformed ({error!r})") from None
