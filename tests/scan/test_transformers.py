"""Which graph transformers a model needs (ORT's log), and the canonical graph comparison that proves it."""

from __future__ import annotations

from pathlib import Path

import onnx

from ortprune.scan.transformers import (
    canonical_model_bytes,
    changed_by_disabling,
    optimized_bytes,
    transformer_log,
)


def test_the_logged_transformers_are_the_ones_the_model_needs(int8_model: Path, wheel_lib: Path) -> None:
    log = transformer_log([int8_model], wheel_lib, "all")
    assert log.used and log.unused and not set(log.used) & set(log.unused)
    # switching off every transformer that logged no change leaves the optimized graph as it was ...
    assert changed_by_disabling([int8_model], wheel_lib, log.unused, "all") == []
    # ... and switching off the ones that did changes it
    assert changed_by_disabling([int8_model], wheel_lib, log.used, "all") == [int8_model]


def _save(model: onnx.ModelProto, path: Path) -> None:
    path.parent.mkdir(parents=True)
    onnx.save(model, str(path), save_as_external_data=True, location="w.bin", size_threshold=64)


def test_canonical_bytes_ignore_order_and_generated_names_only(
    int8_model: Path, wheel_lib: Path, tmp_path: Path
) -> None:
    raw = optimized_bytes(int8_model, wheel_lib, "all", (), tmp_path / "a")
    assert raw == canonical_model_bytes(tmp_path / "a" / "optimized.onnx")
    m = onnx.load(str(tmp_path / "a" / "optimized.onnx"))
    # the same graph in another order (nodes and initializers reversed, so the weights file differs too)
    shuffled = onnx.ModelProto()
    shuffled.CopyFrom(m)
    for field in (shuffled.graph.node, shuffled.graph.initializer):
        items = list(field)[::-1]
        del field[:]
        field.extend(items)
    _save(shuffled, tmp_path / "b" / "m.onnx")
    assert (tmp_path / "b" / "m.onnx").read_bytes() != (tmp_path / "a" / "optimized.onnx").read_bytes()
    assert canonical_model_bytes(tmp_path / "b" / "m.onnx") == raw
    # one weight changed by one ulp, or one node renamed: not the same graph
    changed = onnx.ModelProto()
    changed.CopyFrom(m)
    t = next(t for t in changed.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and t.raw_data)
    t.raw_data = bytes([t.raw_data[0] ^ 1]) + t.raw_data[1:]
    _save(changed, tmp_path / "c" / "m.onnx")
    assert canonical_model_bytes(tmp_path / "c" / "m.onnx") != raw
    # every node and intermediate tensor renamed consistently (what ORT's generated names do between two
    # sessions): the same computation
    renamed = onnx.ModelProto()
    renamed.CopyFrom(m)
    interface = {v.name for v in (*renamed.graph.input, *renamed.graph.output)}
    new = {o: f"gen_{k}" for k, n in enumerate(renamed.graph.node) for o in n.output if o not in interface}
    for k, n in enumerate(renamed.graph.node):
        n.name = f"node_{len(renamed.graph.node) - k}"
        for field in (n.input, n.output):
            field[:] = [new.get(x, x) for x in field]
    for v in renamed.graph.value_info:
        v.name = new.get(v.name, v.name)
    _save(renamed, tmp_path / "d" / "m.onnx")
    assert canonical_model_bytes(tmp_path / "d" / "m.onnx") == raw
    # but one node reading another tensor, or one attribute changed, is another graph
    for k, edit in enumerate(("input", "attribute")):
        other = onnx.ModelProto()
        other.CopyFrom(m)
        n = next(n for n in other.graph.node if len(n.input) >= 2 and n.attribute)
        if edit == "input":
            n.input[0], n.input[1] = n.input[1], n.input[0]
        else:
            a = n.attribute[0]
            if a.type == onnx.AttributeProto.INT:
                a.i += 1
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f += 1.0
            else:
                a.name += "_x"
        _save(other, tmp_path / f"e{k}" / "m.onnx")
        assert canonical_model_bytes(tmp_path / f"e{k}" / "m.onnx") != raw, edit
