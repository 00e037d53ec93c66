"""Local mode keeps its state across restarts: objects with their version ids, tables with their
keys, indexes, TTL and items (a registry version and its audit event, written by the real adapter),
waiting queue messages, subscriptions, the API key and the credentials. `fresh` starts over."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.adapters.apigateway_keys import ApiGatewayClientKeys
from mlops.adapters.client_key_audit_dynamodb import DynamoKeyAudit
from mlops.adapters.registry_dynamodb import DynamoRegistry
from mlops.client_keys import (
    IssueKeyRequest,
    KeyAction,
    RevokeKeyRequest,
    client_keys,
    issue_client_key,
    revoke_client_key,
)
from mlops.errors import ModelNotFoundError
from mlops_local import cli
from mlops_local import state as state_module
from mlops_local.client import ApiClient
from mlops_local.handlers import REPO_ROOT
from mlops_local.runtime import LocalRuntime
from mlops_local.state import StateError
from mlops_local.template import TemplateError
from tests.integration.test_local_runtime import mini_template
from tests.support.registry_fake import default_artifact, trained_event

pytestmark = pytest.mark.xdist_group("local-runtime")

ACTOR = "arn:aws:lambda:us-east-1:123456789012:function:register-model"
REGISTRY_TABLE = "mlops-local-registry"
CLIENT_PLAN = "mlops-local-clients"


def stateful_template(
    echo_log: Path,
    *,
    bucket_id: str = "Uploads",
    registry_keys: tuple[str, str] = ("pk", "sk"),
    index: str = "gsi1",
    ttl_attribute: str = "expires_at",
) -> dict[str, Any]:
    """The runtime tests' template, plus a versioned artifact bucket, the registry's table (keys, GSI,
    TTL as infra declares them) and a queue."""
    template = mini_template(echo_log)
    resources = template["Resources"]
    if bucket_id != "Uploads":  # a renamed logical id: a new physical name
        resources[bucket_id] = resources.pop("Uploads")
        template_text = json.dumps(template).replace('{"Ref": "Uploads"}', f'{{"Ref": "{bucket_id}"}}')
        template = json.loads(template_text)
        resources = template["Resources"]
    hash_key, range_key = registry_keys
    resources["Artifacts"] = {
        "Type": "AWS::S3::Bucket",
        "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
    }
    resources["Registry"] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "TableName": REGISTRY_TABLE,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": "S"} for name in (hash_key, range_key, "gsi1pk", "gsi1sk")
            ],
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "TimeToLiveSpecification": {"Enabled": True, "AttributeName": ttl_attribute},
        },
    }
    resources["Work"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "mlops-local-work"}}
    # the clients' usage plan issued keys join (as infra.constructs.inference_api declares it, by name)
    resources["ClientPlan"] = {
        "Type": "AWS::ApiGateway::UsagePlan",
        "Properties": {
            "UsagePlanName": CLIENT_PLAN,
            "Throttle": {"RateLimit": 20, "BurstLimit": 40},
            "Quota": {"Limit": 1000, "Period": "DAY"},
            "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "prod"}],
        },
    }
    template["Outputs"]["ArtifactBucketName"] = {"Value": {"Ref": "Artifacts"}}
    return template


def start(workdir: Path, **options: Any) -> LocalRuntime:
    workdir.mkdir(parents=True, exist_ok=True)
    echo_log = workdir / "echo.jsonl"
    echo_log.touch()
    template = options.pop("template", None) or stateful_template(echo_log)
    runtime = LocalRuntime(workdir, template=template, contracts_dir=workdir / "none", schedules=False, **options)
    runtime.start()
    return runtime


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "local"


def _client(runtime: LocalRuntime, service: str) -> Any:
    endpoints = runtime.endpoints
    assert endpoints is not None
    return boto3.client(
        service,
        endpoint_url=endpoints.aws_endpoint_url,
        region_name=endpoints.region,
        aws_access_key_id=endpoints.access_key_id,
        aws_secret_access_key=endpoints.secret_access_key,
    )


def _api(runtime: LocalRuntime, api_key: str) -> ApiClient:
    endpoints = runtime.endpoints
    assert endpoints is not None
    return ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle, api_key=api_key)


def _post_thing(runtime: LocalRuntime, api_key: str) -> int:
    return _api(runtime, api_key).request("POST", "/things/a", {}, headers={"x-api-key": api_key}).status


def _write_everything(runtime: LocalRuntime) -> dict[str, Any]:
    """An object in two versions, a registered model version (with its audit event), a waiting
    message and a subscription; returns what must come back."""
    assert runtime.endpoints is not None
    outputs = runtime.endpoints.outputs
    s3, sqs, sns = (_client(runtime, s) for s in ("s3", "sqs", "sns"))
    first = s3.put_object(Bucket=outputs["DataBucketName"], Key="reports/a.json", Body=b"first")["VersionId"]
    second = s3.put_object(Bucket=outputs["DataBucketName"], Key="reports/a.json", Body=b"second")["VersionId"]
    trained = trained_event(bucket=outputs["ArtifactBucketName"])
    s3.put_object(Bucket=trained.artifact_bucket, Key=trained.artifact_key, Body=default_artifact(trained))
    registry = DynamoRegistry(REGISTRY_TABLE, _client(runtime, "dynamodb"))
    registry.register(trained, actor=ACTOR)
    queue_url = sqs.get_queue_url(QueueName="mlops-local-work")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="waiting")
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    return {
        "versions": {first: b"first", second: b"second"},
        "model_versions": [(v.version, v.status) for v in registry.list_versions("churn")],
        "audit": [(e.action, e.version) for e in registry.audit_events("churn")],
        "subscription": subscription,
    }


def test_local_restart_keeps_objects_registry_audit_messages_api_key_and_credentials(workdir: Path) -> None:
    # GIVEN local mode with data written through S3, the real registry adapter, SQS and SNS
    runtime = start(workdir)
    try:
        before = runtime.endpoints
        assert before is not None
        written = _write_everything(runtime)
        assert written["audit"], "registering wrote no audit event"
    finally:
        runtime.stop()  # WHEN it stops and starts again
    runtime = start(workdir)
    try:
        after = runtime.endpoints
        assert after is not None
        # THEN the same API key and credentials work
        assert (after.api_key, after.access_key_id, after.secret_access_key) == (
            before.api_key,
            before.access_key_id,
            before.secret_access_key,
        )
        assert _post_thing(runtime, before.api_key) == 200
        # every object version, by the version ids the registry and ledger point at
        s3 = _client(runtime, "s3")
        for version_id, body in written["versions"].items():
            got = s3.get_object(Bucket=after.outputs["DataBucketName"], Key="reports/a.json", VersionId=version_id)
            assert got["Body"].read() == body
        latest = s3.get_object(Bucket=after.outputs["DataBucketName"], Key="reports/a.json")
        assert latest["Body"].read() == b"second"
        # the registry's versions and audit trail, read by the real adapter (keys and GSI intact)
        registry = DynamoRegistry(REGISTRY_TABLE, _client(runtime, "dynamodb"))
        assert [(v.version, v.status) for v in registry.list_versions("churn")] == written["model_versions"]
        assert [(e.action, e.version) for e in registry.audit_events("churn")] == written["audit"]
        ttl = _client(runtime, "dynamodb").describe_time_to_live(TableName=REGISTRY_TABLE)
        assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        # the waiting message and the subscription
        sqs = _client(runtime, "sqs")
        queue_url = sqs.get_queue_url(QueueName="mlops-local-work")["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in messages] == ["waiting"]
        arns = [s["SubscriptionArn"] for s in _client(runtime, "sns").list_subscriptions()["Subscriptions"]]
        assert written["subscription"] in arns
        # and new writes still work beside the kept ones (a new version of the same key)
        s3.put_object(Bucket=after.outputs["DataBucketName"], Key="reports/a.json", Body=b"third")
        listed = s3.list_object_versions(Bucket=after.outputs["DataBucketName"], Prefix="reports/a.json")
        assert len(listed["Versions"]) == 3
        assert runtime.restored is not None
        assert not runtime.reconciled.created
    finally:
        runtime.stop()


def _client_keys(runtime: LocalRuntime) -> tuple[ApiGatewayClientKeys, DynamoKeyAudit]:
    return ApiGatewayClientKeys(CLIENT_PLAN, _client(runtime, "apigateway")), DynamoKeyAudit(
        REGISTRY_TABLE, _client(runtime, "dynamodb")
    )


def _plans_and_keys(runtime: LocalRuntime) -> tuple[list[str], list[str], dict[str, set[str]]]:
    """Usage plan names, API key names, and each plan's member key ids, on the stand-in."""
    apigateway = _client(runtime, "apigateway")
    plans = apigateway.get_usage_plans()["items"]
    keys = apigateway.get_api_keys()["items"]
    members = {
        plan["name"]: {k["id"] for k in apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]}
        for plan in plans
    }
    return sorted(p["name"] for p in plans), sorted(k["name"] for k in keys), members


def test_local_restart_keeps_issued_client_keys_and_revocations_without_duplicating_the_templates(
    workdir: Path,
) -> None:
    # GIVEN local mode where two client keys were issued and one of them revoked (the domain, real adapters)
    runtime = start(workdir)
    try:
        assert runtime.endpoints is not None
        stack_key = runtime.endpoints.api_key
        gateway, audit = _client_keys(runtime)
        now = datetime.now(UTC)
        kept = issue_client_key(
            gateway, audit, IssueKeyRequest(client="acme", reason="onboarding"), actor=ACTOR, request_id="r1", now=now
        )
        revoked = issue_client_key(
            gateway, audit, IssueKeyRequest(client="bolt", reason="trial"), actor=ACTOR, request_id="r2", now=now
        )
        revoke_client_key(
            gateway,
            audit,
            revoked.key_id,
            RevokeKeyRequest(reason="trial ended"),
            actor=ACTOR,
            request_id="r3",
            now=now,
        )
        assert _post_thing(runtime, kept.value) == 200
        assert _post_thing(runtime, revoked.value) == 403
        before = _plans_and_keys(runtime)
    finally:
        runtime.stop()  # WHEN local mode stops and starts again (twice: nothing piles up)
    start(workdir).stop()
    runtime = start(workdir)
    try:
        # THEN the issued key still passes the local API's check, the revoked one is still refused
        assert _post_thing(runtime, kept.value) == 200
        assert _post_thing(runtime, revoked.value) == 403
        assert _post_thing(runtime, stack_key) == 200
        # the template's plans and key exist once each, with the same members (the issued key in its plan)
        plans, keys, members = _plans_and_keys(runtime)
        assert (plans, keys, members) == before
        assert len(plans) == len(set(plans)) == 2
        assert kept.key_id in members[CLIENT_PLAN]  # (moto leaves a deleted key's membership behind)
        gateway, audit = _client_keys(runtime)
        assert [(k.client, k.key_id, k.fingerprint) for k in client_keys(gateway)] == [
            ("acme", kept.key_id, kept.fingerprint)
        ]
        assert sorted((e.key_id, e.action) for e in audit.events()) == sorted(
            [(kept.key_id, KeyAction.ISSUED), (revoked.key_id, KeyAction.ISSUED), (revoked.key_id, KeyAction.REVOKED)]
        )
    finally:
        runtime.stop()


def test_local_restart_gives_a_kept_usage_plan_the_limits_the_template_declares_now(workdir: Path) -> None:
    start(workdir).stop()
    template = stateful_template(workdir / "echo.jsonl")
    template["Resources"]["ClientPlan"]["Properties"]["Throttle"] = {"RateLimit": 7, "BurstLimit": 9}
    del template["Resources"]["ClientPlan"]["Properties"]["Quota"]
    runtime = start(workdir, template=template)
    try:
        plans = [p for p in _client(runtime, "apigateway").get_usage_plans()["items"] if p["name"] == CLIENT_PLAN]
        assert len(plans) == 1
        assert (plans[0]["throttle"]["rateLimit"], plans[0]["throttle"]["burstLimit"]) == (7, 9)
        assert "quota" not in plans[0]
    finally:
        runtime.stop()


def test_local_fresh_discards_data_key_and_credentials_and_says_so(workdir: Path) -> None:
    runtime = start(workdir)
    try:
        before = runtime.endpoints
        assert before is not None
        _write_everything(runtime)
    finally:
        runtime.stop()
    runtime = start(workdir, fresh=True)
    try:
        after = runtime.endpoints
        assert after is not None
        assert runtime.discarded
        assert runtime.restored is None
        assert after.api_key != before.api_key
        assert after.secret_access_key != before.secret_access_key
        assert _post_thing(runtime, before.api_key) == 403
        s3 = _client(runtime, "s3")
        assert "Versions" not in s3.list_object_versions(Bucket=after.outputs["DataBucketName"])
        with pytest.raises(ModelNotFoundError):
            DynamoRegistry(REGISTRY_TABLE, _client(runtime, "dynamodb")).list_versions("churn")
    finally:
        runtime.stop()


def test_local_state_is_saved_periodically_so_a_crash_loses_little(workdir: Path, tmp_path: Path) -> None:
    runtime = start(workdir, save_every_seconds=0.5)
    try:
        assert runtime.endpoints is not None
        bucket = runtime.endpoints.outputs["DataBucketName"]
        version = _client(runtime, "s3").put_object(Bucket=bucket, Key="reports/b.json", Body=b"kept")["VersionId"]
        written_at = time.time()
        manifest = workdir / "state" / "manifest.json"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (manifest.exists() and manifest.stat().st_mtime > written_at):
            time.sleep(0.1)
        # a crash now: what is on disk is all there is (copied before stop() could save again)
        crashed = tmp_path / "crashed"
        shutil.copytree(workdir / "state", crashed / "state")
        shutil.copytree(workdir / "tls", crashed / "tls")
    finally:
        runtime.stop()
    runtime = start(crashed)
    try:
        got = _client(runtime, "s3").get_object(Bucket=bucket, Key="reports/b.json", VersionId=version)
        assert got["Body"].read() == b"kept"
    finally:
        runtime.stop()


def test_local_state_files_are_private(workdir: Path) -> None:
    start(workdir).stop()
    state = workdir / "state"
    snapshot = state / json.loads((state / "manifest.json").read_text())["snapshot"]
    assert {p.name for p in state.iterdir()} == {"manifest.json", "secrets.json", snapshot.name}
    assert {p.name for p in snapshot.iterdir()} >= {"s3.pickle", "dynamodb.pickle", "sqs.pickle", "sns.pickle"}
    assert all(p.stat().st_mode & 0o777 == 0o700 for p in (state, snapshot))
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in [*state.glob("*.json"), *snapshot.iterdir()])


def test_local_state_of_another_moto_is_refused_with_the_fix(workdir: Path) -> None:
    runtime = start(workdir)
    runtime.stop()
    manifest_path = workdir / "state" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["versions"]["moto"] = "4.0.0"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(StateError, match=r"moto 4\.0\.0.*--fresh"):
        start(workdir)


def test_local_renamed_resource_is_created_and_the_old_one_kept_and_reported(workdir: Path) -> None:
    runtime = start(workdir)
    try:
        assert runtime.endpoints is not None
        old_bucket = runtime.endpoints.outputs["DataBucketName"]
        _client(runtime, "s3").put_object(Bucket=old_bucket, Key="reports/c.json", Body=b"old")
    finally:
        runtime.stop()
    # the template now calls the bucket by another logical id: CloudFormation would create a new one
    runtime = start(workdir, template=stateful_template(workdir / "echo.jsonl", bucket_id="Incoming"))
    try:
        assert runtime.endpoints is not None
        new_bucket = runtime.endpoints.outputs["DataBucketName"]
        assert new_bucket != old_bucket
        assert new_bucket in runtime.reconciled.created
        assert f"bucket {old_bucket}" in runtime.reconciled.undeclared
        assert REGISTRY_TABLE in runtime.reconciled.kept
        kept = _client(runtime, "s3").get_object(Bucket=old_bucket, Key="reports/c.json")
        assert kept["Body"].read() == b"old"
    finally:
        runtime.stop()


def test_local_table_saved_with_other_keys_is_refused_not_reused(workdir: Path) -> None:
    start(workdir).stop()
    saved = (workdir / "state" / "manifest.json").read_text()
    template = stateful_template(workdir / "echo.jsonl", registry_keys=("pk", "version"))
    with pytest.raises(TemplateError, match=r"mlops-local-registry.*--fresh"):
        start(workdir, template=template)
    assert (workdir / "state" / "manifest.json").read_text() == saved  # the refused start saved nothing


def test_local_persist_false_neither_restores_nor_saves(workdir: Path) -> None:
    runtime = start(workdir)
    assert runtime.endpoints is not None
    bucket = runtime.endpoints.outputs["DataBucketName"]
    _client(runtime, "s3").put_object(Bucket=bucket, Key="reports/d.json", Body=b"saved")
    runtime.stop()
    saved = (workdir / "state" / "manifest.json").read_text()
    runtime = start(workdir, persist=False)
    try:
        assert "Contents" not in _client(runtime, "s3").list_objects_v2(Bucket=bucket)
        _client(runtime, "s3").put_object(Bucket=bucket, Key="reports/e.json", Body=b"not saved")
    finally:
        runtime.stop()
    assert (workdir / "state" / "manifest.json").read_text() == saved


def test_local_mode_stopped_by_sigterm_saves_its_state(workdir: Path) -> None:
    # GIVEN `mlops local up`'s serving loop in its own process
    workdir.mkdir(parents=True)
    script = f"""
import sys
from pathlib import Path
from mlops_local.cli import serve_until_stopped
from mlops_local.runtime import LocalRuntime
from tests.integration.test_local_state import stateful_template
workdir = Path({str(workdir)!r})
(workdir / "echo.jsonl").touch()
runtime = LocalRuntime(workdir, template=stateful_template(workdir / "echo.jsonl"), contracts_dir=workdir / "none",
                       schedules=False)
sys.exit(serve_until_stopped(runtime))
"""
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONPATH": f"{REPO_ROOT / 'src'}{os.pathsep}{REPO_ROOT}"},
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "Local mode is running" in line:
                break
        endpoints = json.loads((workdir / "state.json").read_text())
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoints["aws_endpoint_url"],
            region_name=endpoints["region"],
            aws_access_key_id=endpoints["access_key_id"],
            aws_secret_access_key=endpoints["secret_access_key"],
        )
        bucket = endpoints["outputs"]["DataBucketName"]
        version = s3.put_object(Bucket=bucket, Key="reports/f.json", Body=b"before SIGTERM")["VersionId"]
        # WHEN it gets SIGTERM (long before the periodic save)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    # THEN the object is there on the next start
    runtime = start(workdir)
    try:
        got = _client(runtime, "s3").get_object(Bucket=bucket, Key="reports/f.json", VersionId=version)
        assert got["Body"].read() == b"before SIGTERM"
    finally:
        runtime.stop()


def test_local_state_writable_by_others_is_not_loaded(workdir: Path) -> None:
    start(workdir).stop()
    next((workdir / "state").glob("snapshot-*/s3.pickle")).chmod(0o666)
    with pytest.raises(StateError, match=r"s3\.pickle is not private"):
        start(workdir)


def test_local_periodic_save_skips_while_nothing_changed(workdir: Path) -> None:
    runtime = start(workdir, save_every_seconds=0.3)
    try:
        manifest = workdir / "state" / "manifest.json"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not manifest.exists():  # the first round always saves
            time.sleep(0.1)
        first = manifest.stat().st_mtime_ns
        time.sleep(1.5)  # reads only (the trigger queues are polled every second)
        assert manifest.stat().st_mtime_ns == first
        assert runtime.endpoints is not None
        bucket = runtime.endpoints.outputs["DataBucketName"]
        _client(runtime, "s3").put_object(Bucket=bucket, Key="reports/g.json", Body=b"changed")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and manifest.stat().st_mtime_ns == first:
            time.sleep(0.1)
        assert manifest.stat().st_mtime_ns != first
    finally:
        runtime.stop()


def test_local_kept_table_gets_the_indexes_and_ttl_the_template_declares_now(workdir: Path) -> None:
    runtime = start(workdir)
    try:
        dynamodb = _client(runtime, "dynamodb")
        dynamodb.put_item(
            TableName=REGISTRY_TABLE,
            Item={"pk": {"S": "a"}, "sk": {"S": "b"}, "gsi1pk": {"S": "g"}, "gsi1sk": {"S": "1"}},
        )
    finally:
        runtime.stop()
    template = stateful_template(workdir / "echo.jsonl", index="by_stage", ttl_attribute="expires")
    runtime = start(workdir, template=template)
    try:
        dynamodb = _client(runtime, "dynamodb")
        table = dynamodb.describe_table(TableName=REGISTRY_TABLE)["Table"]
        assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by_stage"]
        found = dynamodb.query(
            TableName=REGISTRY_TABLE,
            IndexName="by_stage",
            KeyConditionExpression="gsi1pk = :g",
            ExpressionAttributeValues={":g": {"S": "g"}},
        )["Items"]
        assert [item["pk"]["S"] for item in found] == ["a"]  # the kept item, found through the new index
        ttl = dynamodb.describe_time_to_live(TableName=REGISTRY_TABLE)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expires"
    finally:
        runtime.stop()


def test_local_state_in_use_by_a_running_local_mode_is_refused(workdir: Path) -> None:
    runtime = start(workdir)
    try:
        with pytest.raises(StateError, match=r"in use by another local mode \(pid \d+\)"):
            LocalRuntime(workdir, template=stateful_template(workdir / "echo.jsonl"), schedules=False).start()
        assert runtime.endpoints is not None
        bucket = runtime.endpoints.outputs["DataBucketName"]
        _client(runtime, "s3").put_object(Bucket=bucket, Key="reports/h.json", Body=b"still mine")  # undisturbed
    finally:
        runtime.stop()
    start(workdir).stop()  # released at stop


def test_contracts_publish_without_bucket_targets_the_running_local_mode(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = start(workdir)
    try:
        assert runtime.endpoints is not None
        monkeypatch.setattr(cli, "STATE_FILE", workdir / "state.json")
        contracts = tmp_path / "contracts"
        contracts.mkdir()
        document = json.loads((REPO_ROOT / "contracts" / "churn.json").read_text()) | {"name": "penguins"}
        (contracts / "penguins.json").write_text(json.dumps(document))

        assert cli.main(["contracts", "publish", "--dir", str(contracts)]) == 0

        bucket = runtime.endpoints.outputs["DataBucketName"]
        published = _client(runtime, "s3").get_object(Bucket=bucket, Key="contracts/penguins.json")
        assert json.loads(published["Body"].read())["name"] == "penguins"
        answer = json.loads(capsys.readouterr().out.splitlines()[-1])  # the control endpoint's sync answer
        assert answer["refused"] == {}
    finally:
        runtime.stop()


def test_local_save_interrupted_midway_keeps_the_previous_snapshot_whole(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = start(workdir)
    try:
        assert runtime.endpoints is not None
        bucket = runtime.endpoints.outputs["DataBucketName"]
        runtime.save()  # a first, complete snapshot (empty bucket and table)
        # GIVEN an object and a registry item written after it
        _client(runtime, "s3").put_object(Bucket=bucket, Key="reports/i.json", Body=b"after the snapshot")
        _client(runtime, "dynamodb").put_item(
            TableName=REGISTRY_TABLE,
            Item={"pk": {"S": "a"}, "sk": {"S": "b"}, "gsi1pk": {"S": "g"}, "gsi1sk": {"S": "1"}},
        )
        # WHEN the next save dies after writing S3's file, before DynamoDB's (a crash, a full disk)
        write = state_module._write_private

        def dies_at_dynamodb(path: Path, data: bytes) -> None:
            if path.name.startswith("dynamodb"):
                raise OSError("No space left on device")
            write(path, data)

        monkeypatch.setattr(state_module, "_write_private", dies_at_dynamodb)
        with pytest.raises(OSError, match="No space"):
            runtime.save()
        monkeypatch.setattr(runtime, "_started", False)  # the crashed process never saves again
    finally:
        runtime.stop()
    monkeypatch.undo()
    # THEN the restart sees the first snapshot whole: neither the object nor the item, not one without the other
    runtime = start(workdir)
    try:
        assert "Contents" not in _client(runtime, "s3").list_objects_v2(Bucket=bucket)
        assert _client(runtime, "dynamodb").scan(TableName=REGISTRY_TABLE)["Items"] == []
    finally:
        runtime.stop()
