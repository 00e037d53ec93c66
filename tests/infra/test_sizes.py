"""Zip functions fit Lambda's 250 MB unzipped limit and the 200 MB aim; predict stays under its 130 MB aim."""

from __future__ import annotations

import pytest

from infra.catalog import ZIP_AIM_BYTES, zip_functions
from infra.layers import LAYERS, find_python312
from scripts.size_report import FunctionSize, measure, render

ZIP_LIMIT_BYTES = 262_144_000  # Lambda: function code plus all layers, unzipped (250 MB)
PREDICT_AIM_BYTES = 130 * 1024 * 1024


@pytest.fixture(scope="module")
def sizes() -> dict[str, FunctionSize]:
    return {size.spec.folder: size for size in measure()}


@pytest.mark.parametrize("folder", [spec.folder for spec in zip_functions()])
def test_zip_function_fits_the_unzipped_limit(sizes: dict[str, FunctionSize], folder: str) -> None:
    assert sizes[folder].total_bytes <= ZIP_LIMIT_BYTES, render([sizes[folder]])


@pytest.mark.parametrize("folder", [spec.folder for spec in zip_functions()])
def test_zip_function_stays_under_the_200_mb_aim(sizes: dict[str, FunctionSize], folder: str) -> None:
    assert ZIP_AIM_BYTES == 200 * 1024 * 1024
    assert sizes[folder].total_bytes <= min(ZIP_AIM_BYTES, sizes[folder].spec.size_aim_bytes), render([sizes[folder]])


def test_predict_stays_under_its_aim(sizes: dict[str, FunctionSize]) -> None:
    assert sizes["predict"].total_bytes <= PREDICT_AIM_BYTES, render([sizes["predict"]])


def test_every_layer_a_function_uses_was_measured(sizes: dict[str, FunctionSize]) -> None:
    for size in sizes.values():
        assert set(size.layer_bytes) == set(size.spec.layers)
        assert all(n > 0 for n in size.layer_bytes.values())


def test_layers_ship_bytecode_for_the_lambda_runtime_only(sizes: dict[str, FunctionSize]) -> None:
    # Lambda's code folder is read-only: a module without shipped bytecode compiles at every cold start.
    compiled = find_python312() is not None
    for spec in LAYERS.values():
        pycs = list(spec.site_dir.rglob("*.pyc"))
        assert all(".cpython-312." in pyc.name for pyc in pycs), spec.name
        if compiled:
            sources = [p for p in spec.site_dir.rglob("*.py") if p.is_file()]
            with_pyc = [p for p in sources if (p.parent / "__pycache__" / f"{p.stem}.cpython-312.pyc").is_file()]
            assert len(with_pyc) >= 0.99 * len(sources), f"{spec.name}: {len(with_pyc)}/{len(sources)} compiled"
