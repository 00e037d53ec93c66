"""Memory and time of the live-quality join at 100k, 1M and 10M labelled rows, against a pandas
merge of the same ids.

    .venv/bin/python scripts/bench_quality.py [--sizes 100000,1000000,10000000] [--baseline-sizes 100000,1000000]

Captures are written as predict writes them (`mlops.captures.encode_batch`, objects of predict's
CAPTURE_MAX_RECORDS rows, prediction ids from `new_prediction_ids`, a binary prediction with its
probabilities) and labels as the feedback route writes them (`encode_labels` + `layout.label_key`,
one object per request and prediction minute, 500 labels each, arriving five minutes after the
predictions), at 10,000 labelled predictions a minute, into a local file-backed object store, so
the store's data is not in the measured process. Each size runs in a fresh process:
- `quality`: imports `functions/evaluate_quality/handler.py`, points its registry and store at
  local stand-ins and invokes `lambda_handler` once, an hour after the last label arrived;
- `pandas` (the baseline): reads the same label and capture objects into two DataFrames of ids,
  merges them (`pd.merge` on prediction_id) and scores accuracy.
Printed per size: peak RSS of that process (ru_maxrss), its RSS after imports, wall and CPU time,
and the ratios of the pandas merge to the join. Aim: flat memory for the join.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from scripts.bench_drift_function import (  # noqa: E402  (the same file-backed store and invocation)
    FileObjectStore,
    ProductionRegistry,
    invoke_measured,
)

BUCKET = "bench-artifacts"
MODEL = "bench"
VERSION = 1
ROWS_PER_OBJECT = 500  # PredictSettings.capture_max_records' default
PER_MINUTE = 10_000  # labelled predictions a minute
T0 = datetime(2026, 3, 4, tzinfo=UTC)
LABEL_DELAY = timedelta(minutes=5)


def contract_document(name: str) -> dict[str, Any]:
    churn = json.loads((ROOT / "contracts" / "churn.json").read_text())
    # a horizon that holds the 10M rows' 17 hours
    return churn | {"name": name, "monitoring": churn["monitoring"] | {"feedback": {"horizon_hours": 72}}}


def generate(data_dir: Path, largest: int, sizes: list[int]) -> None:
    """Captures and labels of `largest` predictions under model `bench-<size>` per size (hard links)."""
    import numpy as np

    from mlops.captures import CaptureBatch, encode_batch
    from mlops.inference.prediction_ids import new_prediction_ids
    from mlops.labels import LabelBatch, encode_labels, new_label_batch_id, prediction_minute
    from mlops.layout import capture_key, label_key
    from mlops.profile import BaselineProfile, profile_categorical, profile_numeric

    rng = np.random.default_rng(7)
    baseline = BaselineProfile(
        model_name=MODEL,
        created_at=T0,
        rows=1_000,
        features={"x": profile_numeric(rng.normal(size=1_000))},
        prediction=profile_numeric(rng.random(1_000)),
        target=profile_categorical(["no"] * 700 + ["yes"] * 300),
    )
    (data_dir / "baseline.json").write_text(baseline.model_dump_json())
    objects_per_minute = PER_MINUTE // ROWS_PER_OBJECT
    started = time.perf_counter()

    def place(size_key: dict[int, str], data: bytes) -> None:
        first = None
        for path_text in size_key.values():
            path = data_dir / BUCKET / path_text
            path.parent.mkdir(parents=True, exist_ok=True)
            if first is None:
                path.write_bytes(data)
                first = path
            else:
                os.link(first, path)

    for index in range(largest // ROWS_PER_OBJECT):
        answered = T0 + timedelta(seconds=60 * (index // objects_per_minute) + 3 * (index % objects_per_minute))
        ids = new_prediction_ids(ROWS_PER_OBJECT, clock=answered.timestamp)
        truth = rng.random(ROWS_PER_OBJECT) < 0.3
        yes = np.round(np.clip(np.where(truth, 0.65, 0.35) + rng.normal(0, 0.2, ROWS_PER_OBJECT), 0, 1), 6)
        batch = CaptureBatch(
            at=[answered.timestamp()] * ROWS_PER_OBJECT,
            versions=[VERSION] * ROWS_PER_OBJECT,
            prediction_ids=ids,
            inputs={
                "tenure_months": np.round(rng.gamma(2, 14, ROWS_PER_OBJECT)).tolist(),
                "monthly_charges": np.round(rng.normal(60, 20, ROWS_PER_OBJECT), 2).tolist(),
                "plan": rng.choice(["basic", "standard", "premium"], ROWS_PER_OBJECT).tolist(),
            },
            outputs={
                "label": ["yes" if p >= 0.5 else "no" for p in yes.tolist()],
                "probability:no": np.round(1 - yes, 6).tolist(),
                "probability:yes": yes.tolist(),
            },
        )
        flushed = answered + timedelta(seconds=2)
        targets = {size: f"x{size}" for size in sizes if index * ROWS_PER_OBJECT < size}
        place({s: capture_key(f"{MODEL}-{s}", flushed, f"{index:07d}") for s in targets}, encode_batch(batch)[0])
        arrived = answered + LABEL_DELAY
        labels = LabelBatch(
            ids, ["yes" if t else "no" for t in truth.tolist()], [arrived.timestamp()] * len(ids), "api"
        )
        batch_id = new_label_batch_id(arrived)
        place(
            {s: label_key(f"{MODEL}-{s}", prediction_minute(ids[0]), batch_id) for s in targets},
            encode_labels(labels),
        )
        if index and index % 2_000 == 0:
            print(f"  generated {index * ROWS_PER_OBJECT:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)


def end_of(size: int) -> datetime:
    minutes = -(-size // PER_MINUTE)
    return T0 + timedelta(minutes=minutes) + LABEL_DELAY + timedelta(hours=1)


def child_quality(data_dir: Path, size: int) -> dict[str, Any]:
    os.environ.update(
        {
            "REGISTRY_TABLE": "bench-registry",
            "ARTIFACT_BUCKET": BUCKET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "evaluate-quality",
            "POWERTOOLS_METRICS_NAMESPACE": "MLOps",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    from mlops.registry.records import Artifact, ModelVersion, VersionStatus
    from mlops_local.handlers import load_handler_module

    handler = load_handler_module("evaluate_quality")
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
        contract=contract_document(name),
        lineage={},
        created_at=T0,
    )

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Clock:  # type: ignore[override]
            moment = end_of(size)
            return cls.fromtimestamp(moment.timestamp(), tz)

    handler.registry, handler.store, handler.datetime = ProductionRegistry(version), store, Clock
    answer, before, wall, cpu = invoke_measured(handler, "evaluate-quality")
    [result_path] = sorted((data_dir / BUCKET / "monitoring" / name / "quality").glob("*.json"))[-1:]
    result = json.loads(result_path.read_text())
    return {
        "status": answer["models"][name],
        "joined": result["run"]["joined"],
        "unmatched": result["run"]["unmatched"],
        "accuracy": result["production"]["metrics"]["accuracy"],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "after_imports_mb": before,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def child_pandas(data_dir: Path, size: int) -> dict[str, Any]:
    import gc

    import pandas as pd

    from mlops.captures import decode_batch
    from mlops.labels import decode_labels

    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    base = data_dir / BUCKET
    label_ids: list[str] = []
    label_values: list[Any] = []
    for path in sorted((base / "labels" / f"{MODEL}-{size}").rglob("*.json")):
        batch = decode_labels(path.read_bytes())
        label_ids.extend(batch.prediction_ids)
        label_values.extend(batch.labels)
    capture_ids: list[str] = []
    predicted: list[Any] = []
    for path in sorted((base / "captures" / f"{MODEL}-{size}").rglob("*.json")):
        captured = decode_batch(path.read_bytes())
        capture_ids.extend(captured.prediction_ids)
        predicted.extend(captured.outputs["label"])
    labels = pd.DataFrame({"prediction_id": label_ids, "label": label_values}).drop_duplicates("prediction_id")
    captures = pd.DataFrame({"prediction_id": capture_ids, "predicted": predicted})
    del label_ids, label_values, capture_ids, predicted
    joined = labels.merge(captures, on="prediction_id", how="left")
    matched = joined["predicted"].notna()
    accuracy = float((joined.loc[matched, "label"] == joined.loc[matched, "predicted"]).mean())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "status": "merged",
        "joined": int(matched.sum()),
        "unmatched": int((~matched).sum()),
        "accuracy": accuracy,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "after_imports_mb": before,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--baseline-sizes", default="100000,1000000")
    parser.add_argument("--data", type=Path, help="where to write captures and labels (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated objects")
    parser.add_argument("--child", choices=("quality", "pandas"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = child_quality if args.child == "quality" else child_pandas
        print(json.dumps(run(args.data, args.size) | {"size": args.size, "kind": args.child}))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    baseline_sizes = sorted(int(s) for s in args.baseline_sizes.split(",") if s)
    data_dir = args.data or Path(tempfile.mkdtemp(prefix="bench-quality-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        if not (data_dir / "baseline.json").exists():
            print(f"generating {sizes[-1]:,} captured and labelled predictions in {data_dir} ...", flush=True)
            generate(data_dir, sizes[-1], sorted(set(sizes) | set(baseline_sizes)))
        else:  # a kept folder: each run starts from no quality state
            shutil.rmtree(data_dir / BUCKET / "monitoring", ignore_errors=True)
        jobs = [("quality", size) for size in sizes] + [("pandas", size) for size in baseline_sizes]
        for kind, size in jobs:
            done = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--size", str(size), "--data", str(data_dir)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"{kind} {size}: {done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {kind} {size:,}: done", flush=True)
    finally:
        if not args.keep and args.data is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print(
        f"{'method':>8}{'labelled rows':>15}{'joined':>12}{'unmatched':>10}{'accuracy':>10}{'peak MB':>9}"
        f"{'after imports':>15}{'wall s':>8}{'CPU s':>8}{'s per 1M':>10}"
    )
    for row in rows:
        print(
            f"{row['kind']:>8}{row['size']:>15,}{row['joined']:>12,}{row['unmatched']:>10,}{row['accuracy']:>10.4f}"
            f"{row['peak_mb']:>9.0f}{row['after_imports_mb']:>15.0f}{row['wall_s']:>8.1f}{row['cpu_s']:>8.1f}"
            f"{row['wall_s'] / row['size'] * 1e6:>10.1f}"
        )
    quality = {row["size"]: row for row in rows if row["kind"] == "quality"}
    print()
    for row in rows:
        if row["kind"] == "pandas" and row["size"] in quality:
            ours = quality[row["size"]]
            grown = (row["peak_mb"] - row["after_imports_mb"]) / max(ours["peak_mb"] - ours["after_imports_mb"], 1)
            print(
                f"{row['size']:>12,} rows: pandas/join peak {row['peak_mb'] / ours['peak_mb']:.2f}x "
                f"(growth over imports {grown:.1f}x), wall {row['wall_s'] / ours['wall_s']:.2f}x, "
                f"same accuracy: {abs(row['accuracy'] - ours['accuracy']) < 1e-12}"
            )
    peaks = [row["peak_mb"] for row in quality.values()]
    print(
        f"[{'ok' if max(peaks) - min(peaks) <= 64 else 'MISS'}] join flat: {max(peaks) - min(peaks):.0f} MB between sizes"
    )
    print(f"[{'ok' if max(peaks) <= 1024 else 'MISS'}] join peak {max(peaks):.0f} MB (evaluate_quality has 1024 MB)")


if __name__ == "__main__":
    main()
