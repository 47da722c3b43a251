"""The pruning levers of issue 14, each alone and stacked, measured on real ORT 1.21.0 builds from the cache.

For every build (found by its BuildSpec, so exactly the command in the table made it): bytes unstripped and
stripped, % of full, build wall time; max abs diff of both bundled models against the full build at levels
``disable`` and ``all`` (ortprune.verify); whether the pruned build optimizes each model into the
byte-identical graph the full one makes (level ``all``); embedding-model throughput against the full build,
single runs interleaved ABBA in one process (ratio = median over blocks of full time / pruned time).

Writes bench/results/levers.json (with machine info) and docs/results/ort-1.21.0-levers.md: the generated
table, then the hand-written notes/ort-1.21.0-levers.md. A build levers.json already holds (same key) is not
measured again unless --remeasure.
Usage: python bench/bench_levers.py [--budget SECONDS] [--keep NAMES] [--remeasure [--only LABEL_TEXT]]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ortprune._io import atomic_write_text
from ortprune.bundled import BUNDLED
from ortprune.ortbuild import spec_for
from ortprune.ortbuild.runner import BuildResult, find_cached, stripped_copy
from ortprune.platform import machine_info

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "docs/results/configs/bundled-all.config"
RESULTS = ROOT / "bench" / "results" / "levers.json"
DOC = ROOT / "docs" / "results" / "ort-1.21.0-levers.md"
NOTES = ROOT / "docs" / "results" / "notes" / "ort-1.21.0-levers.md"  # the hand-written part, appended


@dataclass(frozen=True)
class Row:
    label: str
    variant: str
    extra: tuple[str, ...] = ()
    prune: tuple[str, ...] = ()
    keep: bool = False  # passes --keep-transformers
    toolchain: str = "gcc"

    def find(self, keep: tuple[str, ...]) -> BuildResult | None:
        """The cached build this row's command made (looked up as `ortprune build` does), or None."""
        config = None if self.variant == "full" else (ROOT / CONFIG).read_text()
        spec, _, where = spec_for("debian:1.21.0", self.variant, config, extra_flags=self.extra, prune=self.prune,
                                  keep_transformers=keep if self.keep else (), toolchain=self.toolchain)  # fmt: skip
        return find_cached(spec, where)

    def command(self, keep: tuple[str, ...]) -> str:
        cmd = f"ortprune build --source debian:1.21.0 --variant {self.variant}"
        if self.variant != "full":
            cmd += f" --config {CONFIG}"
        cmd += "".join(f" --extra={e}" for e in self.extra)
        if self.prune:
            cmd += f" --prune {','.join(self.prune)}"
        if self.keep:
            cmd += f" --keep-transformers {','.join(keep)}"
        if self.toolchain != "gcc":
            cmd += f" --toolchain {self.toolchain}"
        return cmd


ROWS = [
    Row("full", "full"),
    Row("reduced (34 ops, the baseline of the levers)", "reduced"),
    Row("+ schemas", "reduced", prune=("schemas",)),
    Row("+ optimizers", "reduced", prune=("optimizers",), keep=True),
    Row("+ schemas + optimizers (reduced-pruned)", "reduced-pruned", keep=True),
    Row("+ --disable_ml_ops --disable_rtti (stock flags)", "reduced", extra=("--disable_ml_ops", "--disable_rtti")),
    Row("stacked: reduced-max (schemas + optimizers + stock flags)", "reduced-max", keep=True),
    Row("+ mlas-isa=avx2 (MLAS kernels above AVX2 unreferenced)", "reduced", prune=("mlas-isa=avx2",)),
    Row(
        "reduced-max + --disable_types=float8,optional,sparsetensor",
        "reduced-max",
        extra=("--disable_types=float8,optional,sparsetensor",),
        keep=True,
    ),
    Row("+ toolchain: clang-16 -Oz, lld --icf=all, RELR, ThinLTO", "reduced", ("--enable_lto",), toolchain="clang"),
    Row(
        "smallest: reduced-max + --disable_types + mlas-isa=avx2 + clang/ThinLTO",
        "reduced-max",
        extra=("--enable_lto", "--disable_types=float8,optional,sparsetensor"),
        prune=("mlas-isa=avx2",),
        keep=True,
        toolchain="clang",
    ),
]


def max_diffs(lib: str, full: str) -> dict[str, float]:
    from ortprune.verify import verify

    models = [b.path() for b in BUNDLED]
    out = {}
    for level in ("disable", "all"):
        report = verify(lib, models, full, level, 0.0, repeat=1)
        out[level] = max(o.max_abs_diff for m in report.models for o in m.outputs)
        assert all(m.status in ("ok", "mismatch") for m in report.models), report.to_json_dict()
    return out


def same_graph(lib: str, full: str) -> bool:
    from ortprune.scan.transformers import optimized_bytes

    with tempfile.TemporaryDirectory() as tmp:
        return all(
            optimized_bytes(b.path(), lib, "all", (), Path(tmp) / f"{i}-p")
            == optimized_bytes(b.path(), full, "all", (), Path(tmp) / f"{i}-f")
            for i, b in enumerate(BUNDLED)
        )


def throughput(
    lib: str, full: str, budget: float, pruned_model: Path | None = None, pruned_level: str = "all"
) -> float:
    """Median over ABBA blocks of (full time / pruned time): > 1 means the pruned build is faster.
    ``pruned_model``/``pruned_level``: what the pruned library runs instead (a minimal build: the ``.ort``
    at level disable); the full library always runs the ``.onnx`` at level all."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_runtime import feeds_for
    from ortprune.runtime import Session

    model = BUNDLED[0]
    feeds = feeds_for(model.name, 8)
    a = Session(pruned_model or model.path(), lib, threads=1, optimization_level=pruned_level)
    b = Session(model.path(), full, threads=1, optimization_level="all")
    feeds = {k: v for k, v in feeds.items() if k in a.input_names}
    for s in (a, b):
        for _ in range(3):
            s.run(feeds)
    ratios, flip, deadline = [], False, time.perf_counter() + budget
    while time.perf_counter() < deadline or len(ratios) < 5:
        t = {"p": 0.0, "f": 0.0}
        order = [("p", a), ("f", b)][:: -1 if flip else 1]
        for name, s in [*order, *order[::-1]]:
            t0 = time.perf_counter()
            s.run(feeds)
            t[name] += time.perf_counter() - t0
        ratios.append(t["f"] / t["p"])
        flip = not flip
    a.close()
    b.close()
    return round(statistics.median(ratios), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=20.0, help="seconds of ABBA runs per build")
    ap.add_argument("--keep", default="", help="the transformers kept (default: what ORT's log on the full build says)")
    ap.add_argument("--notes", type=Path, default=NOTES, help="markdown appended to the page")
    ap.add_argument(
        "--remeasure",
        action="store_true",
        help="measure every build again (default: reuse levers.json's record of a build with the same key)",
    )
    ap.add_argument("--only", default="", help="with --remeasure: only the rows whose label contains this text")
    args = ap.parse_args()
    before = {r["key"]: r for r in json.loads(RESULTS.read_text())["rows"]} if RESULTS.is_file() else {}
    keep = tuple(k for k in args.keep.split(",") if k)
    rows, full = [], None
    for row in ROWS:
        if row.keep and not keep:
            if full is None:
                raise SystemExit("no full build of ORT 1.21.0 in the cache")
            from ortprune.scan.transformers import transformer_log

            keep = transformer_log([b.path() for b in BUNDLED], full.library, "all").used
        found = row.find(keep)
        if found is None:
            print(f"skip (not built): {row.label}")
            continue
        b = found
        stripped = stripped_copy(Path(b.library)).stat().st_size
        if row.variant == "full":
            full = b
        assert full is not None, "the full build comes first"
        rec: dict[str, object] = {"label": row.label, "command": row.command(keep), "bytes": b.library_bytes,
                                  "stripped": stripped, "wall_time_s": b.wall_time_s, "steps": b.steps,
                                  "runs": len(b.runs), "key": b.key}  # fmt: skip
        old = before.get(b.key)
        again = args.remeasure and args.only in row.label
        if row.variant != "full" and old is not None and "max_abs_diff" in old and not again:
            print(f"reusing the measurement of {row.label} ({b.key})", flush=True)
            for k in ("max_abs_diff", "same_optimized_graph", "throughput_vs_full", "measured_at", "load_average"):
                if k in old:
                    rec[k] = old[k]
        elif row.variant != "full":
            print(f"measuring {row.label} ...", flush=True)
            rec["max_abs_diff"] = max_diffs(b.library, full.library)
            rec["same_optimized_graph"] = same_graph(b.library, full.library)
            rec["throughput_vs_full"] = throughput(b.library, full.library, args.budget)
            rec["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            rec["load_average"] = [round(x, 2) for x in os.getloadavg()]
        rows.append(rec)
    if full is None:
        raise SystemExit("no full build of ORT 1.21.0 in the cache")
    data = {"machine": machine_info(), "keep_transformers": list(keep), "rows": rows}
    atomic_write_text(RESULTS, json.dumps(data, indent=1) + "\n")
    atomic_write_text(DOC, markdown(data, full, args.notes.read_text() if args.notes else ""))
    print(f"wrote {RESULTS} and {DOC}")


def markdown(data: dict[str, object], full: BuildResult, notes: str) -> str:
    rows: list[dict[str, object]] = data["rows"]  # type: ignore[assignment]
    f_bytes = full.library_bytes
    f_stripped = next(int(r["stripped"]) for r in rows if r["label"] == "full")  # type: ignore[call-overload]
    lines = [
        "# ORT 1.21.0: pruning below the stock flags, lever by lever (issue 14)",
        "",
        "Every row is a real build of ONNX Runtime 1.21.0 (MinSizeRel, `--build_shared_lib`, 2 cores; gcc 12.2 unless",
        "the row says clang-16) for",
        f"the bundled models' 34-op config (`{CONFIG}`), made by the command listed under the table. Sizes:",
        "the built library and `strip --strip-all` of it (the file a user ships; `ortprune build --out` exports",
        "both). Max abs diff: both bundled models, every output, against the full build at that level. Graph:",
        "the pruned build optimizes both models (level all) into the byte-identical graph the full one makes.",
        "Throughput: int8 all-MiniLM-L6-v2, batch 8, 1 thread, single runs ABBA-interleaved with the full build",
        "in one process, median over blocks of full time / pruned time (>= 0.97 required). Wall time: the",
        "build's own (ninja after the full build, ccache shared), summed over resumed runs; measured while other",
        "jobs shared the 2 cores.",
        "",
        "| Build | bytes | % of full | stripped bytes | % of full stripped | build wall time "
        "| max abs diff disable / all | same graph | throughput vs full |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        b, s = int(r["bytes"]), int(r["stripped"])  # type: ignore[call-overload]
        if r["label"] == "full":
            diff, graph, tp = "—", "—", "—"
        else:
            d: dict[str, float] = r["max_abs_diff"]  # type: ignore[assignment]
            diff = f"{d['disable']:.3g} / {d['all']:.3g}"
            graph = "yes" if r["same_optimized_graph"] else "**no**"
            tp = f"{r['throughput_vs_full']:.3f}×"
        lines.append(f"| {r['label']} | {b:,} | {100 * b / f_bytes:.1f}% | {s:,} | {100 * s / f_stripped:.1f}% | "
                     f"{r['wall_time_s']:.0f} s ({r['steps']} steps) | {diff} | {graph} | {tp} |")  # fmt: skip
    lines += ["", "## Commands", ""]
    lines += [f"- {r['label']}: `{r['command']}`" for r in rows]
    keep = data["keep_transformers"]
    if keep:
        lines += ["", f"Transformers kept (`ortprune transformers --bundled --lib FULL`): {', '.join(keep)}."]  # type: ignore[arg-type]
    lines += ["", "Measured with `python bench/bench_levers.py` (bench/results/levers.json has the machine)."]
    return "\n".join(lines) + "\n" + (f"\n{notes.strip()}\n" if notes else "")


if __name__ == "__main__":
    main()
