"""Cold-start import time of a zip function's handler from its built layers, under Python 3.12.

    .venv/bin/python scripts/bench_handler_import.py validate_dataset predict [--runs 7]
        [--layer pyarrow=/path/to/another/build]   # compare another build of a layer

Each run is a fresh `python3.12 -S` whose only paths are what Lambda gives the function: its code
folder, its layers' `python/` folders and boto3/botocore as the Lambda runtime ships them (pinned to
requirements/dev.txt, installed once into layers/build/.lambda-runtime). Nothing else is importable,
so the time is the import (INIT) phase the function pays at a cold start, on this machine.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.catalog import FUNCTIONS, FunctionSpec
from infra.layers import BUILD_DIR, LAYERS, REPO_ROOT, ensure_layers, find_python312

RUNTIME_SITE = BUILD_DIR / ".lambda-runtime"  # boto3 + botocore, as the managed runtime provides them
_TIMER = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "import handler\n"
    "elapsed = time.perf_counter() - start\n"
    "import resource\n"
    "print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def _runtime_boto3(python: str) -> Path:
    pins = (REPO_ROOT / "requirements" / "dev.txt").read_text()
    wanted = [
        m.group(0)
        for m in re.finditer(r"^(boto3|botocore|s3transfer|jmespath|urllib3|python-dateutil|six)==\S+", pins, re.M)
    ]
    stamp = RUNTIME_SITE / ".pins"
    if not (stamp.is_file() and stamp.read_text() == "\n".join(wanted)):
        RUNTIME_SITE.mkdir(parents=True, exist_ok=True)
        command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
        subprocess.run([*command, "--target", str(RUNTIME_SITE), *wanted], check=True)
        subprocess.run(
            [python, "-m", "compileall", "-q", "-j", "0", str(RUNTIME_SITE)], check=False, capture_output=True
        )
        stamp.write_text("\n".join(wanted))
    return RUNTIME_SITE


def _env(spec: FunctionSpec) -> dict[str, str]:
    def placeholder(name: str) -> str:
        return "arn:aws:sns:us-east-1:123456789012:placeholder" if name.endswith("_ARN") else "placeholder"

    env = {name: placeholder(name) for name in spec.settings.env_names()} | spec.settings.env_defaults()
    return env | {
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # the function folder ships no bytecode, as in Lambda
    }


def measure(folder: str, runs: int, overrides: dict[str, Path], python: str) -> tuple[list[float], list[int]]:
    """Seconds and peak RSS (KiB) of `import handler`, one fresh interpreter per run."""
    spec = FUNCTIONS[folder]
    sites = [
        str(overrides.get(name, LAYERS[name].asset_dir) / "python")
        for name in spec.layers
        if not LAYERS[name].extension
    ]
    paths = [str(spec.code_dir), *sites, str(_runtime_boto3(python))]
    code = f"import sys\nsys.path[:0] = {paths!r}\n" + _TIMER
    seconds, peaks = [], []
    for _ in range(runs):
        result = subprocess.run([python, "-S", "-c", code], env=_env(spec), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{folder}: import failed\n{result.stderr[-3000:]}")
        elapsed, peak = result.stdout.split()
        seconds.append(float(elapsed))
        peaks.append(int(peak))
    return seconds, peaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "functions", nargs="+", choices=sorted(f for f, s in FUNCTIONS.items() if not s.container_image)
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--layer", action="append", default=[], metavar="NAME=DIR", help="use another build of a layer")
    args = parser.parse_args(argv)
    python = find_python312()
    if python is None:
        parser.error("needs a Python 3.12 interpreter (python3.12 on PATH or under pyenv)")
    ensure_layers()
    overrides = {name: Path(path) for name, path in (item.split("=", 1) for item in args.layer)}
    label = ", ".join(f"{name} from {path}" for name, path in overrides.items()) or "this checkout's layers"
    print(f"import handler under Python 3.12 from {label}; {args.runs} fresh interpreters each")
    print(f"{'function':<18} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MiB':>9}")
    for folder in args.functions:
        seconds, peaks = measure(folder, args.runs, overrides, python)
        print(
            f"{folder:<18} {statistics.median(seconds):>9.3f} {min(seconds):>7.3f} {max(seconds):>7.3f} "
            f"{statistics.median(peaks) / 1024:>9.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
