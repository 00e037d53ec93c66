"""Reserved concurrency per function: every function has its own share (a flood on one cannot
starve the others), the sum leaves the account's unreserved minimum, context overrides it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.catalog import (
    ACCOUNT_CONCURRENCY,
    FUNCTIONS,
    UNRESERVED_MINIMUM,
    ConcurrencyContextError,
    reserved_concurrency,
)
from tests.infra.support import function_ids


def _reserved(template: dict[str, Any]) -> dict[str, int | None]:
    ids = function_ids(template)
    return {
        folder: template["Resources"][lid]["Properties"].get("ReservedConcurrentExecutions")
        for folder, lid in ids.items()
    }


def test_every_function_has_reserved_concurrency_from_the_catalog(template: dict[str, Any]) -> None:
    reserved = _reserved(template)
    assert set(reserved) == set(FUNCTIONS)
    assert reserved == {folder: spec.reserved_concurrency for folder, spec in FUNCTIONS.items()}
    assert all(isinstance(value, int) and value >= 1 for value in reserved.values()), reserved


def test_predict_reserves_the_most_and_the_sum_leaves_the_unreserved_minimum(template: dict[str, Any]) -> None:
    reserved = _reserved(template)
    assert max(reserved, key=reserved.__getitem__) == "predict"
    assert reserved["train_model"] == 2  # an upload storm waits in the retry queue
    assert sum(reserved.values()) <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM


@pytest.mark.parametrize(
    ("value", "expected_changes"),
    [
        (None, {}),
        ({"predict": 300, "models_api": 20}, {"predict": 300, "models_api": 20}),
        ("predict=300, models_api=20", {"predict": 300, "models_api": 20}),  # `-c reservedConcurrency=...` is text
        ('{"predict": 300}', {"predict": 300}),
    ],
)
def test_reserved_concurrency_reads_the_context_override(value: Any, expected_changes: dict[str, int]) -> None:
    defaults = {folder: spec.reserved_concurrency for folder, spec in FUNCTIONS.items()}
    assert reserved_concurrency(value) == defaults | expected_changes


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"predikt": 5}, "predikt"),
        ({"predict": 0}, "at least 1"),
        ("predict=lots", "predict"),
        ({"predict": 2000}, "unreserved"),
        (["predict"], "reservedConcurrency"),
    ],
)
def test_reserved_concurrency_refuses_bad_overrides_naming_the_problem(value: Any, message: str) -> None:
    with pytest.raises(ConcurrencyContextError, match=message):
        reserved_concurrency(value)


def test_reserved_concurrency_context_reaches_the_template(tmp_path: Path) -> None:
    from infra.synth import synthesize_template

    template = synthesize_template(tmp_path, context={"reservedConcurrency": "predict=250,detect_drift=1"})
    reserved = _reserved(template)
    assert reserved["predict"] == 250
    assert reserved["detect_drift"] == 1
    assert reserved["models_api"] == FUNCTIONS["models_api"].reserved_concurrency
