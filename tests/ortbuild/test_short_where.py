"""The ``short-where`` lever: ORT's error locations (``ORT_ENFORCE``/``ORT_THROW`` take ``__PRETTY_FUNCTION__``)
name the function, not its whole signature, in every target, through the real overlay (CMake + ninja, g++)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ortprune.ortbuild.prune import WHERE_FLAG, WHERE_LEVER, check_levers, overlay_cmake, prepare_sources
from ortprune.ortbuild.variants import BuildSpec

SOURCE = """#include <cstdio>
#define ORT_WHERE_WITH_STACK __PRETTY_FUNCTION__  // as ORT's common.h passes it to CodeLocation
namespace onnxruntime { template <typename T> struct Kernel {
  const char* Where(const T&) const { return ORT_WHERE_WITH_STACK; } }; }
extern "C" const char* OrtWhere() { return onnxruntime::Kernel<float>().Where(1.0f); }
"""


def _build(root: Path, overlay: Path) -> Path:
    bindir = str(Path(sys.executable).parent)
    cmake, ninja = shutil.which("cmake", path=bindir), shutil.which("ninja", path=bindir)
    if cmake is None or ninja is None or shutil.which("g++") is None:
        pytest.skip("cmake and ninja (pip) and g++ (make build-deps) are needed")
    proj = root / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "where.cc").write_text(SOURCE)
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(onnxruntime CXX)\nadd_library(onnxruntime SHARED where.cc)\n"
    )
    build = root / overlay.stem
    args = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DCMAKE_CXX_COMPILER=g++",
            f"-DCMAKE_PROJECT_onnxruntime_INCLUDE={overlay}"]  # fmt: skip
    cfg = subprocess.run([cmake, "-S", str(proj), "-B", str(build), *args], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stderr
    run = subprocess.run([ninja, "-C", str(build)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    return build / "libonnxruntime.so"


def _where(lib: Path) -> str:
    code = "import ctypes, sys\nf = ctypes.CDLL(sys.argv[1]).OrtWhere\nf.restype = ctypes.c_char_p\nprint(f().decode())"
    return subprocess.run([sys.executable, "-c", code, str(lib)], capture_output=True, text=True, check=True).stdout


def test_error_locations_name_the_function_only(tmp_path: Path) -> None:
    assert WHERE_LEVER in check_levers([WHERE_LEVER])
    plain = tmp_path / "plain.cmake"
    plain.write_text(overlay_cmake({}, [], [], None))
    defines, _ = prepare_sources(tmp_path / "src", tmp_path / "lever", (WHERE_LEVER,), None)
    lever = Path(defines[0].split("=", 1)[1])
    assert WHERE_FLAG in lever.read_text() and WHERE_FLAG not in plain.read_text()

    before, after = _build(tmp_path, plain), _build(tmp_path, lever)
    assert _where(before).strip() == "const char* onnxruntime::Kernel<T>::Where(const T&) const [with T = float]"
    assert _where(after).strip() == "Where"
    assert after.stat().st_size <= before.stat().st_size


def test_any_variant_and_toolchain_may_use_it() -> None:
    assert BuildSpec("1.21.0", "full", prune=(WHERE_LEVER,)).prune == (WHERE_LEVER,)
    assert BuildSpec("1.21.0", "full", prune=(WHERE_LEVER,), toolchain_name="clang").prune == (WHERE_LEVER,)
