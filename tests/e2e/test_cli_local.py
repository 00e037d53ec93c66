"""The `mlops` commands a person runs, against one local mode (started once for the module): an
upload checked before it leaves and followed to serving, models as tables, predictions from a CSV
file, the invocations log. Each command runs through typer's CliRunner as a shell would run it."""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlops_local.cli as cli
from mlops_local.runtime import Endpoints, LocalRuntime
from mlops_local.sample_data import churn_dataset

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime")]


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    runtime = LocalRuntime(tmp_path_factory.mktemp("cli") / "local", schedules=False, persist=False)
    endpoints = runtime.start()
    try:
        yield endpoints
    finally:
        runtime.stop()


@pytest.fixture
def mlops(local_mode: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str]]:
    """Runs `mlops ARGS...` against the module's local mode: (exit status, stdout + stderr)."""
    state_file = Path(local_mode.log_dir).parent / "state.json"
    assert state_file.exists()
    monkeypatch.setattr(cli, "STATE_FILE", state_file)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli.app, list(args), prog_name="mlops")
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    return run


def _churn_csv(path: Path, rows: int, *, seed: int = 7) -> Path:
    churn_dataset(rows, seed=seed).to_csv(path, index=False)
    return path


def test_cli_upload_refuses_a_model_without_contract_before_uploading(mlops, local_mode, tmp_path) -> None:
    import boto3

    status, output = mlops("datasets", "upload", str(_churn_csv(tmp_path / "p.csv", 10)), "--model", "penguins")

    assert status == 1
    assert "no contract" in output
    assert "mlops contracts publish" in output
    s3 = boto3.client(
        "s3",
        endpoint_url=local_mode.aws_endpoint_url,
        region_name=local_mode.region,
        aws_access_key_id=local_mode.access_key_id,
        aws_secret_access_key=local_mode.secret_access_key,
    )
    listed = s3.list_objects_v2(Bucket=local_mode.outputs["DataBucketName"], Prefix="datasets/penguins/")
    assert "Contents" not in listed  # nothing was uploaded


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("penguins/x.csv", "the key is not under datasets/"),
        ("dataset/churn/x.csv", "the key is not under datasets/"),
        ("datasets/other/x.csv", "belongs to model 'other'"),
        ("datasets/churn/x.txt", "unsupported file type"),
    ],
)
def test_cli_upload_refuses_a_wrong_key_with_the_right_one(mlops, tmp_path, key: str, said: str) -> None:
    status, output = mlops(
        "datasets", "upload", str(_churn_csv(tmp_path / "x.csv", 10)), "--model", "churn", "--key", key
    )

    assert status == 1
    assert said in output
    assert "--key datasets/churn/x." in output  # the fix


def test_cli_first_dataset_to_prediction(mlops, tmp_path) -> None:
    # GIVEN a newcomer's first dataset for the sample model
    data = _churn_csv(tmp_path / "first.csv", 3_000)

    # WHEN it is uploaded and followed
    status, output = mlops("datasets", "upload", str(data), "--model", "churn", "--timeout", "600")

    # THEN each stage is told, up to serving
    assert status == 0, output
    assert "uploaded s3://" in output
    assert re.search(r"serving: churn v1 is production", output), output
    assert output.index("validat") < output.index("serving")

    # AND the registry shows it as tables
    status, listed = mlops("models", "list")
    assert status == 0
    assert re.search(r"churn\s+.\s+1\s+.\s+1\s", listed), listed
    status, versions = mlops("models", "versions", "churn")
    assert status == 0
    assert re.search(r"1\s+.\s+production", versions), versions

    # AND the file's rows are predicted, each with a prediction id, into a CSV
    rows = tmp_path / "score.csv"
    churn_dataset(25, seed=11).drop(columns=["churned"]).to_csv(rows, index=False)
    out = tmp_path / "scored.csv"
    status, said = mlops("predict", "churn", "--csv", str(rows), "--out", str(out), "--batch", "10")
    assert status == 0, said
    with out.open() as handle:
        scored = list(csv.DictReader(handle))
    assert len(scored) == 25
    assert all(row["prediction_id"] for row in scored)
    assert len({row["prediction_id"] for row in scored}) == 25
    inputs = set(churn_dataset(1).columns) - {"churned"}
    assert inputs < set(scored[0])
    assert set(scored[0]) - inputs - {"prediction_id"}

    # AND asking for a version that is not serving is refused, naming the serving one
    status, said = mlops("predict", "churn", "--csv", str(rows), "--version", "7")
    assert status == 1
    assert "v7 is not serving (v1 is)" in said

    # AND the invocations are in the log
    status, tail = mlops("logs", "tail", "validate_dataset")
    assert status == 0
    assert re.search(r"validate_dataset .* ok", tail), tail

    # AND no dataset is held; no drift run exists yet, and the message says so
    status, held = mlops("datasets", "held", "churn")
    assert (status, "no datasets of churn are held") == (0, held.strip()[: len("no datasets of churn are held")])
    status, drift = mlops("drift", "open", "churn", "--no-browser")
    assert status == 1
    assert "no drift runs yet" in drift

    # AND once traffic was captured and the drift check ran, its latest report opens as a page
    traffic = tmp_path / "traffic.csv"
    churn_dataset(1_200, seed=12).drop(columns=["churned"]).to_csv(traffic, index=False)
    status, said = mlops("predict", "churn", "--csv", str(traffic), "--out", str(tmp_path / "t.csv"))
    assert status == 0, said
    deadline = time.monotonic() + 90
    while True:  # the drift window takes captures once they are DRIFT_SETTLE_SECONDS (10 s) old
        time.sleep(5)
        status, said = mlops("local", "trigger", "MonitoringSchedule")
        assert status == 0, said
        status, url = mlops("drift", "open", "churn", "--print-url")
        if status == 0 or time.monotonic() > deadline:
            break
    assert status == 0, url
    page = Path(url.strip().removeprefix("file://"))
    assert page.read_text().lstrip().lower().startswith("<!doctype html")
    page.unlink()


def test_cli_a_weaker_version_stops_as_a_candidate_and_a_person_decides(mlops, tmp_path) -> None:
    # GIVEN churn v1 serving (the test above); WHEN a noisier export trains a weaker v2
    noisy = tmp_path / "december.csv"
    churn_dataset(3_000, seed=5, label_noise=0.3).to_csv(noisy, index=False)
    status, output = mlops("datasets", "upload", str(noisy), "--model", "churn", "--timeout", "600")

    # THEN the follow stops at the registry, saying why it does not serve and what to run
    assert status == 1, output
    assert "registered as v2 (candidate), not serving" in output
    assert "promotion: " in output
    assert "mlops models compare churn 1 2" in output

    status, compared = mlops("models", "compare", "churn", "1", "2")
    assert status == 0, compared
    assert re.search(r"\(primary\)\s+.\s+0\.\d+\s+.\s+0\.\d+\s+.\s+-0\.\d+", compared), compared
    assert "better: v1" in compared

    # AND a person may still approve and promote it, then roll back: each answer says where production is
    status, said = mlops("models", "approve", "churn", "2", "--reason", "reviewed the noisy export")
    assert status == 0, said
    assert "churn v2: approved" in said
    status, said = mlops("models", "promote", "churn", "2", "--reason", "try it")
    assert status == 0, said
    assert "production is now v2" in said
    status, said = mlops("models", "rollback", "churn", "--reason", "worse")
    assert status == 0, said
    assert "production is now v1" in said
    status, said = mlops("models", "promote", "churn", "7", "--reason", "no such version")
    assert status == 1
    assert "promoting churn v7: HTTP 404" in said  # the API's answer, named


def test_cli_upload_of_a_file_that_breaks_the_contract_stops_with_the_reasons(mlops, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    frame = churn_dataset(500, seed=3).drop(columns=["plan"])
    frame.to_csv(bad, index=False)

    status, output = mlops("datasets", "upload", str(bad), "--model", "churn", "--timeout", "300")

    assert status == 1, output
    assert "quarantined" in output
    assert "plan" in output  # the reason names the missing column
    assert "report: reports/churn/" in output


def test_cli_contracts_commands_keep_working(mlops, tmp_path) -> None:
    status, output = mlops("contracts", "schema")
    assert status == 0
    assert json.loads(output)["title"]
    status, output = mlops("contracts", "check", str(Path(cli.__file__).parents[3] / "contracts" / "churn.json"))
    assert status == 0
    assert output.startswith("ok")


def test_local_upload_to_a_wrong_prefix_gets_a_misplaced_notice(local_mode) -> None:
    import boto3

    # GIVEN an upload straight to the bucket, under a prefix nothing watches
    s3 = boto3.client(
        "s3",
        endpoint_url=local_mode.aws_endpoint_url,
        region_name=local_mode.region,
        aws_access_key_id=local_mode.access_key_id,
        aws_secret_access_key=local_mode.secret_access_key,
    )
    bucket = local_mode.outputs["DataBucketName"]
    s3.put_object(Bucket=bucket, Key="penguins/x.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket=bucket, Key="penguins/notes.txt", Body=b"not data")

    # THEN a notice appears under misplaced/ naming the key it should have had
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="misplaced/").get("Contents", [])
        if listed:
            break
        time.sleep(0.5)
    assert [item["Key"] for item in listed] == ["misplaced/penguins/x.csv.json"]
    notice = json.loads(s3.get_object(Bucket=bucket, Key="misplaced/penguins/x.csv.json")["Body"].read())
    assert notice["expected_key"] == "datasets/penguins/x.csv"
    # AND the function's invocations are in local mode's log, the suite's own writes are not reported
    time.sleep(2)
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="misplaced/")["Contents"]] == [
        "misplaced/penguins/x.csv.json"
    ]
    log = (Path(local_mode.log_dir) / "invocations.log").read_text()
    assert "report_misplaced_upload" in log
