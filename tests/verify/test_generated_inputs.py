"""verify without hand-made inputs on models that are not text: generated feeds give one size per dim name
across all inputs, and when the reference cannot run them, sizes the model can take are tried (its
metadata, then a ladder for the free non-batch axes) before the verdict asks for --inputs; the verdict
says which inputs both libraries ran.

Real models: PP-OCRv4's text detector (``rapidocr-onnxruntime``: free spatial axes, a Resize pyramid
that needs >= 32) and Silero VAD's fp16 model (``silero-vad``: ``batch`` shared by two inputs at
different axes), installed by ``make venv`` without their dependencies. Small onnx.helper graphs
supplement them for the cases the real models do not isolate. Everything runs on the official
onnxruntime wheel's library, as pruned library and as reference.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ortprune.runtime import Session, wheel_library
from ortprune.verify import verify
from ortprune.verify.compare import SIZE_LADDER, generated_shapes, input_candidates, metadata_sizes


@pytest.fixture(scope="module")
def lib() -> Path:
    found = wheel_library()
    assert found is not None
    return found


def _copied(package: str, relative: str, tmp: pytest.TempPathFactory) -> Path:
    """A copy of a file inside an installed package, found without importing the package (its imports
    need OpenCV or PyTorch); a copy, so verify finds no ``<model>.inputs.npz`` beside it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (make venv installs it with --no-deps)")
    src = Path(next(iter(spec.submodule_search_locations))) / relative
    if not src.is_file():
        pytest.skip(f"{src} is missing from the installed {package}")
    dst = tmp.mktemp(package) / src.name
    dst.write_bytes(src.read_bytes())
    return dst


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copied("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx", tmp_path_factory)


@pytest.fixture(scope="module")
def vad_half(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copied("silero_vad", "data/silero_vad_half.onnx", tmp_path_factory)


def _save(graph: onnx.GraphProto, path: Path, metadata: dict[str, str] | None = None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def shared_batch_model(path: Path) -> Path:
    """a [batch, seq] and s [2, batch, 8]: y = sum of a over seq + sum of s over its other axes, which only
    runs when both inputs have the same batch (as Silero's input and state)."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", "seq"])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [2, "batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])
    axes_a = helper.make_tensor("axes_a", TensorProto.INT64, [1], [1])
    axes_s = helper.make_tensor("axes_s", TensorProto.INT64, [2], [0, 2])
    nodes = [
        helper.make_node("ReduceSum", ["a", "axes_a"], ["ra"], keepdims=0),
        helper.make_node("ReduceSum", ["s", "axes_s"], ["rs"], keepdims=0),
        helper.make_node("Add", ["ra", "rs"], ["y"]),
    ]
    return _save(helper.make_graph(nodes, "shared", [a, s], [y], [axes_a, axes_s]), path)


def pyramid_model(path: Path, side: int, metadata: dict[str, str] | None = None) -> Path:
    """x [n, 3, h, w] pooled by side x side and resized back up (a detector's pyramid in one level): runs
    only when h and w are multiples of ``side``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, side, side])
    nodes = [
        helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[side, side], strides=[side, side]),
        helper.make_node("Resize", ["p", "", "scales"], ["up"], mode="nearest"),
        helper.make_node("Sub", ["x", "up"], ["y"]),
    ]
    return _save(helper.make_graph(nodes, "pyramid", [x], [y], [scales]), path, metadata)


def test_one_size_per_dim_name_across_inputs(lib: Path, tmp_path: Path) -> None:
    model = shared_batch_model(tmp_path / "shared.onnx")
    with Session(model, lib) as s:
        shapes = generated_shapes(s.inputs, batch=4, seq=16, dims={})
        assert shapes == {"a": [4, 16], "s": [2, 4, 8]}  # batch is 4 in both, though at axis 1 in s
        assert generated_shapes(s.inputs, 4, 16, {"batch": 3}) == {"a": [3, 16], "s": [2, 3, 8]}
    (m,) = verify(lib, [model], lib).models
    assert m.status == "ok" and m.outputs[0].max_abs_diff == 0.0
    assert m.inputs == "generated: a float32[4,16], s float32[2,4,8]"  # the first guess ran


def test_the_real_fp16_vad_runs_with_its_shared_batch(lib: Path, vad_half: Path) -> None:
    """Silero VAD fp16: input [batch, sequence], state [2, batch, 128]; the first sequence length that
    its STFT padding accepts is found by the ladder."""
    (m,) = verify(lib, [vad_half], lib).models
    assert m.status == "ok", m.detail
    assert m.max_abs_diff == 0.0
    assert "input float32[4," in m.inputs and "state float32[2,4,128]" in m.inputs, m.inputs
    assert m.inputs.startswith("generated (free axes at ") and "failed on the reference" in m.inputs


def test_the_real_detector_gets_a_spatial_size_its_resize_takes(lib: Path, detector: Path) -> None:
    """PP-OCRv4's DBNet: 16x16 is too small for its stride-32 pyramid (the reference fails); 32x32 runs."""
    (m,) = verify(lib, [detector], lib).models
    assert m.status == "ok", m.detail
    assert m.max_abs_diff == 0.0 and m.outputs[0].shape == [4, 1, 32, 32]
    assert m.inputs == (
        "generated (free axes at 32): x float32[4,3,32,32]; 1 input set(s) before it failed on the reference"
    )


def test_the_ladder_order_and_the_model_metadata_first(lib: Path, tmp_path: Path) -> None:
    """A pyramid of 48: the ladder alone finds 96 (its first multiple of 48); a model whose metadata says
    imgsz [48, 48] runs at 48, tried before the ladder."""
    plain = pyramid_model(tmp_path / "p48.onnx", 48)
    (m,) = verify(lib, [plain], lib).models
    assert m.status == "ok" and "generated (free axes at 96): x float32[4,3,96,96]" in m.inputs
    assert "3 input set(s) before it failed" in m.inputs  # 16, 32, 64
    tagged = pyramid_model(tmp_path / "p48m.onnx", 48, {"imgsz": "[48, 48]", "names": "{0: 'text'}"})
    (m,) = verify(lib, [tagged], lib).models
    assert m.status == "ok" and m.inputs.startswith("generated (free axes at 48, from its metadata)"), m.inputs
    assert metadata_sizes({"imgsz": "[640, 640]", "stride": "32", "input_size": "320x192"}) == [640, 320, 192]
    with Session(tagged, lib) as s:
        sizes = [c.arrays["x"].shape[2] for c in input_candidates(s, tagged, metadata={"imgsz": "[48, 48]"})]
    assert sizes == [16, 48, *[v for v in SIZE_LADDER if v != 48]]


def test_a_dim_the_user_sized_is_not_laddered(lib: Path, tmp_path: Path) -> None:
    model = pyramid_model(tmp_path / "p32.onnx", 32)
    (m,) = verify(lib, [model], lib, dims={"h": 64}).models
    assert m.status == "ok" and "x float32[4,3,64,32]" in m.inputs  # h as given, w from the ladder
    (m,) = verify(lib, [model], lib, dims={"h": 64, "w": 20}).models
    assert m.status == "cannot-run" and m.side == "reference"  # nothing left to try: the user's sizes
    assert "--dim NAME=VALUE" in m.detail and "tried" not in m.detail


def test_when_no_size_fits_the_verdict_asks_for_inputs_and_the_json_says_what_was_tried(
    lib: Path, tmp_path: Path
) -> None:
    model = pyramid_model(tmp_path / "p77.onnx", 77)  # no multiple of 77 in the ladder
    r = subprocess.run(
        [sys.executable, "-m", "ortprune.cli", "verify", "--lib", str(lib), "--reference", str(lib), str(model),
         "--json", str(tmp_path / "v.json")],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip
    assert r.returncode == 1 and r.stderr == "", r.stderr
    (m,) = json.loads((tmp_path / "v.json").read_text())["models"]
    assert m["status"] == "cannot-run" and m["side"] == "reference" and m["inputs"] == ""
    assert m["detail"].startswith("the reference library cannot run it on generated: x float32[4,3,16,16]")
    assert f"tried {1 + len(SIZE_LADDER)} input sets" in m["detail"]
    assert "--inputs MODEL=feeds.npz" in m["detail"]
    np.savez(tmp_path / "feeds.npz", x=np.ones((1, 3, 77, 154), dtype=np.float32))
    r = subprocess.run(
        [sys.executable, "-m", "ortprune.cli", "verify", "--lib", str(lib), "--reference", str(lib), str(model),
         "--inputs", f"{model}={tmp_path / 'feeds.npz'}", "--json", str(tmp_path / "v.json")],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    (m,) = json.loads((tmp_path / "v.json").read_text())["models"]
    assert m["status"] == "ok" and m["inputs"] == "given: x float32[1,3,77,154]"
    assert "given: x float32[1,3,77,154]" in r.stdout
