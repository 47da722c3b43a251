"""What a build key is made of besides the pruning options: the source's content and the toolchain.

Both are path- and user-free, so teammates with the same inputs compute the same key (and share a store):
``debian:<version>`` is identified by the SHA-256 pins of its pool files (known without downloading, so a
store hit on an empty machine fetches no source), a tarball by its bytes, a directory by the bytes of its
files, a git checkout by its commit; the toolchain by the compiler's and CMake's version lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from ortprune._io import walk
from ortprune.cache import file_digest
from ortprune.ortbuild.depsmap import find_deps_txt, plan_deps, read_deps_txt
from ortprune.ortbuild.sources import RELEASES, release

#: Files ortprune itself writes into a source tree (deps.txt mapping, the wheel's example model): not the
#: user's input, and their content carries local paths.
OWN_WRITES = frozenset({"cmake/deps.txt", "cmake/deps.txt.orig", "onnxruntime/python/datasets/mul_1.onnx"})
_SKIP_DIRS = frozenset({".git", "build", "__pycache__"})


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


def _file_sha256(path: Path) -> str:
    return file_digest(path, 64)


def tree_digest(root: Path) -> str:
    """SHA-256 over every regular file's relative path and bytes (symlinks by target), sorted; skips VCS and
    build directories and ``OWN_WRITES``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if rel in OWN_WRITES:
                continue
            h.update(rel.encode() + b"\0")
            h.update((os.readlink(path) if path.is_symlink() else _file_sha256(path)).encode() + b"\n")
    return h.hexdigest()


def debian_deps_id(version: str, tree: Path | None = None) -> str:
    """The pool files the dependency mapping (``ortbuild.depsmap``) chooses for ``version``'s deps.txt: the
    tree's own when given, else the copy recorded with the release (so naming a ``debian:`` build needs no
    download). Hashed as {"deps": archives, "debs": header packages}, the shape keys always had."""
    if tree is not None and find_deps_txt(tree) is not None:  # a tree without one fails at build time
        text, where = read_deps_txt(tree)
    else:
        text, where = release(version).deps_txt(), release(version).deps_txt_path
    plan = plan_deps(text, where)
    return _digest({"deps": {k: f.sha256 for k, f in plan.archives.items()},
                    "debs": {k: f.sha256 for k, f in plan.debs.items()}})  # fmt: skip


def deps_id(source: str | Path, version: str, deps_dir: Path | None, tree: Path | None = None) -> str:
    """The dependency archives a build uses (mirrors ``ortbuild.deps_for``)."""
    if deps_dir is not None:
        files = sorted(p for d, _, names in walk(deps_dir) for n in names if (p := Path(d, n)).is_file())
        return _digest({p.relative_to(deps_dir).as_posix(): _file_sha256(p) for p in files})
    if str(source).startswith("git:") or version not in RELEASES:
        return "online: the source's cmake/deps.txt pins"
    return debian_deps_id(version, None if str(source).startswith("debian:") else tree)


def source_id(source: str | Path, tree: Path | None, version: str, deps_dir: Path | None = None) -> str:
    """Content identity of ``source`` (as given to ``build``) plus its dependencies; ``tree`` is the resolved
    source directory (unused for ``debian:``, which is identified by its pinned pool hash)."""
    text = str(source)
    if text.startswith("debian:"):
        what = f"debian-pool:{RELEASES[version].source.sha256}"
    elif text.startswith("git:") and tree is not None:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
        what = f"git:{head.stdout.strip()}" if head.returncode == 0 else f"tree:{tree_digest(tree)}"
    elif Path(text).is_file():
        what = f"tarball:{_file_sha256(Path(text))}"
    else:
        assert tree is not None
        what = f"tree:{tree_digest(tree)}"
    return _digest({"source": what, "deps": deps_id(source, version, deps_dir, tree)})


def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.splitlines()[0].strip() if out.strip() else ""


def compiler_and_cmake(path: str | None = None, cxx: str | None = None) -> tuple[str, str, str]:
    """``c++ --version``'s (or ``cxx``'s) and ``cmake --version``'s first lines and the compiler's target triple."""
    cxx = cxx or os.environ.get("CXX") or "c++"
    cmake = shutil.which("cmake", path=path) or "cmake"
    return (first_line([cxx, "--version"]), first_line([cmake, "--version"]), first_line([cxx, "-dumpmachine"]))


def toolchain_id(compiler: str, cmake: str, machine: str, flags: list[str] | None = None) -> str:
    """The compiler's version line without the name it was invoked by (``c++``/``g++``), its target, and
    CMake's version; for a toolchain other than the default, the flags it adds (``ortbuild.toolchain``)."""
    parts: list[object] = [re.sub(r"^\S+\s+", "", compiler), machine, cmake.removeprefix("cmake version ").strip()]
    return json.dumps([*parts, flags] if flags else parts)
