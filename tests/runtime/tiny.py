"""Hand-made models for what real embedding models do not exercise (every element type, ORT rejections)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

#: numpy dtype -> ONNX element type, for every type Session.run exchanges.
DTYPES: dict[str, int] = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE,
    "int8": TensorProto.INT8,
    "int16": TensorProto.INT16,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
    "uint8": TensorProto.UINT8,
    "uint16": TensorProto.UINT16,
    "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64,
    "bool": TensorProto.BOOL,
}


def model_bytes(model: onnx.ModelProto, check: bool = True) -> bytes:
    if check:
        onnx.checker.check_model(model)
    return model.SerializeToString()


def unary(op: str, elem: int, shape: list[int | str | None] | None = None, check: bool = True) -> bytes:
    """y = op(x) for one element type; ``shape`` defaults to a symbolic ["batch", "n"]."""
    shape = ["batch", "n"] if shape is None else shape
    x = helper.make_tensor_value_info("x", elem, shape)
    y = helper.make_tensor_value_info("y", elem, shape)
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"])], op.lower(), [x], [y])
    return model_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), check)


def two_inputs_two_outputs(elem: int = TensorProto.FLOAT) -> bytes:
    """sum = a + b, prod = a * b with a fixed last axis of 4 and an unnamed dynamic first axis."""
    a = helper.make_tensor_value_info("a", elem, [None, 4])
    b = helper.make_tensor_value_info("b", elem, [None, 4])
    s = helper.make_tensor_value_info("sum", elem, [None, 4])
    p = helper.make_tensor_value_info("prod", elem, [None, 4])
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["prod"])]
    graph = helper.make_graph(nodes, "addmul", [a, b], [s, p])
    return model_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def big_output(n: int) -> bytes:
    """y = Tile(x, [n]) : a small input and an output of 4*n floats, to see per-run leaks in RSS."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4 * n])
    reps = helper.make_tensor("reps", TensorProto.INT64, [1], [n])
    graph = helper.make_graph([helper.make_node("Tile", ["x", "reps"], ["y"])], "tile", [x], [y], initializer=[reps])
    return model_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def random_array(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
