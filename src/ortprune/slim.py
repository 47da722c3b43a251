"""slim: models → full ORT build → scan (with that build's optimizer) → pruned builds → probe + verify →
sizes → report, one command.

Each stage's output is cached by content hash (builds by their spec, probes/verifies/size reports by the
hash of the library and inputs), so a re-run after an interruption or a config change redoes only what
changed. Builds continue where ninja stopped.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ortprune._io import atomic_write_text
from ortprune.cache import cache_dir, file_digest

if TYPE_CHECKING:
    from ortprune.ortbuild.store import Store

STAGES = ("build", "scan", "convert", "probe", "verify", "embed", "size", "report")


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
    #: ORT-format models made by the full build for the minimal variant (Converted.to_dict()), exported
    converted: list[dict[str, Any]] = field(default_factory=list)
    ort_config_path: Path | None = None
    #: per variant: library + models + tokenizer files (analyze.shipped.Shipped.to_dict()), ranked
    shipped: list[dict[str, Any]] = field(default_factory=list)

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
            "converted": self.converted,
            "ort_config": None if self.ort_config_path is None else str(self.ort_config_path),
            "shipped": self.shipped,
            "recommended": self.recommended,
        }

    @property
    def recommended(self) -> str | None:
        """The variant with the smallest shipped total (library + models + tokenizer) that verified."""
        return next((s["variant"] for s in self.shipped if s["verified"]), None)


class StageUI:
    """What slim reports as it goes; the CLI draws it with rich, tests use the silent default."""

    @contextlib.contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        yield

    def build_progress(self, label: str) -> contextlib.AbstractContextManager[Callable[[int, int, str], None]]:
        return contextlib.nullcontext(lambda i, n, w: None)

    def note(self, text: str) -> None:
        pass


#: (file, key parts) of every stage result the current slim run used: published with the builds they describe
_MEMO_LOG: contextvars.ContextVar[list[tuple[Path, list[str]]]] = contextvars.ContextVar("_MEMO_LOG")


def _memo(kind: str, key_parts: list[str], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A stage result cached as JSON under ~/.cache/ortprune/stages, keyed by a hash of its inputs."""
    key = hashlib.sha256(json.dumps([kind, *key_parts]).encode()).hexdigest()[:20]
    path = cache_dir("stages", f"{kind}-{key}.json")
    _MEMO_LOG.get([]).append((path, key_parts))
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
    keep_quantized: bool = False,
    store: str | Path | Store | None = None,
    ccache_remote: str | None = None,
) -> SlimResult:
    """``variants`` with ``model_format == "ort"`` (minimal) get ORT-format models made by the full build
    (``keep_quantized``: without ConstantFolding, see :mod:`ortprune.convert`), a typed config scanned
    from those, probes and models loaded in ORT format, and the ``.ort`` files exported to ``out/models``.

    ``store``: an artifact store (directory or http(s) URL) builds are fetched from and published to, with
    their probe, verify and size results; ``ccache_remote``: ccache's remote storage for what is compiled."""
    from ortprune.ortbuild import VARIANTS, build_variant
    from ortprune.ortbuild.variants import variant as variant_info
    from ortprune.scan import scan

    ui = ui or StageUI()
    out.mkdir(parents=True, exist_ok=True)
    the_store = None
    if store is not None:
        from ortprune.ortbuild.store import open_store

        the_store = open_store(store)  # one object: a store found unusable is skipped for the rest of the run
    memo_log: list[tuple[Path, list[str]]] = []
    _MEMO_LOG.set(memo_log)
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
            b = build_variant(ort, variant, config, jobs=jobs, progress=progress, keep_transformers=keep,
                              store=the_store, ccache_remote=ccache_remote, log=ui.note)  # fmt: skip
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
    full_lib = res.builds["full"]["library"]
    ort_variants = [v for v in variants if variant_info(v).model_format == "ort"]
    ort_config = None
    if ort_variants:
        with timed("convert"):
            res.converted = _convert_models(models, full_lib, out / "models", level, keep_quantized)
            ort_scan = scan([c["ort"] for c in res.converted], level, types=True)
            res.ort_config_path = out / "ops-ort.config"
            ort_scan.write(res.ort_config_path, out / "scan-ort.json")
            ort_config = ort_scan.config
    with timed("build"):
        for variant in variants:
            prunes = variant in VARIANTS and "optimizers" in VARIANTS[variant].prune
            config = res.ort_config_path if variant in ort_variants else config_path
            build(variant, None if variant == "no-contrib" else config, keep if prunes else ())
    pruned = [v for v in variants]

    with timed("probe"):
        for v in pruned:
            lib = res.builds[v]["library"]
            is_ort = v in ort_variants
            cfg = ort_config if is_ort and ort_config is not None else result.config
            cfg_path = res.ort_config_path if is_ort and res.ort_config_path else config_path
            res.probes[v] = _memo(
                "probe",
                [res.builds[v]["library_sha"], file_digest(cfg_path), "ort" if is_ort else "onnx"],
                functools.partial(_probe_json, lib, cfg, jobs, full_lib if is_ort else None),
            )

    model_shas = [file_digest(m) for m in models]
    with timed("verify"):
        for v in pruned:
            lib = res.builds[v]["library"]
            key = [res.builds[v]["library_sha"], res.builds["full"]["library_sha"], level, str(tolerance), *model_shas]
            if v in ort_variants:
                key += ["ort", *(file_digest(c["ort"]) for c in res.converted)]
                compute = functools.partial(_verify_ort_json, lib, res.converted, full_lib, level, tolerance)
            else:
                compute = functools.partial(_verify_json, lib, models, full_lib, level, tolerance)
            res.verifies[v] = _memo("verify", key, compute)

    with timed("embed"):
        onnx_libs = {v: res.builds[v]["library"] for v in pruned if v not in ort_variants}
        ort_libs = {v: res.builds[v]["library"] for v in ort_variants}
        res.embeds = _embed_check(models, onnx_libs, full_lib, ort_libs, res.converted)

    with timed("size"):
        res.sizes = _sizes(res, out)
        res.shipped = _shipped(res, models, ort_variants)
        from ortprune.report.size import write_shipped_chart

        charts = write_shipped_chart(res.shipped, out / "charts")
        res.sizes["shipped_charts"] = [str(p.relative_to(out)) for p in charts]
    if the_store is not None:
        _publish_stage_results(the_store, res, memo_log, ui)

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


def _probe_json(lib: str, config: Any, jobs: int | None, converter: str | None = None) -> dict[str, Any]:
    from ortprune.verify import probe

    return probe(lib, list(config), jobs, config.types, converter=converter).to_json_dict()


def _verify_ort_json(
    lib: str, converted: list[dict[str, Any]], full: str, level: str, tolerance: float
) -> dict[str, Any]:
    """Each ``.ort`` on the pruned library (loaded as it is, level disable) against the ``.onnx`` it came
    from on the full build at ``level``: what a deployment of the minimal build runs vs the reference."""
    from ortprune.verify import verify

    reports = [
        verify(lib, [Path(c["ort"])], full, level, tolerance, reference_model=Path(c["source"]),
               pruned_level="disable")
        for c in converted
    ]  # fmt: skip
    merged = reports[0]
    for r in reports[1:]:
        merged.models += r.models
    return merged.to_json_dict()


def _convert_models(
    models: list[Path], full_lib: str, out: Path, level: str, keep_quantized: bool
) -> list[dict[str, Any]]:
    """``.ort`` files made by the full build (cached by library, model, level and the quantization
    choice), exported as ``out/<name>/<stem>.ort`` with the model's tokenizer files beside them, so
    ``TextEmbedding(out/<name>/<stem>.ort, lib=minimal)`` runs them."""
    from ortprune.analyze.shipped import tokenizer_files
    from ortprune.convert import convert_model
    from ortprune.verify.compare import _tokenizer_dir

    lib_sha = file_digest(full_lib)
    names = _model_names(models)
    done = []
    for model in models:
        key = hashlib.sha256(json.dumps([lib_sha, file_digest(model), level, keep_quantized]).encode())
        cached_dir = cache_dir("converted", key.hexdigest()[:20])
        cached = cached_dir / (model.stem + ".ort")
        record_path = cached_dir / "converted.json"
        if not (cached.is_file() and record_path.is_file()):
            record = convert_model(model, full_lib, cached_dir, level, keep_quantized).to_dict()
            atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
        record = json.loads(record_path.read_text())
        target_dir = out / names[model]
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / cached.name
        _copy(cached, target)
        tok = _tokenizer_dir(model)
        for f in tokenizer_files(tok) if tok is not None else []:
            _copy(f, target_dir / f.name)
        record.update(ort=str(target), source=str(model), name=names[model])
        done.append(record)
    return done


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copy2(src, tmp)
    tmp.replace(dst)


def _model_names(models: list[Path]) -> dict[Path, str]:
    """Bundled models by their bundled name, others by file stem (made unique)."""
    from ortprune.bundled import BUNDLED

    bundled = {}
    for b in BUNDLED:
        with contextlib.suppress(Exception):
            bundled[b.path().resolve()] = b.name
    names: dict[Path, str] = {}
    for m in models:
        name = bundled.get(m.resolve(), m.stem)
        while name in names.values():
            name += "_"
        names[m] = name
    return names


def _shipped(res: SlimResult, models: list[Path], ort_variants: list[str]) -> list[dict[str, Any]]:
    """Library (stripped) + model files + tokenizer files per build, smallest total first."""
    from ortprune.analyze.shipped import ranked, shipped
    from ortprune.verify.compare import _tokenizer_dir

    tok_dirs = [d for d in (_tokenizer_dir(m) for m in models) if d is not None]
    items = []
    for v, b in res.builds.items():
        files = [Path(c["ort"]) for c in res.converted] if v in ort_variants else models
        ok = v == "full" or (
            res.probes.get(v, {}).get("counts", {}).get("missing", 1) == 0 and res.verifies.get(v, {}).get("ok", False)
        )
        stripped = b.get("stripped_bytes")
        if stripped is None:
            stripped = _memo("stripped", [b["library_sha"]], functools.partial(_stripped_json, b["library"]))["bytes"]
        items.append(shipped(v, b["library"], files, tok_dirs, ok, stripped))
    return [s.to_dict() for s in ranked(items)]


def _stripped_json(lib: str) -> dict[str, Any]:
    from ortprune.analyze.shipped import stripped_size

    return {"bytes": stripped_size(lib)}


def _verify_json(lib: str, models: list[Path], full: str, level: str, tolerance: float) -> dict[str, Any]:
    from ortprune.verify import verify

    return verify(lib, models, full, level, tolerance).to_json_dict()


def _embed_check(
    models: list[Path],
    libs: dict[str, str],
    full_lib: str,
    ort_libs: dict[str, str] | None = None,
    converted: list[dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """For bundled text models: embeddings through ortprune.embed on each pruned library vs the full one
    (for ``ort_libs``: the exported ``.ort`` file with its tokenizer beside it)."""
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
        ort_file = next((c["ort"] for c in converted or [] if Path(c["source"]).resolve() == model.resolve()), None)
        runs = [(v, lib, b.name, "all") for v, lib in libs.items()]
        runs += [(v, lib, ort_file, "disable") for v, lib in (ort_libs or {}).items() if ort_file]
        for v, lib, source, lvl in runs:
            got = np.stack(list(TextEmbedding(source, lib=lib, optimization_level=lvl).embed(texts)))
            (diff,) = compare_outputs({"embedding": ref}, {"embedding": got}, tolerance=0.0)
            report[f"{b.name} @ {v}"] = {
                "max_abs_diff": diff.max_abs_diff,
                "min_cosine": diff.min_row_cosine,
                "dim": int(ref.shape[1]),
            }
    return report


def _publish_stage_results(store: Store, res: SlimResult, used: list[tuple[Path, list[str]]], ui: StageUI) -> None:
    """Each build's probe, verify and size results (those keyed by its library's hash) join its artifact in
    the store, so a teammate's slim with an empty cache skips those stages too."""
    from ortprune.ortbuild import BuildResult
    from ortprune.ortbuild.store import publish_or_warn, stage_file_name

    for b in res.builds.values():
        paths = {stage_file_name(p): p for p, parts in used if b["library_sha"] in parts and p.exists()}
        fields = {k: v for k, v in b.items() if k in BuildResult.__dataclass_fields__}
        publish_or_warn(store, BuildResult(**fields), ui.note, paths)


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
