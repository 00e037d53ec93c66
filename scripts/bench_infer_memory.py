"""Peak memory of `mlops contracts infer` on a generated CSV of a given size (it streams).

    nice .venv/bin/python scripts/bench_infer_memory.py --megabytes 1024

Writes the CSV to a temporary directory (deleted afterwards), then infers its contract in a fresh
process and prints the file size, rows, wall time and the process's peak RSS (ru_maxrss), with
the peak of the same process after its imports for comparison.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

MEASURE = """
import resource, sys, time
from pathlib import Path
import pyarrow, pyarrow.csv, pyarrow.compute
from mlops.contract_infer import infer_contract
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
inferred = infer_contract(Path(sys.argv[1]), target="label")
seconds = time.perf_counter() - start
print(inferred.rows, round(seconds, 1), imported, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_csv(path: Path, megabytes: int) -> None:
    rng = np.random.default_rng(0)
    rows = 100_000
    block = pd.DataFrame(
        {
            **{f"feature {i}": rng.normal(size=rows).round(6) for i in range(8)},
            "city": rng.choice(["north", "south", "east", "west"], rows),
            "label": rng.choice(["yes", "no"], rows),
        }
    )
    text = block.to_csv(index=False, header=False)
    with path.open("w") as out:
        out.write(",".join(block.columns) + "\n")
        while out.tell() < megabytes * 1024 * 1024:
            out.write(text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "big.csv"
        write_csv(path, args.megabytes)
        done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True)
        rows, seconds, imported, peak = done.stdout.split()
        size = path.stat().st_size
    print(
        f"file {size / 1e6:.0f} MB, {int(rows):,} rows, {seconds} s; peak RSS {int(peak) / 1024:.0f} MiB "
        f"(after imports {int(imported) / 1024:.0f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
