"""A stand-in ORT source tree and ninja whose behaviour tests control (no real build in CI)."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

BUILD_PY = r"""
import os, sys
from pathlib import Path
args = sys.argv[1:]
bdir = Path(args[args.index("--build_dir") + 1]) / "MinSizeRel"
bdir.mkdir(parents=True, exist_ok=True)
(bdir.parent / "build_py_calls.txt").open("a").write(" ".join(args) + "\n")
if os.environ.get("FAKE_CONFIGURE_FAIL"):
    for i in range(60):
        print(f"cmake noise line {i}")
    print("CMake Error: Could NOT find SomethingImportant")
    sys.exit(1)
(bdir / "build.ninja").write_text("# fake\n")
if "--build" in args and "--build_wheel" in args:
    (bdir / "dist").mkdir(exist_ok=True)
    (bdir / "dist" / "onnxruntime-1.21.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"PK fake wheel")
print("-- Configuring done")
"""

NINJA = r"""#!{python}
import os, shutil, sys
from pathlib import Path
args = sys.argv[1:]
bdir = Path(args[args.index("-C") + 1])
total = 10
done_file = bdir / ".done"
done = int(done_file.read_text()) if done_file.exists() else 0
fail_at = int(os.environ.get("FAKE_NINJA_FAIL_AT", "0"))
for i in range(done + 1, total + 1):
    if i == fail_at:
        print(f"FAILED: onnxruntime/core/kernel_{{i}}.cc.o")
        print("error: something broke in kernel", i)
        sys.exit(1)
    print(f"[{{i}}/{{total}}] Building CXX object onnxruntime/core/kernel_{{i}}.cc.o", flush=True)
    done_file.write_text(str(i))
lib = bdir / "libonnxruntime.so.1.21.0"
shutil.copy(os.environ["FAKE_LIB"], lib)
link = bdir / "libonnxruntime.so"
if not link.exists():
    link.symlink_to(lib.name)
(bdir.parent / "ninja_runs.txt").open("a").write(f"{{done}}\n")
"""


def make_source(root: Path, deps_txt: str) -> Path:
    (root / "tools" / "ci_build").mkdir(parents=True)
    (root / "cmake").mkdir()
    (root / "VERSION_NUMBER").write_text("1.21.0\n")
    (root / "cmake" / "deps.txt").write_text(deps_txt)
    (root / "tools" / "ci_build" / "build.py").write_text(BUILD_PY)
    return root


def make_ninja(bindir: Path) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    ninja = bindir / "ninja"
    ninja.write_text(NINJA.format(python=sys.executable))
    ninja.chmod(ninja.stat().st_mode | stat.S_IEXEC)
    return ninja


def system_lib() -> str:
    """A real ELF shared library whose DT_NEEDED holds only system libraries."""
    for cand in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6"):
        if os.path.exists(cand):
            return cand
    found = shutil.which("true")
    assert found
    return found
