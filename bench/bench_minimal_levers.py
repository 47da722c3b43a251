"""The size levers on the minimal (ORT-format) build, each alone and stacked, measured on real ORT 1.21.0 builds.

The minimal build runs the bundled models' ``.ort`` files, converted by the official 1.21.0 release library
(``ortprune convert --lib <official>``; config ``docs/results/configs/bundled-ort.config``). The levers that
apply there: the clang toolchain (-Oz, lld ICF, RELR) with ThinLTO, ``--disable_types`` and ``--prune
mlas-isa=avx2`` (``schemas`` and ``optimizers`` do not: a minimal build compiles neither ONNX schemas nor graph
transformers). For every row whose build is cached (found by its BuildSpec, so exactly the command listed made
it): bytes (a minimal build is stripped at link; ``strip --strip-all`` of it is measured too), % of the full
build stripped (11,077,576 B, ``docs/results/ort-1.21.0-levers.md``) and % of the official release library;
max abs diff of every output of both bundled models, the ``.ort`` on the minimal library at level disable
against the ``.onnx`` on the official library at level all; throughput of the int8 model against the official
library (ABBA single runs in one process, ``bench_levers.throughput``).

Writes bench/results/minimal_levers.json (with machine info) and prints a markdown table.
Usage: python bench/bench_minimal_levers.py [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from ortprune._io import atomic_write_text
from ortprune.bundled import BUNDLED
from ortprune.convert import convert_model
from ortprune.ortbuild import spec_for
from ortprune.ortbuild.official import official_library
from ortprune.ortbuild.runner import find_cached, stripped_copy
from ortprune.platform import machine_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_levers import throughput  # noqa: E402

CONFIG = "docs/results/configs/bundled-ort.config"
RESULTS = ROOT / "bench" / "results" / "minimal_levers.json"
FULL_STRIPPED = 11_077_576  # the full 1.21.0 MinSizeRel build, stripped (docs/results/ort-1.21.0-levers.md)
TYPES = "--disable_types=float8,optional,sparsetensor"
#: (label, extra flags, prune levers, toolchain)
ROWS: list[tuple[str, tuple[str, ...], tuple[str, ...], str]] = [
    ("minimal (stock flags)", (), (), "gcc"),
    ("+ mlas-isa=avx2", (), ("mlas-isa=avx2",), "gcc"),
    ("+ --disable_types", (TYPES,), (), "gcc"),
    ("+ mlas-families", (), ("mlas-families",), "gcc"),
    ("+ clang-16 -Oz, lld ICF, RELR, ThinLTO", ("--enable_lto",), (), "clang"),
    ("+ clang/ThinLTO + --disable_types", ("--enable_lto", TYPES), (), "clang"),
    (
        "stacked: + clang/ThinLTO + --disable_types + mlas-isa=avx2",
        ("--enable_lto", TYPES),
        ("mlas-isa=avx2",),
        "clang",
    ),
    (
        "stacked + mlas-families",
        ("--enable_lto", TYPES),
        ("mlas-isa=avx2", "mlas-families"),
        "clang",
    ),
    ("+ c-api (the C API functions ortprune's runtime calls)", (), ("c-api",), "gcc"),
    ("+ short-where (error locations without signatures)", (), ("short-where",), "gcc"),
    ("+ clang/ThinLTO + vtables (full LTO, virtual function elimination)", ("--enable_lto",), ("vtables",), "clang"),
    (
        "stacked + mlas-families + vtables",
        ("--enable_lto", TYPES),
        ("mlas-isa=avx2", "mlas-families", "vtables"),
        "clang",
    ),
    (
        "stacked + mlas-families + vtables + c-api",
        ("--enable_lto", TYPES),
        ("mlas-isa=avx2", "mlas-families", "vtables", "c-api"),
        "clang",
    ),
    (
        "stacked + mlas-families + vtables + c-api + short-where",
        ("--enable_lto", TYPES),
        ("mlas-isa=avx2", "mlas-families", "vtables", "c-api", "short-where"),
        "clang",
    ),
]


def command(extra: tuple[str, ...], prune: tuple[str, ...], toolchain: str) -> str:
    cmd = f"ortprune build --source debian:1.21.0 --variant minimal --config {CONFIG}"
    cmd += "".join(f" --extra={e}" for e in extra)
    cmd += f" --prune {','.join(prune)}" if prune else ""
    return cmd + (f" --toolchain {toolchain}" if toolchain != "gcc" else "")


def max_abs_diff(lib: str, official: str, orts: dict[Path, Path]) -> float:
    from ortprune.verify import verify

    worst = 0.0
    for onnx, ort in orts.items():
        report = verify(lib, [ort], official, "all", 0.0, repeat=1, reference_model=onnx, pruned_level="disable")
        (m,) = report.models
        assert m.outputs and m.status in ("ok", "differs"), report.to_dict()  # differs: above 0, recorded
        worst = max(worst, *(o.max_abs_diff for o in m.outputs))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=20.0, help="seconds of ABBA runs per build")
    ap.add_argument("--only", help="measure only the rows whose label matches this regex; keep the others' results")
    args = ap.parse_args()
    only = re.compile(args.only) if args.only else None
    earlier = {r["label"]: r for r in json.loads(RESULTS.read_text())["rows"]} if only and RESULTS.exists() else {}
    official = official_library("1.21.0")
    work = Path(tempfile.mkdtemp(prefix="ortprune-minimal-levers-"))
    orts = {b.path(): convert_model(b.path(), official.library, work / b.name).ort for b in BUNDLED}
    int8_ort = orts[BUNDLED[0].path()]
    config = (ROOT / CONFIG).read_text()
    rows = []
    for label, extra, prune, toolchain in ROWS:
        if only is not None and not only.search(label):
            if label in earlier:
                rows.append(earlier[label])
            continue
        spec, _, where = spec_for("debian:1.21.0", "minimal", config, extra_flags=extra, prune=prune,
                                  toolchain=toolchain)  # fmt: skip
        b = find_cached(spec, where)
        if b is None:
            print(f"skip (not built): {label}", flush=True)
            continue
        print(f"measuring {label} ...", flush=True)
        stripped = stripped_copy(Path(b.library)).stat().st_size
        rows.append({
            "label": label, "command": command(extra, prune, toolchain), "key": b.key, "bytes": b.library_bytes,
            "stripped": stripped, "pct_of_full_stripped": round(100 * stripped / FULL_STRIPPED, 2),
            "pct_of_official": round(100 * b.library_bytes / official.library_bytes, 2),
            "wall_time_s": b.wall_time_s, "steps": b.steps,
            "max_abs_diff": max_abs_diff(b.library, official.library, orts),
            "throughput_vs_official": throughput(b.library, official.library, args.budget, int8_ort, "disable"),
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        })  # fmt: skip
    data = {"machine": machine_info(), "official_library_bytes": official.library_bytes,
            "full_stripped_bytes": FULL_STRIPPED, "rows": rows}  # fmt: skip
    atomic_write_text(RESULTS, json.dumps(data, indent=1) + "\n")
    print("| build | bytes | stripped | % of full stripped | % of official | max abs diff | throughput vs official |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | {r['bytes']:,} | {r['stripped']:,} | {r['pct_of_full_stripped']}% | "
              f"{r['pct_of_official']}% | {r['max_abs_diff']:.1e} | {r['throughput_vs_official']:.3f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
