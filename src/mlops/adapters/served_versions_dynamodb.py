"""Predict's read of the registry: the production version of a model (with its canary), a pinned
version or an alias's version, as plain `ServedVersion`s.

The same strongly consistent GetItems as `DynamoRegistry.production()` (a rollback is seen at
once), without the registry's pydantic records and rules: predict pays for neither at cold start.
"""

from __future__ import annotations

from typing import Any

from mlops.adapters.aws import client
from mlops.adapters.registry_items import MODEL_SK, from_item, item_key, model_pk, version_sk
from mlops.contract_rules import is_valid_alias, is_valid_model_name
from mlops.errors import IntegrityError, ModelNotFoundError, NotFoundError, VersionNotFoundError
from mlops.inference.served import ServedArtifact, ServedCanary, ServedVersion, require_servable


class DynamoServedVersions:
    """Reads production versions from the registry table. Raises ModelNotFoundError."""

    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def production(self, name: str) -> ServedVersion | None:
        """The production version (with the model's canary, if any), or None when the model has none."""
        model = self._model(name)
        production = model.get("production_version")
        if production is None:
            return None
        item = self._get(model_pk(name), version_sk(int(production)))
        if item is None:  # the pointer and its version are written in one transaction
            raise IntegrityError(f"{name}: production v{production} has no version item")
        served = served_version(item)
        canary = model.get("canary")
        if not canary:
            return served
        try:
            number, share = int(canary["version"]), float(canary["share"])
        except (KeyError, TypeError, ValueError) as error:
            raise IntegrityError(f"{name}: the canary {canary!r} is malformed ({error!r})") from None
        canary_item = self._get(model_pk(name), version_sk(number))
        if canary_item is None:
            raise IntegrityError(f"{name}: canary v{number} has no version item")
        return ServedVersion(
            served.model_name,
            served.version,
            served.artifact,
            served.contract,
            ServedCanary(served_version(canary_item), share),
        )

    def pinned(self, name: str, version: int) -> ServedVersion:
        """A version a request pins. Raises ModelNotFoundError, VersionNotFoundError, ConflictError
        (a rejected or archived version never serves)."""
        self._model(name)
        return self._servable(name, version)

    def _servable(self, name: str, version: int) -> ServedVersion:
        item = self._get(model_pk(name), version_sk(version))
        if item is None:
            raise VersionNotFoundError(f"model {name!r} has no version {version}")
        require_servable(name, version, str(item.get("status")))
        return served_version(item)

    def registered(self, name: str, version: int) -> ServedVersion | None:
        """One registered version, whatever its status (batch scoring pins one); None if absent."""
        if not is_valid_model_name(name):
            raise ModelNotFoundError(f"no model named {name!r}")
        item = self._get(model_pk(name), version_sk(version))
        return None if item is None else served_version(item)

    def aliased(self, name: str, alias: str) -> ServedVersion:
        """The version a named alias points at. Raises ModelNotFoundError, NotFoundError (no such
        alias), ConflictError (it points at a rejected or archived version)."""
        if not is_valid_alias(alias):
            raise NotFoundError(f"{alias!r} is not an alias of model {name!r} (lowercase letters, digits, '-')")
        model = self._model(name)
        target = (model.get("aliases") or {}).get(alias)
        if target is None:
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        return self._servable(name, int(target))

    def _model(self, name: str) -> dict[str, Any]:
        if not is_valid_model_name(name):
            raise ModelNotFoundError(f"no model named {name!r}")
        model = self._get(model_pk(name), MODEL_SK)
        if model is None:
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        return model

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
