"""`mlops --profile/--region/--stack`: a deployed stack resolved through CloudFormation and API
Gateway (moto), into the same Target local mode gives; and the checks an upload passes first."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.outputs import API_KEY_ID, API_URL, DATA_BUCKET_NAME, LEDGER_TABLE_NAME
from mlops_local.cli.datasets import upload_problem
from mlops_local.cli.target import TargetError, aws_target, local_target

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def _deploy(session: boto3.Session, stack: str = "MlopsStack") -> str:
    """A stack with the suite's output names and one function carrying the handler-folder metadata."""
    key = session.client("apigateway").create_api_key(name="callers", enabled=True, value="k" * 30)
    role = session.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    template = {
        "Resources": {
            "DataBucket": {"Type": "AWS::S3::Bucket"},
            "DatasetsValidateDatasetFunctionA1B2": {
                "Type": "AWS::Lambda::Function",
                "Metadata": {"mlops:source": "functions/validate_dataset"},
                "Properties": {
                    "Role": role,
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Code": {"ZipFile": "def handler(event, context): return None"},
                },
            },
        },
        "Outputs": {
            DATA_BUCKET_NAME: {"Value": {"Ref": "DataBucket"}},
            LEDGER_TABLE_NAME: {"Value": "ledger-table"},
            API_URL: {"Value": "https://abc.execute-api.eu-west-1.amazonaws.com/v1"},
            API_KEY_ID: {"Value": key["id"]},
        },
    }
    session.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    return key["id"]


def test_cli_aws_target_resolves_outputs_and_the_api_key_value(aws: boto3.Session) -> None:
    _deploy(aws, "Prod")

    target = aws_target(stack="Prod", session=aws)

    assert aws.client("s3").head_bucket(Bucket=target.data_bucket)
    assert target.ledger_table == "ledger-table"
    assert target.api_key == "k" * 30
    assert target.api().api_url == "https://abc.execute-api.eu-west-1.amazonaws.com/v1"
    assert target.api().credentials is not None  # admin calls are signed with the session's credentials
    assert target.region == REGION
    assert not target.is_local
    assert target.function_names is not None
    names = target.function_names()
    assert list(names) == ["validate_dataset"]
    assert aws.client("lambda").get_function(FunctionName=names["validate_dataset"])


def test_cli_aws_target_names_a_missing_stack(aws: boto3.Session) -> None:
    with pytest.raises(TargetError, match=f"stack 'Nope' not found in {REGION}"):
        aws_target(stack="Nope", session=aws)


def test_cli_local_target_says_how_to_start_local_mode(tmp_path) -> None:
    with pytest.raises(TargetError, match="mlops local up"):
        local_target(tmp_path / "state.json")


def test_cli_upload_checks_name_the_fix(aws: boto3.Session) -> None:
    _deploy(aws)
    target = aws_target(session=aws)
    s3 = aws.client("s3")

    # no contract published for the model: the fix names the commands
    said = upload_problem(target, "churn", "datasets/churn/a.csv")
    assert said is not None
    assert "no contract" in said
    assert "mlops contracts publish" in said

    s3.put_object(Bucket=target.data_bucket, Key="contracts/churn.json", Body=b"{}")
    assert upload_problem(target, "churn", "datasets/churn/a.csv") is None
    assert upload_problem(target, "churn", "datasets/churn/folder/a.parquet") is None
    for key, problem in [
        ("penguins/a.csv", "not under datasets/"),
        ("datasets/penguins/a.csv", "belongs to model 'penguins'"),
        ("datasets/churn/a.json", "unsupported file type"),
        ("datasets/churn/../a.csv", "'.' or '..'"),
    ]:
        said = upload_problem(target, "churn", key)
        assert said is not None
        assert problem in said
        assert f"--key datasets/churn/{key.rsplit('/', 1)[-1]}" in said
    assert "not a valid model name" in (upload_problem(target, "Churn!", "datasets/churn/a.csv") or "")


def test_cli_logs_tail_reads_the_deployed_functions_log_group(aws: boto3.Session) -> None:
    from typer.testing import CliRunner

    import mlops_local.cli as cli

    # GIVEN a deployed validate_dataset that logged two lines
    _deploy(aws)
    names = aws_target(session=aws).function_names()  # type: ignore[misc]
    group = aws.client("lambda").get_function_configuration(FunctionName=names["validate_dataset"])
    group_name = group.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{names['validate_dataset']}"
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group_name)
    logs.create_log_stream(logGroupName=group_name, logStreamName="2026/12/03/[$LATEST]abcdef12")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group_name,
        logStreamName="2026/12/03/[$LATEST]abcdef12",
        logEvents=[{"timestamp": now - 1000, "message": "START one"}, {"timestamp": now, "message": "REPORT one"}],
    )

    # WHEN the stack is named by its region
    result = CliRunner().invoke(cli.app, ["--region", REGION, "logs", "tail", "validate_dataset"])

    # THEN its events are printed, in order; an unknown function names the known ones
    assert result.exit_code == 0, result.output
    assert [line.split(" ", 2)[2] for line in result.output.splitlines()] == ["START one", "REPORT one"]
    unknown = CliRunner().invoke(cli.app, ["--region", REGION, "logs", "tail", "nope"])
    assert unknown.exit_code == 1
    assert "known: validate_dataset" in unknown.output


def test_cli_contracts_publish_to_the_stack_named_by_the_root_options(aws: boto3.Session, tmp_path) -> None:
    from typer.testing import CliRunner

    import mlops_local.cli as cli

    _deploy(aws)
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "churn.json").write_text((Path(cli.__file__).parents[3] / "contracts" / "churn.json").read_text())

    result = CliRunner().invoke(cli.app, ["--region", REGION, "contracts", "publish", "--dir", str(contracts)])

    assert result.exit_code == 0, result.output
    target = aws_target(session=aws)
    assert f"published s3://{target.data_bucket}/contracts/churn.json" in result.output
    assert upload_problem(target, "churn", "datasets/churn/a.csv") is None  # the upload check now passes
