"""Real ORT objects compiled cold through ``--distcc`` with a local distccd helper, against the same objects
compiled cold without it: wall time, what the helper compiled, and whether the bytes are the same.

    flock /tmp/ortprune-build.lock .venv/bin/python bench/distcc_compile.py -o bench/results/distcc.json

Runs in a throw-away cache root (the shared build directories are not touched; the ORT source and the
dependency archives are read from the usual cache). A distccd is started on 127.0.0.1 for the run and
stopped after. Order: configure + compile the objects and everything they need (protoc, generated headers: warm-up, not
reported), then each mode with an empty ccache and only those objects deleted, so each is a cold compile
(``runner.compile_check``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _result import command_line, emit
from ortprune.cache import cache_dir
from ortprune.ortbuild import deps_for, spec_for
from ortprune.ortbuild.runner import compile_check

#: Framework, graph, optimizer, CPU and contrib kernels, MLAS: a spread of ORT's compile units.
OBJECTS = [
    "onnxruntime/core/framework/allocator.cc",
    "onnxruntime/core/framework/tensor.cc",
    "onnxruntime/core/graph/graph.cc",
    "onnxruntime/core/providers/cpu/math/element_wise_ops.cc",
    "onnxruntime/core/providers/cpu/math/matmul.cc",
    "onnxruntime/core/providers/cpu/nn/conv.cc",
    "onnxruntime/contrib_ops/cpu/bert/attention.cc",
    "onnxruntime/core/mlas/lib/sgemm.cpp",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ort_source() -> Path:
    """ORT 1.21.0's extracted source in the usual cache (exits with the fix when distccd or it is missing)."""
    if not shutil.which("distccd"):
        sys.exit("distccd is not installed: apt-get install distcc")
    src = cache_dir() / "src" / "onnxruntime-1.21.0"
    if not (src / "VERSION_NUMBER").is_file():
        sys.exit(f"the ORT 1.21.0 source is not extracted under {src}: ortprune source fetch 1.21.0")
    return src


@contextmanager
def local_distccd(root: Path, jobs: int) -> Iterator[tuple[str, Path]]:
    """A distccd on 127.0.0.1 for the run (its state and log under ``root``): yields its ``--distcc`` host
    string and its log; stopped after."""
    os.environ["DISTCC_DIR"] = str(root / "distcc")
    (root / "distcc").mkdir(exist_ok=True)
    port = free_port()
    log = root / "distccd.log"
    daemon_cmd = ["distccd", "--daemon", "--no-detach", "--port", str(port), "--listen", "127.0.0.1",
                  "--allow", "127.0.0.1", "--jobs", str(jobs), "--log-stderr", "--log-level", "info"]  # fmt: skip
    with log.open("ab") as f:
        daemon = subprocess.Popen(daemon_cmd, stdout=f, stderr=subprocess.STDOUT)
    try:
        time.sleep(1)
        yield f"127.0.0.1:{port}/{jobs}", log
    finally:
        daemon.terminate()
        daemon.wait(10)


def ccache_stats(ccache_dir: Path) -> dict[str, int]:
    out = subprocess.run(["ccache", "--print-stats"], env=dict(os.environ, CCACHE_DIR=str(ccache_dir)),
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    wanted = ("cache_miss", "direct_cache_hit", "preprocessed_cache_hit", "could_not_use_precompiled_header")
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line) if k in wanted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="distccd's job limit (and ninja's -j for the local run)")
    ap.add_argument("--root", type=Path, help="reuse this cache root of an interrupted run (its configure, protoc)")
    ap.add_argument("-o", "--output", type=Path)
    a = ap.parse_args()
    src = ort_source()
    real_cache = cache_dir()
    root = a.root or Path(tempfile.mkdtemp(prefix="ortprune-distcc-bench-"))
    os.environ["ORTPRUNE_CACHE"] = str(root)
    runs: dict[str, dict[str, object]] = {}
    objects: dict[str, dict[str, bytes]] = {}
    built: list[Path] = []
    with local_distccd(root, a.jobs) as (hosts, log):
        spec, _, _ = spec_for("debian:1.21.0", "full")
        deps = deps_for("debian:1.21.0", spec.ort_version, real_cache / "deps" / spec.ort_version, src)
        for mode in ("warm-up", "distcc", "local"):
            os.environ["CCACHE_DIR"] = str(root / f"ccache-{mode}")  # empty: every object a miss
            for o in built:  # only the measured objects: their prerequisites (protoc...) stay built
                o.unlink()
            shutil.rmtree(root / f"ccache-{mode}", ignore_errors=True)
            before = sum("COMPILE_OK" in line for line in log.read_text(errors="replace").splitlines())
            started = time.monotonic()
            remote = mode == "distcc"  # its -j: distcc -j for the helper
            built = compile_check(spec, src, OBJECTS, deps, jobs=None if remote else a.jobs,
                                  log=lambda s: print(s, flush=True), distcc=hosts if remote else None)  # fmt: skip
            seconds = round(time.monotonic() - started, 1)
            lines = log.read_text(errors="replace").splitlines()
            runs[mode] = {
                "seconds": seconds,
                "objects": len(built),
                "helper_compiled_ok": sum("COMPILE_OK" in line for line in lines) - before,
                "ccache": ccache_stats(root / f"ccache-{mode}"),
            }
            objects[mode] = {str(p.name): p.read_bytes() for p in built}
            print(mode, runs[mode], flush=True)
    build_log = next((root / "builds").rglob("build.log")).read_text().splitlines()
    ninja = [line for line in build_log if line.startswith("$ ninja") and " -j " in line]
    ninja_jobs = [line.split(" -j ")[1].split()[0] for line in ninja]
    result = {
        "objects": OBJECTS,
        "distcc_hosts": hosts,
        "runs": runs,
        "ninja_jobs_per_run": ninja_jobs,
        "distcc_objects_equal_local": objects["distcc"] == objects["local"],
        "helper_log_tail": log.read_text(errors="replace").splitlines()[-3:],
        "distcc_version": subprocess.run(["distcc", "--version"], capture_output=True, text=True).stdout.split("\n")[0],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_after": os.getloadavg()},
        "command": command_line(__file__),
    }
    shutil.rmtree(root, ignore_errors=True)
    emit(result, a.output)


if __name__ == "__main__":
    main()
