"""DatasetLedger on its own DynamoDB table, the ledger table (item layout in docs/DESIGN.md,
"Dataset ledger"). A table of its own so that validate_dataset, which parses untrusted files, holds
no write permission on the registry.

One item per dataset version: `pk=MODEL#<model>`, `sk=DATASET#<dataset id>`, with
`gsi1pk=DATASETS#<model>#<state>` and `gsi1sk=<decided at>#<dataset id>` on the table's index
(the registry table's key schema), so held datasets of a model (newest first) and its last
accepted dataset are one Query each.
Writes are conditional: the first decision wins, and a review moves state only from the state
it read (a concurrent reviewer gets ConflictError).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from mlops.adapters.aws import client
from mlops.errors import ConflictError
from mlops.validation.ledger import VALIDATED_STATES, DatasetState, LedgerChange, LedgerEntry, moved

DATASET_PREFIX = "DATASET#"
INDEX = "gsi1"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def dataset_sk(dataset_id: str) -> str:
    return f"{DATASET_PREFIX}{dataset_id}"


def state_partition(model_name: str, state: DatasetState) -> str:
    return f"DATASETS#{model_name}#{state.value}"


class DynamoDatasetLedger:
    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def get(self, model_name: str, dataset_id: str) -> LedgerEntry | None:
        response = self.dynamodb.get_item(
            TableName=self.table_name, Key=_key(model_name, dataset_id), ConsistentRead=True
        )
        item = response.get("Item")
        return _entry(item) if item else None

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=_item(entry),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            stored = self.get(entry.model_name, entry.dataset_id)
            if stored is None:  # pragma: no cover - deleted between the two calls
                raise
            return stored
        return entry

    def transition(
        self,
        entry: LedgerEntry,
        change: LedgerChange,
        *,
        quarantine_key: str | None = None,
        model_version: int | None = None,
        artifact_sha256: str | None = None,
    ) -> LedgerEntry:
        updated = moved(
            entry, change, quarantine_key=quarantine_key, model_version=model_version, artifact_sha256=artifact_sha256
        )
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=_item(updated),
                ConditionExpression="#state = :from",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":from": {"S": entry.state.value}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConflictError(
                    f"dataset {entry.dataset_id} of {entry.model_name} is no longer {entry.state.value}"
                ) from None
            raise
        return updated

    def last_accepted(self, model_name: str) -> LedgerEntry | None:
        """The newest dataset validation accepted, whatever training made of it since."""
        newest = [entry for state in VALIDATED_STATES for entry in self._by_state(model_name, state, limit=1)]
        return max(newest, key=lambda e: (e.decided_at, e.dataset_id), default=None)

    def by_state(self, model_name: str, state: DatasetState) -> list[LedgerEntry]:
        return self._by_state(model_name, state, limit=None)

    def _by_state(self, model_name: str, state: DatasetState, limit: int | None) -> list[LedgerEntry]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": state_partition(model_name, state)}},
            "ScanIndexForward": False,
        }
        if limit is not None:
            kwargs["Limit"] = limit
        entries: list[LedgerEntry] = []
        while True:
            response = self.dynamodb.query(**kwargs)
            entries.extend(_entry(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start or (limit is not None and len(entries) >= limit):
                return entries[:limit] if limit is not None else entries
            kwargs["ExclusiveStartKey"] = start


def _key(model_name: str, dataset_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"MODEL#{model_name}"}, "sk": {"S": dataset_sk(dataset_id)}}


def _item(entry: LedgerEntry) -> dict[str, Any]:
    body = {k: v for k, v in entry.model_dump(mode="json").items() if v is not None}
    body.update(
        pk=f"MODEL#{entry.model_name}",
        sk=dataset_sk(entry.dataset_id),
        gsi1pk=state_partition(entry.model_name, entry.state),
        gsi1sk=f"{entry.decided_at}#{entry.dataset_id}",
    )
    return {name: _serializer.serialize(value) for name, value in body.items()}


def _entry(item: dict[str, Any]) -> LedgerEntry:
    plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
    for number in ("size_bytes", "rows", "model_version"):
        if number in plain:
            plain[number] = int(plain[number])
    return LedgerEntry.model_validate({k: v for k, v in plain.items() if k in LedgerEntry.model_fields})
