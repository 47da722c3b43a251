"""Minimal single-node models that make ORT look up one operator's kernel at session creation.

Inputs get an element type their schema allows (float first) and no static shape, so ONNX shape
inference has nothing to reject; required attributes get valid values. Whether ORT then finds a kernel is
the question a probe asks: session creation fails with NOT_IMPLEMENTED when the kernel was pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import onnx
from onnx import TensorProto, helper

from ortprune.opconfig import OpId, OpTypes
from ortprune.schemas import get_schema

#: Element types in order of preference for a probe (the types kernels are most often registered for).
_PREFERENCE = ["float", "int64", "int32", "bool", "uint8", "int8", "double", "float16", "string", "uint64"]
_ONNX_TYPES = {
    "float": TensorProto.FLOAT,
    "double": TensorProto.DOUBLE,
    "float16": TensorProto.FLOAT16,
    "bfloat16": TensorProto.BFLOAT16,
    "int8": TensorProto.INT8,
    "int16": TensorProto.INT16,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
    "uint8": TensorProto.UINT8,
    "uint16": TensorProto.UINT16,
    "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64,
    "bool": TensorProto.BOOL,
    "string": TensorProto.STRING,
}

#: Required attributes whose value matters (everything else gets a neutral default of its type).
_ATTRS: dict[str, dict[str, Any]] = {
    "Cast": {"to": TensorProto.FLOAT},
    "CastLike": {},
    "Constant": {"value": helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])},
    "ConstantOfShape": {},
    "EyeLike": {},
    "Split": {},
    "Attention": {"num_heads": 1},
    "MultiHeadAttention": {"num_heads": 1},
    "QAttention": {"num_heads": 1},
    "GroupQueryAttention": {"num_heads": 1, "kv_num_heads": 1},
    "MatMulNBits": {"K": 32, "N": 8, "bits": 4, "block_size": 32},
    "RotaryEmbedding": {},
    "TopK": {},
    "OneHot": {},
}

#: Inputs that must be of a given element type although the schema allows more (tensor name patterns).
_INPUT_TYPES: dict[tuple[str, int], str] = {
    ("Gather", 1): "int64",
    ("GatherElements", 1): "int64",
    ("GatherND", 1): "int64",
    ("Reshape", 1): "int64",
    ("Expand", 1): "int64",
    ("Tile", 1): "int64",
    ("Slice", 1): "int64",
    ("Slice", 2): "int64",
    ("Unsqueeze", 1): "int64",
    ("Squeeze", 1): "int64",
    ("ReduceSum", 1): "int64",
    ("ConstantOfShape", 0): "int64",
    ("Range", 0): "float",
    ("Where", 0): "bool",
    ("Pad", 1): "int64",
    ("TopK", 1): "int64",
    ("OneHot", 1): "int64",
    ("Attention", 3): "int32",
    ("EmbedLayerNormalization", 0): "int32",
    ("EmbedLayerNormalization", 1): "int32",
    ("EmbedLayerNormalization", 7): "int32",
}


@dataclass(frozen=True)
class ProbeModel:
    op: OpId
    model: bytes | None
    element_type: str | None  # the type the probe asks a kernel for (first input's), or None
    reason: str = ""  # why no model could be made


def _types_of(constraint: list[str]) -> list[str]:
    return [t[len("tensor(") : -1] for t in constraint if t.startswith("tensor(")]


def _pick(allowed: list[str], want: str | None = None) -> str | None:
    if want and want in allowed:
        return want
    for t in _PREFERENCE:
        if t in allowed:
            return t
    return next((t for t in allowed if t in _ONNX_TYPES), None)


def _attr_default(attr_type: Any) -> Any:
    name = str(attr_type).rsplit(".", 1)[-1]
    return {"INT": 1, "FLOAT": 1.0, "STRING": "", "INTS": [1], "FLOATS": [1.0], "STRINGS": [""]}.get(name)


def onnx_type_name(cpp: str) -> str:
    """ORT config type names (C++: ``int64_t``, ``MLFloat16``) as ONNX names (``int64``, ``float16``)."""
    return {"MLFloat16": "float16", "BFloat16": "bfloat16", "std::string": "string"}.get(cpp, cpp.removesuffix("_t"))


def probe_model(op: OpId, onnx_opset: int = 17, hints: OpTypes | None = None) -> ProbeModel:
    """One node of ``op`` at its opset, with typed inputs/outputs; ``model`` None when no schema is known.

    ``hints`` (a config's per-op type info) picks the element types a type-reduced build keeps."""
    hinted_in = {i: onnx_type_name(sorted(t)[0]) for i, t in (hints.inputs if hints else {}).items() if t}
    hinted_out = {i: onnx_type_name(sorted(t)[0]) for i, t in (hints.outputs if hints else {}).items() if t}
    schema = get_schema(op.domain, op.op, op.opset)
    if schema is None:
        return ProbeModel(op, None, None, "no schema known for this op (onnx / onnxruntime)")
    if op.domain == "ai.onnx" and op.op in _CONTROL_FLOW:
        return _control_flow_model(op, onnx_opset)
    constraints = {c.type_param_str: _types_of(list(c.allowed_type_strs)) for c in schema.type_constraints}
    chosen: dict[str, str] = {}

    def type_for(param: Any, index: int, is_input: bool) -> str | None:
        tstr: str = getattr(param, "type_str", None) or getattr(param, "typeStr", None) or ""
        if tstr in constraints:
            hinted = hinted_in if is_input else hinted_out
            want = hinted.get(index) or (_INPUT_TYPES.get((op.op, index)) if is_input else None)
            if tstr not in chosen:
                picked = _pick(constraints[tstr], want)
                if picked is None:
                    return None
                chosen[tstr] = picked
            return chosen[tstr]
        if tstr.startswith("tensor("):
            return tstr[len("tensor(") : -1]
        return None

    inputs, names = [], []
    for k, p in enumerate(schema.inputs):
        option = str(p.option).rsplit(".", 1)[-1]
        if option == "Optional":
            names.append("")
            continue
        t = type_for(p, k, True)
        if t is None or t not in _ONNX_TYPES:
            return ProbeModel(op, None, None, f"input {p.name!r} has no tensor type a probe can feed")
        inputs.append(helper.make_tensor_value_info(f"in{k}", _ONNX_TYPES[t], None))
        names.append(f"in{k}")
    while names and names[-1] == "":
        names.pop()
    outputs, out_names = [], []
    for k, p in enumerate(schema.outputs):
        t = type_for(p, k, False)
        if op.op in ("Cast", "ConstantOfShape"):  # the output type is an attribute's choice
            t = hinted_out.get(k, "float")
        out_names.append(f"out{k}")
        outputs.append(helper.make_tensor_value_info(f"out{k}", _ONNX_TYPES.get(t or "", 0), None))
    attrs = dict(_ATTRS.get(op.op, {}))
    if op.op == "Cast":
        attrs["to"] = _ONNX_TYPES[hinted_out.get(0, "float")]
    elif op.op == "ConstantOfShape" and 0 in hinted_out:
        attrs["value"] = helper.make_tensor("v", _ONNX_TYPES[hinted_out[0]], [1], [0])
    for name, a in schema.attributes.items():
        if a.required and name not in attrs:
            value = _attr_default(a.type)
            if value is None:
                return ProbeModel(op, None, None, f"required attribute {name!r} of an unsupported kind")
            attrs[name] = value
    node = helper.make_node(op.op, names, out_names, domain="" if op.domain == "ai.onnx" else op.domain, **attrs)
    graph = helper.make_graph([node], f"probe_{op.op}", inputs, outputs)
    opsets = {op.domain: op.opset}
    opsets.setdefault("ai.onnx", onnx_opset)
    imports = [helper.make_opsetid("" if d == "ai.onnx" else d, v) for d, v in opsets.items()]
    model = helper.make_model(graph, opset_imports=imports, producer_name="ortprune-probe")
    model.ir_version = min(helper.find_min_ir_version_for(imports, ignore_unknown=True), 10)
    first = inputs[0].type.tensor_type.elem_type if inputs else None
    elem = next((n for n, v in _ONNX_TYPES.items() if v == first), None)
    return ProbeModel(op, model.SerializeToString(), elem)


def probe_models(ops: list[OpId]) -> list[ProbeModel]:
    return [probe_model(op) for op in ops]


def as_onnx(p: ProbeModel) -> onnx.ModelProto:
    assert p.model is not None
    return onnx.ModelProto.FromString(p.model)


_CONTROL_FLOW = ("If", "Loop", "Scan")


def _control_flow_model(op: OpId, onnx_opset: int) -> ProbeModel:
    """If / Loop / Scan with trivial float subgraphs (Identity bodies, Constant branches): enough for ORT
    to look up the control-flow kernel, which is registered for every element type."""
    f, b, i64 = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64
    vi = helper.make_tensor_value_info

    def ident(pairs: list[tuple[str, str]]) -> list[onnx.NodeProto]:
        return [helper.make_node("Identity", [a], [z]) for a, z in pairs]

    if op.op == "If":

        def branch(name: str, value: float) -> onnx.GraphProto:
            c = helper.make_node("Constant", [], ["y"], value=helper.make_tensor("v", f, [1], [value]))
            return helper.make_graph([c], name, [], [vi("y", f, [1])])

        node = helper.make_node("If", ["cond"], ["out0"], then_branch=branch("then", 1.0),
                                else_branch=branch("else", 0.0))  # fmt: skip
        inputs, outputs = [vi("cond", b, [])], [vi("out0", f, [1])]
    elif op.op == "Loop":
        body = helper.make_graph(
            ident([("cond_in", "cond_out"), ("v_in", "v_out")]), "body",
            [vi("iter", i64, []), vi("cond_in", b, []), vi("v_in", f, None)],
            [vi("cond_out", b, []), vi("v_out", f, None)],
        )  # fmt: skip
        node = helper.make_node("Loop", ["trip", "cond", "v0"], ["out0"], body=body)
        inputs = [vi("trip", i64, []), vi("cond", b, []), vi("v0", f, None)]
        outputs = [vi("out0", f, None)]
    else:  # Scan: one state, one scan input (opset 8 adds an optional sequence_lens input and a batch axis)
        body = helper.make_graph(
            ident([("s_in", "s_out"), ("x_in", "y_out")]), "body",
            [vi("s_in", f, None), vi("x_in", f, None)], [vi("s_out", f, None), vi("y_out", f, None)],
        )  # fmt: skip
        ins = ["", "s0", "x"] if op.opset < 9 else ["s0", "x"]
        node = helper.make_node("Scan", ins, ["out0", "out1"], body=body, num_scan_inputs=1)
        inputs = [vi("s0", f, None), vi("x", f, None)]
        outputs = [vi("out0", f, None), vi("out1", f, None)]
    graph = helper.make_graph([node], f"probe_{op.op}", inputs, outputs)
    imports = [helper.make_opsetid("", op.opset)]
    model = helper.make_model(graph, opset_imports=imports, producer_name="ortprune-probe")
    model.ir_version = min(helper.find_min_ir_version_for(imports, ignore_unknown=True), 10)
    return ProbeModel(op, model.SerializeToString(), "float")
