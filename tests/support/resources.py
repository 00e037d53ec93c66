"""Creates the stack's data resources on the moto server for integration tests.

The key schemas here are the ones infra/ declares. (Later: built from the synthesized template
by the local runtime, so test and deployed schemas cannot drift.)
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3


@dataclass(frozen=True)
class TestResources:
    __test__ = False  # a fixture value, not a test class
    data_bucket: str = "mlops-data"
    artifact_bucket: str = "mlops-artifacts"
    registry_table: str = "mlops-registry"
    ledger_table: str = "mlops-ledger"
    idempotency_table: str = "mlops-idempotency"
    event_bus_name: str = "mlops-bus"

    def env(self) -> dict[str, str]:
        return {
            "DATA_BUCKET": self.data_bucket,
            "ARTIFACT_BUCKET": self.artifact_bucket,
            "REGISTRY_TABLE": self.registry_table,
            "LEDGER_TABLE": self.ledger_table,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "EVENT_BUS_NAME": self.event_bus_name,
        }


def create_resources(names: TestResources | None = None) -> TestResources:
    names = names or TestResources()
    s3 = boto3.client("s3")
    for bucket in (names.data_bucket, names.artifact_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    dynamodb = boto3.client("dynamodb")
    for table in (names.registry_table, names.ledger_table):  # the same key schema and index (infra)
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
    dynamodb.create_table(
        TableName=names.idempotency_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    boto3.client("events").create_event_bus(Name=names.event_bus_name)
    return names
