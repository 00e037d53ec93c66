"""The audit of client API keys (mlops.client_keys.KeyAudit) in the registry table.

Items `pk=AUDIT#@clients` (`@` is never in a model name, so no model's trail is touched),
`sk=EVENT#<ISO time>#<key id>#<action>`: written once (`attribute_not_exists`), never updated or
deleted (the registry's IAM denies both on `AUDIT#*`). They hold the key's id and fingerprint,
never its value.
"""

from __future__ import annotations

from typing import Any

from mlops.adapters.aws import client
from mlops.client_keys import KeyEvent

CLIENT_KEYS_AUDIT_PK = "AUDIT#@clients"


class DynamoKeyAudit:
    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def _db(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def record(self, event: KeyEvent) -> None:
        document = event.model_dump(mode="json")
        item = {name: {"S": str(value)} for name, value in document.items()}
        item["pk"] = {"S": CLIENT_KEYS_AUDIT_PK}
        item["sk"] = {"S": f"EVENT#{document['at']}#{event.key_id}#{event.action.value}"}
        self._db.put_item(TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def events(self) -> list[KeyEvent]:
        events = []
        for page in self._db.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": CLIENT_KEYS_AUDIT_PK}},
        ):
            for item in page.get("Items", []):
                fields = {name: value["S"] for name, value in item.items() if name not in ("pk", "sk")}
                events.append(KeyEvent.model_validate(fields))
        return events
