"""Real public datasets that installed packages ship, written as the files a user would upload.

- breast cancer (scikit-learn): 30 feature names with spaces ("mean radius"), integer target 0/1;
- wine (scikit-learn): `od280/od315_of_diluted_wines`, integer target 0/1/2;
- penguins (palmerpenguins, pinned in requirements/dev.in): missing values in five columns,
  the target `sex` among them (11 rows without it).

Nothing is committed: each function writes a CSV under the caller's directory.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from mlops.contract import Contract
from mlops.validation import DatasetChecker, read_csv


def breast_cancer_frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


def wine_frame() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).frame


def penguins_frame() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def write_csv(frame: pd.DataFrame, directory: Path, name: str) -> Path:
    path = directory / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def read_checked(data: bytes, contract: Contract) -> DatasetChecker:
    """The validator's contract checks (types, nulls, ranges, categories, labels) run over CSV bytes."""
    checker = DatasetChecker(contract)
    read_csv(io.BytesIO(data), checker)
    return checker


def contract_check_failures(data: bytes, contract: Contract) -> list[str]:
    """Each failing contract check of CSV bytes as text, [] when the file meets the contract."""
    return [str(result) for result in read_checked(data, contract).results() if not result.passed]
