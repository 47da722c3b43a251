"""Scan for another target: the official linux-aarch64 library optimizes under qemu-user, and the user is told
when its config differs from this machine's (NCHWc on x86 with AVX2, FusedConv on aarch64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ortprune.platform import cpu_flags
from ortprune.scan import scan


def conv_relu(path: Path) -> Path:
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 8, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["y"], ["z"])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 16, 16, 16])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # ORT 1.21.0 reads up to 10
    onnx.save(model, path)
    return path


def test_aarch64_scan_uses_the_aarch64_optimizer_and_reports_the_difference(
    aarch64_official: Path, wheel_lib: Path, tmp_path: Path
) -> None:
    model = conv_relu(tmp_path / "conv.onnx")
    arm = scan([model], "all", runtime=aarch64_official)
    ops = {str(i) for i in arm.config}
    assert "com.microsoft;1;FusedConv" in ops  # Conv+Relu fused, as the aarch64 library does it
    assert not any(i.domain == "com.microsoft.nchwc" for i in arm.config)  # MLAS has no NCHWc block on aarch64
    assert arm.optimized_on == "linux-aarch64" and arm.ort_version == "1.21.0"
    assert any("on aarch64 [], run under qemu-aarch64" in line for line in arm.header())
    here = scan([model], "all", runtime=wheel_lib)
    message = arm.compare(here)
    if "avx2" in cpu_flags():  # x86 with AVX2: ORT rewrites the Conv into NCHWc ops
        assert "differ" in message and "only for linux-x86_64: com.microsoft.nchwc;1;Conv" in message
        assert "only for linux-aarch64: com.microsoft;1;FusedConv" in message
    assert ("differ" in message) == bool(arm.config.diff(here.config))
    assert "are the same (3 ops)" in arm.compare(arm)
