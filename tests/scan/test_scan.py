"""scan on real models (PyPI) and hand-made ones; compared with ORT's own script and ORT's optimizer."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest

from ortprune.errors import ModelError, NoModelsError, OrtpruneError
from ortprune.opconfig import OpConfig, OpId
from ortprune.scan import scan, scan_model
from ortprune.scan.lazy import load_structure
from tests import models as tiny


def ops_of_file(path: Path) -> set[tuple[str, str]]:
    """(domain, op) of every node ONNX itself sees in a file (full load: the slow, obvious way)."""
    m = onnx.load(str(path), load_external_data=False)
    return {(n.domain or "ai.onnx", n.op_type) for n in m.graph.node}


def ort_optimized_ops(path: Path, level: ort.GraphOptimizationLevel, tmp: Path) -> set[tuple[str, str]]:
    """The ops of the model ORT itself writes out after optimizing (SessionOptions.optimized_model_filepath)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.optimized_model_filepath = str(tmp / "ort-optimized.onnx")
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return ops_of_file(tmp / "ort-optimized.onnx")


def test_raw_ops_equal_ort_script(real_model: Path, ort_script_config) -> None:  # type: ignore[no-untyped-def]
    ours = scan([real_model], "disable").config
    theirs = ort_script_config(real_model)
    if real_model.name.startswith("paraphrase-MiniLM-L3-v2-fused"):
        # transformers.optimizer writes com.microsoft nodes without importing the domain: ORT loads them
        # (assuming opset 1), ORT's script silently drops them -- a config that cannot run the model.
        assert set(theirs) < set(ours)
        assert {(i.domain, i.opset) for i in set(ours) - set(theirs)} == {("com.microsoft", 1)}
    else:
        assert ours.to_ort_required_ops() == theirs.to_ort_required_ops()


def test_level_all_holds_ops_ort_inserts(real_model: Path, tmp_path: Path) -> None:
    result = scan_model(real_model, "all")
    expected = ort_optimized_ops(real_model, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, tmp_path)
    assert {(i.domain, i.op) for i in result.optimized.config} == expected
    assert expected <= result.config.op_names()
    # everything the raw file has is kept too (union), and what only the optimizer added is reported
    assert ops_of_file(real_model) <= result.config.op_names()
    assert {(i.domain, i.op) for i in result.optimizer_only} == expected - ops_of_file(real_model)


def test_known_fusions_of_the_bundled_models(int8_model: Path, fp32_model: Path) -> None:
    """What the brief measured with onnxruntime 1.32: fused com.microsoft ops appear only at load time."""
    l6 = {i.op for i in scan_model(int8_model, "all").optimizer_only}
    l3 = {i.op for i in scan_model(fp32_model, "all").optimizer_only}
    assert {"FusedMatMul", "SkipLayerNormalization"} <= l6
    assert {"BiasGelu", "FusedMatMul"} <= l3
    assert all(i.domain == "com.microsoft" for i in scan_model(fp32_model, "all").optimizer_only)


def test_fused_model_has_the_seed_contrib_ops(fused_model: Path) -> None:
    raw = {i.op for i in scan_model(fused_model, "disable").config if i.domain == "com.microsoft"}
    assert {"Attention", "SkipLayerNormalization", "EmbedLayerNormalization", "BiasGelu"} <= raw


@pytest.mark.parametrize("level", ["basic", "extended"])
def test_each_level_matches_ort(fp32_model: Path, tmp_path: Path, level: str) -> None:
    ort_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    result = scan_model(fp32_model, level)
    assert {(i.domain, i.op) for i in result.optimized.config} == ort_optimized_ops(fp32_model, ort_level, tmp_path)


def test_disable_level_adds_nothing_on_cpu(real_model: Path, tmp_path: Path) -> None:
    """Why scan skips ORT at 'disable': ORT's CPU provider adds no op there (it only turns Constant
    nodes into initializers), so the file's ops are a superset of what ORT runs."""
    at_disable = ort_optimized_ops(real_model, ort.GraphOptimizationLevel.ORT_DISABLE_ALL, tmp_path)
    assert at_disable <= ops_of_file(real_model)
    assert ops_of_file(real_model) - at_disable <= {("ai.onnx", "Constant")}


def test_types_are_collected_for_type_reduction(fp32_model: Path) -> None:
    config = scan([fp32_model], "all", types=True).config
    assert config.types[("ai.onnx", "MatMul")].inputs[0] == {"float"}
    gather = config.types[("ai.onnx", "Gather")]
    assert gather.inputs[1] == {"int64_t"} and "float" in gather.inputs[0]
    assert OpConfig.parse(config.format()).types == config.types


def test_directory_is_searched_recursively(tmp_path: Path, int8_model: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    tiny.save(tiny.tiny_matmul(), tmp_path / "a" / "b" / "deep.ONNX")
    tiny.save(tiny.tiny_matmul(13), tmp_path / "top.onnx")
    (tmp_path / "notes.txt").write_text("not a model")
    result = scan([tmp_path, int8_model], "disable")
    assert [m.path.name for m in result.models][:2] == ["deep.ONNX", "top.onnx"] or len(result.models) == 3
    assert len(result.models) == 3
    assert {i.opset for i in result.config if i.op == "MatMul"} == {13, 17}


def test_subgraphs_are_walked(tmp_path: Path) -> None:
    path = tiny.save(tiny.with_if_and_loop(), tmp_path / "control.onnx")
    ops = {i.op for i in scan([path], "disable").config}
    assert ops == {"If", "Loop", "Sigmoid", "Neg", "Identity", "Tanh"}


def test_local_functions_are_walked_and_not_kernels(tmp_path: Path) -> None:
    path = tiny.save(tiny.with_local_function(), tmp_path / "fn.onnx")
    result = scan_model(path, "disable")
    assert set(result.config) == {OpId("ai.onnx", 14, "Sigmoid"), OpId("ai.onnx", 14, "Mul")}
    assert result.raw.functions == ["local.fns:Swish"]
    # ORT inlines the function, then fuses x*sigmoid(x) into com.microsoft QuickGelu; Swish is never a kernel
    optimized = scan_model(path, "all")
    assert {(i.domain, i.op) for i in optimized.optimizer_only} == {("com.microsoft", "QuickGelu")}
    assert "Swish" not in {i.op for i in optimized.config}


def test_each_domain_keeps_its_own_opset(tmp_path: Path) -> None:
    path = tiny.save(tiny.with_ml_and_old_opset(), tmp_path / "ml.onnx")
    assert set(scan_model(path, "disable").config) == {
        OpId("ai.onnx.ml", 3, "Scaler"),
        OpId("ai.onnx", 9, "Sigmoid"),
    }


def test_weights_are_never_loaded(int8_model: Path) -> None:
    lazy = load_structure(int8_model)
    assert len(lazy.model.graph.initializer) == 0
    assert lazy.initializers and all(s.name for s in lazy.initializers)
    assert lazy.model.ByteSize() < lazy.file_size / 20
    full = onnx.load(str(int8_model))
    assert {i.name for i in full.graph.initializer} == {s.name for s in lazy.initializers}
    assert {i.name: list(i.dims) for i in full.graph.initializer} == {s.name: s.dims for s in lazy.initializers}


# ---- bad input --------------------------------------------------------------------------------------
def run_cli(*args: str) -> tuple[int, str]:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "ortprune.cli", *args], capture_output=True, text=True)
    return p.returncode, p.stderr


def test_truncated_model_is_one_clear_error(tmp_path: Path, fp32_model: Path) -> None:
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(fp32_model.read_bytes()[:100_000])
    out = tmp_path / "ops.config"
    code, err = run_cli("scan", str(bad), "-o", str(out))
    assert code == 1
    assert err.count("\n") == 1 and str(bad) in err and "truncated" in err
    assert not out.exists()


@pytest.mark.parametrize("content", [b"hello, I am not a model\n", b"\x00" * 64, b""])
def test_non_onnx_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "fake.onnx"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match=r"fake\.onnx"):
        scan([bad], "disable")


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(NoModelsError, match=r"no \.onnx or \.ort model files"):
        scan([tmp_path])
    code, err = run_cli("scan", str(tmp_path), "-o", str(tmp_path / "o.config"))
    assert code == 1 and str(tmp_path) in err and not (tmp_path / "o.config").exists()


def test_missing_external_data(tmp_path: Path) -> None:
    model = tiny.tiny_matmul()
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.weights", size_threshold=0)
    scan_model(tmp_path / "ext.onnx", "all")  # fine while the data is there
    (tmp_path / "ext.weights").unlink()
    out = tmp_path / "ops.config"
    code, err = run_cli("scan", str(tmp_path / "ext.onnx"), "-o", str(out))
    assert code == 1 and "ext.weights" in err and "missing" in err and str(tmp_path / "ext.onnx") in err
    assert not out.exists()


def test_unknown_domain_in_model(tmp_path: Path) -> None:
    m = tiny.tiny_matmul()
    m.graph.node[1].domain = "com.example"
    m.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    onnx.save(m, tmp_path / "custom.onnx")
    with pytest.raises(ModelError, match=r"unknown domain 'com\.example'"):
        scan([tmp_path / "custom.onnx"], "disable")


def test_unknown_level() -> None:
    with pytest.raises(OrtpruneError, match="unknown optimization level"):
        scan_model("x.onnx", "max")


def test_cli_writes_config_and_json(tmp_path: Path, fp32_model: Path) -> None:
    out, js = tmp_path / "ops.config", tmp_path / "scan.json"
    code, err = run_cli("scan", str(fp32_model), "-o", str(out), "--json", str(js))
    assert code == 0, err
    config = OpConfig.load(out)
    assert OpId("com.microsoft", 1, "BiasGelu") in config
    data = json.loads(js.read_text())
    origins = {o["op"]: o["origin"] for o in data["models"][0]["ops"]}
    assert origins["BiasGelu"] == "optimizer" and origins["MatMul"] == "both"
    assert any("ONNX Runtime 1." in line for line in out.read_text().splitlines() if line.startswith("#"))


def test_optimizing_with_a_runtime_library_matches_the_package(fp32_model: Path) -> None:
    """--runtime LIB optimizes through ortprune.runtime (ctypes): with the wheel's own library it must see
    exactly what the onnxruntime package sees, so a full build of another version can stand in for it."""
    from ortprune.runtime import wheel_library

    lib = wheel_library()
    by_lib = scan([fp32_model], "all", runtime=lib)
    by_pkg = scan([fp32_model], "all")
    assert set(by_lib.config) == set(by_pkg.config)
    assert by_lib.ort_version == ort.__version__


def test_cli_takes_bundled_names_and_names_a_missing_path(tmp_path: Path, fp32_model: Path) -> None:
    out = tmp_path / "ops.config"
    code, err = run_cli("scan", "paraphrase-MiniLM-L3-v2", "-O", "disable", "-q", "-o", str(out))
    assert code == 0, err
    assert str(fp32_model) in out.read_text()
    code, err = run_cli("scan", str(tmp_path / "typo.onnx"), "-o", str(out))
    assert code == 1 and err.count("\n") == 1
    assert str(tmp_path / "typo.onnx") in err and "no such file or directory" in err
