"""slim: models → full ORT build → scan (with that build's optimizer) → pruned builds → probe + verify →
sizes → report, one command.

Each stage's output is cached by content hash (builds by their spec, probes/verifies/size reports by the
hash of the library and inputs), so a re-run after an interruption or a config change redoes only what
changed. Builds continue where ninja stopped.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ortprune._io import atomic_write_text
from ortprune.cache import cache_dir, file_digest

STAGES = ("build", "scan", "probe", "verify", "embed", "size", "report")


@dataclass
class SlimResult:
    out: Path
    config_path: Path
    scan: dict[str, Any]
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    verifies: dict[str, dict[str, Any]] = field(default_factory=dict)
    embeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    sizes: dict[str, Any] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(p["counts"]["missing"] == 0 for p in self.probes.values()) and all(
            v["ok"] for v in self.verifies.values()
        )

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "config": str(self.config_path),
            "scan": self.scan,
            "builds": self.builds,
            "probes": self.probes,
            "verifies": self.verifies,
            "embeddings": self.embeds,
            "sizes": self.sizes,
            "stage_seconds": self.stage_seconds,
        }


class StageUI:
    """What slim reports as it goes; the CLI draws it with rich, tests use the silent default."""

    @contextlib.contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        yield

    def build_progress(self, label: str) -> contextlib.AbstractContextManager[Callable[[int, int, str], None]]:
        return contextlib.nullcontext(lambda i, n, w: None)

    def note(self, text: str) -> None:
        pass


def _memo(kind: str, key_parts: list[str], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A stage result cached as JSON under ~/.cache/ortprune/stages, keyed by a hash of its inputs."""
    key = hashlib.sha256(json.dumps([kind, *key_parts]).encode()).hexdigest()[:20]
    path = cache_dir("stages", f"{kind}-{key}.json")
    if path.exists():
        return dict(json.loads(path.read_text()))
    value = compute()
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")
    return value


def slim(
    models: list[Path],
    ort: str = "debian:1.21.0",
    level: str = "all",
    variants: tuple[str, ...] = ("reduced",),
    out: Path = Path("slim-out"),
    jobs: int | None = None,
    tolerance: float = 1e-5,
    ui: StageUI | None = None,
) -> SlimResult:
    from ortprune.ortbuild import VARIANTS, build_variant
    from ortprune.scan import scan

    ui = ui or StageUI()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def timed(name: str) -> contextlib.AbstractContextManager[None]:
        @contextlib.contextmanager
        def run() -> Iterator[None]:
            t0 = time.monotonic()
            with ui.stage(name):
                yield
            timings[name] = round(timings.get(name, 0.0) + time.monotonic() - t0, 2)

        return run()

    builds: dict[str, dict[str, Any]] = {}

    def build(variant: str, config: Path | None, keep: tuple[str, ...] = ()) -> None:
        with ui.build_progress(variant) as progress:
            b = build_variant(ort, variant, config, jobs=jobs, progress=progress, keep_transformers=keep)
        builds[variant] = b.__dict__ | {"library_sha": file_digest(b.library)}

    with timed("build"):
        build("full", None)  # the reference, and the optimizer of the exact version being pruned
    with timed("scan"):
        result = scan(models, level, types="reduced-types" in variants, runtime=builds["full"]["library"])
        config_path = out / "ops.config"
        result.write(config_path, out / "scan.json")
    res = SlimResult(out=out, config_path=config_path, scan=result.to_json_dict(), builds=builds)
    keep: tuple[str, ...] = ()
    if any("optimizers" in VARIANTS[v].prune for v in variants if v in VARIANTS):
        with timed("scan"):
            keep = _used_transformers(models, builds["full"]["library"], level, builds["full"]["library_sha"])
            ui.note(f"graph transformers the models need at level {level}: {', '.join(keep) or 'none'}")
    with timed("build"):
        for variant in variants:
            prunes = variant in VARIANTS and "optimizers" in VARIANTS[variant].prune
            build(variant, None if variant == "no-contrib" else config_path, keep if prunes else ())
    full_lib = res.builds["full"]["library"]
    config_sha = file_digest(config_path)
    pruned = [v for v in variants]

    with timed("probe"):
        for v in pruned:
            lib = res.builds[v]["library"]
            res.probes[v] = _memo(
                "probe",
                [res.builds[v]["library_sha"], config_sha],
                functools.partial(_probe_json, lib, result.config, jobs),
            )

    model_shas = [file_digest(m) for m in models]
    with timed("verify"):
        for v in pruned:
            lib = res.builds[v]["library"]
            res.verifies[v] = _memo(
                "verify",
                [res.builds[v]["library_sha"], res.builds["full"]["library_sha"], level, str(tolerance), *model_shas],
                functools.partial(_verify_json, lib, models, full_lib, level, tolerance),
            )

    with timed("embed"):
        res.embeds = _embed_check(models, {v: res.builds[v]["library"] for v in pruned}, full_lib)

    with timed("size"):
        res.sizes = _sizes(res, out)

    with timed("report"):
        from ortprune.report.slim import write_report

        res.stage_seconds = timings
        first = pruned[0] if pruned else "full"
        target = out / "libonnxruntime.so"
        shutil.copy2(res.builds[first]["library"], out / ".libonnxruntime.so.tmp")
        (out / ".libonnxruntime.so.tmp").replace(target)
        write_report(res)
    return res


def _used_transformers(models: list[Path], full_lib: str, level: str, full_sha: str) -> tuple[str, ...]:
    """The transformers that change the models' graphs on the full build (ORT's log), checked: with all the
    others disabled the full build optimizes every model into the byte-identical graph."""
    from ortprune.errors import OrtpruneError
    from ortprune.scan.transformers import changed_by_disabling, transformer_log

    def compute() -> dict[str, Any]:
        log = transformer_log(models, full_lib, level)
        changed = changed_by_disabling(models, full_lib, log.unused, level)
        if changed:
            raise OrtpruneError("disabling the transformers that logged no change changed the graph", changed[0])
        return {"used": list(log.used), "unused": list(log.unused)}

    memo = _memo("transformers", [full_sha, level, *(file_digest(m) for m in models)], compute)
    return tuple(memo["used"])


def _probe_json(lib: str, config: Any, jobs: int | None) -> dict[str, Any]:
    from ortprune.verify import probe

    return probe(lib, list(config), jobs, config.types).to_json_dict()


def _verify_json(lib: str, models: list[Path], full: str, level: str, tolerance: float) -> dict[str, Any]:
    from ortprune.verify import verify

    return verify(lib, models, full, level, tolerance).to_json_dict()


def _embed_check(models: list[Path], libs: dict[str, str], full_lib: str) -> dict[str, dict[str, Any]]:
    """For bundled text models: embeddings through ortprune.embed on each pruned library vs the full one."""
    import numpy as np

    from ortprune.bundled import BUNDLED
    from ortprune.verify.compare import compare_outputs

    bundled = {m.path().resolve(): m for m in BUNDLED}
    texts = ["ONNX Runtime, pruned to what the model needs.", "Hello, World!", "fastembed-rs loads it dynamically."]
    report: dict[str, dict[str, Any]] = {}
    try:
        from ortprune.embed import TextEmbedding
    except ImportError:
        return report
    for model in models:
        b = bundled.get(model.resolve())
        if b is None:
            continue
        ref = np.stack(list(TextEmbedding(b.name, lib=full_lib).embed(texts)))
        for v, lib in libs.items():
            got = np.stack(list(TextEmbedding(b.name, lib=lib).embed(texts)))
            (diff,) = compare_outputs({"embedding": ref}, {"embedding": got}, tolerance=0.0)
            report[f"{b.name} @ {v}"] = {
                "max_abs_diff": diff.max_abs_diff,
                "min_cosine": diff.min_row_cosine,
                "dim": int(ref.shape[1]),
            }
    return report


def _sizes(res: SlimResult, out: Path) -> dict[str, Any]:
    """Seed table for full and each variant, attribution by op of the full build, and savings by op."""
    from ortprune.analyze import SizeReport, analyze, diff_reports
    from ortprune.report.size import VariantRow, write_label_chart, write_variant_chart

    def report(variant: str, by: str) -> SizeReport:
        b = res.builds[variant]
        return SizeReport.from_dict(
            _memo(f"size-{by}", [b["library_sha"]], lambda: analyze(b["library"], by).to_dict())
        )

    sections = {v: report(v, "section") for v in res.builds}
    by_op = {v: report(v, "op") for v in res.builds}
    full = sections["full"]
    rows = [
        VariantRow(v, r.path, r.file_size, full.file_size, None if r.footprint is None else r.footprint.total)
        for v, r in sections.items()
    ]
    (out / "charts").mkdir(exist_ok=True)
    charts = write_variant_chart(rows, out / "charts") + write_label_chart(by_op["full"], out / "charts")
    savings = {v: diff_reports(by_op["full"], by_op[v]).to_dict() for v in res.builds if v != "full"}
    return {
        "table": [r.to_dict() for r in rows],
        "full_by_op": [{"name": lb.name, "kind": lb.kind, "size": lb.size} for lb in by_op["full"].sorted_labels()],
        "savings_by_op": savings,
        "notes": sorted({n for r in by_op.values() for n in r.notes}),
        "charts": [str(p.relative_to(out)) for p in charts],
    }
