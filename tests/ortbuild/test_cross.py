"""--target: cross-build options checked before any work, the target in the key, the CMake toolchain file, the
host protoc's release (fake protoc scripts: no compiler needed), and the CLI's one-line errors."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ortprune.errors import BuildError, OrtpruneError
from ortprune.ortbuild.cross import check_protoc, cross_target, resolve
from ortprune.ortbuild.variants import BuildSpec
from ortprune.platform import TARGETS, host_target

OTHER = next(t for t in TARGETS.values() if t.name != host_target())
CONFIG = "ai.onnx;17;Add\n"


def test_the_target_is_in_the_key_and_native_builds_keep_theirs() -> None:
    native = BuildSpec("1.21.0", "reduced", CONFIG, source_id="s", toolchain="t")
    cross = BuildSpec("1.21.0", "reduced", CONFIG, source_id="s", toolchain="t", target=OTHER.name)
    assert native.key() != cross.key() and cross.key().startswith("1.21.0-reduced-")
    assert not any(isinstance(p, list) and p[:1] == ["target"] for p in native._options(native.config_ops_hash))
    assert cross_target(None) is None and cross_target(host_target()) is None
    assert cross_target(OTHER.name) == OTHER


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"target": "linux-sparc"}, "unknown --target 'linux-sparc'"),
        ({"target": "linux-aarch64", "toolchain_name": "clang"}, "cross gcc only, not --toolchain clang"),
        ({"target": "linux-aarch64", "wheel": True}, "--wheel cannot be cross-built"),
        ({"target": "linux-aarch64", "prune": ("mlas-isa=avx2",)}, "caps x86 MLAS kernels"),
    ],
)
def test_cross_options_that_cannot_work_are_refused(kw: dict[str, object], message: str) -> None:
    with pytest.raises(BuildError, match=message):
        BuildSpec("1.21.0", "reduced", CONFIG, **kw)  # type: ignore[arg-type]


def fake_tool(directory: Path, name: str, output: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_toolchain_file_names_the_cross_compilers_and_the_sysroot(tmp_path: Path) -> None:
    target = TARGETS["linux-aarch64"]
    for exe in ("gcc", "g++", "strip"):
        fake_tool(tmp_path, f"{target.triple}-{exe}", "")
    fake_tool(tmp_path, "protoc", "libprotoc 3.21.12")
    tools = resolve(target, str(tmp_path))
    text = tools.toolchain_file()
    assert "set(CMAKE_SYSTEM_PROCESSOR aarch64)" in text
    assert f"set(CMAKE_CXX_COMPILER {tmp_path}/aarch64-linux-gnu-g++)" in text
    assert "set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)" in text
    assert "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)" in text  # never a host library in a target build
    assert tools.strip.endswith("aarch64-linux-gnu-strip") and tools.protoc == str(tmp_path / "protoc")


def test_missing_cross_tools_name_the_packages(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"needs aarch64-linux-gnu-gcc.*make cross-deps.*g\+\+-aarch64-linux-gnu"):
        resolve(TARGETS["linux-aarch64"], str(tmp_path))


def test_protoc_must_be_the_pinned_protobuf_release(tmp_path: Path) -> None:
    pinned = "protobuf;https://github.com/protocolbuffers/protobuf/archive/refs/tags/v21.12.zip;0000\n"
    check_protoc(str(fake_tool(tmp_path, "protoc", "libprotoc 3.21.12")), pinned, "deps.txt")
    newer = fake_tool(tmp_path, "protoc-25", "libprotoc 25.1")
    with pytest.raises(BuildError, match=r"pins \(21\.12\); .*protoc-25 is libprotoc 25\.1"):
        check_protoc(str(newer), pinned, "deps.txt")
    check_protoc(str(newer), "protobuf;/deps/protobuf_25.1.orig.tar.gz;0000\n", "deps.txt")  # a Debian tarball


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "linux-sparc"], "unknown target 'linux-sparc'"),
        (["--target", "linux-aarch64", "--toolchain", "clang"], "cross gcc only"),
    ],
)
def test_build_cli_refuses_a_bad_target_in_one_line(args: list[str], message: str) -> None:
    if host_target() == "linux-aarch64" and "linux-aarch64" in args:
        pytest.skip("a native build here")
    proc = subprocess.run(
        [sys.executable, "-m", "ortprune.cli", "build", "--variant", "full", *args], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_unknown_target_is_an_ortprune_error() -> None:
    with pytest.raises(OrtpruneError, match="known: linux-x86_64, linux-aarch64"):
        cross_target("windows-arm64")
