"""Unpulled archive members: read from a real link's map, left out of a cold build by the overlay (in every
directory's targets, a dependency's too), and the library is byte-for-byte the one built with them. On a small
CMake + ninja + GNU ld project shaped like ORT's link (static archives in a subdirectory, a shared library
linked with --no-undefined), and on the list shipped for ORT 1.21.0."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ortprune.errors import BuildError
from ortprune.ortbuild import members
from ortprune.ortbuild.prune import overlay_cmake, restore_for


def _tools() -> tuple[str, str]:
    bindir = str(Path(sys.executable).parent)
    cmake, ninja = shutil.which("cmake", path=bindir), shutil.which("ninja", path=bindir)
    if cmake is None or ninja is None or shutil.which("c++") is None or shutil.which("ar") is None:
        pytest.skip("cmake and ninja (pip), a C++ compiler and binutils are needed")
    return cmake, ninja


def _project(root: Path) -> Path:
    proj = root / "proj"
    (proj / "deps" / "util").mkdir(parents=True)
    (proj / "deps" / "util" / "used.cc").write_text("int used_fn(int x) { return x * 3; }\n")
    (proj / "deps" / "util" / "unused.cc").write_text("int unused_fn(int x) { return x - 1; }\n")
    (proj / "deps" / "util" / "alone.cc").write_text("int alone_fn() { return 7; }\n")
    (proj / "deps" / "inc").mkdir()
    (proj / "deps" / "inc" / "lonely.h").write_text("#define LONELY_FACTOR 3\n")
    # lonely is linked by an alias and passes on an include dir and a private dependency, as abseil's do
    (proj / "deps" / "CMakeLists.txt").write_text(
        "add_library(util STATIC util/used.cc util/unused.cc)\nadd_library(lonely STATIC util/alone.cc)\n"
        "add_library(dep::lonely ALIAS lonely)\ntarget_include_directories(lonely PUBLIC inc)\n"
        "target_link_libraries(lonely PRIVATE util)\n"
    )
    (proj / "api.cc").write_text(
        '#include "lonely.h"\nint used_fn(int);\nextern "C" int OrtApi(int x) { return used_fn(x) * LONELY_FACTOR; }\n'
    )
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(onnxruntime CXX)\nadd_subdirectory(deps)\n"
        "add_library(onnxruntime SHARED api.cc)\ntarget_link_libraries(onnxruntime PRIVATE dep::lonely util)\n"
        'target_link_options(onnxruntime PRIVATE "LINKER:--no-undefined")\n'
    )
    return proj


def _configure(cmake: str, ninja: str, proj: Path, build: Path, overlay: Path | None) -> subprocess.CompletedProcess:
    args = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DCMAKE_BUILD_TYPE=MinSizeRel"]
    if overlay is not None:
        args.append(f"-DCMAKE_PROJECT_onnxruntime_INCLUDE={overlay}")
    return subprocess.run([cmake, "-S", str(proj), "-B", str(build), *args], capture_output=True, text=True)


def _commands(ninja: str, build: Path) -> str:
    return subprocess.run([ninja, "-C", str(build), "-t", "commands", "onnxruntime"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip


def test_unpulled_members_are_not_compiled_and_the_library_is_the_same(tmp_path: Path) -> None:
    cmake, ninja = _tools()
    proj = _project(tmp_path)
    stock = tmp_path / "stock"
    assert _configure(cmake, ninja, proj, stock, None).returncode == 0
    subprocess.run([ninja, "-C", str(stock)], capture_output=True, check=True)

    # the real link's map: what ld pulled, and so which sources a cold build need not compile
    commands = _commands(ninja, stock)
    entries = members.unpulled(members.link_map(stock, commands), commands, proj, stock)
    assert entries == ["source:deps/util/alone.cc", "source:deps/util/unused.cc"]

    overlay, stub = tmp_path / "overlay.cmake", tmp_path / "ortprune-empty.cc"
    stub.write_text("// empty\n")
    overlay.write_text(overlay_cmake({}, [], [members.resolve(e, proj, stock) for e in entries], stub))
    pruned = tmp_path / "pruned"
    cfg = _configure(cmake, ninja, proj, pruned, overlay)
    assert cfg.returncode == 0, cfg.stderr
    assert "2 of 2 sources of archive members the link never pulls taken out" in cfg.stdout
    assert "1 libraries left with nothing to compile are linked by no target" in cfg.stdout
    compiled = _commands(ninja, pruned)
    assert "used.cc" in compiled and "unused.cc" not in compiled and "alone.cc" not in compiled
    # the emptied library is neither compiled nor archived; what it passed on (its include dir) still arrives
    assert "ortprune-empty.cc" not in compiled and "liblonely.a" not in compiled
    assert "deps/inc" in compiled
    subprocess.run([ninja, "-C", str(pruned)], capture_output=True, check=True)
    assert (pruned / "libonnxruntime.so").read_bytes() == (stock / "libonnxruntime.so").read_bytes()


def test_a_member_the_link_needs_is_named_by_the_failed_link(tmp_path: Path) -> None:
    cmake, ninja = _tools()
    proj = _project(tmp_path)
    used, unused = proj / "deps/util/used.cc", proj / "deps/util/unused.cc"
    overlay, stub = tmp_path / "overlay.cmake", tmp_path / "ortprune-empty.cc"
    stub.write_text("// empty\n")
    overlay.write_text(overlay_cmake({}, [], [used, unused], stub))
    build = tmp_path / "b"
    assert _configure(cmake, ninja, proj, build, overlay).returncode == 0
    link = subprocess.run([ninja, "-C", str(build)], capture_output=True, text=True)
    assert link.returncode != 0 and "undefined reference to `used_fn(int)'" in link.stdout
    assert restore_for(link.stdout, [used, unused]) == [used]
    overlay.write_text(overlay_cmake({}, [], [unused], stub))
    again = subprocess.run([ninja, "-C", str(build)], capture_output=True, text=True)  # ninja re-runs CMake
    assert again.returncode == 0, again.stdout


def test_a_member_list_none_of_which_is_compiled_stops_configure(tmp_path: Path) -> None:
    cmake, ninja = _tools()
    proj = _project(tmp_path)
    overlay = tmp_path / "overlay.cmake"
    overlay.write_text(overlay_cmake({}, [], [proj / "deps/util/gone.cc"], tmp_path / "e.cc"))
    bad = _configure(cmake, ninja, proj, tmp_path / "c", overlay)
    assert bad.returncode != 0
    message = " ".join(bad.stderr.split())  # CMake wraps long messages
    assert "none of the 1 sources of archive members the link never pulls to drop is in a target" in message


def test_map_parsing_and_bad_input(tmp_path: Path) -> None:
    text = (
        "Archive member included to satisfy reference by file (symbol)\n\n"
        "libx.a(a.o)                   api.o (f)\n"
        "liby.a(b.cc.o)\n                              libx.a(a.o) (g())\n\n"
        "Discarded input sections\n\n libz.a(c.o) .text\n"
    )
    assert members.pulled_members(text) == {("libx.a", "a.o"), ("liby.a", "b.cc.o")}
    with pytest.raises(BuildError, match="not a GNU ld map"):
        members.pulled_members("Memory Configuration\n")
    with pytest.raises(BuildError, match="without 'source:' or 'build:'"):
        members.resolve("abseil/str_cat.cc", tmp_path, tmp_path)
    assert members.load("0.0.0", "linux-x86_64", "gcc") == []  # no list recorded: nothing is dropped


def test_the_shipped_list_for_1_21_0() -> None:
    entries = members.load("1.21.0", "linux-x86_64", "gcc")
    assert all(e.startswith(("source:onnxruntime/", "build:_deps/")) for e in entries)
    # abseil's compiled parts, re2 and flatbuffers' library are never pulled; no kernel or MLAS source is listed
    assert sum("abseil_cpp-src" in e for e in entries) >= 100
    assert any("re2-src/re2/re2.cc" in e for e in entries)
    assert not any("/providers/" in e or "onnxruntime/contrib_ops/" in e or "/mlas/" in e for e in entries)
    # what every model's load runs is pulled: the session, the graph, the framework's core
    for kept in ("core/session/inference_session.cc", "core/graph/graph.cc", "core/framework/session_state.cc"):
        assert not any(e.endswith(kept) for e in entries), kept
