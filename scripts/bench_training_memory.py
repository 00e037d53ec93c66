"""Peak memory of training vs dataset size: what `mlops.training.capacity` plans with.

Each size runs in a fresh process (peak RSS never goes down, so one process per size) that does
what train_model does: hold the object's bytes, read them with `read_dataset`, `train_model`.
Prints one table row per size: rows, columns, file MiB, RSS after imports, peak RSS (VmHWM),
the peak above the imports per million rows, and what `estimated_peak_mib` predicts.

    PYTHONPATH=src:. python scripts/bench_training_memory.py --rows 250000 500000 1000000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(path: str, key: str) -> None:
    from mlops.contract import parse_contract
    from mlops.training.dataset import read_dataset
    from mlops.training.trainer import train_model

    contract = parse_contract(Path("contracts/churn.json").read_text())
    baseline = _vm("VmRSS")
    started = time.monotonic()
    data = Path(path).read_bytes()  # train_model holds the object's bytes (to check its SHA-256)
    frame = read_dataset(data, key, contract)
    read_seconds = time.monotonic() - started
    train_model(frame, contract)
    print(f"{baseline:.0f} {_vm('VmHWM'):.0f} {read_seconds:.1f} {time.monotonic() - started:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from mlops.contract import parse_contract
    from mlops.training.capacity import plan_training
    from mlops_local.sample_data import churn_dataset

    contract = parse_contract(Path("contracts/churn.json").read_text())
    columns = len(contract.columns)
    print(
        f"{'rows':>10} {'cols':>4} {'file MiB':>8} {'imports':>8} {'peak MiB':>8} {'MiB/1M rows':>11}"
        f" {'estimate':>8} {'read s':>6} {'total s':>7}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            path = Path(folder) / f"churn-{rows}.{args.format}"
            frame = churn_dataset(rows)
            if args.format == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            del frame
            size = path.stat().st_size
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), path.name],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            baseline, peak, read_s, total_s = (float(v) for v in out[-4:])
            per_million = (peak - baseline) / rows * 1_000_000
            estimate = plan_training(rows, columns, size, contract.estimator.name, contract.estimator.params).peak_mib
            print(
                f"{rows:>10} {columns:>4} {size / MIB:>8.1f} {baseline:>8.0f} {peak:>8.0f} {per_million:>11.0f}"
                f" {estimate:>8.0f} {read_s:>6.1f} {total_s:>7.1f}",
                flush=True,
            )
            path.unlink()


if __name__ == "__main__":
    main()
