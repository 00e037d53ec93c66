"""The capture object format (`mlops.captures`): columns round trip, rows JSON cannot carry, the
earlier row-per-line objects, broken objects counted, never raised."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.captures import CAPTURE_FORMAT, CaptureBatch, Rejected, decode_batch, encode_batch


def batch(rows: int = 3) -> CaptureBatch:
    return CaptureBatch(
        at=[1_700_000_000.5 + i for i in range(rows)],
        versions=[2] * rows,
        prediction_ids=[f"{i:032x}" for i in range(rows)],
        inputs={"x": [float(i) for i in range(rows)], "plan": ["basic", None, "pro"][:rows], "autopay": [True] * rows},
        outputs={"label": ["no"] * rows, "probability:no": [0.9] * rows, "probability:yes": [0.1] * rows},
        rejected=[Rejected("plan", "unseen_category", 4)],
    )


def test_capture_format_round_trips_columns_and_rejections() -> None:
    original = batch()
    data, skipped = encode_batch(original)
    assert skipped == 0
    document = json.loads(data)
    # one JSON object of columns: a whole capture object parses in one json.loads
    assert document["format"] == CAPTURE_FORMAT
    assert document["rows"] == 3
    assert document["inputs"]["plan"] == ["basic", None, "pro"]
    assert decode_batch(data) == original


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, object()], ids=["nan", "inf", "-inf", "object"])
@pytest.mark.parametrize("where", ["input", "output"])
def test_capture_format_skips_only_the_row_json_cannot_carry(bad: object, where: str) -> None:
    original = batch()
    if where == "input":
        original.inputs["x"][1] = bad
    else:
        original.outputs["probability:no"][1] = bad
    data, skipped = encode_batch(original)
    assert skipped == 1
    decoded = decode_batch(data)
    assert decoded.prediction_ids == [f"{0:032x}", f"{2:032x}"]
    assert decoded.inputs["x"] == [0.0, 2.0]
    assert decoded.inputs["plan"] == ["basic", "pro"]
    assert decoded.rejected == [Rejected("plan", "unseen_category", 4)]


def test_capture_format_keeps_rejections_without_rows() -> None:
    empty = CaptureBatch([], [], [], {}, {}, [Rejected("tenure_months", "out_of_range", 2)])
    data, skipped = encode_batch(empty)
    assert skipped == 0
    decoded = decode_batch(data)
    assert len(decoded) == 0
    assert decoded.rejected == [Rejected("tenure_months", "out_of_range", 2)]


def test_capture_format_reads_the_earlier_row_per_line_objects() -> None:
    lines = [
        {
            "at": "2026-03-04T05:06:07+00:00",
            "version": 2,
            "input": {"x": 1.5, "plan": "basic"},
            "output": {"label": "no", "probabilities": {"no": 0.9, "yes": 0.1}},
        },
        "this line is broken {",
        {"at": "2026-03-04T05:06:08+00:00", "version": 3, "input": {"x": 2.5, "y": 7}, "output": {"value": 4.0}},
        {"at": "2026-03-04T05:06:09+00:00", "version": 3, "input": "not an object", "output": {}},
        "",
    ]
    data = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()
    decoded = decode_batch(data)
    assert decoded.unreadable_rows == 2
    assert decoded.versions == [2, 3]
    assert decoded.at == [1772600767.0, 1772600768.0]
    assert decoded.prediction_ids == ["", ""]
    assert decoded.inputs == {"x": [1.5, 2.5], "plan": ["basic", None], "y": [None, 7]}
    assert decoded.outputs == {
        "label": ["no", None],
        "probability:no": [0.9, None],
        "probability:yes": [0.1, None],
        "value": [None, 4.0],
    }


def test_capture_format_reads_a_one_line_earlier_object() -> None:
    line = {"at": "2026-03-04T05:06:07+00:00", "version": 1, "input": {"x": 1.0}, "output": {"value": 2.0}}
    decoded = decode_batch(json.dumps(line).encode() + b"\n")
    assert (decoded.versions, decoded.inputs, decoded.outputs) == ([1], {"x": [1.0]}, {"value": [2.0]})


@pytest.mark.parametrize(
    ("data", "unreadable"),
    [
        (b'{"format": "mlops-captures/columns-1", "rows": 2, "at": [1, 2], "versions": [1]', 1),  # cut short
        (
            json.dumps(
                {
                    "format": CAPTURE_FORMAT,
                    "rows": 2,
                    "at": [1.0, 2.0],
                    "versions": [1, 1],
                    "prediction_ids": ["a", "b"],
                    "inputs": {"x": [1.0]},  # a column of another length
                    "outputs": {},
                    "rejected": [],
                }
            ).encode(),
            2,
        ),
        (b"", 0),
    ],
    ids=["truncated", "ragged", "empty"],
)
def test_capture_format_counts_broken_objects_as_unreadable(data: bytes, unreadable: int) -> None:
    decoded = decode_batch(data)
    assert len(decoded) == 0
    assert decoded.unreadable_rows == unreadable


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=0, max_value=6).flatmap(
        lambda n: st.lists(st.lists(values, min_size=2, max_size=2), min_size=n, max_size=n)
    )
)
def test_capture_format_round_trips_any_json_values(rows: list[list[object]]) -> None:
    original = CaptureBatch(
        at=[float(i) for i in range(len(rows))],
        versions=[1] * len(rows),
        prediction_ids=["id"] * len(rows),
        inputs={"a": [r[0] for r in rows]},
        outputs={"value": [r[1] for r in rows]},
    )
    data, skipped = encode_batch(original)
    assert skipped == 0
    assert decode_batch(data) == original
