"""The runner for another target's library: cross-compiled once, run under qemu-user on the official
linux-aarch64 ONNX Runtime 1.21.0 with tiny models (qemu is slow: nothing bigger here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from ortprune.errors import RuntimeLoadError
from ortprune.platform import TARGETS
from ortprune.runtime import OrtError
from ortprune.runtime.emulated import EmulatedLibrary, foreign_target, read_tensors, write_tensors
from tests.runtime.tiny import DTYPES, two_inputs_two_outputs, unary

AARCH64 = TARGETS["linux-aarch64"]


def ir8(model: bytes) -> bytes:
    """The model with IR version 8 (ORT 1.21.0 reads up to 10; onnx writes its newest)."""
    proto = onnx.load_from_string(model)
    proto.ir_version = 8
    return proto.SerializeToString()


@pytest.fixture
def aarch64_lib(aarch64_official: Path) -> Path:
    return aarch64_official


def test_tensor_files_round_trip_every_exchanged_type(tmp_path: Path) -> None:
    tensors = {f"t_{name}": (np.arange(6) % 2).astype(name).reshape(2, 3) for name in DTYPES}
    tensors["scalar"] = np.array(3.5, dtype=np.float64)
    tensors["empty"] = np.zeros((0, 4), dtype=np.int64)
    write_tensors(tmp_path / "t.bin", tensors)
    back = read_tensors(tmp_path / "t.bin")
    assert list(back) == list(tensors)
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape
        np.testing.assert_array_equal(back[name], value)


def test_a_string_tensor_is_refused_naming_the_input(tmp_path: Path) -> None:
    with pytest.raises(RuntimeLoadError, match="'words'"):
        write_tensors(tmp_path / "t.bin", {"words": np.array(["a"], dtype=object)})


def test_runner_runs_a_tiny_model_on_the_official_aarch64_library(aarch64_lib: Path, tmp_path: Path) -> None:
    assert foreign_target(aarch64_lib) == AARCH64
    lib = EmulatedLibrary.open(aarch64_lib)
    assert lib.version == "1.21.0"
    model = tmp_path / "addmul.onnx"
    model.write_bytes(ir8(two_inputs_two_outputs()))
    a = np.arange(8, dtype=np.float32).reshape(2, 4) / 3
    b = np.full((2, 4), 1.5, dtype=np.float32)
    out = lib.session(model, "all", {"a": a, "b": b}, optimized_model_path=tmp_path / "opt.onnx")
    assert set(out) == {"sum", "prod"}
    np.testing.assert_array_equal(out["sum"], a + b)  # one IEEE add/mul per element: exact on any ISA
    np.testing.assert_array_equal(out["prod"], a * b)
    assert (tmp_path / "opt.onnx").stat().st_size > 0  # the optimized graph the scan reads


def test_runner_reports_ort_errors_and_probes_each_model(aarch64_lib: Path, tmp_path: Path) -> None:
    lib = EmulatedLibrary.open(aarch64_lib)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(OrtError) as e:
        lib.session(bad)
    assert e.value.code_name == "INVALID_PROTOBUF"
    done = lib.probe([("relu", ir8(unary("Relu", TensorProto.FLOAT))), ("garbage", b"\0\1")])
    assert done["relu"] == (None, "")
    assert done["garbage"][0] == 7


def test_a_library_of_this_machine_is_not_foreign(wheel_lib: Path) -> None:
    assert foreign_target(wheel_lib) is None
