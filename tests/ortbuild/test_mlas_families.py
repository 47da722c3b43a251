"""--prune mlas-families: MLAS's platform table stores nullptr in the fields no linked MLAS object reads.

The transform and the decision on stand-ins (a constructor written the way MLAS writes it; a small MLAS lib
directory and the symbols of a link), then on ORT 1.21.0's own platform.cpp and MLAS sources (the generated
file compiled). What it saves on a real build is measured in docs/results/ort-1.21.0-levers.md."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from ortprune.cache import cache_dir
from ortprune.errors import BuildError
from ortprune.ortbuild.mlas import PLATFORM_CPP
from ortprune.ortbuild.mlas_families import (
    FAMILIES_LEVER,
    MLAS_ARCHIVE,
    MLAS_LIB,
    Member,
    decide,
    drop_fields,
    field_readers,
    member_sources,
    nm_for,
    parse_nm,
    pulled_from_why_extract,
    read_archives,
    table_assignments,
)
from ortprune.ortbuild.prune import check_levers, prepare_sources
from ortprune.ortbuild.variants import BuildSpec

REAL_SOURCE = cache_dir("src", "onnxruntime-1.21.0")

# the shape of MLAS_PLATFORM's constructor in ORT 1.21 (a default block, a preprocessor-doubled brace, an ISA
# block), and a function of platform.cpp that reads two fields
PLATFORM = """
#include "mlasi.h"
MLAS_PLATFORM::MLAS_PLATFORM(
    void
    )
/*++
Routine Description: { not code }
--*/
{
    this->GemmFloatKernel = MlasGemmFloatKernelSse;
    this->GemmU8S8Dispatch = &MlasGemmU8X8DispatchSse;
    this->GemmU8U8Dispatch = &MlasGemmU8X8DispatchSse;
    this->ConvDepthwiseU8S8Kernel = MlasConvDepthwiseKernel<uint8_t, int8_t>;
    this->PoolFloatKernel[MlasMaximumPooling] = MlasPoolMaximumFloatKernelSse;
    this->CastF32ToF16Kernel = nullptr;
    this->NchwcBlockSize = 8;
#ifndef FORCE_GENERIC_ALGORITHMS
    if ((Cpuid1[2] & 0x18000000) == 0x18000000) {
#else
    if (false) {
#endif
        this->GemmFloatKernel = MlasGemmFloatKernelAvx;
        this->GemmU8S8Dispatch = &MlasGemmU8S8DispatchAvx2;
        this->PoolFloatKernel[MlasMaximumPooling] = MlasPoolMaximumFloatKernelAvx;
    }
}

bool
MLASCALL
MlasPlatformU8S8Overflow(
    void
    )
{
    const auto& p = GetMlasPlatform();
    return p.GemmU8U8Dispatch != p.GemmU8S8Dispatch;
}
"""


def test_assignments_are_the_kernel_stores_of_the_constructor() -> None:
    found = {(a.field, a.index, a.symbol) for a in table_assignments(PLATFORM)}
    assert found == {
        ("GemmFloatKernel", "", "MlasGemmFloatKernelSse"), ("GemmFloatKernel", "", "MlasGemmFloatKernelAvx"),
        ("GemmU8S8Dispatch", "", "MlasGemmU8X8DispatchSse"), ("GemmU8S8Dispatch", "", "MlasGemmU8S8DispatchAvx2"),
        ("GemmU8U8Dispatch", "", "MlasGemmU8X8DispatchSse"),
        ("ConvDepthwiseU8S8Kernel", "", "MlasConvDepthwiseKernel"),
        ("PoolFloatKernel", "[MlasMaximumPooling]", "MlasPoolMaximumFloatKernelSse"),
        ("PoolFloatKernel", "[MlasMaximumPooling]", "MlasPoolMaximumFloatKernelAvx"),
    }  # fmt: skip  # nullptr and numbers are no kernel


def test_drop_stores_nullptr_and_names_what_is_no_longer_referenced() -> None:
    new, cut = drop_fields(PLATFORM, {"GemmU8S8Dispatch", "PoolFloatKernel"})
    assert "MlasGemmU8S8DispatchAvx2" not in new and "MlasPoolMaximumFloatKernel" not in new
    assert new.count(f"this->GemmU8S8Dispatch = nullptr;  /* ortprune: {FAMILIES_LEVER} */") == 2
    assert new.count("this->PoolFloatKernel[MlasMaximumPooling] = nullptr;") == 2
    assert "this->GemmU8U8Dispatch = &MlasGemmU8X8DispatchSse;" in new  # shared with a kept field: stays
    assert cut.dropped == ["GemmU8S8Dispatch", "PoolFloatKernel"]
    assert cut.symbols == ["MlasGemmU8S8DispatchAvx2", "MlasPoolMaximumFloatKernelAvx", "MlasPoolMaximumFloatKernelSse"]
    assert "GemmFloatKernel" in cut.kept
    assert drop_fields(PLATFORM, ())[0] == PLATFORM
    with pytest.raises(BuildError, match="assigns no kernel to NchwcBlockSize, NoSuchField"):
        drop_fields(PLATFORM, {"NoSuchField", "NchwcBlockSize"})
    with pytest.raises(BuildError, match="0 MLAS_PLATFORM constructors"):
        drop_fields(PLATFORM.replace("MLAS_PLATFORM::MLAS_PLATFORM(", "MLAS_PLATFORM_X("), ())
    with pytest.raises(BuildError, match="unbalanced"):
        drop_fields(PLATFORM.replace("    }\n}\n\nbool", "    }\n\nbool"), ())


def _lib(tmp_path: Path) -> Path:
    """A stand-in MLAS lib dir: the table's declaration, readers in sources and in a header."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mlasi.h").write_text(
        "struct MLAS_PLATFORM {\n  PFN GemmFloatKernel; PFN GemmU8S8Dispatch; PFN GemmU8U8Dispatch;\n"
        "  PFN ConvDepthwiseU8S8Kernel; PFN PoolFloatKernel[3]; int NchwcBlockSize;\n};\n"
        "inline size_t MlasBlock() { return GetMlasPlatform().NchwcBlockSize; }\n"
    )
    (lib / "platform.cpp").write_text(PLATFORM)
    (lib / "sgemm.cpp").write_text('#include "mlasi.h"\nvoid MlasGemmBatch() { GetMlasPlatform().GemmFloatKernel(); }')
    (lib / "qgemm.h").write_text("template<class K> void MlasGemmQuant() { GetMlasPlatform().GemmU8S8Dispatch; }\n")
    (lib / "qgemm.cpp").write_text('#include "qgemm.h"\nvoid MlasGemmBatchQ() { MlasGemmQuant<int>(); }\n')
    (lib / "qgemm_kernel_avx2.cpp").write_text('#include "qgemm.h"\nconst D MlasGemmU8S8DispatchAvx2 = {};\n')
    (lib / "snchwc.cpp").write_text(
        '#include "mlasi.h"\nvoid MlasNchwcPool() { GetMlasPlatform().PoolFloatKernel[0]; }\n'
        "// not read here: ConvDepthwiseU8S8Kernel\n"
    )
    return lib


def _member(
    name: str, strong: Iterable[str] = (), undefined: Iterable[str] = (), archive: str = MLAS_ARCHIVE
) -> Member:
    return Member(archive, name, set(strong), set(), set(undefined))


def _link(*ort_refs: str) -> dict[str, Member]:
    """The symbols of a link: one ORT member calling ``ort_refs``, MLAS's members."""
    ms = [
        _member("kernel.cc.o", {"onnxruntime::Kernel()"}, set(ort_refs), "libonnxruntime_providers.a"),
        _member("platform.cpp.o", {"MlasPlatformU8S8Overflow()", "GetMlasPlatform()"},
                {"MlasGemmFloatKernelSse", "MlasGemmU8S8DispatchAvx2", "MlasPoolMaximumFloatKernelSse"}),
        _member("sgemm.cpp.o", {"MlasGemmBatch()"}, {"GetMlasPlatform()"}),
        _member("qgemm.cpp.o", {"MlasGemmBatchQ()"}, {"GetMlasPlatform()"}),
        _member("qgemm_kernel_avx2.cpp.o", {"MlasGemmU8S8DispatchAvx2"}, {"GetMlasPlatform()"}),
        _member("snchwc.cpp.o", {"MlasNchwcPool()"}, {"GetMlasPlatform()"}),
        _member("SgemmKernelSse2.S.o", {"MlasGemmFloatKernelSse", "MlasGemmFloatKernelAvx"}),
        _member("SpoolKernelSse2.S.o", {"MlasPoolMaximumFloatKernelSse", "MlasPoolMaximumFloatKernelAvx"}),
    ]  # fmt: skip
    return {m.key: m for m in ms}


def _decide(tmp_path: Path, *ort_refs: str) -> tuple[set[str], list[str]]:
    lib = _lib(tmp_path)
    assigns = table_assignments(PLATFORM)
    readers = field_readers(lib, {a.field for a in assigns})
    members = _link(*ort_refs)
    srcs = member_sources(readers, [m.name for m in members.values()])
    pulled = set(members)  # the link took them all (platform.cpp's references pull the kernels' members too)
    d = decide(assigns, readers, members, pulled, srcs)
    return d.drop, d.needed


def test_a_family_is_dropped_when_no_linked_member_reads_it(tmp_path: Path) -> None:
    drop, needed = _decide(tmp_path, "MlasGemmBatch()")
    # QGEMM: read in qgemm.h, included by qgemm.cpp (nobody calls it) and by the kernel's own file (linked
    # only by the table); pooling: read by snchwc.cpp, not called; ConvDepthwise: named in a comment only
    assert drop == {"GemmU8S8Dispatch", "GemmU8U8Dispatch", "PoolFloatKernel", "ConvDepthwiseU8S8Kernel"}
    assert f"{MLAS_ARCHIVE}(sgemm.cpp.o)" in needed and f"{MLAS_ARCHIVE}(qgemm.cpp.o)" not in needed
    # the SGEMM kernels a kept field stores run: their member counts as linked
    assert f"{MLAS_ARCHIVE}(SgemmKernelSse2.S.o)" in needed


def test_a_called_reader_keeps_its_fields_and_the_kernels_they_store(tmp_path: Path) -> None:
    drop, needed = _decide(tmp_path, "MlasGemmBatch()", "MlasGemmBatchQ()", "MlasNchwcPool()")
    assert drop == {"ConvDepthwiseU8S8Kernel", "GemmU8U8Dispatch"}
    # the dispatch table a kept field stores is code that runs: its file (and what it reads) counts
    assert f"{MLAS_ARCHIVE}(qgemm_kernel_avx2.cpp.o)" in needed


def test_a_platform_function_that_is_called_keeps_what_it_compares(tmp_path: Path) -> None:
    drop, _ = _decide(tmp_path, "MlasGemmBatch()", "MlasPlatformU8S8Overflow()")
    assert "GemmU8S8Dispatch" not in drop and "GemmU8U8Dispatch" not in drop


def test_a_linked_member_of_unknown_source_fails(tmp_path: Path) -> None:
    lib = _lib(tmp_path)
    assigns = table_assignments(PLATFORM)
    readers = field_readers(lib, {a.field for a in assigns})
    members = _link("MlasMystery()")
    members[f"{MLAS_ARCHIVE}(mystery.cpp.o)"] = _member("mystery.cpp.o", {"MlasMystery()"})
    with pytest.raises(BuildError, match=r"no source known for the linked MLAS member .*mystery\.cpp\.o"):
        decide(assigns, readers, members, set(members), member_sources(readers, ["sgemm.cpp.o"]))
    with pytest.raises(BuildError, match=r"no platform\.cpp\.o member"):
        decide(assigns, readers, {}, set(), {})


def test_link_reports_parse() -> None:
    why = "reference\textracted\tsymbol\nlibx.a(a.o)\tsub/libonnxruntime_mlas.a(sgemm.cpp.o)\tMlasGemmBatch()\n"
    assert pulled_from_why_extract(why) == {"libonnxruntime_mlas.a(sgemm.cpp.o)"}
    with pytest.raises(BuildError, match="why-extract"):
        pulled_from_why_extract("not a report\n")
    nm = (
        "d/libonnxruntime_mlas.a:sgemm.cpp.o: ---------------- T MlasGemmBatch(CBLAS_TRANSPOSE, unsigned long)\n"
        "d/libonnxruntime_mlas.a:sgemm.cpp.o:                  U onnxruntime::concurrency::ThreadPool::Run()\n"
        "d/libonnxruntime_mlas.a:sgemm.cpp.o: ---------------- W std::function<void (long)>::~function()\n"
        "d/libonnxruntime_mlas.a:sgemm.cpp.o: ---------------- t local_helper()\n"
    )
    (m,) = parse_nm(nm).values()
    assert m.key == "libonnxruntime_mlas.a(sgemm.cpp.o)"
    assert m.strong == {"MlasGemmBatch(CBLAS_TRANSPOSE, unsigned long)"}
    assert m.undefined == {"onnxruntime::concurrency::ThreadPool::Run()"}
    assert m.weak == {"std::function<void (long)>::~function()"}


def test_gnu_nm_is_read_as_llvm_nm_is(tmp_path: Path) -> None:
    """gcc-nm/nm print ``lib.a:m.o:0000000000000000 T f`` (no space after the member): a gcc build's MLAS
    members were read as defining nothing, and ``--prune mlas-families`` stopped on every gcc build."""
    import shutil
    import subprocess

    if not (shutil.which("g++") and shutil.which("ar") and shutil.which("nm")):
        pytest.skip("g++ and binutils are needed")
    (tmp_path / "sgemm.cpp").write_text("int helper(int);\nint MlasGemm(int x) { return helper(x) + 1; }\n")
    subprocess.run(["g++", "-c", "sgemm.cpp", "-o", "sgemm.cpp.o"], cwd=tmp_path, check=True)
    subprocess.run(["ar", "rcs", "libonnxruntime_mlas.a", "sgemm.cpp.o"], cwd=tmp_path, check=True)
    members = read_archives([tmp_path / "libonnxruntime_mlas.a"], nm_for("", None))
    m = members["libonnxruntime_mlas.a(sgemm.cpp.o)"]
    assert m.strong == {"MlasGemm(int)"} and m.undefined == {"helper(int)"}


def test_lever_spec_rules() -> None:
    assert check_levers(["mlas-families", "mlas-isa=avx2"]) == ("mlas-families", "mlas-isa=avx2")
    spec = BuildSpec("1.21.0", "full", prune=(FAMILIES_LEVER,))
    assert spec.key() != BuildSpec("1.21.0", "full").key()
    import ortprune.ortbuild.mlas_families as families

    before, isa = spec.key(), BuildSpec("1.21.0", "full", prune=("mlas-isa=avx2",)).key()
    families.FAMILIES_VERSION += 1  # what the lever keeps changed: its older builds are not reused
    try:
        assert spec.key() != before and BuildSpec("1.21.0", "full", prune=("mlas-isa=avx2",)).key() == isa
    finally:
        families.FAMILIES_VERSION -= 1
    with pytest.raises(BuildError, match="mlas-families"):
        check_levers(["mlas-family"])


def test_nm_follows_the_archiver(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("llvm-ar-16", "llvm-nm-16", "nm"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    assert nm_for(str(bin_dir / "llvm-ar-16"), str(bin_dir)) == str(bin_dir / "llvm-nm-16")
    assert nm_for("", str(bin_dir)) == str(bin_dir / "nm")


# ---- ORT 1.21.0's own sources -----------------------------------------------------------------------------
def real_lib() -> Path:
    lib = REAL_SOURCE / MLAS_LIB
    if not (lib / "platform.cpp").is_file():
        pytest.skip(f"ORT 1.21.0's source is not in the cache ({REAL_SOURCE}; ortprune source fetch debian:1.21.0)")
    return lib


QGEMM = {"GemmU8S8Dispatch", "GemmU8U8Dispatch", "GemmU8S8Kernel", "GemmU8U8Kernel", "GemvU8S8Kernel"}


def test_on_ort_1_21_readers() -> None:
    lib = real_lib()
    assigns = table_assignments((lib / "platform.cpp").read_text())
    fields = {a.field for a in assigns}
    assert QGEMM | {"QNBitGemmDispatch", "ConvNchwFloatKernel", "PoolFloatKernel", "GemmFloatKernel"} <= fields
    assert "NchwcBlockSize" not in fields  # a number, not a kernel
    r = field_readers(lib, fields)
    assert r.by_platform_function["MlasPlatformU8S8Overflow"] == {"GemmU8U8Dispatch", "GemmU8S8Dispatch"}
    assert {"GemmU8S8Dispatch", "GemmU8U8Dispatch"} <= r.by_source["qgemm.cpp"]  # through qgemm.h
    assert {"ConvNchwFloatKernel", "PoolFloatKernel"} <= r.by_source["snchwc.cpp"]
    assert "QNBitGemmDispatch" in r.by_source["qnbitgemm.cpp"] and "QNBitGemmDispatch" not in r.by_source["sgemm.cpp"]
    assert not r.always & QGEMM


def test_on_ort_1_21_overlay_and_compile(tmp_path: Path) -> None:
    """The generated platform.cpp of a real build tree (after mlas-isa's cut): swapped in by the overlay,
    the cached source untouched, and it compiles with ORT's own include paths."""
    lib = real_lib()
    path = REAL_SOURCE / PLATFORM_CPP
    before = path.stat().st_mtime_ns
    levers = ("mlas-families", "mlas-isa=avx2")
    defines, first = prepare_sources(REAL_SOURCE, tmp_path, levers, None)  # before the first link: no drop
    gen = tmp_path / "ortprune.generated" / PLATFORM_CPP
    assert first.mlas_families is None and "nullptr;  /* ortprune: mlas-families" not in gen.read_text()
    drop = QGEMM | {"QNBitGemmDispatch", "ConvSymU8S8Dispatch"}
    defines, report = prepare_sources(REAL_SOURCE, tmp_path, levers, None, mlas_drop=drop)
    overlay = tmp_path / "ortprune.generated/overlay.cmake"
    assert defines == [f"CMAKE_PROJECT_onnxruntime_INCLUDE={overlay}"] and str(path) in overlay.read_text()
    assert path.stat().st_mtime_ns == before and report.mlas is not None and report.mlas_families is not None
    assert {"MlasGemmU8S8DispatchAvx2", "MlasSQNBitGemmDispatchAvx2", "MlasConvSymDispatchAvx2"} <= set(
        report.mlas_families.symbols
    )
    summary = report.summary()["mlas_families"]
    assert isinstance(summary, dict) and summary["fields_dropped"] == sorted(drop)
    text = gen.read_text()
    assert "MlasGemmU8S8DispatchAvx2" not in text and "MlasGemmU8S8KernelAvxVnni" not in text  # isa cut too
    assert f'#include "{lib / "mlasi.h"}"' in text
    cxx = shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    inc = [f"-I{REAL_SOURCE / d}" for d in ("onnxruntime/core/mlas/inc", "include/onnxruntime", "onnxruntime")]
    subprocess.run([cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Werror", *inc, str(gen)], check=True)


def test_the_build_applies_the_decision_until_it_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """runner._apply_mlas_families: each decision is written to the build's state and the generated
    platform.cpp, ninja runs again, and it stops when a link's decision is the one already applied."""
    from ortprune.ortbuild import mlas_families, runner
    from ortprune.ortbuild.mlas_families import Decision, FamilyCut

    real_lib()
    spec = BuildSpec("1.21.0", "full", prune=("mlas-families", "mlas-isa=avx2"))
    tree = runner._Tree(tmp_path, [], {}, None, None, (), REAL_SOURCE)
    decisions = [{"QNBitGemmDispatch"}, QGEMM, QGEMM]  # the second link drops more, the third agrees

    def fake_decide(source: Path, config_dir: Path, base: str, env: object, ar: str) -> tuple[Decision, FamilyCut]:
        assert "MlasGemmU8S8KernelAvxVnni" not in base  # decided on the mlas-isa cut
        return Decision(["m"], set(), decisions.pop(0)), FamilyCut(needed=["libonnxruntime_mlas.a(sgemm.cpp.o)"])

    links: list[str] = []
    gen = tmp_path / "ortprune.generated" / PLATFORM_CPP
    monkeypatch.setattr(mlas_families, "decide_in_build", fake_decide)
    runner._apply_mlas_families(tree, spec, {}, "", lambda msg: None, lambda: links.append(gen.read_text()))
    assert len(links) == 2 and "this->QNBitGemmDispatch = nullptr;" in links[0]
    assert "this->GemmU8S8Dispatch = nullptr;" not in links[0] and "this->GemmU8S8Dispatch = nullptr;" in links[1]
    assert tree.state["mlas_families_drop"] == sorted(QGEMM)
    import json

    prune = json.loads((tmp_path / "prune.json").read_text())["mlas_families"]
    assert prune["fields_dropped"] == sorted(QGEMM) and prune["mlas_members_linked"] == [
        "libonnxruntime_mlas.a(sgemm.cpp.o)"
    ]
    decisions[:] = [{"RopeDispatch"}, QGEMM] * 2  # never settles: a loud failure, not a guess
    with pytest.raises(BuildError, match="changed on every link"):
        runner._apply_mlas_families(tree, spec, {}, "", lambda msg: None, lambda: None)


def test_the_nchwc_probe_goes_only_when_no_nchwc_op_is_kept(tmp_path: Path) -> None:
    from ortprune.opconfig import OpConfig
    from ortprune.ortbuild.prune import CONTRIB_KERNELS, NCHWC_PROBE, drop_nchwc_probe, prune_deps

    gen = tmp_path / CONTRIB_KERNELS
    gen.parent.mkdir(parents=True)
    body = f"Status Register() {{\n  {NCHWC_PROBE}\n    ORT_RETURN_IF_ERROR(RegisterNchwcKernels(r));\n  }}\n}}\n"
    gen.write_text(body)
    plain = OpConfig.parse("ai.onnx;17;Add\ncom.microsoft;1;BiasGelu\n")
    with_nchwc = OpConfig.parse("ai.onnx;17;Add\ncom.microsoft.nchwc;1;Conv\n")
    assert not drop_nchwc_probe(tmp_path, with_nchwc) and gen.read_text() == body  # its kernels are wanted
    report = prune_deps(tmp_path, ("mlas-families", "sources"), plain)
    assert report.nchwc_probe_dropped and "MlasNchwcGetBlockSize" not in gen.read_text()
    assert "RegisterNchwcKernels" in gen.read_text()  # only the probe goes, under if (false)
    assert drop_nchwc_probe(tmp_path, plain)  # again: nothing left to cut, still cut
    assert not prune_deps(tmp_path, ("sources",), plain).nchwc_probe_dropped  # only with mlas-families
    gen.write_text("Status Register() { return Status::OK(); }\n")  # another ORT: said, not guessed
    with pytest.raises(BuildError, match="NCHWc probe"):
        drop_nchwc_probe(tmp_path, plain)
    assert not drop_nchwc_probe(tmp_path / "none", plain)  # no contrib registration generated: nothing to do


def test_the_nchwc_probe_is_in_ort_1_21() -> None:
    from ortprune.ortbuild.prune import NCHWC_PROBE

    text = (real_lib().parents[2] / "contrib_ops/cpu/cpu_contrib_kernels.cc").read_text()
    assert text.count(NCHWC_PROBE) == 1 and "RegisterNchwcKernels(kernel_registry)" in text
