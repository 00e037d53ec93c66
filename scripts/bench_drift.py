"""Drift detection on 1M rows x 20 features: ours (mlops.drift) side by side with Evidently.

    .venv/bin/python scripts/bench_drift.py                   # 1M rows, every scenario, 200 clean windows
    .venv/bin/python scripts/bench_drift.py --rows 100000 --reference-rows 100000 --evidently-windows 3   # quicker

Data: 15 numeric features (3 each: normal, skewed (lognormal), heavy-tailed (Student t), integer
counts (Poisson), bimodal) and 5 categorical ones (3, 5, 10, 20 and 30 levels; the 20- and 30-level
ones with missing values), generated in seeded chunks so every process draws the same rows. A
reference of `--reference-rows` rows; per scenario a window of `--rows` rows with known ground
truth (which features must be flagged; whether the drift alarm may fire):

    no_drift            nothing changed                                   -> no drift alarm
    mean_shift          +0.5 sd on normal_0, heavy_0, counts_0            -> those three
    variance_change     1.5x spread around the mean on normal_1, bimodal_0 -> those two
    category_frequency  other shares on cat_5 and cat_10                  -> those two
    new_category        10 % of cat_3 and 5 % of cat_20 an unseen level   -> those two
    missing_spike       30 % nulls in normal_1 and cat_20, non-null values unchanged
                                                                          -> no drift alarm (data quality)
    small_shift_all     +0.25 sd on every numeric feature                 -> all 15

Each side runs in a fresh process; the table shows the analysis time (ours: WindowSketch.add over
capture batches of `--chunk` rows plus evaluate; Evidently: Report([DataDriftPreset()]).run), the
peak memory of the whole process (ru_maxrss: imports, data and analysis), and the decisions.
Ours never holds the window: it reads capture batches one at a time as the drift function reads
capture objects (parsing them is not timed here); Evidently needs both data frames in memory.
Then the false-alarm rate over `--windows` clean windows at the contract's minimum window size
(100 rows), ours and Evidently's (`--evidently-windows`, 20 by default: each of its windows costs
seconds because it reads the whole reference again; same reference).

Evidently is a benchmark-only dependency in its own virtualenv (`.venv-evidently`, created from
requirements/bench-evidently.txt when missing): evidently 0.7.23 imports a pandas API that pandas 3
removed, and the project pins pandas 3.1.1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EVIDENTLY_VENV = REPO / ".venv-evidently"
EVIDENTLY_REQUIREMENTS = REPO / "requirements" / "bench-evidently.txt"

KINDS = ("normal", "skewed", "heavy", "counts", "bimodal")
NUMERIC = tuple(f"{kind}_{i}" for kind in KINDS for i in range(3))
CATEGORICAL = {"cat_3": 3, "cat_5": 5, "cat_10": 10, "cat_20": 20, "cat_30": 30}
NULL_SHARE = {"cat_20": 0.03, "cat_30": 0.05}  # missing values in the clean data
FEATURES = (*NUMERIC, *CATEGORICAL)
SCENARIOS: dict[str, tuple[str, ...]] = {  # scenario -> features that must be flagged
    "no_drift": (),
    "mean_shift": ("normal_0", "heavy_0", "counts_0"),
    "variance_change": ("normal_1", "bimodal_0"),
    "category_frequency": ("cat_5", "cat_10"),
    "new_category": ("cat_3", "cat_20"),
    "missing_spike": (),
    "small_shift_all": NUMERIC,
}
QUIET = ("no_drift", "missing_spike")  # the drift alarm must stay silent
SEED = 20261202


# ---- data (numpy only: both sides' processes generate the same rows) ----


def _levels(name: str) -> np.ndarray:
    return np.array([f"{name}_L{i:02d}" for i in range(CATEGORICAL[name])], dtype=object)


def _shares(name: str) -> np.ndarray:
    weights = 1.0 / np.arange(1, CATEGORICAL[name] + 1)  # Zipf-like: rare levels in the long ones
    return weights / weights.sum()


def _numeric(name: str, rng: np.random.Generator, rows: int, *, shift: float = 0.0) -> np.ndarray:
    """Clean values of `name`; `shift` moves its mean by that many standard deviations."""
    kind, index = name.rsplit("_", 1)
    i = int(index)
    if kind == "counts":  # stays integer: the rate rises so the mean moves by `shift` sd
        rate = 2.0 + 3.0 * i
        return rng.poisson(rate + shift * np.sqrt(rate), rows).astype(np.float64)
    if kind == "normal":
        values = rng.normal(10.0 * (i + 1), 2.0 * (i + 1), rows)
    elif kind == "skewed":
        values = rng.lognormal(0.5 * i, 0.6 + 0.2 * i, rows)
    elif kind == "heavy":
        values = rng.standard_t(3 + i, rows) * (1.0 + i)
    else:
        low = rng.random(rows) < 0.3 + 0.1 * i
        values = np.where(low, rng.normal(-2.0 - i, 0.5, rows), rng.normal(2.0 + i, 1.0, rows))
    return values + shift * _SD[name] if shift else values


_SD: dict[str, float] = {}  # each numeric feature's mean and sd, from a large clean sample
_MEAN: dict[str, float] = {}


def _categorical(name: str, rng: np.random.Generator, rows: int, shares: np.ndarray | None = None) -> np.ndarray:
    values = rng.choice(_levels(name), rows, p=_shares(name) if shares is None else shares)
    if name in NULL_SHARE:
        values[rng.random(rows) < NULL_SHARE[name]] = None
    return values


def chunk(scenario: str, part: str, index: int, rows: int) -> dict[str, np.ndarray]:
    """Rows of one chunk of the reference (part "reference") or a scenario's window ("window")."""
    if not _SD:
        for name in NUMERIC:
            sample = _numeric(name, np.random.default_rng(0), 400_000)
            _SD[name], _MEAN[name] = float(sample.std()), float(sample.mean())
    rng = np.random.default_rng([SEED, 0 if part == "reference" else 1, index])
    columns: dict[str, np.ndarray] = {}
    shift = {"mean_shift": 0.5, "small_shift_all": 0.25}.get(scenario, 0.0) if part == "window" else 0.0
    shifted = SCENARIOS.get(scenario, ()) if shift else ()
    for name in NUMERIC:
        columns[name] = _numeric(name, rng, rows, shift=shift if name in shifted else 0.0)
    for name in CATEGORICAL:
        columns[name] = _categorical(name, rng, rows)
    if part == "window":
        _apply(scenario, columns, rng, rows)
    logit = (
        (columns["normal_0"] - 10.0) / 2.0 + 0.3 * (columns["counts_0"] - 2.0) + 0.5 * (columns["cat_3"] == "cat_3_L00")
    )
    columns["probability:yes"] = 1.0 / (1.0 + np.exp(-(logit - 0.2)))
    return columns


def _apply(scenario: str, columns: dict[str, np.ndarray], rng: np.random.Generator, rows: int) -> None:
    if scenario == "variance_change":
        for name in SCENARIOS[scenario]:
            columns[name] = _MEAN[name] + 1.5 * (columns[name] - _MEAN[name])
    elif scenario == "category_frequency":
        columns["cat_5"] = _categorical("cat_5", rng, rows, np.full(5, 0.2))
        flat = _shares("cat_10")[::-1].copy()  # the rarest level becomes the commonest
        columns["cat_10"] = _categorical("cat_10", rng, rows, flat / flat.sum())
    elif scenario == "new_category":
        for name, share in (("cat_3", 0.10), ("cat_20", 0.05)):
            columns[name][rng.random(rows) < share] = f"{name}_new"
    elif scenario == "missing_spike":
        columns["normal_1"][rng.random(rows) < 0.3] = np.nan
        columns["cat_20"][rng.random(rows) < 0.3] = None


def _chunks(scenario: str, part: str, rows: int, size: int) -> Iterator[dict[str, np.ndarray]]:
    for index, start in enumerate(range(0, rows, size)):
        yield chunk(scenario, part, index, min(size, rows - start))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


# ---- our side ----


def _contract() -> Any:
    from mlops.contract import parse_contract

    features = [{"name": n, "type": "numeric", "nullable": True} for n in NUMERIC]
    features += [{"name": n, "type": "categorical", "nullable": True} for n in CATEGORICAL]
    return parse_contract(
        {
            "name": "bench",
            "problem_type": "classification",
            "target": {"name": "label", "classes": ["no", "yes"]},
            "features": features,
            "estimator": {"name": "logistic_regression"},
            "metric": {"name": "accuracy"},
        }
    )


def _batch(columns: dict[str, np.ndarray]) -> Any:
    """A capture batch as a decoded capture object holds it: lists, None for nulls."""
    from mlops.captures import CaptureBatch

    rows = len(columns["normal_0"])
    inputs: dict[str, list[object]] = {}
    for name in FEATURES:
        values = columns[name]
        if values.dtype.kind == "f" and np.isnan(values).any():
            inputs[name] = np.where(np.isnan(values), None, values).tolist()
        else:
            inputs[name] = values.tolist()
    return CaptureBatch(
        at=np.full(rows, 1.7e9).tolist(),
        versions=[1] * rows,
        prediction_ids=[""] * rows,
        inputs=inputs,
        outputs={"probability:yes": columns["probability:yes"].tolist()},
    )


def child_profile(args: argparse.Namespace) -> dict[str, Any]:
    """Build the baseline as training would (mlops.profile on the reference) and store it."""
    from datetime import UTC, datetime

    from mlops.profile import BaselineProfile, profile_categorical, profile_numeric

    parts = list(_chunks("no_drift", "reference", args.reference_rows, args.chunk))
    reference = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    del parts
    started = time.perf_counter()
    features = {n: profile_numeric(reference[n]) for n in NUMERIC}
    features.update({n: profile_categorical(reference[n].tolist()) for n in CATEGORICAL})
    profile = BaselineProfile(
        model_name="bench",
        created_at=datetime.now(UTC),
        rows=args.reference_rows,
        features=features,
        prediction=profile_numeric(reference["probability:yes"]),
    )
    seconds = time.perf_counter() - started
    Path(args.baseline).write_text(profile.model_dump_json())
    return {"seconds": seconds, "peak_mb": _peak_mb(), "bytes": Path(args.baseline).stat().st_size}


def child_ours(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import UTC, datetime

    from mlops.drift.decisions import evaluate
    from mlops.drift.sketch import WindowSketch
    from mlops.profile import BaselineProfile

    contract = _contract()
    baseline = BaselineProfile.model_validate_json(Path(args.baseline).read_text())
    sketch = WindowSketch.empty(contract, baseline, 1)
    seconds = 0.0
    for columns in _chunks(args.scenario, "window", args.rows, args.chunk):
        batch = _batch(columns)
        started = time.perf_counter()
        sketch.add(batch)
        seconds += time.perf_counter() - started
        del batch
    started = time.perf_counter()
    result = evaluate(contract, baseline, sketch, generated_at=datetime.now(UTC))
    seconds += time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "flagged": [f.name for f in result.features if f.drifted],
        "alarm": result.drift_detected,
        "dataset_drift": bool(result.dataset and result.dataset.drifted),
        "prediction_drift": bool(result.prediction and result.prediction.drifted),
        "quality_alarm": result.data_quality.alarm,
        "issues": result.data_quality.issues,
        "methods": sorted({f.method.value for f in result.features}),
        "sketch_bytes": len(json.dumps(sketch.to_json())),
    }


def child_ours_false_alarms(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import UTC, datetime

    from mlops.drift.decisions import evaluate
    from mlops.drift.sketch import WindowSketch
    from mlops.profile import BaselineProfile

    contract = _contract()
    baseline = BaselineProfile.model_validate_json(Path(args.baseline).read_text())
    rows = contract.monitoring.min_window_rows
    alarms = 0
    flagged: dict[str, int] = {}
    for window in range(args.windows):
        sketch = WindowSketch.empty(contract, baseline, 1)
        sketch.add(_batch(chunk("no_drift", "window", 1_000_000 + window, rows)))
        result = evaluate(contract, baseline, sketch, generated_at=datetime.now(UTC))
        alarms += result.drift_detected
        for feature in [*result.features, result.prediction]:
            if feature is not None and feature.drifted:
                flagged[feature.name] = flagged.get(feature.name, 0) + 1
    return {"windows": args.windows, "rows": rows, "alarms": alarms, "flagged": flagged}


# ---- Evidently's side ----


def _frame(scenario: str, part: str, rows: int, size: int) -> Any:
    import pandas as pd

    parts = list(_chunks(scenario, part, rows, size))
    frame = pd.DataFrame({name: np.concatenate([p[name] for p in parts]) for name in FEATURES})
    del parts
    return frame


def _evidently_run(reference: Any, current: Any) -> Any:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(NUMERIC), categorical_columns=list(CATEGORICAL))
    return Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def _evidently_decisions(snapshot: Any) -> dict[str, Any]:
    flagged: list[str] = []
    methods: set[str] = set()
    share = 0.0
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            method, threshold, value = config["method"], config["threshold"], metric["value"]
            methods.add(method)
            # Evidently's rule: a p-value drifts below its threshold, a distance at or above it
            drifted = value < threshold if "p_value" in method else value >= threshold
            if drifted:
                flagged.append(config["column"])
        elif config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    return {
        "flagged": [name for name in FEATURES if name in flagged],
        "dataset_drift": share >= 0.5,
        "alarm": bool(flagged),
        "methods": sorted(methods),
    }


def child_evidently(args: argparse.Namespace) -> dict[str, Any]:
    reference = _frame("no_drift", "reference", args.reference_rows, args.chunk)
    current = _frame(args.scenario, "window", args.rows, args.chunk)
    started = time.perf_counter()
    snapshot = _evidently_run(reference, current)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": _peak_mb(), **_evidently_decisions(snapshot)}


def child_evidently_false_alarms(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    reference = _frame("no_drift", "reference", args.reference_rows, args.chunk)
    alarms = dataset = 0
    started = time.perf_counter()
    for window in range(args.windows):
        columns = chunk("no_drift", "window", 1_000_000 + window, 100)
        decisions = _evidently_decisions(_evidently_run(reference, pd.DataFrame({n: columns[n] for n in FEATURES})))
        alarms += decisions["alarm"]
        dataset += decisions["dataset_drift"]
    return {
        "windows": args.windows,
        "rows": 100,
        "alarms": alarms,
        "dataset_drift": dataset,
        "seconds_per_window": (time.perf_counter() - started) / max(args.windows, 1),
    }


CHILDREN = {
    "profile": child_profile,
    "ours": child_ours,
    "ours-false-alarms": child_ours_false_alarms,
    "evidently": child_evidently,
    "evidently-false-alarms": child_evidently_false_alarms,
}


# ---- the parent: one fresh process per measurement, then the table ----


def _evidently_python(requested: str | None) -> str:
    if requested:
        return requested
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {EVIDENTLY_VENV} from {EVIDENTLY_REQUIREMENTS.name} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(EVIDENTLY_REQUIREMENTS),
            ],
            check=True,
        )
    return str(python)


def _run(python: str, mode: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    command = [python, str(Path(__file__).resolve()), "--child", mode, "--baseline", args.baseline]
    command += ["--rows", str(args.rows), "--reference-rows", str(args.reference_rows), "--chunk", str(args.chunk)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    environment = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout
    return json.loads(output.strip().splitlines()[-1])


def _ratio(ours: float, theirs: float) -> str:
    return f"1/{theirs / ours:.0f}" if ours and theirs >= ours else f"{ours / theirs:.2f}x" if theirs else "-"


def _names(flagged: list[str], must: tuple[str, ...]) -> tuple[str, str]:
    hits = sum(name in flagged for name in must)
    extra = [name for name in flagged if name not in must]
    return f"{hits}/{len(must)}", ",".join(extra) if extra else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each scenario's window")
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="rows per capture batch / generated chunk")
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--windows", type=int, default=200, help="clean windows for our false-alarm rate")
    # Evidently reads the whole reference for each window (about 10 s a window at 100k reference rows)
    parser.add_argument("--evidently-windows", type=int, default=20, help="clean windows for Evidently's (0: skip)")
    parser.add_argument("--evidently-python", help="a python with evidently (default: .venv-evidently, created)")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--json", help="write every measurement to this file too")
    parser.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--scenario", default="no_drift", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return

    evidently = None if args.skip_evidently else _evidently_python(args.evidently_python)
    with tempfile.TemporaryDirectory() as work:
        args.baseline = str(Path(work) / "baseline.json")
        profile = _run(sys.executable, "profile", args)
        print(
            f"baseline: {args.reference_rows:,} reference rows profiled in {profile['seconds']:.1f} s "
            f"(peak {profile['peak_mb']:.0f} MB, {profile['bytes'] / 1024:.0f} KB stored) - once, at training",
            flush=True,
        )
        results: dict[str, Any] = {"profile": profile, "scenarios": {}}
        header = (
            f"{'scenario':<19} {'ours s':>7} {'Evid s':>7} {'time':>6} {'ours MB':>8} {'Evid MB':>8} {'memory':>7} "
            f"{'must-flag ours/Evid':>20}  {'alarm ours/Evid':>16}  extra flags ours | Evidently"
        )
        print(f"\n{args.rows:,} window rows x {len(FEATURES)} features (+ prediction for ours)\n{header}", flush=True)
        for scenario in args.scenarios:
            ours = _run(sys.executable, "ours", args, scenario=scenario)
            theirs = _run(evidently, "evidently", args, scenario=scenario) if evidently else None
            results["scenarios"][scenario] = {"ours": ours, "evidently": theirs}
            must = SCENARIOS[scenario]
            ours_hits, ours_extra = _names(ours["flagged"], must)
            line = f"{scenario:<19} {ours['seconds']:>7.1f} "
            if theirs:
                their_hits, their_extra = _names(theirs["flagged"], must)
                line += (
                    f"{theirs['seconds']:>7.1f} {_ratio(ours['seconds'], theirs['seconds']):>6} {ours['peak_mb']:>8.0f} "
                    f"{theirs['peak_mb']:>8.0f} {_ratio(ours['peak_mb'], theirs['peak_mb']):>7} "
                    f"{ours_hits + ' / ' + their_hits:>20}  {str(ours['alarm']) + ' / ' + str(theirs['alarm']):>16}  "
                    f"{ours_extra} | {their_extra}"
                )
            else:
                line += f"{'-':>7} {'-':>6} {ours['peak_mb']:>8.0f} {'-':>8} {'-':>7} {ours_hits:>20}  {ours['alarm']!s:>16}  {ours_extra}"
            verdict = []
            if any(name not in ours["flagged"] for name in must):
                verdict.append("MISSED must-flag")
            if scenario in QUIET and ours["alarm"]:
                verdict.append("FALSE drift alarm")
            print(line + (f"   <- ours: {', '.join(verdict)}" if verdict else ""), flush=True)
            if ours["issues"]:
                print(f"{'':<19} ours, data quality: {'; '.join(ours['issues'])}", flush=True)
            if ours["prediction_drift"]:
                print(f"{'':<19} ours: prediction drift", flush=True)

        results["false_alarms"] = {}
        if args.windows:
            false_alarms = _run(sys.executable, "ours-false-alarms", args, windows=args.windows)
            results["false_alarms"]["ours"] = false_alarms
            rate = false_alarms["alarms"] / false_alarms["windows"]
            print(
                f"\nfalse alarms, {false_alarms['windows']} clean windows of {false_alarms['rows']} rows (the minimum): "
                f"ours {false_alarms['alarms']} ({rate:.1%}) {false_alarms['flagged'] or ''}",
                flush=True,
            )
        if evidently and args.evidently_windows:
            theirs = _run(evidently, "evidently-false-alarms", args, windows=args.evidently_windows)
            results["false_alarms"]["evidently"] = theirs
            print(
                f"  Evidently (DataDriftPreset defaults, same {args.reference_rows:,}-row reference), {theirs['windows']} "
                f"windows: any column drifted {theirs['alarms']} ({theirs['alarms'] / theirs['windows']:.1%}), "
                f"dataset drift {theirs['dataset_drift']} ({theirs['dataset_drift'] / theirs['windows']:.1%}); "
                f"{theirs['seconds_per_window']:.1f} s a window",
                flush=True,
            )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
