"""Kernel-symbol → op mapping, ORT's opset rule, and the reduced-build estimate against real reduced builds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ortprune.analyze import analyze
from ortprune.analyze.attribute import sized_symbols
from ortprune.analyze.estimate import PruneLevers, estimate, op_costs
from ortprune.analyze.ops import KernelReg, OpMapper, parse_kernel_reg
from ortprune.elf import ElfFile
from ortprune.errors import OrtpruneError
from ortprune.opconfig import OpConfig
from tests.analyze.libs import BuiltLib, build_cxx_ort


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "onnxruntime::contrib::kCpuExecutionProvider_Attention_kMSDomain_ver1_float",
            KernelReg("com.microsoft", "Attention", 1, None, "float", "Cpu"),
        ),
        (
            "onnxruntime::KernelCreateInfo onnxruntime::BuildKernelCreateInfo<"
            "onnxruntime::kCpuExecutionProvider_Shape_kOnnxDomain_ver15>()",
            KernelReg("ai.onnx", "Shape", 15, None, None, "Cpu"),
        ),
        (
            "BuildKernelCreateInfo<onnxruntime::kCpuExecutionProvider_Shape_kOnnxDomain_ver1_12>",
            KernelReg("ai.onnx", "Shape", 1, 12, None, "Cpu"),
        ),
        (
            "kCpuExecutionProvider_Gather_kOnnxDomain_ver11_12_int64_t",
            KernelReg("ai.onnx", "Gather", 11, 12, "int64_t", "Cpu"),
        ),
        (
            "kCpuExecutionProvider_Cast_kOnnxDomain_ver13_MLFloat16",
            KernelReg("ai.onnx", "Cast", 13, None, "MLFloat16", "Cpu"),
        ),
        (
            "kCpuExecutionProvider_Normalizer_kMLDomain_ver1",
            KernelReg("ai.onnx.ml", "Normalizer", 1, None, None, "Cpu"),
        ),
        (
            "kCpuExecutionProvider_Conv_kMSNchwcDomain_ver1_float",
            KernelReg("com.microsoft.nchwc", "Conv", 1, None, "float", "Cpu"),
        ),
        (
            "kCpuExecutionProvider_Conv_kMSInternalNHWCDomain_ver11",
            KernelReg("com.ms.internal.nhwc", "Conv", 11, None, None, "Cpu"),
        ),
        ("onnxruntime::Tensor::Shape() const", None),
    ],
)
def test_parse_kernel_registration(name: str, expected: KernelReg | None) -> None:
    assert parse_kernel_reg(name) == expected


def test_opset_rule_is_orts() -> None:
    shape_1_12 = KernelReg("ai.onnx", "Shape", 1, 12, None, "Cpu")
    shape_13 = KernelReg("ai.onnx", "Shape", 13, 14, None, "Cpu")
    shape_15 = KernelReg("ai.onnx", "Shape", 15, None, None, "Cpu")
    assert shape_1_12.kept_by([11]) and not shape_13.kept_by([11]) and not shape_15.kept_by([11])
    assert shape_13.kept_by([14]) and not shape_13.kept_by([15]) and shape_15.kept_by([21])
    assert not shape_15.kept_by([])


def test_class_names_map_to_ops_in_their_domain() -> None:
    m = OpMapper(
        [
            KernelReg("com.microsoft", "Attention", 1, None, "float", "Cpu"),
            KernelReg("ai.onnx", "Relu", 14, None, "float", "Cpu"),
            KernelReg("ai.onnx", "Gemm", 13, None, "float", "Cpu"),
            KernelReg("ai.onnx.ml", "Normalizer", 1, None, None, "Cpu"),
        ]
    )
    assert m.map("onnxruntime::contrib::Attention<float>::Compute(onnxruntime::OpKernelContext*) const") == (
        "com.microsoft;Attention",
        None,
    )
    assert m.map("vtable for onnxruntime::contrib::Attention<float>") == ("com.microsoft;Attention", None)
    assert m.map("onnxruntime::ElementWiseKernel<onnxruntime::functors::Relu<float> >::Compute(int)") == (
        "ai.onnx;Relu",
        None,
    )
    assert m.map("onnxruntime::Gemm<float>::Compute(onnxruntime::OpKernelContext*) const")[0] == "ai.onnx;Gemm"  # type: ignore[index]
    assert (
        m.map("onnxruntime::ml::Normalizer::Compute(onnxruntime::OpKernelContext*) const")[0] == "ai.onnx.ml;Normalizer"
    )  # type: ignore[index]
    # Helpers and free functions named like nothing registered stay shared.
    assert m.map("onnxruntime::contrib::AttentionBase::CheckInputs(int)") is None
    assert m.map("MlasGemmBatch(int)") is None
    assert m.map("onnxruntime::Gemm(int)") is None  # a free function, not the kernel class


def test_op_attribution_of_a_mini_ort(miniort: Path) -> None:
    report = analyze(miniort, "op")
    assert report.total == report.file_size
    labels = report.by_name()
    with ElfFile(miniort) as elf:
        syms = {s.name: s.end - s.start for s in sized_symbols(elf, "symtab")}
    shape = sum(v for k, v in syms.items() if "Shape_kOnnxDomain" in k or k.startswith("onnxruntime::Shape::"))
    attention = sum(v for k, v in syms.items() if "Attention_kMSDomain" in k or "Attention<float>::" in k)
    assert labels["ai.onnx;Shape"].size == shape and labels["ai.onnx;Shape"].count == 5
    assert labels["com.microsoft;Attention"].size == attention
    shared = syms["onnxruntime::SharedHelper(int)"] + syms["onnxruntime::ShapeOnly(int)"]
    shared += syms["onnxruntime::contrib::AttentionOnly(int)"] + syms["RegisterKernels"]
    shared += syms["onnxruntime::KernelCreateInfo onnxruntime::BuildKernelCreateInfo<void>()"]
    assert labels["[shared] .text"].size == shared


def _symbol_bytes(path: Path) -> int:
    with ElfFile(path) as elf:
        return sum(s.end - s.start for s in sized_symbols(elf, "symtab"))


def _section(path: Path, *names: str) -> int:
    with ElfFile(path) as elf:
        return sum(s.file_size for s in elf.sections if s.name in names)


@pytest.mark.parametrize(
    ("config", "drops"),
    [
        ("com.microsoft;1;Attention\n", ["DROP_SHAPE_1_12", "DROP_SHAPE_13"]),
        ("ai.onnx;13;Shape\n", ["DROP_ATTENTION", "DROP_SHAPE_1_12"]),
        ("ai.onnx;11;Shape\ncom.microsoft;1;Attention\n", ["DROP_SHAPE_13"]),
        ("ai.onnx;11,13;Shape\ncom.microsoft;1;Attention\n", []),
    ],
)
def test_estimate_matches_a_real_reduced_build(toy_dir: Path, miniort: Path, config: str, drops: list[str]) -> None:
    """The estimate against the build the same sources give with the dropped registrations commented out."""
    reduced = build_cxx_ort(toy_dir, f"libminiort-{'-'.join(drops) or 'all'}.so", drops)
    e = estimate(miniort, OpConfig.parse(config))
    assert e.kernels_removed == len(drops)
    assert e.reachable_fraction == 1.0
    # Code and data: exact, symbol by symbol; the registration table loses one 8-byte pointer per kernel.
    real = _symbol_bytes(miniort) - _symbol_bytes(reduced)
    assert e.removed["code and data (symbols)"] + 8 * len(drops) == real
    # ... and each pointer's relocation.
    assert e.removed["registration table slots"] == 32 * len(drops)
    assert 24 * len(drops) == _section(miniort, ".rela.dyn") - _section(reduced, ".rela.dyn")
    # Anonymous data (ShapeOnly's jump table): exact.
    assert e.removed["anonymous data (strings, tables)"] == _section(miniort, ".rodata") - _section(reduced, ".rodata")
    # Unwind tables: exact as well (FDEs and search-table entries of the removed functions).
    real_eh = _section(miniort, ".eh_frame", ".eh_frame_hdr") - _section(reduced, ".eh_frame", ".eh_frame_hdr")
    assert e.removed[".eh_frame + .eh_frame_hdr"] == real_eh
    real_sym = _section(miniort, ".symtab", ".strtab") - _section(reduced, ".symtab", ".strtab")
    assert abs(e.removed[".symtab + .strtab"] - real_sym) <= 24 * 2  # local FILE/section symbols may shift


@pytest.mark.parametrize(
    ("levers", "drops"),
    [
        (PruneLevers(schemas=True), ["DROP_SCHEMA_ADD_13"]),
        (PruneLevers(drop_transformers=frozenset({"GeluFusion"})), ["DROP_GELU"]),
        (PruneLevers(schemas=True, drop_transformers=frozenset({"GeluFusion"})), ["DROP_SCHEMA_ADD_13", "DROP_GELU"]),
    ],
)
def test_estimate_levers_match_the_pruned_build(toy_dir: Path, levers: PruneLevers, drops: list[str]) -> None:
    """The schemas and optimizers levers against the build whose sources have the cut lines removed."""
    full = build_cxx_ort(toy_dir, "libminiort-levers.so", levers=True)
    pruned = build_cxx_ort(toy_dir, f"libminiort-levers-{'-'.join(drops)}.so", drops, levers=True)
    config = OpConfig.parse("ai.onnx;14;Add;Shape\ncom.microsoft;1;Attention\n".replace(";Add;", ";Add,"))
    base = estimate(full, config, added_ops=())
    e = estimate(full, config, added_ops=(), levers=levers)
    assert e.reachable_fraction == 1.0 and e.levers == levers.describe() != "none"
    # What the levers add on top of the kernel reduction: the symbols only the cut lines reached, exactly,
    # plus the share of the registering/constructing functions' code those lines were. The compiler also
    # re-inlines what remains (an emptied ForEachSchema vanishes into its caller), which the estimate does
    # not model: it stays within 15% below the real cut here.
    lever_bytes = e.removed["code and data (symbols)"] - base.removed["code and data (symbols)"]
    lever_bytes += e.removed.get("registration/construction code of cut lines (scaled)", 0)
    real = _symbol_bytes(full) - _symbol_bytes(pruned)
    assert 0.85 * real <= lever_bytes <= real
    assert e.removed_total > base.removed_total
    assert any(n.startswith(("schemas:", "optimizers:")) for n in e.notes)


def test_estimate_reads_packed_relative_relocations(toy_dir: Path) -> None:
    """-z pack-relative-relocs (DT_RELR) moves the function table's pointers out of .rela.dyn."""
    relr = build_cxx_ort(toy_dir, "libminiort-relr.so", ldflags=["-Wl,-z,pack-relative-relocs"])
    with ElfFile(relr) as elf:
        if elf.section(".relr.dyn") is None:
            pytest.skip("this linker does not pack relative relocations")
    e = estimate(relr, OpConfig.parse("com.microsoft;1;Attention\n"))
    assert e.reachable_fraction == 1.0
    assert e.ops_removed == ["ai.onnx;Shape"] and e.removed["code and data (symbols)"] > 100


def test_op_costs_split_exclusive_shared_and_core(miniort: Path) -> None:
    costs = op_costs(miniort)
    with ElfFile(miniort) as elf:
        syms = {s.name: s.end - s.start for s in sized_symbols(elf, "symtab")}
    rodata = _section(miniort, ".rodata")  # ShapeOnly's jump table, the only anonymous data
    by_op = {c.op: c for c in costs.ops}
    shape = sum(v for k, v in syms.items() if "Shape" in k) + rodata
    attention = sum(v for k, v in syms.items() if "Attention" in k)
    assert by_op["ai.onnx;Shape"].exclusive == shape and by_op["ai.onnx;Shape"].registrations == 2
    assert (
        by_op["com.microsoft;Attention"].exclusive == attention and by_op["com.microsoft;Attention"].registrations == 1
    )
    assert costs.kernel_shared == syms["onnxruntime::SharedHelper(int)"]
    assert costs.unreached == 0
    core = sum(syms.values()) + rodata - shape - attention - costs.kernel_shared
    # plus anonymous bytes of .data that crt code points at (__dso_handle's neighbourhood)
    assert core <= costs.core <= core + _section(miniort, ".data")
    # Dropping every op removes exactly the exclusive and the kernel-shared bytes.
    e = estimate(miniort, OpConfig.parse("ai.onnx;13;Add\n"))
    total = e.removed["code and data (symbols)"] + e.removed["anonymous data (strings, tables)"]
    assert total == shape + attention + costs.kernel_shared


def test_estimate_refuses_stripped_and_non_ort(toy: BuiltLib, miniort: Path, tmp_path: Path) -> None:
    with pytest.raises(OrtpruneError, match=r"stripped|kernel registrations"):
        estimate(toy.path, OpConfig.parse("ai.onnx;13;Add\n"))
    stripped = tmp_path / "stripped.so"
    subprocess.run(["strip", "-o", str(stripped), str(miniort)], check=True)
    with pytest.raises(OrtpruneError, match="stripped"):
        estimate(stripped, OpConfig.parse("ai.onnx;13;Add\n"))


def test_cli_estimate(miniort: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "ops.config"
    cfg.write_text("com.microsoft;1;Attention\n")
    r = subprocess.run(
        [sys.executable, "-m", "ortprune.cli", "estimate", "--full", str(miniort), "--config", str(cfg), "-f", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ops_removed"] == ["ai.onnx;Shape"] and data["ops_kept"] == ["com.microsoft;Attention"]
    assert data["estimated_size"] == data["full_size"] - data["removed_total"]
    assert not any("no kernel" in n for n in data["notes"])
    e = estimate(miniort, OpConfig.parse("ai.onnx;11;Shape,Add\ncom.microsoft;1;Attention\n"))
    assert any(n.endswith("no kernel of this library is kept: ai.onnx;11;Add") for n in e.notes)
    r = subprocess.run(
        [sys.executable, "-m", "ortprune.cli", "estimate", "--full", str(miniort), "--config", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1 and "does not exist" in r.stderr and r.stdout == ""


def test_estimate_refuses_a_stripped_library(tmp_path: Path) -> None:
    """The wheel's libonnxruntime has no .symtab: estimate and the per-op costs say so, naming the file."""
    from ortprune.runtime import wheel_library

    lib = wheel_library()
    assert lib is not None
    with pytest.raises(OrtpruneError, match=r"estimate needs a full build with symbols.*stripped") as e:
        estimate(lib, OpConfig.parse("ai.onnx;17;Add\n"))
    assert str(lib) in str(e.value)
    with pytest.raises(OrtpruneError, match="stripped"):
        op_costs(lib)


def _typeinfo(path: Path) -> dict[str, int]:
    with ElfFile(path) as elf:
        return {s.name: s.end - s.start for s in sized_symbols(elf, "symtab") if s.name.startswith("typeinfo ")}


def _relocs_in(path: Path, names: set[str]) -> int:
    """RELA entries inside the named symbols."""
    from ortprune.analyze.decode import reloc_refs

    with ElfFile(path) as elf:
        spans = [(s.addr, s.addr + s.end - s.start) for s in sized_symbols(elf, "symtab") if s.name in names]
        return sum(any(lo <= w < hi for lo, hi in spans) for w, _ in reloc_refs(elf)[2])


def test_estimate_disable_rtti_matches_a_no_rtti_build(toy_dir: Path) -> None:
    """--disable_rtti against the same sources built with -fno-rtti: every typeinfo goes but the thrown
    exception's, with the relocations of the typeinfo objects and of the vtables' typeinfo slots."""
    from ortprune.analyze.graph import build_graph

    full = build_cxx_ort(toy_dir, "libminiort-rtti.so", rtti=True)
    nortti = build_cxx_ort(toy_dir, "libminiort-nortti.so", rtti=True, cxxflags=["-fno-rtti"])
    with ElfFile(full) as elf:
        g = build_graph(elf, sized_symbols(elf, "symtab"))
    throwers = [g.names[i][0].name for i in np.flatnonzero(g.calls("__cxa_throw"))]
    assert throwers and all("Relu::Compute" in n for n in throwers), throwers
    config = OpConfig.parse("ai.onnx;11,13;Shape\ncom.microsoft;1;Attention\n")
    base = estimate(full, config)
    e = estimate(full, config, levers=PruneLevers(disable_rtti=True))
    assert base.kernels_removed == e.kernels_removed == 0
    before, after = _typeinfo(full), _typeinfo(nortti)
    assert "typeinfo for onnxruntime::OnnxRuntimeException" in after and "typeinfo for onnxruntime::Relu" not in after
    gone = set(before) - set(after)
    # gcc adds a local copy of typeinfo the -fno-rtti unit cannot import (std::exception's): not predicted.
    added = set(after) - set(before)
    removed = e.removed["code and data (symbols)"] - base.removed["code and data (symbols)"]
    assert removed == sum(before[n] for n in gone)
    real_rela = _section(full, ".rela.dyn") - _section(nortti, ".rela.dyn") + 24 * _relocs_in(nortti, added)
    predicted_rela = e.removed[".rela.dyn"] + e.removed[".rela.dyn of cut pointers in kept data"]
    assert predicted_rela - base.removed[".rela.dyn"] == real_rela
    assert any(n.startswith("--disable_rtti:") and "1 functions that call __cxa_throw" in n for n in e.notes)


def test_schema_ops_keep_schemas_but_no_kernels(toy_dir: Path) -> None:
    """The ops the schemas lever adds (ORT's transformers create them within one load) keep their schemas
    only: the build adds them to the schema list, never to reduce_op_kernels.py's config."""
    full = build_cxx_ort(toy_dir, "libminiort-levers.so", levers=True)
    config = OpConfig.parse("com.microsoft;1;Attention\n")
    plain = estimate(full, config, added_ops=(), levers=PruneLevers(schemas=True))
    transient = PruneLevers(schemas=True, schema_ops=(("ai.onnx", "Add", 13), ("ai.onnx", "Shape", 13)))
    e = estimate(full, config, added_ops=(), levers=transient)
    # Shape 13's kernel goes all the same (it kept its kernel before: Conv, Pad, LSTM... in the real build) ...
    assert e.kernels_removed == plain.kernels_removed == 2 and e.ops_removed == plain.ops_removed == ["ai.onnx;Shape"]
    # ... while Add 13's schema stays registered (its GetOpSchema and the lambda in it: 2 of 4 functions).
    assert any(n.startswith("schemas: 2 of 4 GetOpSchema") for n in e.notes)
    assert any(n.startswith("schemas: 4 of 4 GetOpSchema") for n in plain.notes)
    assert e.removed_total < plain.removed_total
