"""Building for another machine than this one (``--target linux-aarch64`` on an x86-64 host): Debian's cross
compiler, a CMake toolchain file, and a host ``protoc`` of the protobuf release ORT pins.

A target is named as in ``platform.TARGETS`` (``linux-x86_64``, ``linux-aarch64``). A build for this
machine's own target is a native build and keeps the key it always had; a cross build adds its target to
the key (``BuildSpec.target``) and its compiler's version line and triple through ``identity.toolchain_id``.
"""

from __future__ import annotations

import re
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ortprune.errors import BuildError
from ortprune.ortbuild.toolchain import find_tools
from ortprune.platform import TARGETS, Target, host_target
from ortprune.platform import target as check_target

#: Kept for the name: a cross build's target is a ``platform.Target``.
CrossTarget = Target
CROSS_TARGETS = TARGETS


#: A host protoc of the protobuf release ORT 1.21 pins (v21.12 = Debian 12's 3.21.12): a cross build cannot
#: run the protoc it would compile for the target.
PROTOC_PACKAGE = "protobuf-compiler"


def check_cross(target: str, toolchain_name: str, wheel: bool, prune: tuple[str, ...]) -> None:
    """BuildError when a cross build for ``target`` cannot be made with these options (checked before any work)."""
    from ortprune.catalog import DEFAULT_TOOLCHAIN

    if target not in CROSS_TARGETS:
        raise BuildError(f"unknown --target {target!r}; known: {', '.join(CROSS_TARGETS)}")
    if toolchain_name != DEFAULT_TOOLCHAIN:
        raise BuildError(f"--target {target} builds with Debian's cross gcc only, not --toolchain {toolchain_name}")
    if wheel:
        raise BuildError(f"--wheel cannot be cross-built for {target} (the Python bindings need the target's Python)")
    isa = [lv for lv in prune if lv.startswith("mlas-isa")]
    if isa and CROSS_TARGETS[target].processor != "x86_64":
        raise BuildError(f"--prune {isa[0]} caps x86 MLAS kernels; {target} has none")


def cross_target(target: str | None) -> CrossTarget | None:
    """The cross target for ``target``; None for this machine's own (or no) target: a native build."""
    if target is None or check_target(target).name == host_target():
        return None
    return CROSS_TARGETS[target]


@dataclass(frozen=True)
class ResolvedCross:
    """A cross target as this host provides it: executables found (paths: build arguments, never the key)."""

    target: CrossTarget
    cc: str
    cxx: str
    strip: str
    protoc: str
    host_multiarch: str = ""  # this host's Debian multiarch name (x86_64-linux-gnu)

    def toolchain_file(self) -> str:
        """A CMake toolchain file for the target. Libraries and headers come from the target's sysroot only;
        CMake packages may also come from the host (ORT finds header-only dependencies with find_package:
        date, GSL, nlohmann_json, Boost's mp11; those are the same on every architecture)."""
        t = self.target
        return "\n".join([
            "set(CMAKE_SYSTEM_NAME Linux)",
            f"set(CMAKE_SYSTEM_PROCESSOR {t.processor})",
            f"set(CMAKE_C_COMPILER {self.cc})",
            f"set(CMAKE_CXX_COMPILER {self.cxx})",
            f"set(CMAKE_ASM_COMPILER {self.cc})",
            f"set(CMAKE_FIND_ROOT_PATH {t.sysroot})",
            "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
            "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
            "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)",
            "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)",
            # Debian keeps date's and Boost's CMake files under the host's multiarch directory
            *([f"list(APPEND CMAKE_PREFIX_PATH /usr/lib/{self.host_multiarch}/cmake)"] if self.host_multiarch else []),
            "",
        ])  # fmt: skip


def resolve(target: CrossTarget, path: str | None = None) -> ResolvedCross:
    """``target``'s cross tools on ``path`` (default ``$PATH``); BuildError naming the packages when missing."""
    tools = {
        "cc": f"{target.triple}-gcc",
        "cxx": f"{target.triple}-g++",
        "strip": f"{target.triple}-strip",
        "protoc": "protoc",
    }
    found = find_tools(tools, path, f"--target {target.name}", "cross-deps", (*target.packages, PROTOC_PACKAGE))
    multiarch = str(sysconfig.get_config_var("MULTIARCH") or "")
    return ResolvedCross(target, found["cc"], found["cxx"], found["strip"], found["protoc"], multiarch)


def resolve_for(target: str | None, path: str | None = None) -> ResolvedCross | None:
    """The resolved cross tools of a spec's ``target`` (None: a native build needs none)."""
    cross = cross_target(target)
    return None if cross is None else resolve(cross, path)


def _release(text: str) -> str:
    """``21.12`` of ``libprotoc 3.21.12``, ``protobuf_3.21.12.orig.tar.gz`` or ``v21.12.zip``: protobuf's
    release number (its C++ library is 3.<release>)."""
    numbers = re.findall(r"\d+", text)
    return ".".join(numbers[-2:]) if len(numbers) >= 2 else ""


def pinned_protobuf(deps_txt: str) -> str:
    """The protobuf release a source's deps.txt pins (``21.12``), or "" when it names none."""
    pinned = next((line.split(";")[1] for line in deps_txt.splitlines() if line.startswith("protobuf;")), "")
    return _release(Path(pinned.split("?")[0]).name)


def protoc_release(protoc: str) -> tuple[str, str]:
    """(release, ``--version`` line) of ``protoc``; BuildError when it cannot be run."""
    try:
        out = subprocess.run([protoc, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        raise BuildError(f"cannot run {protoc} --version ({e})") from None
    return _release(out), out


def check_protoc(protoc: str, deps_txt: str, where: str | Path) -> None:
    """BuildError unless ``protoc`` is of the protobuf release ``deps_txt`` pins (the generated code must match
    the library it is compiled with; a mismatch fails only deep into the build)."""
    want = pinned_protobuf(deps_txt)
    got, out = protoc_release(protoc)
    if want and got != want:
        raise BuildError(
            f"a cross build needs a host protoc of the protobuf release the source pins ({want}); {protoc} is "
            f"{out or 'unknown'} (Debian 12's protobuf-compiler is 3.21.12, for ONNX Runtime 1.21)",
            where,
        )
