"""Memory and time of the drift function itself at 100k, 1M and 10M captured rows (20 features).

    .venv/bin/python scripts/bench_drift_function.py [--sizes 100000,1000000,10000000] [--data DIR]

Captures are written as predict writes them (`mlops.captures.encode_batch`, objects of predict's
CAPTURE_MAX_RECORDS rows: 15 numeric features of different shapes, 5 categorical with 3 to 30
levels, some with missing values, a binary prediction) into a local file-backed object store, so
the store's data is not in the function's memory. Each size runs in a fresh process that imports
`functions/detect_drift/handler.py`, points its registry and store at local stand-ins, and invokes
`lambda_handler` once with an EventBridge event and a context with time to spare (the function
reads in chunks and would spread a larger backlog over several runs; time per 1M rows says how many).
Printed per size: peak RSS of that process (ru_maxrss), its RSS after imports, wall and CPU time.
Aim: flat memory from 100k to 10M rows, within 1024 MB; time well inside the 300 s timeout per run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "bench-artifacts"
MODEL = "bench"
VERSION = 1
ROWS_PER_OBJECT = 500  # PredictSettings.capture_max_records' default
NUMERIC = 15
LEVELS = (3, 5, 8, 12, 30)
T0 = datetime(2026, 3, 4, tzinfo=UTC)


def contract_document() -> dict[str, Any]:
    churn = json.loads((ROOT / "contracts" / "churn.json").read_text())
    features: list[dict[str, Any]] = [
        {"name": f"n{i:02d}", "type": "numeric", "nullable": i % 5 == 0} for i in range(NUMERIC)
    ]
    features += [
        {"name": f"c{i}", "type": "categorical", "categories": [f"l{j}" for j in range(levels)], "nullable": i % 2 == 0}
        for i, levels in enumerate(LEVELS)
    ]
    return churn | {"name": MODEL, "features": features}


def columns(rng: Any, rows: int) -> dict[str, Any]:
    """20 features of different shapes (normal, skewed, heavy-tailed, counts, bimodal) and the
    prediction, as numpy arrays (NaN / None for missing values)."""
    import numpy as np

    shapes = [
        lambda n: rng.normal(50, 10, n),
        lambda n: rng.lognormal(1.0, 0.8, n),
        lambda n: rng.standard_t(3, n),
        lambda n: rng.poisson(2.0, n).astype(float),
        lambda n: np.where(rng.random(n) < 0.4, rng.normal(-2, 0.5, n), rng.normal(3, 1, n)),
    ]
    data: dict[str, Any] = {}
    for i in range(NUMERIC):
        values = np.round(shapes[i % len(shapes)](rows), 4)
        if i % 5 == 0:
            values[rng.random(rows) < 0.05] = np.nan
        data[f"n{i:02d}"] = values
    for i, levels in enumerate(LEVELS):
        weights = rng.dirichlet(np.ones(levels) * 2)
        values = rng.choice([f"l{j}" for j in range(levels)], size=rows, p=weights).astype(object)
        if i % 2 == 0:
            values[rng.random(rows) < 0.03] = None
        data[f"c{i}"] = values
    logit = 0.05 * (np.nan_to_num(data["n00"]) - 50) + 0.3 * data["n03"] - 0.5
    data["probability:yes"] = np.round(1 / (1 + np.exp(-logit)), 6)
    return data


def generate(data_dir: Path, largest: int, sizes: list[int]) -> None:
    """Capture objects for `largest` rows under model `bench-<size>` per size (hard links: one copy)."""
    import numpy as np

    from mlops.captures import CaptureBatch, encode_batch
    from mlops.layout import capture_key
    from mlops.profile import BaselineProfile, profile_categorical, profile_numeric

    rng = np.random.default_rng(7)
    training = columns(rng, 50_000)
    baseline = BaselineProfile(
        model_name=MODEL,
        created_at=T0,
        rows=50_000,
        features={
            name: profile_numeric(values) if name.startswith("n") else profile_categorical(values.tolist())
            for name, values in training.items()
            if name != "probability:yes"
        },
        prediction=profile_numeric(training["probability:yes"]),
    )
    (data_dir / "baseline.json").write_text(baseline.model_dump_json())
    (data_dir / "contract.json").write_text(json.dumps(contract_document()))
    objects = largest // ROWS_PER_OBJECT
    started = time.perf_counter()
    for index in range(objects):
        part = columns(rng, ROWS_PER_OBJECT)
        probability = part.pop("probability:yes")
        at = T0 + timedelta(seconds=index // 4)
        batch = CaptureBatch(
            at=[at.timestamp()] * ROWS_PER_OBJECT,
            versions=[VERSION] * ROWS_PER_OBJECT,
            prediction_ids=[f"{index:016x}{row:016x}" for row in range(ROWS_PER_OBJECT)],
            inputs={
                name: [None if v != v else v for v in values.tolist()] if values.dtype.kind == "f" else values.tolist()
                for name, values in part.items()
            },
            outputs={
                "label": ["yes" if p >= 0.5 else "no" for p in probability.tolist()],
                "probability:no": np.round(1 - probability, 6).tolist(),
                "probability:yes": probability.tolist(),
            },
        )
        data, skipped = encode_batch(batch)
        assert skipped == 0
        first = None
        for size in sizes:
            if index * ROWS_PER_OBJECT < size:
                path = data_dir / BUCKET / capture_key(f"{MODEL}-{size}", at, f"{index:06d}")
                path.parent.mkdir(parents=True, exist_ok=True)
                if first is None:
                    path.write_bytes(data)
                    first = path
                else:
                    os.link(first, path)
        if index and index % 2_000 == 0:
            print(f"  generated {index * ROWS_PER_OBJECT:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)


class FileObjectStore:
    """ObjectStore over a local folder (`<root>/<bucket>/<key>`): the data stays on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        from mlops.errors import NotFoundError

        path = self.root / bucket / key
        if not path.is_file():
            raise NotFoundError(f"{bucket}/{key} does not exist")
        return path.read_bytes()

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def list(self, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[Any]:
        from mlops.ports import ObjectInfo

        base = self.root / bucket
        keys = sorted(str(p.relative_to(base)) for p in (base / prefix).rglob("*") if p.is_file())
        for key in keys:
            if start_after is None or key > start_after:
                yield ObjectInfo(bucket, key, 0)


class ProductionRegistry:
    """The registry a scheduled job reads, with one model whose production version is `version`."""

    def __init__(self, version: Any) -> None:
        self.version = version

    def list_models(self) -> list[Any]:
        from mlops.registry.records import ModelRecord

        name, number = self.version.model_name, self.version.version
        return [ModelRecord(name=name, latest_version=number, production_version=number, updated_at=T0)]

    def get_version(self, model: str, number: int) -> Any:
        return self.version


class ScheduledContext:
    """A Lambda context with time to spare (the job reads in chunks; a bench measures one whole run)."""

    memory_limit_in_mb = 1024
    aws_request_id = "bench"

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 3_600_000


SCHEDULED_EVENT = {
    "version": "0",
    "id": "bench",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-03-05T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}


def invoke_measured(handler: Any, function_name: str) -> tuple[Any, float, float, float]:
    """One scheduled invocation of `handler`: its answer, RSS (MB) before it, wall and CPU seconds."""
    import gc

    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):  # EMF and log lines
        answer = handler.lambda_handler(dict(SCHEDULED_EVENT), ScheduledContext(function_name))
    return answer, before, time.perf_counter() - started, time.process_time() - cpu


def child(data_dir: Path, size: int) -> None:
    """One fresh process: the drift handler over `size` captured rows."""
    os.environ.update(
        {
            "REGISTRY_TABLE": "bench-registry",
            "ARTIFACT_BUCKET": BUCKET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "detect-drift",
            "POWERTOOLS_METRICS_NAMESPACE": "MLOps",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    from mlops.registry.records import Artifact, ModelVersion, VersionStatus
    from mlops_local.handlers import load_handler_module

    handler = load_handler_module("detect_drift")
    name = f"{MODEL}-{size}"
    store = FileObjectStore(data_dir)
    store.put_bytes(BUCKET, f"baselines/{name}.json", (data_dir / "baseline.json").read_bytes())
    version = ModelVersion(
        model_name=name,
        version=VERSION,
        status=VersionStatus.PRODUCTION,
        metric_name="roc_auc",
        metrics={"roc_auc": 0.8},
        artifact=Artifact(
            bucket=BUCKET, key="unused", sha256="0" * 64, size_bytes=1, baseline_key=f"baselines/{name}.json"
        ),
        contract=json.loads((data_dir / "contract.json").read_text()) | {"name": name},
        lineage={},
        created_at=T0,
    )

    handler.registry, handler.store = ProductionRegistry(version), store
    answer, before, wall, cpu = invoke_measured(handler, "detect-drift")
    reports = sorted((data_dir / BUCKET / "monitoring" / name / "reports").glob("*.json"))
    result = json.loads(reports[-1].read_text())
    print(
        json.dumps(
            {
                "size": size,
                "status": answer["models"][name],
                "rows": result["window"]["rows"],
                "captures": result["window"]["captures"],
                "drift_detected": result["drift_detected"],
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "after_imports_mb": before,
                "wall_s": wall,
                "cpu_s": cpu,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--data", type=Path, help="where to write the captures (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated captures")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, args.child)
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    data_dir = args.data or Path(tempfile.mkdtemp(prefix="bench-drift-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    try:
        if not (data_dir / "baseline.json").exists():
            print(f"generating {sizes[-1]:,} captured rows in {data_dir} ...", flush=True)
            generate(data_dir, sizes[-1], sizes)
        else:  # a kept folder: each run starts from no drift state
            shutil.rmtree(data_dir / BUCKET / "monitoring", ignore_errors=True)
        rows = []
        for size in sizes:
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(size), "--data", str(data_dir)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"size {size}: {done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        if not args.keep and args.data is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print(
        f"{'captured rows':>14}{'objects':>9}{'status':>9}{'peak MB':>10}{'after imports':>15}"
        f"{'wall s':>9}{'CPU s':>8}{'s per 1M rows':>15}"
    )
    for row in rows:
        print(
            f"{row['rows']:>14,}{row['captures']:>9,}{row['status']:>9}{row['peak_mb']:>10.0f}"
            f"{row['after_imports_mb']:>15.0f}{row['wall_s']:>9.1f}{row['cpu_s']:>8.1f}"
            f"{row['wall_s'] / row['rows'] * 1e6:>15.1f}"
        )
    peaks = [row["peak_mb"] for row in rows]
    print()
    print(f"[{'ok' if max(peaks) <= 1024 else 'MISS'}] peak {max(peaks):.0f} MB (aim <= 1024 MB)")
    print(f"[{'ok' if max(peaks) - min(peaks) <= 64 else 'MISS'}] flat: {max(peaks) - min(peaks):.0f} MB between sizes")


if __name__ == "__main__":
    main()
