"""Per-op element types for a type-reduced config, with ORT's own rules.

Which inputs/outputs of which op matter for ORT's typed kernel registrations is ORT knowledge, kept in
``onnxruntime.tools.ort_format_model.OperatorTypeUsageManager``. That class reads ORT-format (flatbuffer)
nodes; we feed it ONNX nodes through a three-method adapter and real flatbuffer ``TypeInfo`` objects,
so the JSON it writes is exactly what ORT's converter would write for the same graph.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import onnx

from ortprune.opconfig import OpTypes, normalize_domain


class _NodeAdapter:
    """The part of ``fbs.Node`` the type-usage processors read."""

    def __init__(self, node: onnx.NodeProto) -> None:
        self._node = node

    def OpType(self) -> bytes:
        return self._node.op_type.encode()

    def Domain(self) -> bytes:
        return self._node.domain.encode()

    def InputsLength(self) -> int:
        return len(self._node.input)

    def Inputs(self, i: int) -> str:
        return self._node.input[i]

    def OutputsLength(self) -> int:
        return len(self._node.output)

    def Outputs(self, i: int) -> str:
        return self._node.output[i]


@functools.cache
def _fbs_tensor_typeinfo(elem_type: int) -> Any:
    """A real ``fbs.TypeInfo`` for a tensor of ONNX element type ``elem_type`` (same enum values)."""
    import flatbuffers
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import (
        TensorTypeAndShape,
        TypeInfo,
        TypeInfoValue,
    )

    b = flatbuffers.Builder(64)
    TensorTypeAndShape.Start(b)
    TensorTypeAndShape.AddElemType(b, elem_type)
    tts = TensorTypeAndShape.End(b)
    TypeInfo.Start(b)
    TypeInfo.AddValueType(b, TypeInfoValue.TypeInfoValue.tensor_type)
    TypeInfo.AddValue(b, tts)
    b.Finish(TypeInfo.End(b))
    return TypeInfo.TypeInfo.GetRootAs(b.Output(), 0)


def available() -> bool:
    try:
        import flatbuffers  # noqa: F401
        from onnxruntime.tools.ort_format_model import OperatorTypeUsageManager  # noqa: F401
    except ImportError:
        return False
    return True


def collect_types(
    nodes: Iterable[onnx.NodeProto], elem_type_of: Callable[[str], int | None]
) -> dict[tuple[str, str], OpTypes]:
    """Type info per (domain, op) for ``nodes``; ops with any node of unknown type get none (keep all types)."""
    from onnxruntime.tools.ort_format_model import OperatorTypeUsageManager

    manager = OperatorTypeUsageManager()
    untyped: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    for node in nodes:
        key = (normalize_domain(node.domain), node.op_type)
        seen.add(key)
        names = [n for n in (*node.input, *node.output) if n]
        table = {}
        for n in names:
            t = elem_type_of(n)
            if t is None or t == 0:
                untyped.add(key)
                break
            table[n] = _fbs_tensor_typeinfo(t)
        else:
            try:
                manager.process_node(_NodeAdapter(node), table)
            except (RuntimeError, KeyError):
                untyped.add(key)
    result = {}
    for key in seen - untyped:
        entry = manager.get_config_entry(*key)
        if entry:
            result[key] = OpTypes.from_json(entry)
    return result


def value_types(model: onnx.ModelProto, initializers: dict[str, tuple[int, list[int]]] | None = None) -> dict[str, int]:
    """Element type of every named value ONNX shape inference (or the file itself) can tell.

    ``initializers`` describes weights that were not loaded (name → element type, dims); they enter
    shape inference as typed graph inputs.
    """
    initializers = initializers or {}
    table: dict[str, int] = {name: t for name, (t, _) in initializers.items()}
    if initializers:
        with_inputs = onnx.ModelProto()
        with_inputs.CopyFrom(model)
        known = {i.name for i in model.graph.input}
        for name, (t, dims) in initializers.items():
            if name not in known:
                with_inputs.graph.input.append(onnx.helper.make_tensor_value_info(name, t, dims))
        model = with_inputs

    def record(infos: Iterable[onnx.ValueInfoProto]) -> None:
        for vi in infos:
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                table[vi.name] = vi.type.tensor_type.elem_type

    graph = model.graph
    record(graph.input)
    record(graph.output)
    record(graph.value_info)
    for init in graph.initializer:
        table[init.name] = init.data_type
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        record(inferred.graph.value_info)
        record(inferred.graph.output)
    except Exception:  # inference is best effort: unknown ops (contrib) just leave types unknown
        pass
    for node in _all_nodes(graph):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    table[node.output[0]] = a.t.data_type
    return table


def _all_nodes(graph: onnx.GraphProto) -> Iterable[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _all_nodes(g)
