"""Buckets and tables: the baseline every bucket shares; the registry schema from docs/DESIGN.md."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.support import as_list, function_ids, resources


def _buckets(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::S3::Bucket")


def test_three_buckets(template: dict[str, Any]) -> None:
    assert len(_buckets(template)) == 3


@pytest.mark.parametrize("check", ["encrypted", "versioned", "public_access_blocked", "retained", "tls_only"])
def test_every_bucket_meets_the_baseline(template: dict[str, Any], check: str) -> None:
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in resources(template, "AWS::S3::BucketPolicy").values()}
    for lid, bucket in _buckets(template).items():
        props = bucket["Properties"]
        if check == "encrypted":
            assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], lid
        elif check == "versioned":
            assert props["VersioningConfiguration"] == {"Status": "Enabled"}, lid
        elif check == "public_access_blocked":
            assert props["PublicAccessBlockConfiguration"] == {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }, lid
        elif check == "retained":
            assert bucket["DeletionPolicy"] == "Retain", lid
        else:
            statements = policies[lid]["Properties"]["PolicyDocument"]["Statement"]
            assert any(
                s["Effect"] == "Deny"
                and "s3:*" in as_list(s["Action"])
                and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                for s in statements
            ), lid


def test_data_and_artifact_buckets_log_to_the_access_log_bucket(template: dict[str, Any]) -> None:
    log_bucket_ref = template["Outputs"]["AccessLogBucketName"]["Value"]
    for output in ("DataBucketName", "ArtifactBucketName"):
        bucket = template["Resources"][template["Outputs"][output]["Value"]["Ref"]]
        assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == log_bucket_ref


def test_registry_table_schema(template: dict[str, Any]) -> None:
    table = template["Resources"][template["Outputs"]["RegistryTableName"]["Value"]["Ref"]]
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
        ("pk", "S"), ("sk", "S"), ("gsi1pk", "S"), ("gsi1sk", "S"),
    }  # fmt: skip
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert gsi["KeySchema"] == [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_idempotency_table_uses_powertools_defaults(template: dict[str, Any]) -> None:
    table = template["Resources"][template["Outputs"]["IdempotencyTableName"]["Value"]["Ref"]]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_dataset_ledger_has_its_own_table_built_like_the_registry(template: dict[str, Any]) -> None:
    registry_id = template["Outputs"]["RegistryTableName"]["Value"]["Ref"]
    ledger_id = template["Outputs"]["LedgerTableName"]["Value"]["Ref"]
    assert ledger_id != registry_id
    registry, ledger = template["Resources"][registry_id], template["Resources"][ledger_id]
    # same key schema, index, billing, recovery, deletion protection and encryption as the registry
    assert ledger["Properties"] == registry["Properties"]
    assert ledger["DeletionPolicy"] == ledger["UpdateReplacePolicy"] == "Retain"


def test_every_ledger_user_is_told_the_ledger_table(template: dict[str, Any]) -> None:
    ledger = template["Outputs"]["LedgerTableName"]["Value"]
    told = {
        folder
        for folder, lid in function_ids(template).items()
        if template["Resources"][lid]["Properties"]["Environment"]["Variables"].get("LEDGER_TABLE") == ledger
    }
    assert told == {
        "validate_dataset",
        "models_api",
        "train_model",
        "register_model",
        "record_training_failure",
        "retrain_model",  # reads the last accepted dataset (the index only)
    }
