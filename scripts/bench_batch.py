"""Batch scoring throughput and peak memory vs file size, one invocation's share (one part).

Each size runs twice, each in a fresh process (peak RSS never goes down):
- `score_batch`: what one invocation of the function does (mlops.batch.service.BatchService:
  stream the CSV, check every row with predict's validator, run the verified model per 50k-row
  batch, write predictions and rejects, record the part, write the summary) with the whole file
  as one part;
- `baseline`: raw onnxruntime over the same rows (pyarrow reads the CSV typed, numpy feed arrays,
  one `session.run` per batch, nothing checked or written): the floor the function builds on.
The store is a local directory (no S3, no network: S3 reads run at ~100+ MB/s inside a region, a
fraction of the CPU time measured here), the ledger an in-memory one. Prints rows/s, rows per
minute and VmHWM per size. The churn sample model (7 features) is trained once.

    PYTHONPATH=src:. python scripts/bench_batch.py --rows 100000 1000000
    nice -n 19 env PYTHONPATH=src:. python scripts/bench_batch.py --rows 10000000   # once, in the background
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

MIB = 1024 * 1024
MODEL = "churn"
CHUNK_ROWS = 500_000


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f"{field} not in /proc/self/status")


class _Window(io.RawIOBase):
    """Bytes [begin, end) of a local file, as a ranged GET streams them."""

    def __init__(self, path: Path, begin: int, end: int) -> None:
        self._file = path.open("rb")
        self._file.seek(begin)
        self._left = end - begin

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._file.read(min(len(view), self._left))
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


class DirectoryStore:
    """The batch store's operations on a local directory (bucket = subfolder)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def head(self, bucket: str, key: str, version_id: str | None = None) -> Any:
        from mlops.ports import ObjectInfo

        return ObjectInfo(bucket, key, self._path(bucket, key).stat().st_size)

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        return self._path(bucket, key).open("rb")

    def open_range(self, bucket: str, key: str, version_id: str | None, begin: int, end: int) -> BinaryIO:
        return io.BufferedReader(_Window(self._path(bucket, key), begin, end), buffer_size=MIB)  # type: ignore[return-value]

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self._path(bucket, key).read_bytes()

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "") -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def put_file(self, bucket: str, key: str, path: str, content_type: str) -> None:
        target = self._path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def child_service(root: str, rows: int) -> dict[str, Any]:
    from mlops.batch.service import BatchService, BatchUpload
    from mlops.inference.served import ServedArtifact, ServedVersion
    from tests.support.batch_fakes import InMemoryBatchLedger, RecordingMetrics, Versions
    from tests.support.fakes import RecordingPublisher

    store = DirectoryStore(Path(root))
    meta = json.loads((Path(root) / "model.json").read_text())
    version = ServedVersion(MODEL, 1, ServedArtifact(**meta["artifact"]), meta["contract"])
    key = f"batch/{MODEL}/rows-{rows}.csv"
    service = BatchService(
        store=store,
        versions=Versions(version, production=1),
        ledger=InMemoryBatchLedger(),
        publisher=RecordingPublisher(),
        metrics=RecordingMetrics(),
        open_seekable=lambda b, k, v: store.open(b, k, v),
        part_bytes=1 << 40,  # the whole file is one invocation's part
        batch_rows=50_000,
    )
    baseline = _vm("VmRSS")
    started = time.perf_counter()
    outcome = service.submit(BatchUpload("data", key, None, store.head("data", key).size))
    seconds = time.perf_counter() - started
    summary = outcome.summary or {}
    return {"seconds": seconds, "rows": summary.get("rows"), "scored": summary.get("scored"), "rss_imports": baseline}


def child_baseline(root: str, rows: int) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from mlops.inference.model import default_session_options

    meta = json.loads((Path(root) / "model.json").read_text())
    features = meta["contract"]["features"]
    session = ort.InferenceSession(
        (Path(root) / meta["artifact"]["bucket"] / meta["artifact"]["key"]).read_bytes(),
        default_session_options(),
        providers=["CPUExecutionProvider"],
    )
    dtypes = {item.name: item.type for item in session.get_inputs()}
    outputs = [item.name for item in session.get_outputs()]
    baseline = _vm("VmRSS")
    started = time.perf_counter()
    path = Path(root) / "data" / f"batch/{MODEL}/rows-{rows}.csv"
    types = {f["name"]: pa.string() if f["type"] == "categorical" else pa.float64() for f in features}
    types["autopay"] = pa.bool_()
    reader = pacsv.open_csv(
        str(path),
        read_options=pacsv.ReadOptions(block_size=4 * MIB),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    scored = 0
    for batch in reader:
        feed = {}
        for feature in features:
            column = batch.column(feature["name"])
            if dtypes[feature["name"]] == "tensor(string)":
                feed[feature["name"]] = np.asarray(column.fill_null("__missing__").to_pylist(), dtype=object).reshape(
                    -1, 1
                )
            else:
                dtype = np.float32 if dtypes[feature["name"]] == "tensor(float)" else np.float64
                values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
                feed[feature["name"]] = values.astype(dtype).reshape(-1, 1)
        session.run(outputs, feed)
        scored += batch.num_rows
    return {"seconds": time.perf_counter() - started, "rows": scored, "scored": scored, "rss_imports": baseline}


def prepare(root: Path, sizes: list[int]) -> None:
    import hashlib

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from mlops.contract import parse_contract
    from mlops.layout import artifact_key
    from mlops.training import train_model
    from mlops_local.sample_data import churn_dataset, churn_features

    contract = parse_contract(Path("contracts/churn.json").read_text())
    onnx = train_model(churn_dataset(2_000), contract).onnx_bytes
    sha256 = hashlib.sha256(onnx).hexdigest()
    store = DirectoryStore(root)
    store.put_bytes("artifacts", artifact_key(MODEL, sha256), onnx)
    artifact = {"bucket": "artifacts", "key": artifact_key(MODEL, sha256), "sha256": sha256, "size_bytes": len(onnx)}
    (root / "model.json").write_text(json.dumps({"artifact": artifact, "contract": contract.model_dump(mode="json")}))
    for rows in sizes:
        path = root / "data" / f"batch/{MODEL}/rows-{rows}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = None
        for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
            table = pa.Table.from_pandas(
                churn_features(min(CHUNK_ROWS, rows - start), seed=index), preserve_index=False
            )
            if writer is None:
                writer = pacsv.CSVWriter(str(path), table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=3, metavar=("MODE", "ROOT", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, root, rows = args.child
        result = (child_service if mode == "score_batch" else child_baseline)(root, int(rows))
        print(json.dumps({**result, "peak_mib": _vm("VmHWM")}))
        return
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        root = Path(folder)
        prepare(root, args.rows)
        print("| rows | file MiB | what | seconds | rows/s | rows/min | RSS after imports MiB | peak MiB (VmHWM) |")
        print("|---:|---:|---|---:|---:|---:|---:|---:|")
        for rows in args.rows:
            size = (root / "data" / f"batch/{MODEL}/rows-{rows}.csv").stat().st_size / MIB
            for mode in ("baseline", "score_batch"):
                run = subprocess.run(
                    [sys.executable, __file__, "--child", mode, folder, str(rows)],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
                )
                result = json.loads(run.stdout.strip().splitlines()[-1])
                assert result["rows"] == rows, result
                rate = rows / result["seconds"]
                print(
                    f"| {rows:,} | {size:.0f} | {mode} | {result['seconds']:.1f} | {rate:,.0f} | {rate * 60:,.0f} "
                    f"| {result['rss_imports']:.0f} | {result['peak_mib']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
