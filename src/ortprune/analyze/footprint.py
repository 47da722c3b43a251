"""What a user ships: the library plus every non-system library it needs (``DT_NEEDED``), found like ld.so does."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
from pathlib import Path

from ortprune.elf import ElfFile, is_system_library
from ortprune.errors import ElfError
from ortprune.results.size import Footprint, FootprintEntry

_DEFAULT_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")


@functools.cache
def _ld_so_cache() -> dict[str, list[str]]:
    """``ldconfig -p``: soname → paths (all architectures; matched against the ELF class later)."""
    table: dict[str, list[str]] = {}
    for exe in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            proc = subprocess.run([exe, "-p"], capture_output=True, text=True, check=False, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in proc.stdout.splitlines():
            m = re.match(r"\s+(\S+) \(([^)]*)\) => (\S+)", line)
            if m:
                table.setdefault(m.group(1), []).append(m.group(3))
        break
    return table


def _multiarch_dirs() -> list[str]:
    dirs = []
    for base in ("/lib", "/usr/lib"):
        with contextlib.suppress(OSError):
            dirs += [str(p) for p in Path(base).iterdir() if p.is_dir() and p.name.endswith("-linux-gnu")]
    return dirs


def _same_kind(path: Path, ref: ElfFile | _Needs) -> bool:
    """The loader skips libraries of another ELF class or machine; so do we."""
    try:
        with ElfFile(path) as elf:
            return elf.is64 == ref.is64 and elf.machine == ref.machine
    except ElfError:
        return False


def _expand(entry: str, origin: Path) -> str:
    return entry.replace("${ORIGIN}", str(origin)).replace("$ORIGIN", str(origin))


class _Needs:
    """What the search for a dependency's own DT_NEEDED entries needs, kept after its file is closed."""

    def __init__(self, elf: ElfFile) -> None:
        self.path, self.is64, self.endian, self.machine = elf.path, elf.is64, elf.endian, elf.machine
        self.rpath, self.runpath = elf.rpath, elf.runpath


def resolve_needed(name: str, requester: ElfFile | _Needs, rpath_chain: list[str] | None = None) -> Path | None:
    """Where the dynamic loader would find ``name`` for ``requester`` (glibc's search order)."""
    origin = requester.path.resolve().parent
    if "/" in name:
        p = Path(_expand(name, origin))
        return p if p.exists() else None
    dirs: list[str] = []
    if not requester.runpath:
        dirs += [_expand(d, origin) for d in requester.rpath + (rpath_chain or [])]
    dirs += [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += [_expand(d, origin) for d in requester.runpath]
    for d in dirs:
        p = Path(d) / name
        if p.is_file() and _same_kind(p, requester):
            return p
    for cand in _ld_so_cache().get(name, []):
        p = Path(cand)
        if p.is_file() and _same_kind(p, requester):
            return p
    for d in [*_multiarch_dirs(), *_DEFAULT_DIRS]:
        p = Path(d) / name
        if p.is_file() and _same_kind(p, requester):
            return p
    return None


def footprint(lib: ElfFile) -> Footprint:
    """The library and its ``DT_NEEDED`` closure; system libraries are listed but not counted."""
    entries = [FootprintEntry(lib.path.name, str(lib.path), lib.file_size, False)]
    seen = {lib.path.name}
    queue: list[tuple[str, ElfFile | _Needs, list[str]]] = [(n, lib, lib.rpath) for n in lib.needed]
    while queue:
        name, requester, chain = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        path = resolve_needed(name, requester, chain)
        system = is_system_library(name)
        size = path.stat().st_size if path is not None else 0
        entries.append(FootprintEntry(name, None if path is None else str(path), size, system))
        if path is None or system:
            continue
        try:
            with ElfFile(path) as dep:
                queue += [(n, _Needs(dep), dep.rpath + chain) for n in dep.needed]
        except ElfError:
            continue
    return Footprint(entries)
