"""The ``pch`` lever: ORT's own targets precompile their common headers (gcc), the code they make is the same,
and ccache still hits when a second build directory compiles the same sources (what a second config relies
on). On a small CMake + ninja project with ORT's target names, through the real overlay and real ccache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ortprune.ortbuild.prune import PCH_HEADERS, PCH_LEVER, check_levers, overlay_cmake
from ortprune.ortbuild.runner import build_env

HEADER = """#pragma once
#include <map>
#include <string>
#include <vector>
#include <unordered_map>
#include <functional>
namespace core {
inline std::string shout(const std::string& s) { std::string r; for (char c : s) r += char(c & ~0x20); return r; }
}
"""


def _tools() -> tuple[str, str, str]:
    bindir = str(Path(sys.executable).parent)
    cmake, ninja = shutil.which("cmake", path=bindir), shutil.which("ninja", path=bindir)
    ccache = shutil.which("ccache")
    if cmake is None or ninja is None or ccache is None or shutil.which("g++") is None:
        pytest.skip("cmake and ninja (pip), ccache and g++ (make build-deps) are needed")
    return cmake, ninja, ccache


def _project(root: Path) -> Path:
    proj = root / "proj"
    (proj / "core").mkdir(parents=True)
    (proj / "core" / "big.h").write_text(HEADER)
    for name in ("a", "b"):
        (proj / f"{name}.cc").write_text(
            f'#include <cstdio>\n#include "core/big.h"\nstd::string {name}_fn(const std::string& s) '
            f'{{ return core::shout(s) + "{name}"; }}\n'
        )
    (proj / "main.cc").write_text(
        "#include <string>\nstd::string a_fn(const std::string&);\nstd::string b_fn(const std::string&);\n"
        'extern "C" int OrtApi() { return int(a_fn("x").size() + b_fn("yz").size()); }\n'
    )
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(onnxruntime CXX)\n"
        "add_library(onnxruntime_session STATIC a.cc b.cc)\ntarget_include_directories(onnxruntime_session "
        "PRIVATE ${CMAKE_SOURCE_DIR})\nset_target_properties(onnxruntime_session PROPERTIES "
        "POSITION_INDEPENDENT_CODE ON)\nadd_library(onnxruntime SHARED main.cc)\n"
        "target_link_libraries(onnxruntime PRIVATE onnxruntime_session)\n"
    )
    return proj


def _build(
    tools: tuple[str, str, str],
    proj: Path,
    build: Path,
    overlay: Path,
    env: dict[str, str],
    extra: tuple[str, ...] = (),
    must_pass: bool = True,
) -> str:
    cmake, ninja, _ = tools
    args = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DCMAKE_BUILD_TYPE=MinSizeRel",
            "-DCMAKE_CXX_COMPILER=g++", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache",
            f"-DCMAKE_PROJECT_onnxruntime_INCLUDE={overlay}", *extra]  # fmt: skip
    cfg = subprocess.run([cmake, "-S", str(proj), "-B", str(build), *args], capture_output=True, text=True, env=env)
    assert cfg.returncode == 0, cfg.stderr
    run = subprocess.run([ninja, "-C", str(build), "-v"], capture_output=True, text=True, env=env)
    assert run.returncode == 0 or not must_pass, run.stdout
    return cfg.stdout + run.stdout + ("" if run.returncode == 0 else "\nBUILD FAILED")


def _stats(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(["ccache", "--print-stats"], capture_output=True, text=True, env=env, check=True).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def test_the_lever_is_known_and_ships_headers_for_ort_targets() -> None:
    assert PCH_LEVER in check_levers(["sources", PCH_LEVER])
    assert set(PCH_HEADERS) >= {"onnxruntime_optimizer", "onnxruntime_providers", "onnxruntime_framework"}
    assert "target_precompile_headers" not in overlay_cmake({}, [], [], None)  # only with the lever


def test_precompiled_headers_keep_the_code_and_ccache_hits_from_another_build_dir(tmp_path: Path) -> None:
    tools = _tools()
    proj = _project(tmp_path)
    overlay = tmp_path / "overlay.cmake"
    overlay.write_text(overlay_cmake({}, [], [], None, {"onnxruntime_session": ("core/big.h",), "absent": ("x.h",)}))
    plain_overlay = tmp_path / "plain.cmake"
    plain_overlay.write_text(overlay_cmake({}, [], [], None))
    env = build_env()
    env.update(CCACHE_DIR=str(tmp_path / "ccache"), CCACHE_BASEDIR=str(tmp_path), CCACHE_NOHASHDIR="true")
    env.pop("CCACHE_REMOTE_STORAGE", None)
    env.pop("CCACHE_PREFIX", None)

    first = _build(tools, proj, tmp_path / "b1", overlay, env)
    assert "ortprune: precompiled headers for onnxruntime_session" in first  # a missing target is skipped
    assert re.search(r"-include \S*cmake_pch\.hxx", first)  # both sources use it
    assert (tmp_path / "b1/CMakeFiles/onnxruntime_session.dir/cmake_pch.hxx.gch").is_file()

    # the same code as without precompiled headers: same functions, same instructions
    plain = tmp_path / "plain"
    _build(tools, proj, plain, plain_overlay, env)

    def disassembly(build: Path) -> list[str]:
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(build / "libonnxruntime.so")],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return sorted(line.split(":", 1)[-1].strip() for line in out.splitlines()[3:] if line.strip())

    assert disassembly(tmp_path / "b1") == disassembly(plain)

    # a second build dir of the same sources (another config's build): every compile, the .gch too, hits ccache
    subprocess.run(["ccache", "-z"], env=env, check=True, capture_output=True)
    _build(tools, proj, tmp_path / "b2", overlay, env)
    stats = _stats(env)
    hits = stats.get("direct_cache_hit", 0) + stats.get("preprocessed_cache_hit", 0)
    misses = stats.get("cache_miss", 0)
    assert hits >= 4 and misses == 0, stats  # the .gch, a.cc, b.cc, main.cc
    assert os.path.getsize(tmp_path / "b2/libonnxruntime.so") > 0


def test_a_full_build_can_ask_for_it_and_the_users_sloppiness_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ortprune.ortbuild.prune import prepare_sources
    from ortprune.ortbuild.variants import BuildSpec

    assert BuildSpec("1.21.0", "full", prune=(PCH_LEVER,)).prune == (PCH_LEVER,)  # no config needed
    defines, _ = prepare_sources(tmp_path / "src", tmp_path / "b", (PCH_LEVER,), None)
    overlay = Path(defines[0].split("=", 1)[1]).read_text()
    for target in PCH_HEADERS:
        assert f"target_precompile_headers({target} PRIVATE" in overlay

    monkeypatch.setenv("CCACHE_SLOPPINESS", "locale,time_macros")
    sloppy = build_env()["CCACHE_SLOPPINESS"].split(",")
    assert sloppy[:2] == ["locale", "time_macros"] and "pch_defines" in sloppy and sloppy.count("time_macros") == 1


def test_with_distcc_nothing_is_precompiled_and_the_build_works(tmp_path: Path) -> None:
    """A distcc helper makes a .gch from preprocessed text, which keeps no macro (include guards included):
    every object using it fails with redefinitions (seen on a whole ORT build). ``runner`` passes
    ORTPRUNE_NO_PCH=ON whenever distcc compiles, and the overlay then precompiles nothing."""
    from tests import servers

    tools = _tools()
    proj = _project(tmp_path)
    overlay = tmp_path / "overlay.cmake"
    overlay.write_text(overlay_cmake({}, [], [], None, {"onnxruntime_session": ("core/big.h",)}))
    with servers.distccd(tmp_path / "distccd", jobs=2) as helper:
        env = build_env(None, helper.hosts)
        env.update(CCACHE_DIR=str(tmp_path / "ccache"), CCACHE_BASEDIR=str(tmp_path), CCACHE_NOHASHDIR="true")
        env.pop("CCACHE_REMOTE_STORAGE", None)
        broken = _build(tools, proj, tmp_path / "with-pch", overlay, env, must_pass=False)
        assert "BUILD FAILED" in broken and "redefinition" in broken  # what the switch prevents
        ok = _build(tools, proj, tmp_path / "no-pch", overlay, env, ("-DORTPRUNE_NO_PCH=ON",))
        assert "precompiled headers for" not in ok and "cmake_pch" not in ok
        assert {"a.cc", "b.cc"} <= set(helper.compiled())  # the objects were still compiled by the helper


def test_the_runner_switches_it_off_for_distcc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ortprune.ortbuild import runner
    from ortprune.ortbuild.toolchain import resolve
    from ortprune.ortbuild.variants import BuildSpec
    from tests.ortbuild import fake_ort
    from tests.ortbuild.test_build import DEPS_TXT

    monkeypatch.setenv("ORTPRUNE_CACHE", str(tmp_path / "cache"))
    source = fake_ort.make_source(tmp_path / "ort", DEPS_TXT)
    spec = BuildSpec("1.21.0", "full", prune=(PCH_LEVER,))
    tools = resolve("gcc", os.environ.get("PATH", ""))
    local = runner._prepare(spec, source, None, None, tools)
    remote = runner._prepare(spec, source, None, None, tools, distcc=True)
    assert not any("ORTPRUNE_NO_PCH" in a for a in local.args)
    assert any("ORTPRUNE_NO_PCH=ON" in a for a in remote.args)
