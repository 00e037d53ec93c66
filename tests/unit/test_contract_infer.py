"""`mlops contracts infer` on real public datasets that packages ship: the printed contract passes
`mlops contracts check` unchanged, the file meets it, and the real training code trains on it."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.contract import parse_contract
from mlops.contract_infer import InferenceError, infer_contract
from mlops.training import train_model
from mlops.training.dataset import read_dataset
from mlops_local.cli import main
from tests.support.public_datasets import (
    breast_cancer_frame,
    contract_check_failures,
    penguins_frame,
    wine_frame,
    write_csv,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("dataset", "target", "output_format", "problem_type", "metric", "score"),
    [
        ("breast_cancer", "target", "json", "classification", "roc_auc", 0.95),  # names with spaces
        ("wine", "target", "yaml", "classification", "f1_macro", 0.85),  # od280/od315_of_diluted_wines
        ("penguins", "species", "yaml", "classification", "f1_macro", 0.85),  # missing values
        ("penguins", "flipper_length_mm", "json", "regression", "r2", 0.6),  # a numeric target, 2 missing
        ("penguins", "sex", "yaml", "classification", "roc_auc", 0.9),  # 11 rows without a target
    ],
)
def test_infer_drafts_a_contract_that_checks_and_trains_on_a_real_dataset(
    tmp_path: Path, dataset: str, target: str, output_format: str, problem_type: str, metric: str, score: float
) -> None:
    frame = {"breast_cancer": breast_cancer_frame, "wine": wine_frame, "penguins": penguins_frame}[dataset]()
    path = write_csv(frame, tmp_path, dataset)

    # WHEN the CLI infers a contract, and the printed text is saved as is
    code, printed, notes = _cli("contracts", "infer", str(path), "--target", target, "--format", output_format)
    assert code == 0, notes
    saved = tmp_path / f"{dataset}.{output_format}"
    saved.write_text(printed)

    # THEN `mlops contracts check` accepts it unchanged
    assert _cli("contracts", "check", str(saved))[0] == 0
    contract = parse_contract(printed, source=saved.name)
    assert contract.problem_type.value == problem_type
    assert contract.metric.name == metric
    assert contract.feature_names == [c for c in frame.columns if c != target]
    assert contract.target.missing == ("drop" if frame[target].isna().any() else "quarantine")
    # AND the file meets it, and the real training code trains a model that scores
    data = path.read_bytes()
    assert contract_check_failures(data, contract) == []
    trained = train_model(read_dataset(data, path.name, contract), contract)
    assert trained.metrics[metric] >= score, trained.metrics


def test_infer_reads_names_types_nulls_ranges_and_categories_as_in_the_file(tmp_path: Path) -> None:
    frame = penguins_frame()
    inferred = infer_contract(write_csv(frame, tmp_path, "penguins"), target="species")
    features = {f["name"]: f for f in inferred.document["features"]}
    assert features["island"] == {
        "name": "island",
        "type": "categorical",
        "categories": ["Biscoe", "Dream", "Torgersen"],
    }
    assert features["sex"] == {"name": "sex", "type": "categorical", "categories": ["female", "male"], "nullable": True}
    bill = features["bill_length_mm"]
    assert bill["nullable"] is True
    # the range covers the data with a margin on both sides
    assert bill["min"] < frame["bill_length_mm"].min()
    assert bill["max"] > frame["bill_length_mm"].max()
    assert "nullable" not in features["year"]
    assert inferred.document["target"] == {"name": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]}

    cancer = infer_contract(write_csv(breast_cancer_frame(), tmp_path, "Breast Cancer"))
    assert cancer.document["name"] == "breast-cancer"
    assert cancer.document["target"] == {"name": "target", "classes": [0, 1]}
    assert any("last column" in note for note in cancer.notes)  # no --target: the reviewer is told
    # a non-negative column stays non-negative after the margin
    assert all(f["min"] >= 0 for f in cancer.document["features"])


def test_infer_reads_parquet_like_the_same_csv(tmp_path: Path) -> None:
    frame = penguins_frame()
    csv_path = write_csv(frame, tmp_path, "penguins")
    parquet_path = tmp_path / "penguins.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet_path, row_group_size=100)
    from_csv = infer_contract(csv_path, target="species").document
    from_parquet = infer_contract(parquet_path, target="species").document
    assert from_parquet["features"] == from_csv["features"]
    assert from_parquet["target"] == from_csv["target"]


def test_infer_names_an_identifier_column_and_booleans(tmp_path: Path) -> None:
    rows = 200
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer id": [f"C-{i:05d}" for i in range(rows)],
            "active": rng.choice(["true", "false"], rows),
            "spend": rng.uniform(0, 100, rows).round(2),
            "label": rng.choice(["yes", "no"], rows),
        }
    )
    inferred = infer_contract(write_csv(frame, tmp_path, "customers"), target="label")
    assert inferred.document["data"]["id_columns"] == ["customer id"]
    assert [f["name"] for f in inferred.document["features"]] == ["active", "spend"]
    assert inferred.document["features"][0]["type"] == "boolean"


@pytest.mark.parametrize(
    ("content", "name", "target", "message"),
    [
        ("a,b\n1,x\n", "sample.txt", None, "unsupported format"),
        ("a,b\n", "empty.csv", None, "no rows"),
        ("a,b\n1,x\n2,y\n", "sample.csv", "c", "no column 'c'"),
        ("a,b\n1,x\n2,x\n", "sample.csv", "b", "fewer than two distinct values"),
    ],
)
def test_infer_refuses_a_sample_it_cannot_draft_from_naming_why(
    tmp_path: Path, content: str, name: str, target: str | None, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InferenceError, match=message):
        infer_contract(path, target=target)
    code, printed, notes = _cli("contracts", "infer", str(path), *(["--target", target] if target else []))
    assert (code, printed) == (1, "")
    assert message in notes


_MEASURE = """
import resource, sys
from pathlib import Path
from mlops.contract_infer import infer_contract
import pyarrow  # imported before the baseline: its own size is not the file's
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
inferred = infer_contract(Path(sys.argv[1]), target="label")
print(inferred.rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def _growth_kib(path: Path) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    rows, growth = done.stdout.split()
    return int(rows), int(growth)


def test_infer_streams_a_file_ten_times_larger_in_the_same_memory(tmp_path: Path) -> None:
    # GIVEN a ~1.7 MB and a ~17 MB CSV of the same shape (read whole, the larger one grows the peak by ~60 MB)
    rng = np.random.default_rng(11)
    block = pd.DataFrame(
        {
            **{f"x{i}": rng.normal(size=20_000).round(6) for i in range(8)},
            "city": rng.choice(["north", "south", "east", "west"], 20_000),
            "label": rng.choice(["a", "b"], 20_000),
        }
    )
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    block.to_csv(small, index=False)
    with large.open("w") as out:
        block.to_csv(out, index=False)
        for _ in range(9):
            block.to_csv(out, index=False, header=False)
    assert large.stat().st_size > 9 * small.stat().st_size
    # WHEN each is inferred in a fresh process
    small_rows, small_growth = _growth_kib(small)
    large_rows, large_growth = _growth_kib(large)
    # THEN every row was read, and the larger file did not need memory in proportion to its size
    assert (small_rows, large_rows) == (20_000, 200_000)
    assert large_growth - small_growth < 0.25 * large.stat().st_size / 1024, (small_growth, large_growth)
