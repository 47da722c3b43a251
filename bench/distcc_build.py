"""A whole cold ORT build through ``--distcc`` with a local distccd helper: the reduced build of the bundled
models' config, every object a ccache miss, compiled on the helper; wall time, what the helper compiled, and
whether the library is byte-identical to the one built without distcc (``--compare LIB``).

    flock /tmp/ortprune-build.lock python bench/distcc_build.py --compare LIB -o bench/results/distcc_build.json

The helper runs on this machine (127.0.0.1), so the time says what distcc costs, not what a second machine
gains: on a team, the helpers are other machines. Runs in a throw-away cache root (ORT's source and the
dependency archives are read from the usual cache); the distccd is started for the run and stopped after.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _result import command_line, emit
from distcc_compile import ccache_stats, local_distccd, ort_source
from ortprune.cache import cache_dir
from ortprune.ortbuild import deps_for, spec_for
from ortprune.ortbuild.runner import build
from ortprune.platform import machine_info

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "docs" / "results" / "configs" / "bundled-all.config"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="distccd's job limit")
    ap.add_argument("--compare", type=Path, help="a library of the same build made without distcc")
    ap.add_argument("-o", "--output", type=Path)
    a = ap.parse_args()
    src = ort_source()
    real_cache = cache_dir()
    root = Path(tempfile.mkdtemp(prefix="ortprune-distcc-build-"))
    os.environ["ORTPRUNE_CACHE"] = str(root)
    os.environ["CCACHE_DIR"] = str(root / "ccache")  # empty: every object a miss
    with local_distccd(root, a.jobs) as (hosts, log):
        spec, _, _ = spec_for("debian:1.21.0", "reduced", CONFIG.read_text())
        deps = deps_for("debian:1.21.0", spec.ort_version, real_cache / "deps" / spec.ort_version, src)
        load_before = os.getloadavg()
        started = time.monotonic()
        cpu0 = os.times()
        result = build(spec, src, deps, log=lambda s: print(s, flush=True), distcc=hosts)
        seconds = round(time.monotonic() - started, 1)
    cpu1 = os.times()  # after the helper is reaped: its compilers' CPU time counts too
    cpu_s = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    lines = log.read_text(errors="replace").splitlines()
    lib = Path(result.library)
    digest = hashlib.sha256(lib.read_bytes()).hexdigest()
    out = {
        "variant": "reduced",
        "key": result.key,
        "distcc_hosts": hosts,
        "wall_s": seconds,
        "cpu_s": round(cpu_s, 1),
        "ninja_steps": result.steps,
        "helper_compiled_ok": sum("COMPILE_OK" in line for line in lines),
        "helper_errors": sum("COMPILE_ERRORS" in line for line in lines),
        "ccache": ccache_stats(root / "ccache"),
        "library_bytes": result.library_bytes,
        "library_sha256": digest,
        "same_as_local_build": (hashlib.sha256(a.compare.read_bytes()).hexdigest() == digest) if a.compare else None,
        "distcc_version": subprocess.run(["distcc", "--version"], capture_output=True, text=True).stdout.split("\n")[0],
        "machine": {**machine_info(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "command": command_line(__file__),
    }
    shutil.rmtree(root, ignore_errors=True)
    emit(out, a.output)


if __name__ == "__main__":
    main()
