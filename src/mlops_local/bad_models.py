"""A deliberately bad classifier for the demo's canary step: an ONNX graph that takes every input of
a contract and answers one class, with probability 1, whatever the record. It passes the import
checks (mlops.imports.graph: inputs, outputs, classes) and scores like a coin on the holdout, so it
registers as a candidate; as a canary its output shift trips its alarm within a minute."""

from __future__ import annotations

import json
from typing import Any

import onnx
from onnx import TensorProto, helper

from mlops.training.onnx_io import META_CLASSES, OUTPUT_LABEL, OUTPUT_PROBABILITIES


def constant_classifier_graph(contract: dict[str, Any], answer: str) -> bytes:
    """The graph's bytes: every record is classified `answer` (one of the contract's classes)."""
    classes = [str(c) for c in contract["target"]["classes"]]
    features = contract["features"]
    inputs = [
        helper.make_tensor_value_info(
            f["name"], TensorProto.STRING if f["type"] == "categorical" else TensorProto.FLOAT, [None, 1]
        )
        for f in features
    ]
    anchor = next(f["name"] for f in features if f["type"] != "categorical" and not f.get("nullable"))
    one_hot = [1.0 if c == answer else 0.0 for c in classes]
    nodes = [
        helper.make_node("Mul", [anchor, "zero"], ["zeros"]),  # [N, 1] of 0: the batch's shape
        helper.make_node("Add", ["zeros", "one_hot"], [OUTPUT_PROBABILITIES]),  # [N, classes]
        helper.make_node("ArgMax", [OUTPUT_PROBABILITIES], ["index"], axis=1, keepdims=0),
        helper.make_node("Gather", ["class_names", "index"], [OUTPUT_LABEL], axis=0),
    ]
    initializers = [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("one_hot", TensorProto.FLOAT, [1, len(classes)], one_hot),
        helper.make_tensor("class_names", TensorProto.STRING, [len(classes)], [c.encode() for c in classes]),
    ]
    graph = helper.make_graph(
        nodes,
        f"always-{answer}",
        inputs,
        [
            helper.make_tensor_value_info(OUTPUT_LABEL, TensorProto.STRING, [None]),
            helper.make_tensor_value_info(OUTPUT_PROBABILITIES, TensorProto.FLOAT, [None, len(classes)]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, {META_CLASSES: json.dumps(classes)})
    onnx.checker.check_model(model)
    return model.SerializeToString()
