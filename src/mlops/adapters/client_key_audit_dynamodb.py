"""The audit of client API keys (mlops.client_keys.KeyAudit) and the records of issues sent with an
Idempotency-Key (mlops.client_keys.IssueAttempts), in the registry table.

Items `pk=AUDIT#@clients` (`@` is never in a model name, so no model's trail is touched),
`sk=EVENT#<ISO time>#<key id>#<action>`: written once (`attribute_not_exists`), never updated or
deleted (the registry's IAM denies both on `AUDIT#*`). They hold the key's id and fingerprint,
never its value.

Issue attempts: `pk=MODEL#@clients`, `sk=REQUEST#<sha256 of the Idempotency-Key>`, beside the registry's
own request records (`MODEL#<name>`, which the models API may put and update): written only if absent,
replaced only while unchanged (a conditional put). They hold the issued key's id and fingerprint, never
its value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops.adapters.aws import client
from mlops.adapters.registry_dynamodb import request_sk
from mlops.adapters.registry_items import model_pk
from mlops.client_keys import AttemptState, ClientKeySummary, IssueAttempt, KeyEvent

CLIENT_KEYS_AUDIT_PK = "AUDIT#@clients"
CLIENT_KEYS_REQUESTS_PK = model_pk("@clients")  # `@` is never in a model name


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


class DynamoIssueAttempts:
    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def _db(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def add(self, attempt: IssueAttempt) -> bool:
        return self._put(attempt, "attribute_not_exists(pk)", {}, {})

    def get(self, key_hash: str) -> IssueAttempt | None:
        item = self._db.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": CLIENT_KEYS_REQUESTS_PK}, "sk": {"S": request_sk(key_hash)}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        key = item.get("key", {}).get("S")
        return IssueAttempt(
            key_hash=key_hash,
            request_digest=item["request_digest"]["S"],
            state=AttemptState(item["state"]["S"]),
            claimed_at=datetime.fromisoformat(item["claimed_at"]["S"]),
            key=ClientKeySummary.model_validate_json(key) if key else None,
        )

    def replace(self, attempt: IssueAttempt, *, previous: IssueAttempt) -> bool:
        return self._put(
            attempt,
            "#state = :state AND claimed_at = :claimed_at",
            {"#state": "state"},
            {":state": {"S": previous.state.value}, ":claimed_at": {"S": previous.claimed_at.isoformat()}},
        )

    def _put(self, attempt: IssueAttempt, condition: str, names: dict[str, str], values: dict[str, Any]) -> bool:
        item = {
            "pk": {"S": CLIENT_KEYS_REQUESTS_PK},
            "sk": {"S": request_sk(attempt.key_hash)},
            "request_digest": {"S": attempt.request_digest},
            "state": {"S": attempt.state.value},
            "claimed_at": {"S": attempt.claimed_at.isoformat()},
        }
        if attempt.key is not None:
            item["key"] = {"S": attempt.key.model_dump_json()}
        arguments: dict[str, Any] = {"TableName": self.table_name, "Item": item, "ConditionExpression": condition}
        if names:
            arguments |= {"ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        try:
            self._db.put_item(**arguments)
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True
