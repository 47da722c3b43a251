"""The ``vtables`` lever: every C++ object full-LTO bitcode with whole-program vtables, so clang's virtual
function elimination drops the virtual functions no call reaches, while the C entry points stay exported.

On a small CMake + ninja project shaped like ORT's minimal build, through the real overlay and clang-16/lld:
an LTO library with a class whose virtual functions are partly called, and a library compiled *without* IPO
(as ORT compiles protobuf) that deletes those objects through their base class. Without the flags on that
second library its virtual call is native code the link cannot see: the deleting destructor goes and the
call jumps to address 0 (what a first trial on ORT's minimal build did)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ortprune.errors import BuildError
from ortprune.ortbuild.prune import (
    EXPORTS_LIST,
    VTABLES_FLAGS,
    VTABLES_LEVER,
    check_levers,
    exports_header,
    overlay_cmake,
    prepare_sources,
)
from ortprune.ortbuild.variants import BuildSpec

MESSAGE_H = """#pragma once
struct Message {  // protobuf's MessageLite: destroyed through the base by code compiled without IPO
  virtual ~Message();
  virtual int Size() const = 0;
  virtual int Parse(const char* text) = 0;
};
void DestroyAll(Message** items, int n);
"""
PROTO_CC = """#include "message.h"
Message::~Message() {}
void DestroyAll(Message** items, int n) { for (int i = 0; i < n; ++i) delete items[i]; }
"""
FRAMEWORK_CC = """#include <cstdio>
#include <cstring>
#include "message.h"
extern "C" int Three(void);  // C code in the same LTO link (a C object must be an LTO unit split the same way)
int destroyed = 0;
struct Tensor final : Message {
  int n = Three();
  ~Tensor() override { ++destroyed; }
  int Size() const override { return n; }
  int Parse(const char* text) override {  // never called: the lever drops it (and its string)
    std::printf("PARSE_NEVER_CALLED %s\\n", text);
    return int(std::strlen(text)) * 7 + n;
  }
};
Message* MakeTensor() { return new Tensor; }
"""
API_CC = """#include "message.h"
struct OrtApiBase { int version; };
struct OrtSessionOptions;
struct OrtStatus;
Message* MakeTensor();
extern int destroyed;
static OrtApiBase base{21};
extern "C" {  // as ORT's header declares them off Apple: ORT_EXPORT is empty
const OrtApiBase* OrtGetApiBase(void) noexcept;
OrtStatus* OrtSessionOptionsAppendExecutionProvider_CPU(OrtSessionOptions*, int) noexcept;
const OrtApiBase* OrtGetApiBase(void) noexcept {
  Message* items[2] = {MakeTensor(), MakeTensor()};
  int size = items[0]->Size() + items[1]->Size();
  DestroyAll(items, 2);
  base.version = size * 10 + destroyed;  // 3+3 -> 60, plus the 2 destroyed
  return &base;
}
OrtStatus* OrtSessionOptionsAppendExecutionProvider_CPU(OrtSessionOptions*, int) noexcept { return nullptr; }
}
"""
LDS = "VERS_1 {\n global:\n  OrtGetApiBase;\n  OrtSessionOptionsAppendExecutionProvider_CPU;\n local:\n  *;\n};\n"
CMAKE = """cmake_minimum_required(VERSION 3.20)
project(onnxruntime C CXX)
add_library(protobuf-lite STATIC proto.cc)
add_library(onnxruntime_framework STATIC framework.cc helper.c)
set_property(TARGET onnxruntime_framework PROPERTY INTERPROCEDURAL_OPTIMIZATION ON)
set_target_properties(protobuf-lite onnxruntime_framework PROPERTIES POSITION_INDEPENDENT_CODE ON)
add_library(onnxruntime SHARED api.cc)
set_property(TARGET onnxruntime PROPERTY INTERPROCEDURAL_OPTIMIZATION ON)
target_link_libraries(onnxruntime PRIVATE onnxruntime_framework protobuf-lite)
target_link_options(onnxruntime PRIVATE "-Wl,--version-script=${CMAKE_SOURCE_DIR}/ort.lds")
"""


def _tools() -> tuple[str, str, list[str]]:
    from ortprune.ortbuild.toolchain import resolve

    bindir = str(Path(sys.executable).parent)
    cmake, ninja = shutil.which("cmake", path=bindir), shutil.which("ninja", path=bindir)
    if cmake is None or ninja is None:
        pytest.skip("cmake and ninja (pip) are needed")
    try:
        clang = resolve("clang")
    except BuildError as e:
        pytest.skip(f"the clang toolchain is needed: {e}")
    return cmake, ninja, [f"-D{d}" for d in clang.cmake_defines()]


def _project(root: Path) -> Path:
    proj = root / "proj"
    proj.mkdir(parents=True)
    for name, text in {"message.h": MESSAGE_H, "proto.cc": PROTO_CC, "framework.cc": FRAMEWORK_CC,
                       "helper.c": "int Three(void) { return 3; }\n", "api.cc": API_CC, "ort.lds": LDS,
                       "CMakeLists.txt": CMAKE}.items():  # fmt: skip
        (proj / name).write_text(text)
    symbols = proj / EXPORTS_LIST  # the project doubles as the ORT source tree the header is made from
    symbols.parent.mkdir(parents=True)
    symbols.write_text("OrtGetApiBase\nOrtSessionOptionsAppendExecutionProvider_CPU\n")
    return proj


def _build(tools: tuple[str, str, list[str]], proj: Path, build: Path, overlay: Path | None) -> Path:
    cmake, ninja, defines = tools
    args = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DCMAKE_BUILD_TYPE=MinSizeRel", *defines]
    if overlay is not None:
        args.append(f"-DCMAKE_PROJECT_onnxruntime_INCLUDE={overlay}")
    cfg = subprocess.run([cmake, "-S", str(proj), "-B", str(build), *args], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    run = subprocess.run([ninja, "-C", str(build)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    return build / "libonnxruntime.so"


def _call(lib: Path) -> subprocess.CompletedProcess[str]:
    """OrtGetApiBase()->version in a child process (a call through a dropped slot kills it)."""
    code = (
        "import ctypes, sys\nlib = ctypes.CDLL(sys.argv[1])\nf = lib.OrtGetApiBase\n"
        "f.restype = ctypes.POINTER(ctypes.c_int)\nprint(f()[0])\n"
    )
    return subprocess.run([sys.executable, "-c", code, str(lib)], capture_output=True, text=True, timeout=60)


def _exports(lib: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True)
    return {line.split()[-1].split("@")[0] for line in out.stdout.splitlines() if line.strip()}


def test_unreached_virtuals_go_calls_still_work_and_the_entry_points_stay_exported(tmp_path: Path) -> None:
    tools = _tools()
    proj = _project(tmp_path)
    plain = _build(tools, proj, tmp_path / "plain", None)
    defines, report = prepare_sources(proj, tmp_path / "lever", (VTABLES_LEVER,), None)
    lever = _build(tools, proj, tmp_path / "lever", Path(defines[0].split("=", 1)[1]))

    assert b"PARSE_NEVER_CALLED" in plain.read_bytes()
    assert b"PARSE_NEVER_CALLED" not in lever.read_bytes()  # the unreached virtual and its string are gone
    assert _call(plain).stdout.strip() == "62"
    done = _call(lever)
    assert done.returncode == 0 and done.stdout.strip() == "62", done  # sizes and both deleting destructors
    assert _exports(lever) >= {"OrtGetApiBase", "OrtSessionOptionsAppendExecutionProvider_CPU"}
    assert any(g.endswith("ortprune-exports.h") for g in report.generated)


def test_without_the_flags_on_the_non_ipo_library_the_call_jumps_to_nothing(tmp_path: Path) -> None:
    """Why every target gets the flags: the same build, the flags on the IPO targets only."""
    tools = _tools()
    proj = _project(tmp_path)
    defines, _ = prepare_sources(proj, tmp_path / "b", (VTABLES_LEVER,), None)
    overlay = Path(defines[0].split("=", 1)[1])
    text = overlay.read_text()
    only_ipo = "get_target_property(_ipo ${_t} INTERPROCEDURAL_OPTIMIZATION)\n    if(_ipo AND _type MATCHES"
    narrowed = text.replace("if(_type MATCHES", only_ipo, 1)
    assert narrowed != text
    overlay.write_text(narrowed)
    broken = _call(_build(tools, proj, tmp_path / "b", overlay))
    assert broken.returncode != 0  # SIGSEGV: the deleting destructor was dropped under the native call


def test_refusals_name_what_is_wrong(tmp_path: Path) -> None:
    assert VTABLES_LEVER in check_levers([VTABLES_LEVER, "sources"])
    for kwargs in ({}, {"toolchain_name": "clang"}, {"extra_flags": ("--enable_lto",)}):
        with pytest.raises(BuildError, match="needs --toolchain clang and --extra=--enable_lto"):
            BuildSpec("1.21.0", "full", prune=(VTABLES_LEVER,), **kwargs)  # type: ignore[arg-type]
    ok = BuildSpec("1.21.0", "full", prune=(VTABLES_LEVER,), toolchain_name="clang", extra_flags=("--enable_lto",))
    assert ok.key() != BuildSpec("1.21.0", "full", toolchain_name="clang", extra_flags=("--enable_lto",)).key()

    src = tmp_path / "src"
    with pytest.raises(BuildError, match="reads ORT's exported symbols") as e:
        exports_header(src)
    assert EXPORTS_LIST in str(e.value)
    symbols = src / EXPORTS_LIST
    symbols.parent.mkdir(parents=True)
    symbols.write_text("OrtGetApiBase\nOrtGetTrainingApi\n")
    with pytest.raises(BuildError, match="no declaration for the exported OrtGetTrainingApi") as e:
        prepare_sources(src, tmp_path / "b", (VTABLES_LEVER,), None)
    assert not (tmp_path / "b").exists()  # refused before anything is written
    symbols.write_text("\n")
    with pytest.raises(BuildError, match=r"\(none listed\)"):
        exports_header(src)
    assert "virtual function elimination" not in overlay_cmake({}, [], [], None)  # only with the lever
    assert all(f in overlay_cmake({}, [], [], None, None, tmp_path / "x.h") for f in VTABLES_FLAGS)


def test_gcc_is_refused_at_configure(tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    cmake, ninja = shutil.which("cmake", path=bindir), shutil.which("ninja", path=bindir)
    if cmake is None or ninja is None or shutil.which("g++") is None:
        pytest.skip("cmake and ninja (pip) and g++ are needed")
    proj = _project(tmp_path)
    defines, _ = prepare_sources(proj, tmp_path / "b", (VTABLES_LEVER,), None)
    cfg = subprocess.run(
        [cmake, "-S", str(proj), "-B", str(tmp_path / "b"), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}",
         "-DCMAKE_CXX_COMPILER=g++", f"-D{defines[0]}"], capture_output=True, text=True,
    )  # fmt: skip
    assert cfg.returncode != 0 and "--prune vtables needs clang" in cfg.stderr
