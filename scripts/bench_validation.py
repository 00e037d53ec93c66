"""Validation benchmark: rows per second and peak memory of our streaming validator against a
pandas implementation of the same checks, pandera, and a bare pyarrow read (the floor).

    .venv/bin/python scripts/bench_validation.py            # 1M rows x 20 columns, CSV and Parquet
    .venv/bin/python scripts/bench_validation.py --big      # plus our validator at 10M rows (flat memory)

Files are generated deterministically into a temporary directory. Every contender runs in a fresh
subprocess and reports its own peak RSS (`ru_maxrss`), so one cannot inherit another's memory.
"""

# The subprocesses run this same script with constant arguments.

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

NUMERIC = [f"n{i}" for i in range(12)]
CATEGORICAL = [f"c{i}" for i in range(5)]
BOOLEAN = ["b0", "b1"]
TARGET = "label"
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
BATCH_ROWS = 16_384  # the validator's default (ValidateSettings.batch_rows)


def contract_document() -> dict[str, Any]:
    features = [{"name": n, "type": "numeric", "min": -1000, "max": 1000} for n in NUMERIC]
    features[-1]["nullable"] = True
    features += [{"name": n, "type": "categorical", "categories": CATEGORIES} for n in CATEGORICAL]
    features += [{"name": n, "type": "boolean"} for n in BOOLEAN]
    return {
        "name": "bench",
        "problem_type": "classification",
        "target": {"name": TARGET, "classes": ["no", "yes"]},
        "features": features,
        "estimator": {"name": "logistic_regression"},
        "metric": {"name": "accuracy"},
        "data": {"min_rows": 1, "max_object_bytes": 10 * 1024**3},
    }


def generate(directory: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """`rows` x 20 columns as CSV and Parquet, written in slices (bounded memory)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    csv_path, parquet_path = directory / f"bench-{rows}.csv", directory / f"bench-{rows}.parquet"
    rng = np.random.default_rng(seed)
    step = 500_000
    writer = None
    with csv_path.open("wb") as csv_file:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            columns: dict[str, Any] = {name: np.round(rng.normal(0, 100, n), 3) for name in NUMERIC}
            columns[NUMERIC[-1]] = pa.array(columns[NUMERIC[-1]], mask=rng.random(n) < 0.05)
            for name in CATEGORICAL:
                columns[name] = np.asarray(CATEGORIES)[rng.integers(0, len(CATEGORIES), n)]
            for name in BOOLEAN:
                columns[name] = rng.random(n) < 0.5
            columns[TARGET] = np.where(rng.random(n) < 0.3, "yes", "no")
            table = pa.table(columns)
            pacsv.write_csv(table, csv_file, write_options=pacsv.WriteOptions(include_header=start == 0))
            if writer is None:
                writer = pq.ParquetWriter(parquet_path, table.schema)
            writer.write_table(table, row_group_size=BATCH_ROWS * 2)
    assert writer is not None
    writer.close()
    return csv_path, parquet_path


# -- contenders (each runs in its own process) -------------------------------------------------


def run_ours(path: Path, reference_path: Path | None) -> int:
    from mlops.contract import parse_contract
    from mlops.validation.checks import DatasetChecker
    from mlops.validation.readers import read_csv, read_parquet
    from mlops.validation.report import DatasetProfile
    from mlops.validation.service import csv_block_bytes
    from mlops.validation.stats import StatsCollector

    contract = parse_contract(contract_document())
    reference = DatasetProfile.model_validate_json(reference_path.read_text()) if reference_path else None
    stats = StatsCollector(contract, reference)
    checker = DatasetChecker(contract, stats)
    with path.open("rb") as body:
        if path.suffix == ".parquet":
            with path.open("rb") as seekable:
                result = read_parquet(body, seekable, checker, batch_rows=BATCH_ROWS)
        else:
            result = read_csv(body, checker, block_bytes=csv_block_bytes(BATCH_ROWS))
    checks = checker.results() + stats.results()
    assert result.complete, result.error
    assert all(c.passed for c in checks), [c.reason for c in checks if not c.passed]
    return checker.rows


def _read_pandas(path: Path) -> Any:
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=["", "NULL", "null", "NA", "N/A"])


def run_pandas(path: Path, reference_path: Path | None) -> int:
    """The same checks with pandas on the whole frame: types, nulls, finite, ranges, categories,
    target, duplicates, PSI and out-of-range share against the reference."""
    import pandas as pd

    from mlops.drift.psi import psi
    from mlops.profile import NumericProfile
    from mlops.validation.report import DatasetProfile

    frame = _read_pandas(path)
    reference = DatasetProfile.model_validate_json(reference_path.read_text()) if reference_path else None
    problems = 0
    outside = np.zeros(len(frame), dtype=bool)
    for name in NUMERIC:
        values = pd.to_numeric(frame[name], errors="coerce")
        problems += int((values.isna() & frame[name].notna()).sum())
        if name != NUMERIC[-1]:
            problems += int(values.isna().sum())
        problems += int(np.isinf(values).sum()) + int(((values < -1000) | (values > 1000)).sum())
        ref = reference.features.get(name) if reference else None
        if isinstance(ref, NumericProfile):
            finite = values[np.isfinite(values)].to_numpy()
            counts = np.bincount(np.searchsorted(ref.edges, finite), minlength=len(ref.edges) + 1).tolist()
            psi(ref.proportions, [*counts, int(len(values) - len(finite))])
            outside |= ((values < (ref.min or 0)) | (values > (ref.max or 0))).to_numpy()
    for name in CATEGORICAL:
        problems += int((~frame[name].isin(CATEGORIES)).sum())
    for name in BOOLEAN:
        text = frame[name].astype(str).str.strip().str.lower()
        problems += int((~text.isin(["true", "false", "1", "0"])).sum())
    problems += int((~frame[TARGET].isin(["no", "yes"])).sum())
    duplicates = int(frame.duplicated().sum())
    assert problems == 0, problems
    assert duplicates == 0, duplicates
    return len(frame)


def run_pandera(path: Path, reference_path: Path | None) -> int:
    import pandas as pd
    import pandera.pandas as pa

    frame = _read_pandas(path)
    text = path.suffix != ".parquet"
    columns: dict[str, Any] = {}
    for name in NUMERIC:
        columns[name] = pa.Column(float, pa.Check.in_range(-1000, 1000), nullable=name == NUMERIC[-1], coerce=text)
    for name in CATEGORICAL:
        columns[name] = pa.Column(str, pa.Check.isin(CATEGORIES))
    for name in BOOLEAN:
        columns[name] = pa.Column(bool if not text else str, nullable=False)
    columns[TARGET] = pa.Column(str, pa.Check.isin(["no", "yes"]))
    schema = pa.DataFrameSchema(columns, strict=True, unique_column_names=True)
    validated = schema.validate(frame, lazy=True)
    assert isinstance(validated, pd.DataFrame)
    return len(validated)


def run_pyarrow(path: Path, reference_path: Path | None) -> int:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows = 0
    if path.suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            rows += batch.num_rows
    else:
        from mlops.validation.service import csv_block_bytes

        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=csv_block_bytes(BATCH_ROWS)))
        for batch in reader:
            rows += batch.num_rows
    return rows


CONTENDERS = {"ours": run_ours, "pandas": run_pandas, "pandera": run_pandera, "pyarrow": run_pyarrow}


# Imported before the clock starts: import time is a cold start, not validation work.
PRELOAD = {
    "ours": ("pyarrow.csv", "pyarrow.parquet", "mlops.validation.service", "mlops.validation.stats"),
    "pandas": ("pandas", "pyarrow.parquet", "mlops.drift.psi", "mlops.validation.report"),
    "pandera": ("pandas", "pyarrow.parquet", "pandera.pandas"),
    "pyarrow": ("pyarrow.csv", "pyarrow.parquet", "mlops.validation.service"),
}


def child(name: str, path: Path, reference: Path | None, cpus: int) -> None:
    import importlib
    import os

    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cpus])

    for module in PRELOAD[name]:
        importlib.import_module(module)
    idle_kib = _high_water_kib()
    started = time.perf_counter()
    rows = CONTENDERS[name](path, reference)
    seconds = time.perf_counter() - started
    peak_kib = _high_water_kib()
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mib": peak_kib / 1024, "idle_mib": idle_kib / 1024}))


def _high_water_kib() -> int:
    """This process's peak RSS. VmHWM, not ru_maxrss: the latter keeps the parent's peak across
    fork and exec, so a child would report the generator's memory as its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(name: str, path: Path, reference: Path | None, cpus: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, str(path), "--cpus", str(cpus)]
    if reference is not None:
        command += ["--reference", str(reference)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def reference_profile(directory: Path, csv_path: Path) -> Path:
    """The profile of a different slice of the same distribution (what the last accepted dataset left)."""
    from mlops.contract import parse_contract
    from mlops.validation.checks import DatasetChecker
    from mlops.validation.readers import read_csv
    from mlops.validation.stats import StatsCollector

    small, _ = generate(directory, 100_000, seed=99)
    contract = parse_contract(contract_document())
    stats = StatsCollector(contract, None)
    checker = DatasetChecker(contract, stats)
    with small.open("rb") as body:
        read_csv(body, checker)
    path = directory / "reference.json"
    path.write_text(stats.profile(checker.observed()).model_dump_json())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big", action="store_true", help="also run our validator on 10x the rows")
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--cpus", type=int, default=1, help="CPUs per contender (1: what a 1,769 MB Lambda gets; 0: all)"
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.reference, args.cpus)
        return
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as temp:
        directory = Path(temp)
        started = time.perf_counter()
        csv_path, parquet_path = generate(directory, args.rows)
        reference = reference_profile(directory, csv_path)
        print(
            f"generated {args.rows:,} rows x 20 columns in {time.perf_counter() - started:.1f} s: "
            f"CSV {csv_path.stat().st_size / 2**20:.0f} MiB, Parquet {parquet_path.stat().st_size / 2**20:.0f} MiB"
        )
        results: dict[tuple[str, str], dict[str, Any]] = {}
        for path, label in ((csv_path, "csv"), (parquet_path, "parquet")):
            for name in CONTENDERS:
                results[(label, name)] = measure(name, path, reference, args.cpus)
        print(f"\neach contender in a fresh process on {args.cpus or 'all'} CPU(s)")
        print(f"{'format':<8} {'contender':<9} {'rows/s':>12} {'seconds':>8} {'peak MiB':>9} {'imports MiB':>11} "
              f"{'vs pandera rows/s':>18} {'vs pandera memory':>18}")  # fmt: skip
        for (label, name), result in results.items():
            if "error" in result:
                print(f"{label:<8} {name:<9} failed: {result['error']}")
                continue
            base = results.get((label, "pandera"), {})
            rate = result["rows"] / result["seconds"]
            speed = f"{rate / (base['rows'] / base['seconds']):.2f}x" if "seconds" in base else "-"
            memory = f"{result['peak_mib'] / base['peak_mib']:.2f}x" if "peak_mib" in base else "-"
            print(
                f"{label:<8} {name:<9} {rate:>12,.0f} {result['seconds']:>8.2f} {result['peak_mib']:>9.0f} "
                f"{result['idle_mib']:>11.0f} {speed:>18} {memory:>18}"
            )
        print("(peak MiB: peak RSS of the whole process; imports MiB: its RSS after imports, before any work)")
        if args.big:
            big_rows = args.rows * 10
            started = time.perf_counter()
            big_csv, big_parquet = generate(directory, big_rows, seed=1)
            print(f"\ngenerated {big_rows:,} rows in {time.perf_counter() - started:.1f} s "
                  f"(CSV {big_csv.stat().st_size / 2**20:.0f} MiB)")  # fmt: skip
            for path, label in ((big_csv, "csv"), (big_parquet, "parquet")):
                small = results[(label, "ours")]
                big = measure("ours", path, reference, args.cpus)
                if "error" in big:
                    print(f"{label}: failed: {big['error']}")
                    continue
                print(
                    f"ours {label:<8} {args.rows:>11,} rows: {small['peak_mib']:5.0f} MiB peak | "
                    f"{big_rows:>11,} rows: {big['peak_mib']:5.0f} MiB peak, {big['rows'] / big['seconds']:,.0f} rows/s"
                )


if __name__ == "__main__":
    main()
