"""The sources lever: a config-built variant compiles only the kernel sources whose kernels it keeps. On ORT's
real tree when it is cached, and end to end with real CMake, ninja and ld on a small project: the overlay takes
a source out, ld (--no-undefined, as ORT links) names what the rest still needs, and it is put back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ortprune.cache import cache_dir
from ortprune.opconfig import OpConfig
from ortprune.ortbuild.prune import kernel_words, overlay_cmake, restore_for, unused_kernel_sources

CONFIGS = Path(__file__).parents[2] / "docs" / "results" / "configs"
REAL_SOURCE = cache_dir("src", "onnxruntime-1.21.0")


def test_kernel_words_see_through_local_macros() -> None:
    text = (
        "// ONNX_CPU_OPERATOR_KERNEL(Conv, 11, ...) in a comment defines nothing\n"
        "#define REG(name, ver) ONNX_CPU_OPERATOR_KERNEL(name, ver, KernelDefBuilder(), Unary<name>)\n"
        "REG(Relu, 6)\nREG(Elu, 6)\n"
    )
    words = kernel_words(text)
    assert words is not None and {"Relu", "Elu"} <= words and "Conv" not in words
    # a registration table declares kernel classes but defines none; plain code defines none either
    assert kernel_words("class ONNX_OPERATOR_KERNEL_CLASS_NAME(kCpuExecutionProvider, kOnnxDomain, 14, Add);") is None
    assert kernel_words("int helper(int x) { return x; }\n") is None


@pytest.mark.skipif(not REAL_SOURCE.is_dir(), reason="ORT 1.21.0's source is not cached (ortprune source fetch 1.21.0)")
def test_unused_kernel_sources_of_the_bundled_models_on_the_real_tree() -> None:
    config = OpConfig.load(CONFIGS / "bundled-all.config")
    dropped = {p.relative_to(REAL_SOURCE).as_posix() for p in unused_kernel_sources(REAL_SOURCE, config)}
    cpu, contrib = "onnxruntime/core/providers/cpu", "onnxruntime/contrib_ops/cpu"
    # what the models never run goes: convolutions, RNNs, the ML ops, attention they do not use
    gone = {f"{cpu}/nn/pool.cc", f"{cpu}/rnn/deep_cpu_lstm.cc", f"{cpu}/ml/tree_ensemble_classifier.cc",
            f"{cpu}/tensor/resize.cc", f"{contrib}/bert/embed_layer_norm.cc"}  # fmt: skip
    assert gone <= dropped
    # each op of the config keeps the file that defines its kernel
    for kept in (
        f"{cpu}/tensor/shape_op.cc",
        f"{cpu}/math/matmul.cc",
        f"{cpu}/math/element_wise_ops.cc",
        f"{cpu}/nn/layer_norm.cc",
        f"{contrib}/bert/bias_gelu.cc",
        f"{contrib}/skip_layer_norm.cc",
        f"{contrib}/fused_matmul.cc"
        if (REAL_SOURCE / contrib / "fused_matmul.cc").exists()
        else f"{cpu}/math/matmul.cc",
    ):
        assert kept not in dropped, kept
    assert 100 <= len(dropped) <= 140  # measured: 119 of the 175 kernel sources
    # a config with no contrib op drops every contrib kernel source but the registration table
    plain = OpConfig.parse("ai.onnx;17;Add,MatMul\n")
    gone = {p.relative_to(REAL_SOURCE).as_posix() for p in unused_kernel_sources(REAL_SOURCE, plain)}
    assert f"{contrib}/bert/bias_gelu.cc" in gone and f"{contrib}/cpu_contrib_kernels.cc" not in gone


def _tools() -> tuple[str, str]:
    bindir = str(Path(sys.executable).parent)
    cmake, ninja = shutil.which("cmake", path=bindir), shutil.which("ninja", path=bindir)
    if cmake is None or ninja is None or shutil.which("c++") is None:
        pytest.skip("cmake and ninja (pip) and a C++ compiler are needed")
    return cmake, ninja


def test_a_dropped_source_the_link_needs_is_put_back(tmp_path: Path) -> None:
    cmake, ninja = _tools()
    proj = tmp_path / "proj"
    (proj / "kernels").mkdir(parents=True)
    (proj / "kernels" / "add.cc").write_text("int helper_fn(int);\nint add_kernel(int x) { return helper_fn(x); }\n")
    (proj / "kernels" / "conv.cc").write_text(
        "int helper_fn(int x) { return x + 1; }\nint conv_kernel() { return 2; }\n"
    )
    (proj / "kernels" / "pool.cc").write_text("int pool_kernel() { return 3; }\n")
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(onnxruntime CXX)\n"
        "add_library(onnxruntime SHARED kernels/add.cc kernels/conv.cc kernels/pool.cc)\n"
        'target_link_options(onnxruntime PRIVATE "LINKER:--no-undefined")\n'
    )
    conv, pool = proj / "kernels" / "conv.cc", proj / "kernels" / "pool.cc"
    overlay = tmp_path / "overlay.cmake"
    overlay.write_text(overlay_cmake({}, [conv, pool]))
    build = tmp_path / "b"
    args = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}", f"-DCMAKE_PROJECT_onnxruntime_INCLUDE={overlay}"]
    cfg = subprocess.run([cmake, "-S", str(proj), "-B", str(build), *args], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stderr
    assert "ortprune: 2 of 2 unused kernel sources taken out of their targets" in cfg.stdout
    commands = subprocess.run([ninja, "-C", str(build), "-t", "commands"], capture_output=True, text=True).stdout
    assert "add.cc" in commands and "conv.cc" not in commands and "pool.cc" not in commands
    link = subprocess.run([ninja, "-C", str(build)], capture_output=True, text=True)
    assert link.returncode != 0 and "undefined reference to `helper_fn(int)'" in link.stdout
    back = restore_for(link.stdout, [conv, pool])
    assert back == [conv]  # only the file that defines what is missing
    overlay.write_text(overlay_cmake({}, [pool]))
    again = subprocess.run([ninja, "-C", str(build)], capture_output=True, text=True)  # ninja re-runs CMake
    assert again.returncode == 0, again.stdout
    assert (build / "libonnxruntime.so").is_file()
    # a drop list none of whose files is in any target means the overlay does not fit: configure stops
    overlay.write_text(overlay_cmake({}, [proj / "kernels" / "gone.cc"]))
    bad = subprocess.run([cmake, "-S", str(proj), "-B", str(tmp_path / "c"), *args], capture_output=True, text=True)
    assert bad.returncode != 0 and "none of the 1 kernel sources to drop is in a target" in bad.stderr


def test_restore_for_maps_a_missing_kernel_to_its_op(tmp_path: Path) -> None:
    relu, elu = tmp_path / "relu.cc", tmp_path / "elu.cc"
    relu.write_text("REGISTER_UNARY_ELEMENTWISE_KERNEL(Relu, 6);\n")
    elu.write_text("REGISTER_UNARY_ELEMENTWISE_KERNEL(Elu, 6);\n")
    log = (
        "ld: onnxruntime_providers.a(cpu_execution_provider.cc.o): in function `RegisterOnnxOperatorKernels':\n"
        "cpu_execution_provider.cc:(.text+0x1): undefined reference to `onnxruntime::KernelCreateInfo "
        "onnxruntime::BuildKernelCreateInfo<onnxruntime::kCpuExecutionProvider_Relu_kOnnxDomain_ver6_12>()'\n"
    )
    assert restore_for(log, [relu, elu]) == [relu]
    lld = (
        "ld.lld: error: undefined symbol: onnxruntime::KernelCreateInfo onnxruntime::BuildKernelCreateInfo"
        "<onnxruntime::kCpuExecutionProvider_Relu_kOnnxDomain_ver6_12>()\n>>> referenced by cpu_execution_provider.cc\n"
    )
    assert restore_for(lld, [relu, elu]) == [relu]  # lld words it differently
    assert restore_for("collect2: error: ld returned 1 exit status\n", [relu, elu]) == []


def test_restore_for_finds_the_file_of_a_missing_method(tmp_path: Path) -> None:
    gelu, norm = tmp_path / "gelu_fusion.cc", tmp_path / "layer_norm_fusion.cc"
    gelu.write_text("Status GeluFusion::ApplyImpl(Graph& graph, bool& modified) const {\n  return {};\n}\n")
    norm.write_text("Status LayerNormFusion::ApplyImpl(Graph& graph, bool& modified) const {\n  return {};\n}\n")
    log = (
        "graph_transformer_utils.cc:(.text+0x9): undefined reference to `onnxruntime::GeluFusion::ApplyImpl("
        "onnxruntime::Graph&, bool&, int, onnxruntime::logging::Logger const&) const'\n"
    )
    assert restore_for(log, [gelu, norm]) == [gelu]  # not every file that defines an ApplyImpl


@pytest.mark.skipif(not REAL_SOURCE.is_dir(), reason="ORT 1.21.0's source is not cached (ortprune source fetch 1.21.0)")
def test_unconstructed_optimizer_sources_on_the_real_tree() -> None:
    import json

    from ortprune.ortbuild.prune import classes_to_drop, transformer_names, unconstructed_sources

    keep = json.loads((Path(__file__).parents[2] / "bench/results/levers.json").read_text())["keep_transformers"]
    drop = classes_to_drop(transformer_names(REAL_SOURCE), keep)
    gone = {p.relative_to(REAL_SOURCE).as_posix() for p in unconstructed_sources(REAL_SOURCE, drop)}
    opt = "onnxruntime/core/optimizer"
    assert {f"{opt}/conv_bn_fusion.cc", f"{opt}/embed_layer_norm_fusion.cc", f"{opt}/fast_gelu_fusion.cc"} <= gone
    # what the models need is constructed and compiled; shared helpers and the construction file stay
    kept = {f"{opt}/gelu_fusion.cc", f"{opt}/bias_gelu_fusion.cc", f"{opt}/skip_layer_norm_fusion.cc",
            f"{opt}/constant_folding.cc", f"{opt}/utils.cc", f"{opt}/graph_transformer_utils.cc"}  # fmt: skip
    assert not kept & gone
    assert 30 <= len(gone) <= 50  # measured: 40 of the optimizer's sources
