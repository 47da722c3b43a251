"""probe and verify on the onnxruntime wheel's real library, with real and hand-made models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.capi import onnxruntime_pybind11_state as C

from ortprune.errors import OrtpruneError
from ortprune.opconfig import OpConfig, OpId
from ortprune.runtime import wheel_library
from ortprune.scan import scan
from ortprune.verify import probe, verify
from ortprune.verify.compare import missing_op
from ortprune.verify.probe import IMPLEMENTED, MISSING, UNKNOWN, all_known_ops, classify

SEED = Path(__file__).parents[2] / "src" / "ortprune" / "data" / "seed.config"


@pytest.fixture(scope="module")
def full_lib() -> Path:
    lib = wheel_library()
    assert lib is not None
    return lib


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ortprune.cli", *args], capture_output=True, text=True)


def test_full_library_implements_every_op_of_the_test_models(
    full_lib: Path, int8_model: Path, fp32_model: Path, fused_model: Path
) -> None:
    ops = list(scan([int8_model, fp32_model, fused_model], "all").config) + list(OpConfig.load(SEED))
    report = probe(full_lib, ops)
    assert {r.op for r in report.results} == {str(o) for o in ops}
    assert [r for r in report.results if r.status != IMPLEMENTED] == []
    assert report.ok


def test_ops_without_a_cpu_kernel_are_missing(full_lib: Path) -> None:
    """Ops ORT defines a schema for but registers no CPU kernel for: the probe must say missing."""
    cpu = {(k.domain or "ai.onnx", k.op_name) for k in C.get_all_opkernel_def() if k.provider == "CPUExecutionProvider"}
    candidates = [o for o in all_known_ops() if o.domain == "com.microsoft" and (o.domain, o.op) not in cpu]
    assert len(candidates) > 5
    report = probe(full_lib, candidates[:8])
    missing = report.by_status(MISSING)
    assert missing, [r.detail for r in report.results]
    assert all("Could not find an implementation" in r.detail or "Failed to find kernel" in r.detail for r in missing)
    assert not report.by_status(IMPLEMENTED)


def test_classify() -> None:
    assert classify(None, "") == IMPLEMENTED
    assert classify(9, "Could not find an implementation for Shape(15) node with name ''") == MISSING
    assert (
        classify(1, "Failed to find kernel for com.microsoft.BiasGelu(1) (node:'x' ep:'CPU'). Kernel not found")
        == MISSING
    )
    msg = "rnn.h:32 onnxruntime::RNN<T>::RNN(const onnxruntime::OpKernelInfo&) hidden_size was false"
    assert classify(1, msg) == IMPLEMENTED
    assert classify(1, "[ShapeInferenceError] Attribute 'cats_int64s' is required") == UNKNOWN


def test_probe_bad_libraries(tmp_path: Path) -> None:
    with pytest.raises(OrtpruneError, match=r"nope\.so"):
        probe(tmp_path / "nope.so", [OpId("ai.onnx", 17, "Add")])
    libz = next(
        p for p in ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1"] if Path(p).exists()
    )
    r = cli("probe", libz, "--config", str(SEED))
    assert r.returncode == 1 and libz in r.stderr and r.stderr.count("\n") == 1


def test_probe_cli_json(full_lib: Path, tmp_path: Path) -> None:
    r = cli("probe", str(full_lib), "--config", str(SEED), "--json", str(tmp_path / "p.json"))
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["counts"] == {"implemented": 13, "missing": 0, "could-not-probe": 0}


def test_verify_same_library_is_exact(full_lib: Path, int8_model: Path, fp32_model: Path) -> None:
    report = verify(full_lib, [int8_model, fp32_model], full_lib)
    assert report.ok
    for m in report.models:
        assert m.status == "ok" and m.outputs
        assert all(o.max_abs_diff == 0.0 and o.min_row_cosine > 0.9999999 for o in m.outputs)
        assert m.pruned_ms and m.reference_ms


def dynamic_model(weight: float = 0.5, dtype: int = TensorProto.FLOAT) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", dtype, ["batch", "features"])
    y = helper.make_tensor_value_info("y", dtype, ["batch", "features"])
    np_t = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}[dtype]
    w = numpy_helper.from_array(np.full((1,), weight, dtype=np_t), "w")
    nodes = [helper.make_node("Mul", ["x", "w"], ["m"]), helper.make_node("Erf", ["m"], ["y"])]
    model = helper.make_model(
        helper.make_graph(nodes, "dyn", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 13)]
    )
    model.ir_version = 8
    return model


def test_verify_dynamic_shapes_and_an_injected_weight_change(full_lib: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.onnx"
    onnx.save(dynamic_model(0.5), good)
    assert verify(full_lib, [good], full_lib).ok  # symbolic dims get generated inputs
    changed = tmp_path / "changed.onnx"
    onnx.save(dynamic_model(0.5001), changed)
    report = verify(full_lib, [changed], full_lib, reference_model=good)
    (m,) = report.models
    assert m.status == "differs" and not report.ok
    assert 1e-6 < m.outputs[0].max_abs_diff < 1e-3


def test_verify_uses_the_models_own_inputs_file(full_lib: Path, tmp_path: Path) -> None:
    """A model whose generated inputs would not fit (here: a Reshape to a fixed 2x3) runs with the feeds of
    its ``<model>.inputs.npz``; a file whose arrays do not match the inputs is one clean error."""
    from ortprune.verify.compare import inputs_file

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    shape = numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "shape")
    model = helper.make_model(
        helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "r", [x], [y], [shape]),
        opset_imports=[helper.make_opsetid("", 14)],
    )
    model.ir_version = 8
    path = tmp_path / "reshape.onnx"
    onnx.save(model, path)
    report = verify(full_lib, [path], full_lib)  # 4 generated values cannot become 2x3
    assert report.models[0].status == "cannot-run" and "cannot be reshaped" in report.models[0].detail
    np.savez(inputs_file(path), x=np.arange(6, dtype=np.float32))
    report = verify(full_lib, [path], full_lib)
    assert report.ok and report.models[0].outputs[0].max_abs_diff == 0.0
    np.savez(inputs_file(path), wrong=np.arange(6, dtype=np.float32))
    (m,) = verify(full_lib, [path], full_lib).models
    assert m.status == "cannot-run" and m.side == "inputs"
    assert re.search(r"reshape\.onnx\.inputs\.npz: has arrays \['wrong'\]", m.detail)


def test_verify_a_model_the_reference_rejects_gets_its_own_verdict(
    full_lib: Path, tmp_path: Path, fp32_model: Path
) -> None:
    """ORT has no double kernel for Erf: a real NOT_IMPLEMENTED from a real full library. That model is
    reported as cannot-load by the reference; the other model is still verified; the JSON is written."""
    import json

    path = tmp_path / "erf_double.onnx"
    onnx.save(dynamic_model(dtype=TensorProto.DOUBLE), path)
    r = cli("verify", "--lib", str(full_lib), "--reference", str(full_lib), str(path), str(fp32_model),
            "--json", str(tmp_path / "v.json"))  # fmt: skip
    assert r.returncode == 1 and r.stderr == "" and "Traceback" not in r.stdout
    data = json.loads((tmp_path / "v.json").read_text())
    bad, good = data["models"]
    assert bad["status"] == "cannot-load" and bad["side"] == "reference" and "Erf" in bad["detail"]
    assert good["status"] == "ok" and good["side"] is None and not data["ok"]


def test_verify_gives_each_model_a_verdict_and_takes_real_inputs(full_lib: Path, tmp_path: Path) -> None:
    """A model that needs a multiple of 77 on a named dim cannot run on generated inputs, whatever size of
    the ladder: cannot-run by the reference, with the hint; --dim or --inputs make it run."""
    import json

    import numpy as np
    from onnx import helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "width"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    shape = helper.make_tensor("s", TensorProto.INT64, [3], [-1, 7, 11])  # width must be a multiple of 77
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"])], "g", [x], [y], [shape])
    model = tmp_path / "needs77.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    args = [
        "verify",
        "--lib",
        str(full_lib),
        "--reference",
        str(full_lib),
        str(model),
        "--json",
        str(tmp_path / "v.json"),
    ]
    r = cli(*args)
    data = json.loads((tmp_path / "v.json").read_text())
    (m,) = data["models"]
    assert r.returncode == 1 and m["status"] == "cannot-run" and m["side"] == "reference"
    assert "--inputs MODEL=feeds.npz" in m["detail"] and "--dim NAME=VALUE" in m["detail"]
    assert cli(*args, "--dim", "width=77").returncode == 0
    assert json.loads((tmp_path / "v.json").read_text())["models"][0]["status"] == "ok"
    np.savez(tmp_path / "feeds.npz", x=np.ones((2, 77), dtype=np.float32))
    r = cli(*args, "--inputs", f"{model}=feeds.npz".replace("feeds.npz", str(tmp_path / "feeds.npz")))
    assert r.returncode == 0, r.stdout + r.stderr


def test_missing_op_parsing() -> None:
    opsets = {"ai.onnx": 17, "com.microsoft": 1}
    assert missing_op("Could not find an implementation for Shape(15) node with name 'x'", opsets) == (
        "ai.onnx:Shape",
        "ai.onnx;17;Shape",
    )
    msg = "Failed to find kernel for com.microsoft.BiasGelu(1) (node:'BiasGelu' ep:'CPU'). Kernel not found"
    assert missing_op(msg, opsets) == ("com.microsoft:BiasGelu", "com.microsoft;1;BiasGelu")
    assert missing_op("something else", opsets) is None


def test_a_crash_inside_the_library_is_reported_not_fatal(full_lib: Path) -> None:
    """onnxruntime 1.32's QLinearSigmoid/QLinearLeakyRelu kernels abort (an assertion) on a one-node model
    with no optional inputs: the batch worker dies, the other probes are re-run alone and still answered."""
    ops = [
        OpId("com.microsoft", 1, "QLinearSigmoid"),
        OpId("ai.onnx", 17, "Add"),
        OpId("ai.onnx", 17, "Relu"),
        OpId("com.microsoft", 1, "QLinearLeakyRelu"),
    ]
    report = probe(full_lib, ops, jobs=1)  # one batch: the crash takes the whole worker down
    status = {r.op: (r.status, r.detail) for r in report.results}
    assert status["ai.onnx;17;Add"][0] == IMPLEMENTED and status["ai.onnx;17;Relu"][0] == IMPLEMENTED
    for op in ("com.microsoft;1;QLinearSigmoid", "com.microsoft;1;QLinearLeakyRelu"):
        assert status[op][0] == UNKNOWN and "crashed (signal 6)" in status[op][1]


def test_probe_models_follow_a_configs_type_info() -> None:
    """A type-reduced build keeps only the config's types: the probe must ask for one of them."""
    from ortprune.opconfig import OpTypes
    from ortprune.verify.probe_models import as_onnx, probe_model

    def elem_types(m: onnx.ModelProto) -> tuple[list[int], list[int]]:
        return (
            [i.type.tensor_type.elem_type for i in m.graph.input],
            [o.type.tensor_type.elem_type for o in m.graph.output],
        )

    equal = probe_model(OpId("ai.onnx", 17, "Equal"), hints=OpTypes(inputs={0: {"int64_t"}}))
    assert equal.element_type == "int64" and elem_types(as_onnx(equal))[0] == [TensorProto.INT64] * 2
    assert probe_model(OpId("ai.onnx", 17, "Equal")).element_type == "float"
    cast = as_onnx(
        probe_model(
            OpId("ai.onnx", 17, "Cast"),
            hints=OpTypes(inputs={0: {"int8_t", "int64_t"}}, outputs={0: {"bool", "float"}}),
        )
    )
    assert elem_types(cast) == ([TensorProto.INT64], [TensorProto.BOOL])
    assert next(a.i for a in cast.graph.node[0].attribute if a.name == "to") == TensorProto.BOOL
    cos = as_onnx(probe_model(OpId("ai.onnx", 17, "ConstantOfShape"), hints=OpTypes(outputs={0: {"int64_t"}})))
    assert elem_types(cos)[1] == [TensorProto.INT64]
