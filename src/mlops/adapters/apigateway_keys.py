"""Client API keys on API Gateway (mlops.client_keys.ClientKeyGateway): keys in one usage plan, found
by its name (the stack cannot give models_api the plan's id: infra.constructs.inference_api)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlops.adapters.aws import client
from mlops.client_keys import ClientKeyNotFoundError, CreatedKey, GatewayKey, UsagePlanLimits, fingerprint
from mlops.errors import ServiceUnavailableError


class ApiGatewayClientKeys:
    def __init__(self, usage_plan_name: str, apigateway: Any | None = None) -> None:
        self.usage_plan_name = usage_plan_name
        self._apigateway = apigateway
        self._plan_id = ""

    @property
    def usage_plan_id(self) -> str:
        """The plan's id, looked up once per container. Raises ServiceUnavailableError when no plan has the name."""
        if not self._plan_id:
            for page in self._api.get_paginator("get_usage_plans").paginate():
                for plan in page.get("items", []):
                    if plan.get("name") == self.usage_plan_name:
                        self._plan_id = plan["id"]
            if not self._plan_id:
                raise ServiceUnavailableError(f"no usage plan named {self.usage_plan_name} for client API keys")
        return self._plan_id

    @property
    def _api(self) -> Any:
        return self._apigateway or client("apigateway")

    def create_key(self, name: str, description: str) -> CreatedKey:
        created = self._api.create_api_key(name=name, description=description, enabled=True)
        return CreatedKey(created["id"], created["value"], _when(created.get("createdDate")))

    def add_to_usage_plan(self, key_id: str) -> None:
        self._api.create_usage_plan_key(usagePlanId=self.usage_plan_id, keyId=key_id, keyType="API_KEY")

    def delete_key(self, key_id: str) -> None:
        try:
            self._api.delete_api_key(apiKey=key_id)
        except self._api.exceptions.NotFoundException as error:
            raise ClientKeyNotFoundError(f"no client API key {key_id}") from error

    def list_keys(self, name_prefix: str) -> list[GatewayKey]:
        keys = []
        for page in self._api.get_paginator("get_api_keys").paginate(nameQuery=name_prefix, includeValues=True):
            for item in page.get("items", []):
                if not str(item.get("name", "")).startswith(name_prefix):
                    continue  # nameQuery is a prefix match in API Gateway; checked here as well
                keys.append(
                    GatewayKey(
                        key_id=item["id"],
                        name=item["name"],
                        enabled=bool(item.get("enabled")),
                        created=_when(item.get("createdDate")),
                        fingerprint=fingerprint(item.get("value", "")),
                    )
                )
        return keys

    def usage_plan(self) -> UsagePlanLimits:
        plan = self._api.get_usage_plan(usagePlanId=self.usage_plan_id)
        throttle, quota = plan.get("throttle") or {}, plan.get("quota") or {}
        return UsagePlanLimits(
            usage_plan_id=self.usage_plan_id,
            rate_per_second=throttle.get("rateLimit"),
            burst=throttle.get("burstLimit"),
            quota_limit=quota.get("limit"),
            quota_period=quota.get("period"),
        )


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)
