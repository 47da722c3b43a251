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
# a link that needs a kernel source the overlay drops fails as ld does (ORT links with --no-undefined)
needs = os.environ.get("FAKE_NINJA_NEEDS")
overlay = bdir.parent / "ortprune.generated" / "overlay.cmake"
if needs and overlay.exists() and needs in overlay.read_text().split("set(_drop", 1)[-1].split(")", 1)[0]:
    print("FAILED: libonnxruntime.so.1.21.0")
    print("/usr/bin/ld: kernels.o: in function `onnxruntime::Caller()':")
    print("kernels.cc:(.text+0x1): undefined reference to `onnxruntime::helper_fn(int)'")
    print("collect2: error: ld returned 1 exit status")
    sys.exit(1)
for i in range(done + 1, total + 1):
    if i == fail_at:
        print(f"FAILED: onnxruntime/core/kernel_{{i}}.cc.o")
        print("error: something broke in kernel", i)
        sys.exit(1)
    print(f"[{{i}}/{{total}}] Building CXX object onnxruntime/core/kernel_{{i}}.cc.o", flush=True)
    done_file.write_text(str(i))
if overlay.exists() and "target_precompile_headers" in overlay.read_text():  # as CMake's pch lever makes them
    for target in ("onnxruntime_graph", "onnxruntime_providers"):
        gch = bdir / "CMakeFiles" / (target + ".dir") / "cmake_pch.hxx.gch"
        gch.parent.mkdir(parents=True, exist_ok=True)
        gch.write_bytes(b"gch" * 1000)
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
    for rel, text in KERNELS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


#: Kernel sources in ORT's shape: one per op, a helper defined beside an unused kernel, the registration table.
KERNELS = {
    "onnxruntime/core/providers/cpu/math/add.cc": "ONNX_CPU_OPERATOR_KERNEL(Add, 14, KernelDefBuilder(), Add);\n",
    "onnxruntime/core/providers/cpu/nn/conv.cc": (
        "int helper_fn(int x) { return x; }\nONNX_CPU_OPERATOR_KERNEL(Conv, 11, KernelDefBuilder(), Conv);\n"
    ),
    "onnxruntime/core/providers/cpu/cpu_execution_provider.cc": (
        "class ONNX_OPERATOR_KERNEL_CLASS_NAME(kCpuExecutionProvider, kOnnxDomain, 14, Add);\n"
    ),
    "onnxruntime/contrib_ops/cpu/bert/bias_gelu.cc": (
        "#define REGISTER_KERNEL_TYPED(T) ONNX_OPERATOR_TYPED_KERNEL_EX(BiasGelu, kMSDomain, 1, T, kCpu, B, G<T>);\n"
        "REGISTER_KERNEL_TYPED(float)\n"
    ),
}


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
