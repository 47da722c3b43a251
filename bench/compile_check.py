"""Before queueing a 25-40 min ORT build: configure it exactly as ``ortprune build`` would and compile a few of
its real objects (``runner.compile_check``), recording the compile commands and timings as JSON.

    nice -n 10 .venv/bin/python bench/compile_check.py \\
        --toolchain clang --extra=--enable_lto --prune mlas-isa=avx2 -o bench/results/compile-check.json

(behind the same lock as the machine's other ORT builds, where several share it: ``flock LOCKFILE ...``).

The build directory is the real build's (its key), so the build that follows reuses the configure and objects.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path

from _result import command_line, emit
from ortprune.ortbuild import deps_for, spec_for
from ortprune.ortbuild.runner import build_env, compile_check
from ortprune.ortbuild.sources import resolve_source

#: A framework file (heavy templates, abseil, protobuf headers), an MLAS C++ kernel compiled with AVX2 flags,
#: the AVX-NE-CONVERT assembly only a compiler >= 13 (so clang 16) compiles, and MLAS's dispatch file.
OBJECTS = [
    "onnxruntime/core/session/inference_session.cc",
    "onnxruntime/core/mlas/lib/sqnbitgemm_kernel_avx2.cpp",
    "onnxruntime/core/mlas/lib/x86_64/cvtfp16Avx.S",
    "onnxruntime/core/mlas/lib/platform.cpp",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="debian:1.21.0")
    ap.add_argument("--variant", default="full")
    ap.add_argument("--config", type=Path)
    ap.add_argument("--toolchain", default="gcc")
    ap.add_argument("--target", help="cross-build target, e.g. linux-aarch64")
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("--prune", default="")
    ap.add_argument("--keep-transformers", default="")
    ap.add_argument("--object", action="append", help="ORT source path to compile (default: a representative set)")
    ap.add_argument("-o", "--output", type=Path)
    a = ap.parse_args()
    csv = lambda s: tuple(x for x in s.split(",") if x)  # noqa: E731
    config_text = a.config.read_text() if a.config else None
    spec, tree, _ = spec_for(a.source, a.variant, config_text, extra_flags=tuple(a.extra), prune=csv(a.prune),
                             keep_transformers=csv(a.keep_transformers), toolchain=a.toolchain,
                             target=a.target)  # fmt: skip
    src = tree or resolve_source(a.source)
    deps = deps_for(a.source, spec.ort_version, None, src)
    objects = a.object or OBJECTS
    started = time.monotonic()
    built = compile_check(spec, src, objects, deps, jobs=2)
    seconds = round(time.monotonic() - started, 1)
    config_dir = next(p for p in built[0].parents if (p / "build.ninja").exists())
    env = build_env()
    commands = {}
    for obj in built:
        rel = obj.relative_to(config_dir).as_posix()
        cmd = subprocess.run(["ninja", "-C", str(config_dir), "-t", "commands", "-s", rel], env=env,
                             capture_output=True, text=True).stdout.strip().splitlines()  # fmt: skip
        commands[rel] = {"bytes": obj.stat().st_size, "command": cmd[-1] if cmd else ""}
    grep = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in (config_dir / "CMakeCache.txt").read_text().splitlines()
        if line.split(":")[0]
        in (
            "CMAKE_CXX_COMPILER",
            "CMAKE_CXX_FLAGS_MINSIZEREL",
            "CMAKE_SHARED_LINKER_FLAGS",
            "CMAKE_CXX_COMPILER_AR",
            "onnxruntime_ENABLE_LTO",
            "CMAKE_INTERPROCEDURAL_OPTIMIZATION",
        )
    }
    result = {
        "spec": {"variant": spec.variant, "toolchain": spec.toolchain_name, "toolchain_id": spec.toolchain,
                 "extra_flags": list(spec.extra_flags), "prune": list(spec.prune), "key": spec.key()},
        "seconds_configure_and_compile": seconds,
        "cmake_cache": grep,
        "configure_warned_ipo_unsupported": "IPO is not supported" in (config_dir.parent / "build.log").read_text(),
        "ortprune_overlay_lines": [line for line in (config_dir.parent / "build.log").read_text().splitlines()
                                   if line.startswith("-- ortprune:")],
        "objects": commands,
        "machine": {"platform": platform.platform(), "cpu": platform.processor() or platform.machine()},
        "command": command_line(__file__),
    }  # fmt: skip
    emit(result, a.output)


if __name__ == "__main__":
    main()
