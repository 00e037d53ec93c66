"""Feedback benchmark: labels per second and peak memory through the feedback route handler and the
label-file path, each against a baseline measured in the same run.

    .venv/bin/python scripts/bench_feedback.py           # route: batches of 1/100/1000; files: 100k and 1M rows
    .venv/bin/python scripts/bench_feedback.py --quick   # route and 100k-row files only

Route: functions/record_feedback/handler.py's `lambda_handler` called in-process with API Gateway
REST events (the real event parsing, rules, label objects, logging and metric); only its adapters are
replaced (a registry answering the churn contract, an object store that keeps the bytes' length), so
S3 and DynamoDB latency are not measured. Baseline: `json.loads` of the same body plus
`encode_labels` of the same labels, the least any implementation does.

Files: `LabelFileIngestor` (the dataset readers, the rules row by row, flushes of label objects) over
a CSV and a Parquet file on local disk, against pyarrow reading the same two columns batch by batch
(the floor: no per-row Python). Every contender runs in a fresh subprocess and reports its own peak
RSS (`ru_maxrss`).
"""

# The subprocesses run this same script with constant arguments.

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

CONTRACT = json.loads((REPO / "contracts" / "churn.json").read_text())
ROUTE_LABELS = 100_000  # labels sent per batch size (batch 1: 100,000 requests)
S3_PUT_SECONDS = 0.015  # the "+S3" contender: each PUT waits this long (a same-region PUT's order of magnitude)
S3_ROUTE_LABELS = 5_000
SPREAD_SECONDS = 3_600  # predictions answered over the last hour: ~60 label objects per file flush


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prediction_ids(count: int, seed: int = 0) -> list[str]:
    """`count` well-formed ids answered over the last SPREAD_SECONDS, distinct."""
    import random

    rng = random.Random(seed)
    now = int(time.time()) - 60
    return [f"{now - rng.randrange(SPREAD_SECONDS):08x}{rng.getrandbits(80):020x}{i % 65536:04x}" for i in range(count)]


class _Registry:
    def production(self, name: str) -> Any:
        from mlops.inference.served import ServedArtifact, ServedVersion

        return ServedVersion(name, 1, ServedArtifact("b", "k", "s", 1), CONTRACT)


class _CountingStore:
    """put_bytes keeps only the length (after `put_seconds`, a stand-in for S3's PUT latency);
    open/head read local files (bucket = a directory)."""

    def __init__(self, put_seconds: float = 0.0) -> None:
        self.objects = 0
        self.bytes = 0
        self.put_seconds = put_seconds
        self._lock = threading.Lock()

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "") -> str:
        if self.put_seconds:
            time.sleep(self.put_seconds)
        with self._lock:
            self.objects += 1
            self.bytes += len(data)
        return "v1"

    def head(self, bucket: str, key: str, version_id: str | None = None) -> Any:
        from mlops.ports import ObjectInfo

        path = Path(bucket) / key
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        return ObjectInfo(bucket, key, path.stat().st_size, "v1", modified)

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        return (Path(bucket) / key).open("rb")

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return (Path(bucket) / key).read_bytes()

    def move(self, bucket: str, key: str, version_id: str | None, new_key: str) -> str:
        raise RuntimeError("the benchmark's files are all readable")

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Any:
        return iter(())


def _route_event(body: str) -> dict[str, Any]:
    from mlops_local.apigw import browser_like_headers, rest_proxy_event

    return rest_proxy_event(
        "POST",
        "/models/churn/feedback",
        "/models/{name}/feedback",
        body=body,
        path_parameters={"name": "churn"},
        headers=browser_like_headers("bench-key"),
        identity={"sourceIp": "203.0.113.7", "userAgent": "bench", "apiKey": "bench-key"},
    )


def run_route(contender: str, batch: int) -> dict[str, Any]:
    """One contender, one batch size, in this (fresh) process."""
    total = S3_ROUTE_LABELS if contender == "handler+s3" else ROUTE_LABELS
    ids = prediction_ids(total)
    bodies = [
        json.dumps({"labels": [{"prediction_id": i, "label": "yes" if n % 3 else "no"} for n, i in enumerate(chunk)]})
        for chunk in (ids[start : start + batch] for start in range(0, len(ids), batch))
    ]
    objects = 0
    if contender.startswith("handler"):
        os.environ |= {"REGISTRY_TABLE": "registry", "ARTIFACT_BUCKET": "artifacts", "AWS_DEFAULT_REGION": "us-east-1"}
        os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "record-feedback")
        os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MLOps")
        from mlops.feedback import FeedbackService, LabelRulesCache
        from mlops_local.handlers import load_handler_module
        from tests.support.lambda_context import FakeLambdaContext

        handler = load_handler_module("record_feedback")
        store = _CountingStore(S3_PUT_SECONDS if contender == "handler+s3" else 0.0)
        handler.service = FeedbackService(LabelRulesCache(_Registry(), ttl_seconds=60), store, "artifacts")
        template = _route_event(bodies[0])
        context = FakeLambdaContext(function_name="record_feedback")
        with open(os.devnull, "w") as devnull:  # the handler's EMF lines, not this script's output
            sys.stdout = devnull
            started = time.perf_counter()
            for body in bodies:
                response = handler.lambda_handler({**template, "body": body}, context)
                assert response["statusCode"] == 200, response["body"]
            seconds = time.perf_counter() - started
            sys.stdout = sys.__stdout__
        objects = store.objects
    else:
        from mlops.labels import LabelBatch, encode_labels

        started = time.perf_counter()
        for body in bodies:
            items = json.loads(body)["labels"]
            now = time.time()
            encode_labels(
                LabelBatch(
                    [item["prediction_id"] for item in items],
                    [item["label"] for item in items],
                    [now] * len(items),
                    "api",
                )
            )
        seconds = time.perf_counter() - started
    return {"labels": total, "requests": len(bodies), "objects": objects, "seconds": seconds, "peak_mb": peak_mb()}


def generate_files(directory: Path, rows: int) -> tuple[str, str]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = directory / "feedback" / "churn"
    folder.mkdir(parents=True, exist_ok=True)
    csv_key, parquet_key = f"feedback/churn/labels-{rows}.csv", f"feedback/churn/labels-{rows}.parquet"
    step = 250_000
    writer = None
    with (directory / csv_key).open("wb") as csv_file:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            ids = prediction_ids(n, seed=start)
            table = pa.table({"prediction_id": ids, "label": ["yes" if i % 3 else "no" for i in range(n)]})
            pacsv.write_csv(table, csv_file, write_options=pacsv.WriteOptions(include_header=start == 0))
            if writer is None:
                writer = pq.ParquetWriter(directory / parquet_key, table.schema)
            writer.write_table(table, row_group_size=65_536)
    assert writer is not None
    writer.close()
    return csv_key, parquet_key


def run_file(contender: str, directory: str, key: str) -> dict[str, Any]:
    if contender == "ingest":
        from mlops.feedback_files import LabelFileIngestor
        from mlops.validation.service import UploadedObject

        store = _CountingStore()
        ingestor = LabelFileIngestor(
            store=store, data_bucket=directory, artifact_bucket="artifacts", contracts=_Registry()
        )
        started = time.perf_counter()
        result = ingestor.ingest(UploadedObject(bucket=directory, key=key, version_id="v1"))
        seconds = time.perf_counter() - started
        assert result.refused == 0, result
        rows, objects = result.accepted, store.objects - 1  # minus the report
    else:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        started = time.perf_counter()
        rows, objects = 0, 0
        path = Path(directory) / key
        if key.endswith(".parquet"):
            batches = pq.ParquetFile(path).iter_batches(columns=["prediction_id", "label"])
        else:
            convert = pacsv.ConvertOptions(column_types={"prediction_id": pa.string(), "label": pa.string()})
            batches = pacsv.open_csv(path, convert_options=convert)
        for batch in batches:
            rows += batch.num_rows
        seconds = time.perf_counter() - started
    return {"rows": rows, "objects": objects, "seconds": seconds, "peak_mb": peak_mb()}


def _child(arguments: list[str]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", *arguments], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="route and 100k-row files only")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        kind, *rest = options.child
        result = run_route(rest[0], int(rest[1])) if kind == "route" else run_file(rest[0], rest[1], rest[2])
        print(json.dumps(result))
        return

    print(
        f"route: {ROUTE_LABELS:,} labels per batch size ({S3_ROUTE_LABELS:,} for +S3: each PUT sleeps "
        f"{S3_PUT_SECONDS * 1000:g} ms), predictions spread over the last hour, in-process API Gateway events"
    )
    print(
        f"{'batch':>6} {'contender':<22} {'requests':>9} {'objects/req':>11} {'labels/s':>11} {'us/request':>11} "
        f"{'peak MB':>8} {'ratio':>6}"
    )
    for batch in (1, 100, 1_000):
        results = {c: _child(["route", c, str(batch)]) for c in ("baseline", "handler", "handler+s3")}
        names = (
            ("baseline", "json.loads+encode"),
            ("handler", "record_feedback"),
            ("handler+s3", "record_feedback+S3"),
        )
        for contender, name in names:
            r = results[contender]
            base = results["baseline"]
            ratio = (r["seconds"] / r["labels"]) / (base["seconds"] / base["labels"])
            print(
                f"{batch:>6} {name:<22} {r['requests']:>9,} {r['objects'] / r['requests']:>11.1f} "
                f"{r['labels'] / r['seconds']:>11,.0f} {r['seconds'] / r['requests'] * 1e6:>11.1f} "
                f"{r['peak_mb']:>8.0f} {ratio:>6.1f}"
            )
    sizes = (100_000,) if options.quick else (100_000, 1_000_000)
    print("\nfiles: LabelFileIngestor vs pyarrow reading the same two columns, fresh process each")
    print(
        f"{'rows':>10} {'format':<8} {'contender':<18} {'rows/s':>11} {'seconds':>8} {'objects':>8} {'peak MB':>8} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as temporary:
        for rows in sizes:
            csv_key, parquet_key = generate_files(Path(temporary), rows)
            for key, kind in ((csv_key, "csv"), (parquet_key, "parquet")):
                results = {c: _child(["file", c, temporary, key]) for c in ("pyarrow", "ingest")}
                for contender, name in (("pyarrow", "pyarrow read"), ("ingest", "ingest_feedback")):
                    r = results[contender]
                    ratio = r["seconds"] / results["pyarrow"]["seconds"]
                    print(
                        f"{rows:>10,} {kind:<8} {name:<18} {r['rows'] / r['seconds']:>11,.0f} {r['seconds']:>8.2f} "
                        f"{r['objects']:>8} {r['peak_mb']:>8.0f} {ratio:>6.1f}"
                    )


if __name__ == "__main__":
    main()
