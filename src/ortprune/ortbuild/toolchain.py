"""The compiler and linker a build uses (``--toolchain``): found on PATH, turned into CMake defines.

The default (gcc) adds no define, so its builds keep the keys they always had. Another toolchain names its
compilers, archiver and flags through ``--cmake_extra_defines``; what it resolved to on this host (its flags,
e.g. whether RELR is on) enters the build key through ``identity.toolchain_id``, its paths never do.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ortprune.catalog import DEFAULT_TOOLCHAIN, Toolchain, toolchain
from ortprune.errors import BuildError

#: glibc loads DT_RELR relocations from 2.36 on; a library linked with them needs at least that glibc.
RELR_GLIBC = (2, 36)
RELR_FLAG = "-Wl,-z,pack-relative-relocs"


def glibc_version() -> tuple[int, int] | None:
    """This host's glibc (``os.confstr``), or None on another C library."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    m = re.match(r"glibc (\d+)\.(\d+)", text)
    return (int(m[1]), int(m[2])) if m else None


@dataclass(frozen=True)
class ResolvedToolchain:
    """A toolchain as this host provides it: executables found, flags decided."""

    toolchain: Toolchain
    cc: str  # absolute paths (build arguments only, never the key)
    cxx: str
    ar: str = ""
    ranlib: str = ""
    link_flags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.toolchain.name

    @property
    def is_default(self) -> bool:
        return self.toolchain.name == DEFAULT_TOOLCHAIN

    def key_flags(self) -> list[str]:
        """What of it changes the library besides the compiler's version: its optimization and link flags
        (empty for the default, whose flags are ORT's own)."""
        if self.is_default:
            return []
        return [self.name, self.toolchain.opt, *self.link_flags]

    def cmake_defines(self) -> list[str]:
        """``--cmake_extra_defines`` entries (none for the default). ``--enable_lto`` needs no define of its own:
        CMake's IPO uses the compiler's archiver given here (llvm-ar reads clang's bitcode objects)."""
        if self.is_default:
            return []
        t = self.toolchain
        defines = [f"CMAKE_C_COMPILER={self.cc}", f"CMAKE_CXX_COMPILER={self.cxx}"]
        if t.opt:
            defines += [f"CMAKE_C_FLAGS_MINSIZEREL={t.opt} -DNDEBUG", f"CMAKE_CXX_FLAGS_MINSIZEREL={t.opt} -DNDEBUG"]
        if self.ar:
            defines += [f"CMAKE_AR={self.ar}", f"CMAKE_C_COMPILER_AR={self.ar}", f"CMAKE_CXX_COMPILER_AR={self.ar}"]
        if self.ranlib:
            defines += [f"CMAKE_RANLIB={self.ranlib}", f"CMAKE_C_COMPILER_RANLIB={self.ranlib}"]
            defines += [f"CMAKE_CXX_COMPILER_RANLIB={self.ranlib}"]
        if self.link_flags:
            defines += [f"CMAKE_SHARED_LINKER_FLAGS={' '.join(self.link_flags)}"]
        if t.exe_link_flags:
            defines += [f"CMAKE_EXE_LINKER_FLAGS={' '.join(t.exe_link_flags)}"]
        return defines


def resolve(name: str, path: str | None = None, glibc: tuple[int, int] | None = None) -> ResolvedToolchain:
    """``name`` as this host has it (executables on ``path``, default ``$PATH``); BuildError naming the missing
    executables and the packages that provide them. ``glibc`` overrides the host's (tests)."""
    t = toolchain(name)
    if name == DEFAULT_TOOLCHAIN:  # ORT's own defaults: CMake finds cc/c++ itself (check_tools checks them)
        return ResolvedToolchain(t, t.cc, t.cxx)
    tools = {"cc": t.cc, "cxx": t.cxx, **({"ar": t.ar} if t.ar else {}), **({"ranlib": t.ranlib} if t.ranlib else {})}
    found = find_tools(tools, path, f"--toolchain {name}", "toolchain-deps", t.packages)
    flags = list(t.link_flags)
    libc = glibc if glibc is not None else glibc_version()
    if t.relr and libc is not None and libc >= RELR_GLIBC:
        flags.append(RELR_FLAG)
    return ResolvedToolchain(t, found["cc"], found["cxx"], found.get("ar", ""), found.get("ranlib", ""), tuple(flags))


def find_tools(
    tools: Mapping[str, str], path: str | None, option: str, make: str, packages: Iterable[str]
) -> dict[str, str]:
    """``tools`` (role -> executable name) found on ``path`` (default ``$PATH``): role -> the executable's path.
    One BuildError names every missing executable, the make target and the packages that provide them."""
    found = {role: shutil.which(exe, path=path) for role, exe in tools.items()}
    missing = [tools[role] for role, exe in found.items() if exe is None]
    if missing:
        raise BuildError(
            f"{option} needs {', '.join(missing)} on PATH: make {make} (or apt-get install {' '.join(packages)})"
        )
    return {role: exe for role, exe in found.items() if exe is not None}
