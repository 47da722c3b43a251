"""What a cold build of each variant compiles: ninja's compile steps for the ``onnxruntime`` target, counted by
where the source lives, from each variant's configured build directory (ORT 1.21.0 from Debian's pool; no
compile runs, about 10 s per variant). Cold wall times come from real builds (their manifests) when the cache
holds them.

The config is the bundled models' level-``all`` config; the ``optimizers`` lever keeps the transformers
recorded in bench/results/levers.json. Writes bench/results/cold_steps.json (with machine info).
Usage: python bench/bench_cold_steps.py [--variants full,reduced,...]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from ortprune._io import atomic_write_text
from ortprune.catalog import VARIANTS
from ortprune.ortbuild import deps_for, spec_for
from ortprune.ortbuild.runner import compile_steps, find_cached
from ortprune.ortbuild.sources import resolve_source
from ortprune.platform import machine_info

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "docs" / "results" / "configs" / "bundled-all.config"
ORT_CONFIG = ROOT / "docs" / "results" / "configs" / "bundled-ort.config"
RESULTS = ROOT / "bench" / "results" / "cold_steps.json"
#: Measured on 2026-12-04 with the code before host tools and the sources lever (commit 0d1d995): a cold
#: full build ran 1,069 steps (docs/results levers table), a reduced one 1,068, of which 975 compiles.
BEFORE = {"reduced": 975}

GROUPS = (
    ("empty object", "ortprune-empty.cc"),  # none since emptied libraries are unlinked (was 61 per reduced build)
    ("protoc (host tool)", "protobuf-src/src/google/protobuf/compiler/"),
    ("flatbuffers", "flatbuffers-src/"),
    ("protobuf", "protobuf-src/"),
    ("abseil", "abseil_cpp-src/"),
    ("onnx", "onnx-"),
    ("re2", "re2-src/"),
    ("CPU kernels", "onnxruntime/core/providers/cpu/"),
    ("contrib kernels", "onnxruntime/contrib_ops/"),
    ("MLAS", "onnxruntime/core/mlas/"),
    ("optimizer", "onnxruntime/core/optimizer/"),
    ("framework", "onnxruntime/core/framework/"),
)


def group(path: str) -> str:
    return next((name for name, prefix in GROUPS if prefix in path), "other ORT")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="full,no-contrib,reduced,reduced-pruned,reduced-max,minimal")
    args = ap.parse_args()
    levers = json.loads((ROOT / "bench" / "results" / "levers.json").read_text())
    keep = tuple(levers["keep_transformers"])
    rows = []
    for v in args.variants.split(","):
        spec_v = VARIANTS[v]
        cfg = (ORT_CONFIG if spec_v.model_format == "ort" else CONFIG) if spec_v.needs_config else None
        text = cfg.read_text() if cfg else None
        spec, _, where = spec_for(
            "debian:1.21.0", v, text, keep_transformers=keep if "optimizers" in spec_v.prune else ()
        )

        src = resolve_source("debian:1.21.0")
        steps, n_commands = compile_steps(spec, src, deps_for("debian:1.21.0", "1.21.0", None, src), log=lambda s: None)
        built = find_cached(spec, where)
        by = collections.Counter(group(s) for s in steps)
        empty = by.pop("empty object", 0)
        rows.append({
            "variant": v,
            "key": spec.key(),
            "compiles": len(steps) - empty,
            "ninja_steps": n_commands,
            "trivial_steps": 2 * empty,  # an empty object and its archive per emptied library still linked
            "before": BEFORE.get(v),
            "by_group": dict(by.most_common()),
            "cold_wall_time_s": built.wall_time_s if built else None,
            "build_steps": built.steps if built else None,
        })  # fmt: skip
        print(
            f"{v:16} {len(steps) - empty:5} compiles {n_commands:5} steps  "
            + ", ".join(f"{k} {n}" for k, n in by.most_common())
        )
    atomic_write_text(RESULTS, json.dumps({"machine": machine_info(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
