"""Checks of an ONNX graph built elsewhere against a contract, before anything runs it.

The graph is parsed as an ONNX protobuf (no pickle, no Python executed), bounded in size, and must
take what predict feeds (`mlops.training.onnx_io`: one [N, 1] input per feature, named as the
feature; strings for categorical features, float or double for numeric and boolean ones) and
answer what predict reads (`label` and a `probabilities` tensor for classification, `variable`
for regression), in the contract's classes. Every problem is collected and named (which input or
output, expected vs found); none raises anything but `GraphRejectedError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from mlops.contract import Contract, FeatureType, ProblemType
from mlops.errors import MlopsError
from mlops.imports.drops import MAX_IMPORT_BYTES
from mlops.training.onnx_io import (
    META_CLASSES,
    META_CONTRACT_DIGEST,
    META_INPUTS,
    META_MODEL_NAME,
    META_PROBLEM_TYPE,
    OUTPUT_LABEL,
    OUTPUT_PROBABILITIES,
    OUTPUT_VALUE,
    input_metadata,
)

# Domains onnxruntime implements itself; anything else needs a custom-op library (native code).
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
META_ORIGIN = "mlops.origin"
META_SOURCE_SHA256 = "mlops.source_sha256"

_T = onnx.TensorProto
_NUMERIC_INPUTS = {_T.FLOAT: np.float32, _T.DOUBLE: np.float64}
_ELEMENT_NAMES = {value: name.lower() for name, value in _T.DataType.items()}
_LABEL_ELEMENTS = frozenset({_T.STRING, _T.INT64})
_VALUE_ELEMENTS = frozenset({_T.FLOAT, _T.DOUBLE})


class GraphRejectedError(MlopsError):
    """The file is no graph a contract can serve; `problems` names each reason."""

    http_status = 422

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class CheckedGraph:
    model: onnx.ModelProto
    feed_dtypes: dict[str, type]  # graph input name (`Feature.input_name`) -> numpy dtype
    classes: tuple[str, ...]  # the probability columns' classes, in the graph's order (classification)
    producer: str


def check_graph(data: bytes, contract: Contract, *, max_bytes: int = MAX_IMPORT_BYTES) -> CheckedGraph:
    """Parse and check `data` against `contract`. Raises GraphRejectedError listing every problem."""
    if len(data) > max_bytes:
        raise GraphRejectedError([size_problem(len(data), max_bytes)])
    model = _parse(data)
    problems = _structure_problems(model)
    feed_dtypes, input_problems = _check_inputs(model, contract)
    problems += input_problems
    problems += _check_outputs(model, contract)
    classes: tuple[str, ...] = ()
    if contract.problem_type is ProblemType.CLASSIFICATION:
        classes, class_problems = _check_classes(model, contract)
        problems += class_problems
    if problems:
        raise GraphRejectedError(problems)
    producer = " ".join(part for part in (model.producer_name, model.producer_version) if part) or "unknown"
    return CheckedGraph(model=model, feed_dtypes=feed_dtypes, classes=classes, producer=producer)


def size_problem(size: int, max_bytes: int) -> str:
    return f"the file is {size} bytes; imports are limited to {max_bytes} bytes"


def with_suite_metadata(graph: CheckedGraph, contract: Contract, source_sha256: str) -> bytes:
    """The graph as the suite stores it: its own metadata props, plus the mlops.* ones predict and
    the registry read (a trained model's, and where it came from), replacing any mlops.* it claimed."""
    model = onnx.ModelProto()
    model.CopyFrom(graph.model)
    kept = {p.key: p.value for p in model.metadata_props if not p.key.startswith("mlops.")}
    inputs = [{**input_metadata(f.rule), "type": _kind(graph.feed_dtypes[f.input_name])} for f in contract.features]
    ours = {
        META_MODEL_NAME: contract.name,
        META_PROBLEM_TYPE: contract.problem_type.value,
        META_CLASSES: json.dumps(list(graph.classes)),
        META_INPUTS: json.dumps(inputs),
        META_CONTRACT_DIGEST: contract.digest,
        META_ORIGIN: "imported",
        META_SOURCE_SHA256: source_sha256,
    }
    onnx.helper.set_model_props(model, {**kept, **ours})
    return model.SerializeToString()


def _kind(dtype: type) -> str:
    return {np.float32: "float", np.float64: "double"}.get(dtype, "string")  # type: ignore[call-overload]


def _parse(data: bytes) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise GraphRejectedError([f"the file is not an ONNX model: the protobuf does not parse ({error})"]) from None
    if model.ir_version <= 0 or not model.graph.node:
        raise GraphRejectedError(["the file is not an ONNX model: it has no IR version or no graph nodes"])
    return model


def _structure_problems(model: onnx.ModelProto) -> list[str]:
    problems = []
    foreign = sorted({o.domain for o in model.opset_import} - ALLOWED_DOMAINS)
    if foreign:
        problems.append(f"operator domains {foreign} need custom-op libraries; only the standard ONNX domains load")
    external = [t.name for t in model.graph.initializer if t.data_location == _T.EXTERNAL]
    if external:
        problems.append(
            f"initializers {external[:5]} keep their data in external files; import one self-contained file"
        )
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # onnx raises ValidationError and others for an invalid graph
        problems.append(f"the graph is not valid ONNX: {str(error).splitlines()[0][:300]}")
    return problems


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    dims = value.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def _describe(value: onnx.ValueInfoProto) -> str:
    kind = value.type.WhichOneof("value")
    if kind == "sequence_type":
        inner = value.type.sequence_type.elem_type.WhichOneof("value")
        return "a sequence of maps (a ZipMap output)" if inner == "map_type" else "a sequence"
    if kind != "tensor_type":
        return f"a {(kind or 'untyped value').removesuffix('_type')}"
    element = _ELEMENT_NAMES.get(value.type.tensor_type.elem_type, "unknown")
    return f"a {element} tensor of shape {_shape(value)}"


def _check_inputs(model: onnx.ModelProto, contract: Contract) -> tuple[dict[str, type], list[str]]:
    initializers = {t.name for t in model.graph.initializer}  # older IRs list weights among the inputs
    inputs = {v.name: v for v in model.graph.input if v.name not in initializers}
    problems: list[str] = []
    feed: dict[str, type] = {}
    for feature in contract.features:
        value = inputs.get(feature.input_name)
        # the column's own name too when the input stands for it under another (`input_name`)
        what = f"{feature.type.value} feature" + (f" {feature.name!r}" if feature.input_name != feature.name else "")
        categorical = feature.type is FeatureType.CATEGORICAL
        expected = "a string tensor [N, 1]" if categorical else "a float or double tensor [N, 1]"
        if value is None:
            problems.append(f"input {feature.input_name!r} ({what}): expected {expected}, found none")
            continue
        element = value.type.tensor_type.elem_type if value.type.WhichOneof("value") == "tensor_type" else None
        dtype = object if element == _T.STRING else _NUMERIC_INPUTS.get(element)  # type: ignore[arg-type]
        shape = _shape(value)
        shape_ok = len(shape) == 2 and shape[1] == 1
        if dtype is None or (dtype is object) != categorical or not shape_ok:
            problems.append(f"input {feature.input_name!r} ({what}): expected {expected}, found {_describe(value)}")
            continue
        feed[feature.input_name] = dtype
    features = {f.input_name for f in contract.features}
    for name in sorted(set(inputs) - features):
        problems.append(f"input {name!r}: not a feature of the contract (found {_describe(inputs[name])})")
    return feed, problems


def _check_outputs(model: onnx.ModelProto, contract: Contract) -> list[str]:
    outputs = {v.name: v for v in model.graph.output}
    found = ", ".join(f"{name!r}: {_describe(value)}" for name, value in outputs.items()) or "none"
    if contract.problem_type is ProblemType.CLASSIFICATION:
        wanted = {
            OUTPUT_LABEL: ("a string or int64 label tensor [N]", _LABEL_ELEMENTS, 1),
            OUTPUT_PROBABILITIES: ("a float probability tensor [N, classes]", _VALUE_ELEMENTS, 2),
        }
        hint = " (convert the classifier with zipmap disabled, e.g. options={id(model): {'zipmap': False}})"
    else:
        wanted = {OUTPUT_VALUE: ("a float value tensor [N, 1] or [N]", _VALUE_ELEMENTS, 0)}
        hint = ""
    problems = []
    for name, (expected, elements, rank) in wanted.items():
        value = outputs.get(name)
        is_tensor = value is not None and value.type.WhichOneof("value") == "tensor_type"
        ok = (
            is_tensor
            and value.type.tensor_type.elem_type in elements  # type: ignore[union-attr]
            and (rank == 0 or len(_shape(value)) == rank)  # type: ignore[arg-type]
        )
        if not ok:
            problems.append(
                f"output {name!r}: expected {expected}, found {found if value is None else _describe(value)}"
            )
    if problems and hint and any(v.type.WhichOneof("value") != "tensor_type" for v in outputs.values()):
        problems[-1] += hint
    return problems


def _check_classes(model: onnx.ModelProto, contract: Contract) -> tuple[tuple[str, ...], list[str]]:
    declared = list(contract.target.labels or ())
    claimed = {p.key: p.value for p in model.metadata_props}.get(META_CLASSES)
    found = _classifier_labels(model)
    if claimed is not None:
        try:
            listed = json.loads(claimed)
        except ValueError:
            return (), [f"metadata {META_CLASSES!r} is not a JSON list of classes"]
        classes = [str(c) for c in listed] if isinstance(listed, list) else []
    elif len(found) == 1:
        classes = list(next(iter(found)))
    else:
        where = "no classifier node names its classes" if not found else f"classifier nodes disagree: {sorted(found)}"
        return (), [
            f"classes: cannot tell which class each probability column is ({where}); name them, in column "
            f"order, as a JSON list in the model's metadata_props {META_CLASSES!r}"
        ]
    if sorted(classes) != sorted(declared) or len(set(classes)) != len(classes):
        return (), [f"classes: expected the contract's {declared}, found {classes}"]
    probabilities = next((v for v in model.graph.output if v.name == OUTPUT_PROBABILITIES), None)
    if probabilities is not None:
        shape = _shape(probabilities)
        if len(shape) == 2 and isinstance(shape[1], int) and shape[1] not in (0, len(classes)):
            return (), [f"output {OUTPUT_PROBABILITIES!r}: {shape[1]} columns for {len(classes)} classes {classes}"]
    return tuple(classes), []


def _classifier_labels(model: onnx.ModelProto) -> set[tuple[str, ...]]:
    """The class lists the graph's ai.onnx.ml classifier nodes declare (their output order)."""
    found = set()
    for node in model.graph.node:
        if node.domain != "ai.onnx.ml":
            continue
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings" and attribute.strings:
                found.add(tuple(s.decode("utf-8", "replace") for s in attribute.strings))
            elif attribute.name == "classlabels_int64s" and attribute.ints:
                found.add(tuple(str(i) for i in attribute.ints))
    return found
