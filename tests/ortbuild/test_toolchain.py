"""--toolchain clang (clang-16/lld-16, -Oz, ICF, RELR, LTO) and --prune mlas-isa: keys, build.py arguments,
the real linker's output, and the MLAS cut on ORT 1.21.0's real platform.cpp (skipped when a piece is absent)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ortprune.cache import cache_dir
from ortprune.catalog import TOOLCHAINS
from ortprune.elf import ElfFile
from ortprune.errors import BuildError, OrtpruneError
from ortprune.ortbuild import runner
from ortprune.ortbuild.identity import toolchain_id
from ortprune.ortbuild.mlas import CEILINGS, ISA_BLOCKS, PLATFORM_CPP, cut_platform, isa_blocks
from ortprune.ortbuild.prune import prepare_sources
from ortprune.ortbuild.toolchain import RELR_FLAG, find_tools, resolve
from ortprune.ortbuild.variants import BuildSpec
from tests.ortbuild.test_build import fake_env  # noqa: F401  (fixture)

CFG = "ai.onnx;17;Add,MatMul\n"
GCC_ID = toolchain_id("c++ (Debian 12.2.0-14+deb12u1) 12.2.0", "cmake version 3.31.10", "x86_64-linux-gnu")
DT_RELR = 36
REAL_SOURCE = cache_dir("src", "onnxruntime-1.21.0")


def fake_clang_bin(bindir: Path) -> Path:
    """Executables named as the clang toolchain's, answering --version like Debian's clang-16."""
    bindir.mkdir(parents=True, exist_ok=True)
    t = TOOLCHAINS["clang"]
    for exe in (t.cc, t.cxx, t.ar, t.ranlib):
        p = bindir / exe
        p.write_text("#!/bin/sh\necho 'Debian clang version 16.0.6 (15~deb12u1)'\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return bindir


# ---- keys ------------------------------------------------------------------------------------------------
def test_gcc_keys_are_the_keys_builds_already_have() -> None:
    """Recorded with the code before --toolchain existed: the default toolchain changes no key. (reduced was
    1.21.0-reduced-fe3488deaec1 until config-built variants compiled only their kernels, then
    1.21.0-reduced-f7f92c09fd3f until they precompiled headers: each a different build.)"""
    assert BuildSpec("1.21.0", "reduced", CFG, source_id="s", toolchain=GCC_ID).key() == "1.21.0-reduced-45762a9571ee"
    assert BuildSpec("1.21.0", "full", source_id="s", toolchain=GCC_ID).key() == "1.21.0-full-a6ccd5a5de3b"
    assert BuildSpec("1.21.0", "full", source_id="s", toolchain=GCC_ID, toolchain_name="gcc").key() == (
        "1.21.0-full-a6ccd5a5de3b"
    )


def test_toolchain_and_its_flags_enter_the_key_paths_do_not(tmp_path: Path) -> None:
    bindir = fake_clang_bin(tmp_path / "a" / "bin")
    other = fake_clang_bin(tmp_path / "b" / "bin")
    with_relr = resolve("clang", str(bindir), glibc=(2, 36))
    elsewhere = resolve("clang", str(other), glibc=(2, 36))
    without = resolve("clang", str(bindir), glibc=(2, 35))
    assert RELR_FLAG in with_relr.link_flags and RELR_FLAG not in without.link_flags
    assert with_relr.cxx == str(bindir / "clang++-16") and elsewhere.cxx == str(other / "clang++-16")
    line = "Debian clang version 16.0.6 (15~deb12u1)"

    def key(tools: object, name: str = "clang") -> str:
        flags = tools.key_flags()  # type: ignore[attr-defined]
        tid = toolchain_id(line, "cmake version 3.31.10", "x86_64-pc-linux-gnu", flags)
        return BuildSpec("1.21.0", "reduced", CFG, source_id="s", toolchain=tid, toolchain_name=name).key()

    assert key(with_relr) == key(elsewhere)  # where the compiler lives is not part of the key
    assert len({key(with_relr), key(without), BuildSpec("1.21.0", "reduced", CFG, toolchain=GCC_ID).key()}) == 3
    assert str(bindir) not in json.dumps(with_relr.key_flags())
    # the name enters the key even for a spec without identity (validation, estimate)
    assert BuildSpec("1.21.0", "full", toolchain_name="clang").key() != BuildSpec("1.21.0", "full").key()
    with pytest.raises(BuildError, match="unknown toolchain 'icc'"):
        BuildSpec("1.21.0", "full", toolchain_name="icc")


def test_missing_compiler_is_one_error_naming_the_packages(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as e:
        resolve("clang", str(tmp_path))
    text = str(e.value)
    assert "--toolchain clang needs clang-16, clang++-16, llvm-ar-16, llvm-ranlib-16" in text
    assert "make toolchain-deps" in text and "apt-get install clang-16 lld-16 llvm-16" in text
    assert resolve("gcc", str(tmp_path)).cmake_defines() == []  # the default adds nothing, finds nothing itself


def test_find_tools_is_one_check_for_compilers_and_cross_tools(tmp_path: Path) -> None:
    """The --toolchain and the --target checks share it: every missing executable in one error, with the make
    target and the packages; the found ones by role."""
    cc = tmp_path / "my-cc"
    cc.write_text("#!/bin/sh\n")
    cc.chmod(cc.stat().st_mode | stat.S_IXUSR)
    tools = {"cc": "my-cc", "cxx": "my-c++", "ar": "my-ar"}
    with pytest.raises(BuildError) as e:
        find_tools(tools, str(tmp_path), "--toolchain x", "toolchain-deps", ["pkg-a", "pkg-b"])
    assert (
        str(e.value)
        == "--toolchain x needs my-c++, my-ar on PATH: make toolchain-deps (or apt-get install pkg-a pkg-b)"
    )
    assert find_tools({"cc": "my-cc"}, str(tmp_path), "--target t", "cross-deps", []) == {"cc": str(cc)}


def test_clang_build_passes_compilers_flags_and_lto_to_build_py(
    fake_env: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bindir = fake_clang_bin(tmp_path / "clangbin")
    env = runner.build_env()
    monkeypatch.setattr(
        runner, "build_env", lambda ccache_remote=None, distcc=None: dict(env, PATH=f"{bindir}:{env['PATH']}")
    )
    spec = BuildSpec("1.21.0", "reduced", CFG, ("--enable_lto",), toolchain_name="clang")
    result = runner.build(spec, fake_env, log=lambda s: None)
    args = result.build_py_args
    assert "--enable_lto" in args
    defines = args[args.index("--cmake_extra_defines") + 1 :]
    assert f"CMAKE_CXX_COMPILER={bindir / 'clang++-16'}" in defines
    assert f"CMAKE_C_COMPILER={bindir / 'clang-16'}" in defines
    assert "CMAKE_CXX_FLAGS_MINSIZEREL=-Oz -DNDEBUG" in defines
    assert f"CMAKE_CXX_COMPILER_AR={bindir / 'llvm-ar-16'}" in defines  # what CMake's IPO archives with
    shared = next(d for d in defines if d.startswith("CMAKE_SHARED_LINKER_FLAGS="))
    assert "-fuse-ld=lld" in shared and "-Wl,--icf=all" in shared
    assert "CMAKE_CXX_COMPILER_LAUNCHER=ccache" in defines  # still through the shared ccache
    assert result.toolchain_name == "clang" and runner.spec_of(result).key() == result.key
    # a gcc build of the same spec passes none of it
    gcc = runner.build(BuildSpec("1.21.0", "reduced", CFG), fake_env, log=lambda s: None)
    assert not any(a.startswith(("CMAKE_CXX_COMPILER=", "CMAKE_SHARED_LINKER_FLAGS=")) for a in gcc.build_py_args)
    assert gcc.key != result.key


def test_clang_build_without_clang_stops_before_anything(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(runner, "build_env", lambda ccache_remote=None, distcc=None: {"PATH": "/nonexistent"})
    with pytest.raises(BuildError, match="--toolchain clang needs clang-16"):
        runner.build(BuildSpec("1.21.0", "full", toolchain_name="clang"), fake_env, log=lambda s: None)
    assert not list(cache_dir("builds").glob("*"))  # no build directory was made


# ---- the real toolchain on a small library -----------------------------------------------------------------
LIB_C = """
int twice_a(int x) { return 2 * x + 1; }
int twice_b(int x) { return 2 * x + 1; }
static const char *names[] = {"a", "b", "c", "d"};  /* relative relocations */
const char *name(int i) { return names[i & 3]; }
"""


def test_clang_toolchain_flags_link_a_real_library(tmp_path: Path) -> None:
    """clang-16 + lld-16 with the toolchain's own flags: -Oz, --icf=all folds identical functions, RELR packs
    the relative relocations (DT_RELR), and ThinLTO objects archived by llvm-ar link."""
    try:
        tools = resolve("clang")
    except BuildError as e:
        pytest.skip(f"clang toolchain not installed: {e}")
    (tmp_path / "lib.c").write_text(LIB_C)
    opt = TOOLCHAINS["clang"].opt
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True)  # noqa: E731
    run(tools.cc, opt, "-fPIC", "-ffunction-sections", "-fdata-sections", "-c", "lib.c", "-o", "lib.o")
    run(tools.cc, "-shared", *tools.link_flags, "-Wl,--gc-sections", "lib.o", "-o", "libt.so")
    with ElfFile(tmp_path / "libt.so") as elf:
        syms = {s.name: s.value for s in elf.symbols("dynsym") if s.name.startswith("twice_")}
        tags = {tag for tag, _ in elf.dynamic}
    assert syms["twice_a"] == syms["twice_b"]  # folded into one body
    if RELR_FLAG in tools.link_flags:
        assert DT_RELR in tags
    # LTO: bitcode objects, an llvm-ar archive, linked by lld
    run(tools.cc, opt, "-flto=thin", "-fPIC", "-c", "lib.c", "-o", "lto.o")
    run(tools.ar, "cr", "liblto.a", "lto.o")
    run(tools.ranlib, "liblto.a")
    run(tools.cc, "-flto=thin", "-shared", *tools.link_flags, "-Wl,--whole-archive", "liblto.a",
        "-Wl,--no-whole-archive", "-o", "liblto.so")  # fmt: skip
    assert "twice_a" in run("nm", "-D", "liblto.so").stdout


# ---- mlas-isa ------------------------------------------------------------------------------------------------
def real_platform() -> Path:
    path = REAL_SOURCE / PLATFORM_CPP
    if not path.is_file():
        pytest.skip(f"ORT 1.21.0's source is not in the cache ({REAL_SOURCE}; ortprune source fetch debian:1.21.0)")
    return path


def test_every_isa_block_is_found_once_in_ort_1_21() -> None:
    text = real_platform().read_text()
    assert set(isa_blocks(text)) == set(ISA_BLOCKS)


@pytest.mark.parametrize("ceiling", sorted(CEILINGS))
def test_cut_keeps_the_ceiling_and_below(ceiling: str) -> None:
    text = real_platform().read_text()
    new, cut = cut_platform(text, ceiling)
    assert set(cut.blocks) == set(CEILINGS[ceiling])
    assert set(isa_blocks(new)) == set(ISA_BLOCKS) - set(CEILINGS[ceiling])
    for kept in (
        "MlasGemmFloatKernelFma3",
        "MlasGemmU8S8DispatchAvx2",
        "MlasGemmFloatKernelSse",
        "MlasSgemmKernelM1Avx",
    ):
        assert kept in new and kept not in cut.symbols
    assert new.count("#if") == text.count("#if") and new.count("#endif") == text.count("#endif")
    if ceiling == "avx2":
        assert "MlasGemmFloatKernelAvx512F" in cut.symbols and "MlasGemmU8S8DispatchAmx" in cut.symbols
        assert "MlasGemmU8S8DispatchAvx2" not in cut.symbols  # the AVX-VNNI block names it, AVX2 still does
    else:
        assert "MlasGemmFloatKernelAvx512F" in new and "MlasGemmU8S8DispatchAmx" in cut.symbols


def test_cut_platform_compiles_and_stops_referencing_the_dropped_kernels(tmp_path: Path) -> None:
    """Both platform.cpp's compiled with the system compiler: the cut object's undefined symbols are the
    original's minus the kernels the cut names (a block the compiler skips, like gcc 12's AVX-NE-CONVERT
    under ``__GNUC__ >= 13``, references nothing either way), and no new one."""
    path = real_platform()
    cxx = shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    source = path.parents[4]
    gen = tmp_path / "ortprune.generated" / PLATFORM_CPP
    prepare_sources(source, tmp_path, ("mlas-isa=avx2",), None)
    inc = [f"-I{source / d}" for d in ("onnxruntime/core/mlas/inc", "include/onnxruntime", "onnxruntime")]

    def undefined(src: Path, obj: str) -> set[str]:
        subprocess.run([cxx, "-std=c++17", "-Os", *inc, "-c", str(src), "-o", str(tmp_path / obj)], check=True)
        nm = subprocess.run(["nm", "-u", "-C", str(tmp_path / obj)], capture_output=True, text=True, check=True)
        return {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}

    orig, cut = undefined(path, "orig.o"), undefined(gen, "cut.o")
    named = set(cut_platform(path.read_text(), "avx2")[1].symbols)
    assert cut <= orig
    gone = orig - cut
    assert gone <= named and len(gone) >= len(named) - 1, sorted(named - gone)
    assert "MlasGemmFloatKernelFma3" in cut


def test_mlas_lever_in_a_build_tree_and_its_checks(tmp_path: Path) -> None:
    real_platform()
    before = (REAL_SOURCE / PLATFORM_CPP).stat().st_mtime_ns
    defines, report = prepare_sources(REAL_SOURCE, tmp_path, ("mlas-isa=avx2",), None)
    overlay = tmp_path / "ortprune.generated/overlay.cmake"
    assert defines == [f"CMAKE_PROJECT_onnxruntime_INCLUDE={overlay}"]
    assert str(REAL_SOURCE / PLATFORM_CPP) in overlay.read_text()
    gen = (tmp_path / "ortprune.generated" / PLATFORM_CPP).read_text()
    assert f'#include "{REAL_SOURCE / "onnxruntime/core/mlas/lib/mlasi.h"}"' in gen
    summary = report.summary()
    assert summary["mlas"]["ceiling"] == "avx2" and "amx" in summary["mlas"]["blocks_dropped"]  # type: ignore[index]
    assert (REAL_SOURCE / PLATFORM_CPP).stat().st_mtime_ns == before  # the cached source is never touched


def test_mlas_lever_spec_rules_and_a_source_it_does_not_fit(tmp_path: Path) -> None:
    full = BuildSpec("1.21.0", "full", prune=("mlas-isa=avx2",))  # no config needed
    assert full.prune == ("mlas-isa=avx2",) and full.key() != BuildSpec("1.21.0", "full").key()
    assert full.key() != BuildSpec("1.21.0", "full", prune=("mlas-isa=avx512",)).key()
    with pytest.raises(BuildError, match="ceiling must be one of avx2, avx512"):
        BuildSpec("1.21.0", "full", prune=("mlas-isa=sse2",))
    with pytest.raises(BuildError, match="one mlas-isa"):
        BuildSpec("1.21.0", "full", prune=("mlas-isa=avx2", "mlas-isa=avx512"))
    with pytest.raises(BuildError, match="needs a config-built variant"):
        BuildSpec("1.21.0", "full", prune=("schemas", "mlas-isa=avx2"))
    with pytest.raises(BuildError, match=r"choose from schemas, optimizers, sources, mlas-isa=avx2\|avx512"):
        BuildSpec("1.21.0", "full", prune=("mlas",))
    text = "void f() {\n  if ((Cpuid7_1[0] & 0x10) != 0) {\n    x = MlasGemmU8S8KernelAvxVnni;\n  }\n}\n"
    with pytest.raises(BuildError, match="no single avx512, avx-vnni-int8, avx-ne-convert, amx dispatch block"):
        cut_platform(text, "avx2", "platform.cpp")


# ---- estimate ------------------------------------------------------------------------------------------------
def test_estimate_refuses_what_it_cannot_predict() -> None:
    from ortprune.analyze.estimate import check_predictable

    check_predictable("gcc", ("--disable_rtti",))
    with pytest.raises(OrtpruneError, match="cannot predict --toolchain clang"):
        check_predictable("clang", ())
    with pytest.raises(OrtpruneError, match="cannot predict --enable_lto"):
        check_predictable("gcc", ("--enable_lto",))
    spec = BuildSpec("1.21.0", "reduced", CFG, ("--enable_lto",))
    from ortprune.analyze.estimate import estimate_levers

    with pytest.raises(OrtpruneError, match="cannot predict"):
        estimate_levers(spec, Path("/nonexistent"))


def test_results_command_reproduces_toolchain_and_levers() -> None:
    from ortprune.analyze.builds import command_for
    from ortprune.results import BuildResult

    r = BuildResult("1.21.0", "reduced-max", "k", [], ["--enable_lto"], "h", CFG, "clang 16", "cmake 3.31", "/s",
                    "/b", "/b/lib.so", 1, [], 1.0, prune=["mlas-isa=avx2", "optimizers", "schemas"],
                    keep_transformers=["ConstantFolding"], toolchain_name="clang")  # fmt: skip
    cmd = command_for(r, "bundled-all.config")
    assert cmd == (
        "ortprune build --source debian:1.21.0 --variant reduced-max --config bundled-all.config "
        "--extra=--enable_lto --prune mlas-isa=avx2 --keep-transformers ConstantFolding --toolchain clang"
    )
