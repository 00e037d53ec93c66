"""Training at scale: the old reader against the columnar one, and the capacity plan against the actual.

Every measurement runs in a fresh process (peak RSS never goes down; VmHWM is the peak) doing
what train_model does: hold the object's bytes, read them, and either build the model inputs
("read") or train the contract's model ("train"). The old reader is the baseline, loaded from
git (`--baseline-rev`) in the same run, so the ratios compare like with like on this machine.

Prints, per size: read time and peak, old vs new (ratios); per estimator: the plan's estimate
(mlops.training.capacity) against the actual peak and time, and rows trainable per GiB of
memory above the imports, before (old reader) and after. `--calibrate` writes what the new runs
measured to src/mlops/training/capacity_measured.py (bytes per cell, cells per second per estimator).

    PYTHONPATH=src:. nice python scripts/bench_training_scale.py --rows 100000 1000000 3000000 10000000 \
        --train-rows 100000 300000 --calibrate
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
from datetime import UTC, datetime
from pathlib import Path

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "contracts" / "churn.json"
MEASURED = ROOT / "src" / "mlops" / "training" / "capacity_measured.py"
ESTIMATORS = ("logistic_regression", "random_forest_classifier", "gradient_boosting_classifier")
CHUNK_ROWS = 1_000_000
# The reader before the columnar one (main before i11/columnar), the baseline of every ratio.
BASELINE_REV = "11db79e"


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f"{field} not in /proc/self/status")


def _install_baseline_reader(rev: str) -> None:
    """Make `mlops.training.dataset` the module as it was at `rev` (the trainer imports it from there)."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/mlops/training/dataset.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    import mlops.training.dataset as current

    module = types.ModuleType("mlops.training.dataset")
    module.__file__ = f"<{rev}:src/mlops/training/dataset.py>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # the baseline: this repository's own history
    # names added since (the trainer imports inputs_feed) come from today's module: the reading is the baseline's
    for name in current.__all__:
        if not hasattr(module, name):
            setattr(module, name, getattr(current, name))
    sys.modules["mlops.training.dataset"] = module


def child(mode: str, reader: str, path: str, estimator: str, baseline_rev: str) -> None:
    if reader == "old":
        _install_baseline_reader(baseline_rev)
    from mlops.contract import parse_contract
    from mlops.training.dataset import model_inputs, read_dataset
    from mlops.training.trainer import train_model

    document = json.loads(CONTRACT.read_text())
    document["estimator"] = {"name": estimator, "params": {}}
    contract = parse_contract(document)
    baseline = _vm("VmRSS")
    started = time.monotonic()
    data = Path(path).read_bytes()  # train_model holds the object's bytes (to check its SHA-256)
    frame = read_dataset(data, Path(path).name, contract)
    if reader == "new":
        del data  # train_model's service lets the bytes go once read since the columnar reader
    if mode == "read":
        model_inputs(frame, contract)
    else:
        train_model(frame, contract)
    print(json.dumps({"baseline": baseline, "peak": _vm("VmHWM"), "seconds": time.monotonic() - started}))


def _measure(mode: str, reader: str, path: Path, estimator: str, baseline_rev: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, reader, str(path), estimator, "--baseline-rev", baseline_rev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _write_csv(rows: int, path: Path) -> None:
    """The churn sample, generated a million rows at a time (a 10M-row frame would not fit beside the runs)."""
    from mlops_local.sample_data import churn_dataset

    with path.open("w") as out:
        for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
            frame = churn_dataset(min(CHUNK_ROWS, rows - start), seed=7 + index)
            frame.to_csv(out, index=False, header=index == 0)


def _available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown CPU",
    )
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores {cpu}, load {load:.1f} (shared), Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000], help="sizes read")
    parser.add_argument("--train-rows", type=int, nargs="*", default=[100_000, 300_000], help="sizes trained")
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--calibrate", action="store_true", help="write capacity_measured.py from the new runs")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "READER", "PATH", "ESTIMATOR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.baseline_rev)
        return

    from mlops.contract import parse_contract
    from mlops.training.capacity import plan_training

    columns = len(parse_contract(CONTRACT.read_text()).columns)
    machine = _machine()  # the load as the runs start, not as they end
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}; churn contract, {columns} columns, CSV")
    print(f"# baseline: the reader at {args.baseline_rev}; each cell a fresh process; peak = VmHWM")
    sizes = sorted(set(args.rows) | set(args.train_rows))
    trained: dict[str, list[dict[str, float]]] = {name: [] for name in args.estimators}
    reads: list[str] = []
    trains: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in sizes:
            path = Path(folder) / f"churn-{rows}.csv"
            _write_csv(rows, path)
            size = path.stat().st_size
            if rows in args.rows:
                new = _measure("read", "new", path, "logistic_regression", args.baseline_rev)
                # the old reader's peak grows about linearly: skip it where it would not fit beside the others
                old_expected = new["baseline"] + (new["peak"] - new["baseline"]) * 5
                if old_expected < _available_mib() / 2:
                    old = _measure("read", "old", path, "logistic_regression", args.baseline_rev)
                    reads.append(
                        f"{rows:>10,} {size / MIB:>8.0f} {old['seconds']:>7.1f} {new['seconds']:>7.1f}"
                        f" {old['seconds'] / new['seconds']:>6.1f}x {old['peak']:>8.0f} {new['peak']:>8.0f}"
                        f" {(old['peak'] - old['baseline']) / (new['peak'] - new['baseline']):>6.1f}x"
                    )
                else:
                    reads.append(
                        f"{rows:>10,} {size / MIB:>8.0f} {'-':>7} {new['seconds']:>7.1f} {'-':>7} {'-':>8}"
                        f" {new['peak']:>8.0f} {'-':>7}  (old reader skipped: would need ~{old_expected:,.0f} MiB,"
                        f" {_available_mib():,.0f} MiB available on this shared machine)"
                    )
                print(reads[-1], flush=True)
            if rows in args.train_rows:
                for estimator in args.estimators:
                    new = _measure("train", "new", path, estimator, args.baseline_rev)
                    old = _measure("train", "old", path, estimator, args.baseline_rev)
                    plan = plan_training(rows, columns, size, estimator, {})
                    trained[estimator].append({"rows": rows, "object_bytes": size, **new})
                    per_gib_old = rows / ((old["peak"] - old["baseline"]) / 1024)
                    per_gib_new = rows / ((new["peak"] - new["baseline"]) / 1024)
                    trains.append(
                        f"{rows:>10,} {estimator:<30} {plan.peak_mib:>8.0f} {new['peak']:>8.0f}"
                        f" {new['peak'] / plan.peak_mib:>5.2f} {plan.seconds:>7.1f} {new['seconds']:>7.1f}"
                        f" {new['seconds'] / plan.seconds:>5.2f} {old['peak']:>8.0f} {old['seconds']:>7.1f}"
                        f" {per_gib_old:>11,.0f} {per_gib_new:>11,.0f} {per_gib_new / per_gib_old:>5.1f}x"
                    )
                    print(trains[-1], flush=True)
            path.unlink()

    print("\n## read + model inputs: old reader vs columnar (same run)")
    print(
        f"{'rows':>10} {'file MiB':>8} {'old s':>7} {'new s':>7} {'speed':>7} {'old MiB':>8} {'new MiB':>8} {'less':>7}"
    )
    print("\n".join(reads))
    print("\n## training: the plan's estimate vs the actual (new reader), and rows per GiB above the imports")
    print(
        f"{'rows':>10} {'estimator':<30} {'est MiB':>8} {'peak MiB':>8} {'ratio':>5} {'est s':>7} {'s':>7}"
        f" {'ratio':>5} {'old MiB':>8} {'old s':>7} {'rows/GiB old':>11} {'rows/GiB new':>11} {'gain':>6}"
    )
    print("\n".join(trains))
    if args.calibrate:
        _calibrate(trained, columns, machine)


def _calibrate(trained: dict[str, list[dict[str, float]]], columns: int, machine: str) -> None:
    """Per estimator, a line through the smallest and largest size trained, lifted to cover every run:
    peak MiB above the imports and the object = fixed MiB + cells x bytes per cell; seconds = fixed
    seconds + cells / cells per second. Estimators not trained in this run keep their entry."""
    from mlops.training import capacity_measured as previous

    runs_all = [run for runs in trained.values() for run in runs]
    # the entries kept from an earlier run were fitted above that run's imports: never plan with fewer
    runtime = max([previous.RUNTIME_MIB] + [run["baseline"] for run in runs_all])
    entries = dict(previous.ESTIMATORS)
    for estimator, runs in trained.items():
        if not runs:
            continue
        runs = sorted(runs, key=lambda run: run["rows"])
        small, large = runs[0], runs[-1]

        def above(run: dict[str, float]) -> float:
            return (run["peak"] - run["baseline"]) * MIB - run["object_bytes"]

        cells = (small["rows"] * columns, large["rows"] * columns)
        if len(runs) > 1 and above(large) > above(small):
            per_cell = (above(large) - above(small)) / (cells[1] - cells[0])
            fixed_mib = max(0.0, (above(small) - per_cell * cells[0]) / MIB)
        else:
            per_cell, fixed_mib = above(large) / cells[1], 0.0
        if len(runs) > 1 and large["seconds"] > small["seconds"]:
            seconds_per_cell = (large["seconds"] - small["seconds"]) / (cells[1] - cells[0])
            fixed_seconds = max(0.5, small["seconds"] - seconds_per_cell * cells[0])
        else:
            seconds_per_cell, fixed_seconds = large["seconds"] / cells[1], 0.5
        # lifted to cover every run: a plan never promises less than was measured (noisy timings)
        fixed_mib = max([fixed_mib] + [(above(run) - per_cell * run["rows"] * columns) / MIB for run in runs])
        fixed_seconds = max(
            [fixed_seconds] + [run["seconds"] - seconds_per_cell * run["rows"] * columns for run in runs]
        )
        entries[estimator] = {
            "bytes_per_cell": round(per_cell, 1),
            "fixed_mib": round(fixed_mib + 0.05, 1),
            "cells_per_second": round(1 / seconds_per_cell),
            "fixed_seconds": round(fixed_seconds + 0.005, 2),
            "params": {"n_estimators": 100} if estimator != "logistic_regression" else {},
            "measured_on": f"{datetime.now(UTC):%Y-%m-%d}",
            "runs": [
                {k: round(v, 1) if isinstance(v, float) else v for k, v in run.items() if k != "baseline"}
                for run in runs
            ],
        }
    text = MEASURED.read_text()
    head = text[: text.index("MEASURED_ON")]
    MEASURED.write_text(
        head
        + f"MEASURED_ON = {datetime.now(UTC):'%Y-%m-%d'}\n"
        + f"MACHINE = {machine!r}\n"
        + 'CONTRACT = "contracts/churn.json (7 features + label: 8 columns), CSV, default params"\n'
        + f"RUNTIME_MIB = {round(runtime, 1)}\n"
        + f"ESTIMATORS: dict[str, dict[str, object]] = {entries!r}\n"
    )
    print(f"\nwrote {MEASURED.relative_to(ROOT)}; run ruff format on it")


if __name__ == "__main__":
    main()
