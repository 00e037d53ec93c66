"""Local mode synthesizes with its own deploy-time context: its stand-in admin may manage models,
and the dataset ledger's own table exists on the stand-in, as the template declares it."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from mlops_local.client import ApiClient
from mlops_local.runtime import LocalRuntime

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]


def test_local_mode_accepts_local_admin_and_creates_the_ledger_table(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "local", schedules=False)
    endpoints = runtime.start()
    try:
        admin = ApiClient(
            endpoints.api_url,
            ca_bundle=endpoints.ca_bundle,
            access_key=endpoints.access_key_id,
            secret_key=endpoints.secret_access_key,
        )

        listed = admin.admin("GET", "/models")
        datasets = admin.admin("GET", "/models/churn/datasets?state=held")

        assert (listed.status, listed.body) == (200, [])
        assert (datasets.status, datasets.body) == (200, [])
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoints.aws_endpoint_url, region_name=endpoints.region)
        ledger = dynamodb.describe_table(TableName=endpoints.outputs["LedgerTableName"])["Table"]
        assert [k["AttributeName"] for k in ledger["KeySchema"]] == ["pk", "sk"]
        assert [i["IndexName"] for i in ledger["GlobalSecondaryIndexes"]] == ["gsi1"]
        assert endpoints.outputs["LedgerTableName"] != endpoints.outputs["RegistryTableName"]
    finally:
        runtime.stop()
