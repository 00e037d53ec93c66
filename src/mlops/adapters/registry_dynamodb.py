"""ModelRegistry on one DynamoDB table (item layout in docs/DESIGN.md, "Registry table").

The lifecycle rules are in mlops.registry.lifecycle and the decide-commit-retry loop in
mlops.registry.engine; this adapter reads items and turns each plan into one
`transact_write_items`: the model item updated conditioned on its audit chain head (every change
writes an audit event, so concurrent changes of one model serialize on it), version items
conditioned on their status, and `attribute_not_exists` puts for new versions, the artifact claim,
audit events, alias moves and idempotent request records.

Audit events (`EVENT#<12-digit seq>`, hash chained) and alias moves live in their own partition,
`AUDIT#<name>`, so an IAM Deny on UpdateItem/DeleteItem conditioned on `dynamodb:LeadingKeys`
`AUDIT#*` makes them append-only for the functions' roles; the chain makes an overwrite by PutItem
detectable (`mlops.registry.audit_chain`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mlops.adapters.aws import client
from mlops.adapters.registry_items import MODEL_SK, VERSION_PREFIX, model_pk, version_sk
from mlops.adapters.registry_items import from_dynamo as from_dynamo
from mlops.adapters.registry_items import from_item as _from_item
from mlops.adapters.registry_items import item_key as _key
from mlops.registry.engine import RegistryEngine, StoredRequest
from mlops.registry.names import PRODUCTION_ALIAS, require_alias, require_model_name
from mlops.registry.records import AliasMove, AuditEvent, Canary, ModelRecord, ModelVersion

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    from mlops.ports import ObjectStore
    from mlops.registry.lifecycle import Plan

MODELS_INDEX = "gsi1"
MODELS_INDEX_PK = "MODELS"
ARTIFACT_PREFIX = "ARTIFACT#"
AUDIT_PREFIX = "AUDIT#"  # the append-only partition: pk AUDIT#<name>
EVENT_PREFIX = "EVENT#"
ALIAS_PREFIX = "ALIAS#"
REQUEST_PREFIX = "REQUEST#"

_RETRYABLE_REASONS = {"ConditionalCheckFailed", "TransactionConflict"}
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


@functools.cache
def _boto3_types() -> tuple[TypeSerializer, TypeDeserializer]:
    """boto3's (de)serializers, imported on first use: `import boto3` costs the predict function's
    cold start ~15 ms (s3transfer, boto3's session) and its read path never needs them."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _serialize(value: Any) -> dict[str, Any]:
    return _boto3_types()[0].serialize(value)


def artifact_sk(sha256: str) -> str:
    return f"{ARTIFACT_PREFIX}{sha256}"


def audit_pk(name: str) -> str:
    return f"{AUDIT_PREFIX}{name}"


def audit_sk(seq: int) -> str:
    return f"{EVENT_PREFIX}{seq:012d}"


def alias_sk(alias: str, at: datetime, event_id: str) -> str:
    return f"{ALIAS_PREFIX}{alias}#{_iso(at)}#{event_id}"


def request_sk(key_hash: str) -> str:
    return f"{REQUEST_PREFIX}{key_hash}"


class DynamoRegistry(RegistryEngine):
    """The model registry on DynamoDB. Methods raise ModelNotFoundError, VersionNotFoundError,
    ConflictError (a transition not allowed, a lost race) and BadRequestError (invalid names).
    `artifacts` is where the production gate reads artifacts (default: S3)."""

    def __init__(self, table_name: str, dynamodb: Any | None = None, *, artifacts: ObjectStore | None = None) -> None:
        super().__init__(artifacts)
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or client("dynamodb")

    def _artifact_store(self) -> ObjectStore | None:
        if self._artifacts is None:
            from mlops.adapters.s3 import S3ObjectStore  # only changes need it, never the predict path

            self._artifacts = S3ObjectStore()
        return self._artifacts

    # ---- the engine's primitives ----

    def _load_model(self, name: str) -> ModelRecord | None:
        item = self._get(model_pk(name), MODEL_SK)
        return _record(item) if item else None

    def _load_version(self, name: str, number: int) -> ModelVersion | None:
        item = self._get(model_pk(name), version_sk(number))
        return _version_from_item(item) if item else None

    def _load_claim(self, name: str, sha256: str) -> int | None:
        item = self._get(model_pk(name), artifact_sk(sha256))
        return int(item["version"]) if item else None

    def _load_request(self, name: str, key_hash: str) -> tuple[str, str] | None:
        item = self._get(model_pk(name), request_sk(key_hash))
        return (item["fingerprint"], item["result"]) if item else None

    def _commit(self, plan: Plan, request: StoredRequest | None) -> bool:
        """The plan as one transaction, conditioned on the state it was decided from."""
        name, now = plan.name, _iso(datetime.now(UTC))
        items = [self._model_write(plan)]
        for before, after in plan.versions:
            item = _version_item(after, now)
            if before is None:
                items.append(self._put(item, condition="attribute_not_exists(pk)"))
            else:
                items.append(
                    self._put(
                        item,
                        condition="#status = :before",
                        names={"#status": "status"},
                        values={":before": before.status.value},
                    )
                )
        if plan.claim is not None:
            created = next(after for before, after in plan.versions if before is None)
            claim = {"pk": model_pk(name), "sk": artifact_sk(plan.claim), "version": created.version, "created_at": now}
            items.append(self._put(claim, condition="attribute_not_exists(pk)"))
        for event in plan.events:
            record = {"pk": audit_pk(name), "sk": audit_sk(event.seq), **event.model_dump(mode="python")}
            items.append(self._put(record, condition="attribute_not_exists(pk)"))
        for move in plan.moves:
            record = {"pk": audit_pk(name), "sk": alias_sk(move.alias, move.at, move.event_id), **move.model_dump()}
            items.append(self._put(record, condition="attribute_not_exists(pk)"))
        if request is not None:
            record = {
                "pk": model_pk(name),
                "sk": request_sk(request.key_hash),
                "fingerprint": request.fingerprint,
                "action": request.action,
                "result": request.result,
                "created_at": now,
            }
            items.append(self._put(record, condition="attribute_not_exists(pk)"))
        return self._transact(items)

    def _model_write(self, plan: Plan) -> dict[str, Any]:
        after = plan.model_after
        fields = {
            "name": after.name,
            "latest_version": after.latest_version,
            "production_history": after.production_history,
            "aliases": after.aliases,
            "updated_at": _iso(after.updated_at),
            "audit_seq": after.audit_seq,
            "audit_hash": after.audit_hash,
        }
        if after.production_version is not None:
            fields["production_version"] = after.production_version
        if after.canary is not None:
            fields["canary"] = after.canary.model_dump(mode="json")
        if after.shadow_version is not None:
            fields["shadow_version"] = after.shadow_version
        if plan.model_before is None:
            item = {
                "pk": model_pk(after.name),
                "sk": MODEL_SK,
                "gsi1pk": MODELS_INDEX_PK,
                "gsi1sk": after.name,
                "created_at": _iso(after.updated_at),
                **fields,
            }
            return self._put(item, condition="attribute_not_exists(pk)")
        names = {f"#f{i}": key for i, key in enumerate(fields)}
        values: dict[str, Any] = {f":f{i}": value for i, value in enumerate(fields.values())}
        expression = "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        removed = [name for name in ("production_version", "canary", "shadow_version") if name not in fields]
        if removed:
            expression += " REMOVE " + ", ".join(removed)
        names["#seq"] = "audit_seq"
        values[":seq"] = plan.model_before.audit_seq
        condition = (
            "#seq = :seq"
            if plan.model_before.audit_seq
            else "attribute_exists(pk) AND (attribute_not_exists(#seq) OR #seq = :seq)"
        )
        return self._update(model_pk(after.name), MODEL_SK, expression, condition=condition, values=values, names=names)

    # ---- reads ----

    def list_models(self) -> list[ModelRecord]:
        items = self._query(
            IndexName=MODELS_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": _serialize(MODELS_INDEX_PK)},
        )
        return [_record(item) for item in items]

    def list_versions(self, name: str) -> list[ModelVersion]:
        require_model_name(name)
        items = list(self._query_prefix(model_pk(name), VERSION_PREFIX))
        if not items:
            self.get_model(name)
        return [_version_from_item(item) for item in items]

    def audit_events(self, name: str) -> list[AuditEvent]:
        """The model's audit trail in chain order. Raises ModelNotFoundError."""
        self.get_model(name)
        items = self._query_prefix(audit_pk(name), EVENT_PREFIX)
        return [AuditEvent.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")}) for item in items]

    def alias_history(self, name: str, alias: str = PRODUCTION_ALIAS) -> list[AliasMove]:
        """Every move of `alias`, oldest first. Raises ModelNotFoundError, BadRequestError."""
        require_alias(alias)
        self.get_model(name)
        return [_alias_move(item) for item in self._query_prefix(audit_pk(name), f"{ALIAS_PREFIX}{alias}#")]

    def served_at(self, name: str, at: datetime, alias: str = PRODUCTION_ALIAS) -> AliasMove | None:
        """The last move of `alias` at or before `at` (its `to_version` served then), or None
        when the alias had not been set yet. One Query. Raises ModelNotFoundError, BadRequestError."""
        require_alias(alias)
        self.get_model(name)
        response = self.dynamodb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues=_to_item(
                {
                    ":pk": audit_pk(name),
                    ":low": f"{ALIAS_PREFIX}{alias}#",
                    ":high": f"{ALIAS_PREFIX}{alias}#{_iso(at)}#~",
                }
            ),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return _alias_move(_from_item(items[0])) if items else None

    # ---- DynamoDB plumbing ----

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(TableName=self.table_name, Key=_key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.dynamodb.get_paginator("query")
        for page in paginator.paginate(TableName=self.table_name, **kwargs):
            for item in page.get("Items", []):
                yield _from_item(item)

    def _query_prefix(self, pk: str, prefix: str) -> Iterator[dict[str, Any]]:
        return self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": _serialize(pk), ":prefix": _serialize(prefix)},
            ConsistentRead=True,
        )

    def _put(
        self,
        item: dict[str, Any],
        *,
        condition: str,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": _to_item(item), "ConditionExpression": condition}
        if names:
            put["ExpressionAttributeNames"] = names
        if values:
            put["ExpressionAttributeValues"] = _to_item(values)
        return {"Put": put}

    def _update(
        self,
        pk: str,
        sk: str,
        expression: str,
        *,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(pk, sk),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": _to_item(values),
        }
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """Run one transaction. False when it was cancelled by a failed condition or a conflict."""
        try:
            self.dynamodb.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
            if reasons and not reasons <= _RETRYABLE_REASONS | {"None"}:
                raise
            return False
        return True


# ---- conversions between records and items ----


def _version_item(version: ModelVersion, now: str) -> dict[str, Any]:
    return {
        "pk": model_pk(version.model_name),
        "sk": version_sk(version.version),
        **version.model_dump(mode="python"),
        "created_at": _iso(version.created_at),
        "updated_at": now,
    }


def _version_from_item(item: dict[str, Any]) -> ModelVersion:
    return ModelVersion.model_validate({k: v for k, v in item.items() if k in ModelVersion.model_fields})


def _record(item: dict[str, Any]) -> ModelRecord:
    return ModelRecord(
        name=item["name"],
        latest_version=int(item["latest_version"]),
        production_version=_opt_int(item.get("production_version")),
        production_history=[int(v) for v in item.get("production_history") or []],
        aliases={str(k): int(v) for k, v in (item.get("aliases") or {}).items()},
        canary=Canary.model_validate(item["canary"]) if item.get("canary") else None,
        shadow_version=_opt_int(item.get("shadow_version")),
        updated_at=item["updated_at"],
        audit_seq=int(item.get("audit_seq") or 0),
        audit_hash=item.get("audit_hash") or ModelRecord.model_fields["audit_hash"].default,
    )


def _alias_move(item: dict[str, Any]) -> AliasMove:
    return AliasMove.model_validate({k: v for k, v in item.items() if k in AliasMove.model_fields})


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serialize(to_dynamo(value)) for key, value in values.items()}


def to_dynamo(value: Any) -> Any:
    """Python values -> what boto3's TypeSerializer accepts: floats become exact Decimals (via
    their shortest repr); NaN and infinities, which DynamoDB numbers cannot hold, become strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str | Decimal):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return _NON_FINITE[repr(value)]
        return Decimal(repr(value))
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _iso(at: datetime) -> str:
    """Fixed-width UTC timestamps, so audit sort keys order by time."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
