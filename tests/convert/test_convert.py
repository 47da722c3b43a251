"""convert: real bundled models → .ort through the onnxruntime wheel's libonnxruntime (1.32), read back,
scanned, run; compared with ORT's own Python converter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from ortprune.cli import app
from ortprune.convert import convert, convert_model
from ortprune.errors import ModelError
from ortprune.opconfig import OpConfig
from ortprune.ortformat import META_ORT_VERSION, OrtFormatError, check_runtime, is_ort_format, read_info
from ortprune.runtime import Session, wheel_library
from ortprune.scan import scan

from ..models import save, tiny_matmul

LIB = wheel_library()
pytestmark = pytest.mark.skipif(LIB is None, reason="needs the onnxruntime wheel's libonnxruntime")


def feeds(ids: list[int]) -> dict[str, np.ndarray]:
    a = np.array([ids], dtype=np.int64)
    return {"input_ids": a, "attention_mask": np.ones_like(a), "token_type_ids": np.zeros_like(a)}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory, int8_model: Path):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("ort")
    return {kq: convert_model(int8_model, LIB, out / f"kq{int(kq)}", keep_quantized=kq) for kq in (False, True)}


def test_int8_folded_and_kept(converted, int8_model: Path) -> None:  # type: ignore[no-untyped-def]
    folded, kept = converted[False], converted[True]
    assert is_ort_format(folded.ort) and is_ort_format(kept.ort)
    # ConstantFolding turns the int8 weights into fp32: ~3.9x; leaving it out keeps them int8
    assert folded.ratio > 3.5
    assert kept.ratio <= 1.05, kept.to_dict()
    info = read_info(kept.ort)
    assert info.converter_version == LIB_VERSION()
    assert info.format_version.isdigit()


def LIB_VERSION() -> str:
    from ortprune.runtime import load_library

    return load_library(LIB).version


def test_ort_outputs(converted, int8_model: Path) -> None:  # type: ignore[no-untyped-def]
    """The folded .ort at level disable gives exactly the .onnx's outputs at level all (same constant
    weights, pre-packed alike); the kept-quantized one moves by MatMul's unpacked summation order only:
    it equals the .onnx run with pre-packing disabled, bit for bit."""
    f = feeds([101, 7592, 1010, 2088, 999, 2023, 2003, 1037, 3231, 102])
    ref = Session(int8_model, LIB).run(f)["last_hidden_state"]
    folded = Session(converted[False].ort, LIB, optimization_level="disable").run(f)["last_hidden_state"]
    assert np.array_equal(folded, ref)
    kept = Session(converted[True].ort, LIB, optimization_level="disable").run(f)["last_hidden_state"]
    unpacked = Session(int8_model, LIB, config={"session.disable_prepacking": "1"}).run(f)["last_hidden_state"]
    assert np.array_equal(kept, unpacked)
    assert 0 < np.abs(kept - ref).max() < 1e-3


def test_scan_ort_matches_orts_own_converter(tmp_path: Path, int8_model: Path, converted) -> None:  # type: ignore[no-untyped-def]
    """Our .ort (made by the wheel's library) scans to the same typed config as ORT's Python converter of
    the same release writes for the same model (Fixed style, level all, type reduction)."""
    work = tmp_path / "m"
    work.mkdir()
    shutil.copy(int8_model, work / "model.onnx")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            str(work),
            "--optimization_style",
            "Fixed",
            "--enable_type_reduction",
        ],
        check=True,
        capture_output=True,
    )
    theirs = OpConfig.load(next(work.glob("*.config")))
    ours = scan([converted[False].ort], types=True).config
    assert set(ours) == set(theirs)
    assert ours.types == theirs.types
    assert "com.microsoft;1;SkipLayerNormalization" in {str(i) for i in ours}
    assert "ai.onnx;15;Shape" in {str(i) for i in ours}  # the kernel's since-version, not the model's opset


def test_other_release_is_refused(tmp_path: Path) -> None:
    """A .ort whose converter was another ORT release is refused by name. Made here by tagging a model as
    converted by 1.21.0 before the 1.32 library serializes it (explicitly faked: one library only)."""
    model = tiny_matmul()
    model.metadata_props.add(key=META_ORT_VERSION, value="1.21.0")
    ort = tmp_path / "tiny.ort"
    Session(
        model.SerializeToString(), LIB, optimized_model_path=ort, config={"session.save_model_format": "ORT"}
    ).close()
    assert read_info(ort).converter_version == "1.21.0"
    with pytest.raises(OrtFormatError, match=r"converted by ONNX Runtime 1\.21\.0, but this library is"):
        Session(ort, LIB)
    with pytest.raises(OrtFormatError, match=r"1\.21\.0"):
        check_runtime(ort, LIB_VERSION())


def test_corrupt_and_non_ort(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ort"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(OrtFormatError, match="not an ORT-format model"):
        read_info(bad)
    with pytest.raises(OrtFormatError, match="not an ORT-format model"):
        scan([bad])


def test_convert_errors_leave_nothing(tmp_path: Path, converted) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    with pytest.raises(ModelError, match="already an ORT-format model"):
        convert([converted[False].ort], LIB, out)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"broken\.onnx"):
        convert([broken], LIB, out)
    assert not out.exists() or not any(out.iterdir())
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    save(tiny_matmul(), a / "m.onnx"), save(tiny_matmul(), b / "m.onnx")
    with pytest.raises(ModelError, match=r"would both become m\.ort"):
        convert([a / "m.onnx", b / "m.onnx"], LIB, out)


def test_cli_convert(tmp_path: Path) -> None:
    model = save(tiny_matmul(), tmp_path / "tiny.onnx")
    result = CliRunner().invoke(
        app, ["convert", str(model), "--lib", str(LIB), "--out", str(tmp_path / "o"), "--optimized-onnx"]
    )
    assert result.exit_code == 0, result.output
    assert is_ort_format(tmp_path / "o" / "tiny.ort")
    opt = onnx.load(tmp_path / "o" / "tiny.optimized.onnx")
    assert {n.op_type for n in opt.graph.node} == {"MatMul", "Relu"}
    x = np.arange(8, dtype=np.float32).reshape(2, 4) - 4
    got = Session(tmp_path / "o" / "tiny.ort", LIB).run({"x": x})["y"]
    assert np.array_equal(got, np.maximum(x, 0))


def _full_build(version: str) -> Path | None:
    import json

    from ortprune.cache import cache_dir

    for manifest in sorted(cache_dir("builds").glob(f"{version}-full-*/manifest.json")):
        lib = Path(json.loads(manifest.read_text())["library"])
        if lib.is_file():
            return lib
    return None


@pytest.mark.ortbuild
def test_real_other_release_is_refused(tmp_path: Path, int8_model: Path) -> None:
    """A .ort converted by the real ORT 1.21.0 full build is refused by the 1.32 wheel's library, and
    runs on the 1.21.0 build with the .onnx's outputs (folded weights: bit-identical)."""
    full = _full_build("1.21.0")
    if full is None:
        pytest.skip("no ORT 1.21.0 full build in ~/.cache/ortprune/builds (make demo makes it)")
    c = convert_model(int8_model, full, tmp_path)
    assert c.ort_version == "1.21.0" and read_info(c.ort).converter_version == "1.21.0"
    with pytest.raises(
        OrtFormatError, match=r"converted by ONNX Runtime 1\.21\.0, but this library is ONNX Runtime 1\.3"
    ):
        Session(c.ort, LIB)
    f = feeds([101, 7592, 1010, 2088, 999, 102])
    ref = Session(int8_model, full).run(f)["last_hidden_state"]
    assert np.array_equal(Session(c.ort, full, optimization_level="disable").run(f)["last_hidden_state"], ref)
