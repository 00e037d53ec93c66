"""Schema compatibility of a candidate's contract with production's, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.contract import parse_contract
from mlops.contract_compat import Break, input_compatibility
from tests.support.registry_fake import contract_document


def with_features(*features: dict[str, Any]) -> dict[str, Any]:
    document = contract_document()
    document["features"] = list(features)
    parse_contract(document)  # every case is a valid contract
    return document


AGE = {"name": "age", "type": "numeric", "min": 0, "max": 120}
PLAN = {"name": "plan", "type": "categorical", "categories": ["basic", "premium"]}
OPEN_PLAN = {"name": "plan", "type": "categorical"}
AUTOPAY = {"name": "autopay", "type": "boolean"}


@pytest.mark.parametrize(
    ("production", "candidate", "breaks"),
    [
        # identical, or only wider: compatible
        ([AGE, PLAN], [AGE, PLAN], []),
        ([AGE], [{**AGE, "min": -10}], []),
        ([AGE], [{"name": "age", "type": "numeric"}], []),
        ([PLAN], [{**PLAN, "categories": ["basic", "premium", "gold"]}], []),
        ([PLAN], [OPEN_PLAN], []),
        ([AGE], [{**AGE, "nullable": True}], []),
        ([AGE], [AGE, {"name": "score", "type": "numeric", "nullable": True}], []),
        ([AGE, PLAN], [AGE], []),  # a feature no longer read: its field is ignored
        # breaking
        ([AGE], [AGE, {"name": "score", "type": "numeric"}], [("score", Break.NEW_REQUIRED_FEATURE)]),
        ([{**AGE, "nullable": True}], [AGE], [("age", Break.NULL_REFUSED)]),
        ([AGE], [{"name": "age", "type": "categorical"}], [("age", Break.TYPE_CHANGED)]),
        ([AUTOPAY], [{"name": "autopay", "type": "numeric"}], [("autopay", Break.TYPE_CHANGED)]),
        ([PLAN], [{**PLAN, "categories": ["basic"]}], [("plan", Break.CATEGORIES_REMOVED)]),
        ([OPEN_PLAN], [PLAN], [("plan", Break.CATEGORIES_REMOVED)]),
        ([AGE], [{**AGE, "min": 18}], [("age", Break.RANGE_NARROWED)]),
        ([AGE], [{**AGE, "max": 99}], [("age", Break.RANGE_NARROWED)]),
        ([{"name": "age", "type": "numeric"}], [AGE], [("age", Break.RANGE_NARROWED)]),
        (
            [{**AGE, "nullable": True}],
            [{**AGE, "min": 18}],
            [("age", Break.NULL_REFUSED), ("age", Break.RANGE_NARROWED)],
        ),
    ],
)
def test_input_compatibility_table(
    production: list[dict[str, Any]], candidate: list[dict[str, Any]], breaks: list[tuple[str, Break]]
) -> None:
    verdict = input_compatibility(with_features(*production), with_features(*candidate))
    assert [(b.feature, b.kind) for b in verdict.breaks] == breaks
    assert verdict.compatible is (not breaks)


def test_input_compatibility_summary_names_feature_and_change() -> None:
    verdict = input_compatibility(
        with_features(AGE, PLAN), with_features({**AGE, "max": 99}, {**PLAN, "categories": ["basic"]})
    )
    assert verdict.summary() == (
        "would reject requests production accepts: age: range narrowed from [0, 120] to [0, 99]; "
        "plan: categories ['premium'] removed"
    )


def test_input_compatibility_notes_what_only_widens() -> None:
    verdict = input_compatibility(
        with_features(AGE, PLAN), with_features(AGE, {"name": "score", "type": "numeric", "nullable": True})
    )
    assert verdict.compatible
    assert verdict.summary() == "accepts every request production accepts"
    assert verdict.notes == (
        "plan: no longer read (requests carrying it are still accepted)",
        "score: new optional feature (requests without it are accepted)",
    )
