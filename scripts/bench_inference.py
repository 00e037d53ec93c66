"""Serving benchmark: the predict function (onnxruntime) vs the raw onnxruntime call vs a plain
scikit-learn handler, warm and cold, on one churn model, against a local moto server.

    .venv/bin/python scripts/bench_inference.py [--warm-iterations 3000] [--cold-runs 7]

Warm: p50/p99 of one-record requests in this process (the predict handler gets a realistic API
Gateway REST event and runs everything it runs in Lambda: routing, validation, capture, metrics).
Cold: a fresh interpreter per run (`--cold predict|sklearn`): imports, registry lookup, artifact
fetch (+ SHA-256 verification for ONNX), model load, first answer. The two kinds run alternately
(ABBA), so a change in the shared machine's load hits both; the table gives medians and the
spread of the per-round ratios. As in Lambda, where the mlops-core layer ships bytecode
(infra/layers.py) and the function folder does not, `src/` is compiled before the runs and the
runs write no bytecode (PYTHONDONTWRITEBYTECODE) whatever the caller's environment says.
Aims: handler p50 within 0.1 ms of the raw call; >= 25x faster warm than scikit-learn; cold start
<= 1/4 of scikit-learn's.

`--challengers` also measures the handler warm with a shadow set (predict never reads it), with a
canary at 10 % (routing and per-variant measurement on every request), and with a pinned version
(`?version=1`); aim: each within 0.05 ms of the plain handler's p50.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT_BUCKET = "bench-artifacts"
REGISTRY_TABLE = "bench-registry"
SKLEARN_KEY = "bench/churn-pipeline.joblib"
ONE_RECORD = {
    "tenure_months": 14,
    "monthly_charges": 72.4,
    "support_calls": 3,
    "data_usage_gb": None,
    "plan": "standard",
    "region": "east",
    "autopay": False,
}
FEATURES = list(ONE_RECORD)


class _Context:
    function_name = "predict"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:predict"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def rest_event(body: str) -> dict[str, Any]:
    """An API Gateway REST (v1 proxy) event for POST /models/churn/predict on stage prod."""
    from mlops_local.apigw import browser_like_headers, rest_proxy_event  # stdlib only; cheap

    return rest_proxy_event(
        "POST",
        "/models/churn/predict",
        "/models/{name}/predict",
        body=body,
        path_parameters={"name": "churn"},
        headers=browser_like_headers("bench-key"),
        identity={"sourceIp": "203.0.113.7", "userAgent": "python-requests/2.32", "apiKey": "bench-key"},
    )


# ---- the plain scikit-learn handler being compared (json -> DataFrame -> predict_proba) ----

_SKLEARN_PIPELINE: Any = None


def sklearn_load(bucket: str, key: str) -> None:
    global _SKLEARN_PIPELINE
    import boto3
    import joblib

    data = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    _SKLEARN_PIPELINE = joblib.load(io.BytesIO(data))


def sklearn_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    body = json.loads(event["body"])
    records = body["records"] if isinstance(body, dict) else body
    frame = pd.DataFrame.from_records(records, columns=FEATURES)
    for name in ("tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "autopay"):
        frame[name] = frame[name].astype(np.float32)
    probabilities = _SKLEARN_PIPELINE.predict_proba(frame)
    labels = _SKLEARN_PIPELINE.classes_[probabilities.argmax(axis=1)]
    classes = [str(c) for c in _SKLEARN_PIPELINE.classes_]
    predictions = [
        {"label": str(label), "probabilities": dict(zip(classes, row.tolist(), strict=True))}
        for label, row in zip(labels, probabilities, strict=True)
    ]
    return {"statusCode": 200, "body": json.dumps({"model": "churn", "predictions": predictions})}


# ---- set-up on the moto server ----


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "REGISTRY_TABLE": REGISTRY_TABLE,
        "ARTIFACT_BUCKET": ARTIFACT_BUCKET,
        "POWERTOOLS_SERVICE_NAME": "predict",
        "POWERTOOLS_METRICS_NAMESPACE": "MLOps",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONWARNINGS": "ignore",
    }


def deploy(trained: Any) -> None:
    """Artifact, baseline and joblib pipeline in the bucket; the model as production in the registry."""

    import boto3
    import joblib

    from mlops.adapters.registry_dynamodb import DynamoRegistry
    from mlops.contract import parse_contract
    from mlops.layout import artifact_key, baseline_key

    contract = parse_contract((ROOT / "contracts" / "churn.json").read_text())
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=REGISTRY_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
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
    key = artifact_key("churn", trained.sha256)
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=trained.onnx_bytes)
    s3.put_object(
        Bucket=ARTIFACT_BUCKET, Key=baseline_key("churn", trained.sha256), Body=trained.profile.model_dump_json()
    )
    buffer = io.BytesIO()
    joblib.dump(trained.pipeline, buffer)
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=SKLEARN_KEY, Body=buffer.getvalue())
    event = _model_trained(trained, contract, key, trained.metrics, "datasets/churn/bench.csv", b"", 5000)
    result = DynamoRegistry(REGISTRY_TABLE).register(event, actor="bench")
    if not result.promoted:
        raise SystemExit(f"the bench model was not promoted: {result.decision}")


@contextlib.contextmanager
def deployed_churn_model() -> Iterator[tuple[dict[str, str], Any]]:
    """A moto server on loopback with the churn model trained and deployed as production, this process's
    environment pointing at it; yields (that environment, the trained model). scripts/cost.py uses it too."""
    sys.path.insert(0, str(ROOT / "src"))
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server._server.server_address[:2]
        env = aws_env(f"http://{host}:{port}")
        os.environ.update(env)
        import warnings

        warnings.simplefilter("ignore")
        from mlops.contract import parse_contract
        from mlops.training import train_model
        from mlops_local.sample_data import churn_dataset

        started = time.perf_counter()
        trained = train_model(churn_dataset(5_000), parse_contract((ROOT / "contracts" / "churn.json").read_text()))
        deploy(trained)
        print(
            f"trained and deployed churn ({len(trained.onnx_bytes)} bytes ONNX) in {time.perf_counter() - started:.1f} s"
        )
        yield env, trained
    finally:
        server.stop()


# ---- measurements ----


def percentiles(call: Callable[[], object], iterations: int, warmup: int = 300) -> tuple[float, float]:
    for _ in range(warmup):
        call()
    timings = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        started = clock()
        call()
        timings.append(clock() - started)
    timings.sort()
    return timings[len(timings) // 2] / 1e6, timings[min(len(timings) - 1, int(len(timings) * 0.99))] / 1e6


def _model_trained(
    trained: Any, contract: Any, key: str, metrics: dict[str, float], dataset_key: str, content: bytes, rows: int
) -> Any:
    """The ModelTrained event training would emit for `trained`, stored at `key` (both deployed versions)."""
    import hashlib

    from mlops.events import DatasetRef, ModelTrained
    from mlops.layout import baseline_key

    return ModelTrained(
        model_name="churn",
        artifact_bucket=ARTIFACT_BUCKET,
        artifact_key=key,
        artifact_sha256=trained.sha256,
        artifact_bytes=len(trained.onnx_bytes),
        baseline_key=baseline_key("churn", trained.sha256),
        metric_name=contract.metric.name,
        metrics=metrics,
        dataset=DatasetRef(
            bucket="bench-data",
            key=dataset_key,
            sha256=hashlib.sha256(content).hexdigest(),
            size_bytes=0,
            rows=rows,
        ),
        contract=contract.model_dump(mode="json"),
        contract_digest=contract.digest,
        seed=contract.training.seed,
        params=trained.params,
        library_versions=trained.library_versions,
        training_rows=trained.training_rows,
        holdout_rows=trained.holdout_rows,
        onnx_max_abs_diff=trained.onnx_max_abs_diff,
    )


def deploy_challenger() -> int:
    """A second, weaker version (a candidate), approved: the shadow and the canary of the runs below."""

    import boto3

    from mlops.adapters.registry_dynamodb import DynamoRegistry
    from mlops.contract import parse_contract
    from mlops.layout import artifact_key
    from mlops.training import train_model
    from mlops_local.sample_data import churn_dataset

    contract = parse_contract((ROOT / "contracts" / "churn.json").read_text())
    trained = train_model(churn_dataset(2_000, seed=2, label_noise=0.3), contract)
    key = artifact_key("churn", trained.sha256)
    boto3.client("s3").put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=trained.onnx_bytes)
    # never promoted automatically: its metric is below the contract's
    event = _model_trained(trained, contract, key, {contract.metric.name: 0.5}, "datasets/churn/b.csv", b"b", 2000)
    registry = DynamoRegistry(REGISTRY_TABLE)
    version = registry.register(event, actor="bench").version.version
    registry.approve("churn", version, actor="bench-approver", reason="bench")
    return version


def challengers(handler: Any, event: dict[str, Any], iterations: int) -> dict[str, tuple[float, float]]:
    """The handler warm with a shadow set, a canary at 10 %, and a pinned version."""
    from mlops.adapters.registry_dynamodb import DynamoRegistry

    registry = DynamoRegistry(REGISTRY_TABLE)
    version = deploy_challenger()
    context = _Context()
    refresh = handler.settings.model_refresh_seconds
    results = {}
    # the same handler again, after training the challenger in this process (its memory and threads)
    results["predict handler, again"] = percentiles(lambda: handler.lambda_handler(event, context), iterations)
    registry.set_shadow("churn", version, actor="bench-approver", reason="bench")
    time.sleep(refresh + 0.5)  # warm containers re-read the registry
    results["predict handler, shadow set"] = percentiles(lambda: handler.lambda_handler(event, context), iterations)
    registry.start_canary("churn", version, share=0.1, bake_minutes=60, actor="bench-approver", reason="bench")
    time.sleep(refresh + 0.5)
    handler.lambda_handler(event, context)
    results["predict handler, canary 10 %"] = percentiles(lambda: handler.lambda_handler(event, context), iterations)
    pinned = {**event, "queryStringParameters": {"version": "1"}}
    results["predict handler, ?version=1"] = percentiles(lambda: handler.lambda_handler(pinned, context), iterations)
    return results


def warm(iterations: int, with_challengers: bool = False) -> dict[str, tuple[float, float]]:
    import numpy as np
    import onnxruntime as ort

    from mlops_local.handlers import load_handler_module

    handler = load_handler_module("predict")
    body = json.dumps({"records": [ONE_RECORD]})
    event = rest_event(body)
    context = _Context()
    response = handler.lambda_handler(event, context)
    if response["statusCode"] != 200:
        raise SystemExit(f"predict handler answered {response}")

    raw_session = ort.InferenceSession(_artifact_bytes(), providers=["CPUExecutionProvider"])
    feed = {
        "tenure_months": np.array([[14.0]], dtype=np.float32),
        "monthly_charges": np.array([[72.4]], dtype=np.float32),
        "support_calls": np.array([[3.0]], dtype=np.float32),
        "data_usage_gb": np.array([[np.nan]], dtype=np.float32),
        "plan": np.array([["standard"]], dtype=object),
        "region": np.array([["east"]], dtype=object),
        "autopay": np.array([[0.0]], dtype=np.float32),
    }
    results = {"raw onnxruntime session.run": percentiles(lambda: raw_session.run(None, feed), iterations)}
    with contextlib.redirect_stdout(io.StringIO()):  # EMF lines of capture flushes
        results["predict handler (REST event)"] = percentiles(
            lambda: handler.lambda_handler(event, context), iterations
        )
        if with_challengers:
            results |= challengers(handler, event, iterations)
    handler.service.shutdown()

    sklearn_load(ARTIFACT_BUCKET, SKLEARN_KEY)
    sklearn_event = rest_event(body)
    sklearn_handler(sklearn_event, context)
    results["scikit-learn + pandas handler"] = percentiles(
        lambda: sklearn_handler(sklearn_event, context), max(200, iterations // 10), warmup=30
    )
    return results


_ARTIFACT: bytes | None = None


def _artifact_bytes() -> bytes:
    assert _ARTIFACT is not None
    return _ARTIFACT


def cold_child(kind: str) -> None:
    """Runs in a fresh interpreter: time from here (stdlib only imported) to the first answer."""
    started, cpu_started = time.perf_counter(), time.process_time()
    body = json.dumps({"records": [ONE_RECORD]})
    if kind == "predict":
        sys.path.insert(0, str(ROOT / "src"))
        from mlops_local.handlers import load_handler_module

        handler = load_handler_module("predict")
        response = handler.lambda_handler(rest_event(body), _Context())
    else:
        sklearn_load(ARTIFACT_BUCKET, SKLEARN_KEY)
        response = sklearn_handler(rest_event(body), _Context())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if response["statusCode"] != 200:
        raise SystemExit(f"{kind} answered {response}")
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu}))


def cold_run(kind: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(time to first answer inside the process, whole process wall time incl. interpreter, CPU time
    to the first answer: on a busy shared machine the steadier measure of the work done)."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--cold", kind],
        env={**os.environ, **env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    outer = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"cold {kind} failed:\n{completed.stderr[-3000:]}")
    last = json.loads([line for line in completed.stdout.splitlines() if line.startswith('{"seconds"')][-1])
    return last["seconds"], outer, last["cpu_seconds"]


def cold(runs: int, env: dict[str, str]) -> dict[str, list[tuple[float, float, float]]]:
    """`runs` cold starts of each kind, alternating (ABBA) so that load changes hit both alike."""
    # what the mlops-core layer ships precompiled (mlops_local is this script's glue, not in Lambda)
    compileall.compile_dir(ROOT / "src", quiet=1)
    results: dict[str, list[tuple[float, float, float]]] = {"predict": [], "sklearn": []}
    for round_ in range(runs):
        for kind in ("predict", "sklearn") if round_ % 2 == 0 else ("sklearn", "predict"):
            results[kind].append(cold_run(kind, env))
    return results


def _median(runs: list[tuple[float, float, float]], index: int) -> float:
    return statistics.median(run[index] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm-iterations", type=int, default=3_000)
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--challengers", action="store_true", help="also measure a shadow, a canary and a pin")
    parser.add_argument("--cold", choices=["predict", "sklearn"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold:
        cold_child(args.cold)
        return

    global _ARTIFACT
    with deployed_churn_model() as (env, trained):
        _ARTIFACT = trained.onnx_bytes
        results = warm(args.warm_iterations, args.challengers)
        cold_runs = cold(args.cold_runs, env)

    raw_p50 = results["raw onnxruntime session.run"][0]
    print()
    print(f"{'warm, 1 record':<34}{'p50 ms':>10}{'p99 ms':>10}{'x raw p50':>11}")
    for name, (p50, p99) in results.items():
        print(f"{name:<34}{p50:>10.4f}{p99:>10.4f}{p50 / raw_p50:>11.1f}")
    handler_p50 = results["predict handler (REST event)"][0]
    sklearn_p50 = results["scikit-learn + pandas handler"][0]
    cold_predict = tuple(_median(cold_runs["predict"], i) for i in range(3))
    cold_sklearn = tuple(_median(cold_runs["sklearn"], i) for i in range(3))
    print()
    print(f"{'cold start (median)':<34}{'first answer s':>15}{'process s':>11}{'x sklearn':>11}{'CPU s':>8}{'x':>7}")
    for name, (inner, outer, cpu) in (("predict handler", cold_predict), ("scikit-learn handler", cold_sklearn)):
        print(
            f"{name:<34}{inner:>15.3f}{outer:>11.3f}{inner / cold_sklearn[0]:>11.2f}"
            f"{cpu:>8.3f}{cpu / cold_sklearn[2]:>7.2f}"
        )
    ratios = sorted(p[0] / s[0] for p, s in zip(cold_runs["predict"], cold_runs["sklearn"], strict=True))
    print(
        f"first-answer ratio per round ({len(ratios)} rounds): median {statistics.median(ratios):.3f}, "
        f"range {ratios[0]:.3f}-{ratios[-1]:.3f}"
    )
    print()
    checks = [
        (
            f"handler p50 - raw p50 = {(handler_p50 - raw_p50) * 1000:.1f} us (aim <= 100 us)",
            handler_p50 - raw_p50 <= 0.1,
        ),
        (
            f"scikit-learn / handler warm p50 = {sklearn_p50 / handler_p50:.1f}x (aim >= 25x)",
            sklearn_p50 / handler_p50 >= 25,
        ),
        (
            f"handler / scikit-learn cold start = {cold_predict[0] / cold_sklearn[0]:.2f} (aim <= 0.25)",
            cold_predict[0] / cold_sklearn[0] <= 0.25,
        ),
    ]
    baseline = min(handler_p50, results.get("predict handler, again", (handler_p50,))[0])
    for name in ("predict handler, shadow set", "predict handler, canary 10 %", "predict handler, ?version=1"):
        if name in results:
            extra = (results[name][0] - baseline) * 1000
            checks.append((f"{name}: p50 {extra:+.1f} us over the plain handler (aim <= 50 us)", extra <= 50))
    for text, ok in checks:
        print(f"[{'ok' if ok else 'MISS'}] {text}")


if __name__ == "__main__":
    main()
