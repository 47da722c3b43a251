"""slim: models → full ORT build → scan (with that build's optimizer) → pruned builds → probe + verify →
sizes → report, one command.

Each stage's output is cached by content hash (builds by their spec, probes/verifies/size reports by the
hash of the library and inputs), so a re-run after an interruption or a config change redoes only what
changed. Builds continue where ninja stopped. The stages are parameters (:class:`Stages`): tests hand
:func:`slim` fakes.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ortprune._io import atomic_copy, atomic_write_text
from ortprune.cache import cache_dir, file_digest
from ortprune.catalog import BASELINE, variant
from ortprune.ortbuild.official import OFFICIAL, NoOfficialLibrary
from ortprune.platform import check_parallel
from ortprune.results import (
    BuildResult,
    ConvertedModel,
    EmbedCheck,
    LabelSize,
    ProbeReport,
    ScanReport,
    Shipped,
    SizeReport,
    SizeSummary,
    SlimBuild,
    SlimResult,
    TransformerUse,
    VariantRow,
    VerifyReport,
)

if TYPE_CHECKING:
    from ortprune.ortbuild.store import Store

ProgressFn = Callable[[int, int, str], None]


class StageUI(Protocol):
    """What slim reports as it goes; the CLI draws it with rich (``report.progress.RichStageUI``)."""

    def stage(self, name: str, detail: str = "") -> contextlib.AbstractContextManager[None]: ...

    def build_progress(self, label: str) -> contextlib.AbstractContextManager[ProgressFn]: ...

    def note(self, text: str) -> None: ...


class QuietUI:
    """The silent StageUI (library use, tests)."""

    def stage(self, name: str, detail: str = "") -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def build_progress(self, label: str) -> contextlib.AbstractContextManager[ProgressFn]:
        return contextlib.nullcontext(lambda i, n, w: None)

    def note(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class Levers:
    """Build options slim applies to every pruned variant (never to the full reference build): stock flags
    (``--extra``), source transforms (``--prune``) and the toolchain, as ``ortprune build`` takes them."""

    extra: tuple[str, ...] = ()
    prune: tuple[str, ...] = ()
    toolchain: str = "gcc"

    def check(self, variants: tuple[str, ...]) -> None:
        """Each variant with these levers is a valid build, checked before the first build: flag and lever
        names, levers that need a config-built variant, the toolchain. What depends on the scanned config
        (a type or ai.onnx.ml op the flags would drop) is checked when the variant is built."""
        from ortprune.ortbuild.variants import BuildSpec

        for v in variants:
            spec = variant(v)
            name = "reduced" if spec.needs_types else v  # a typed config exists only after the scan
            # the transformers to keep come from the full build later; any name passes the check
            keep = ("ConstantFolding",) if self.prunes_optimizers(v) else ()
            BuildSpec("0", name, "" if spec.needs_config else None, self.extra, prune=self.prune,
                      keep_transformers=keep, toolchain_name=self.toolchain)  # fmt: skip

    def prunes_optimizers(self, v: str) -> bool:
        """Whether variant ``v`` built with these levers needs the graph transformers to keep."""
        return "optimizers" in (*variant(v).prune, *self.prune)


@dataclass(frozen=True)
class Stages:
    """The stage functions slim runs, each taking and returning typed values. :func:`default_stages` has
    the real ones; tests replace any of them (``dataclasses.replace``)."""

    #: (ort source, variant, config or None, graph transformers to keep, jobs, progress) → the build's manifest
    build: Callable[[str, str, Path | None, tuple[str, ...], int | None, ProgressFn | None], BuildResult]
    #: (models, level, with types, optimizing library or None, config path, json path) → the scan, files written
    scan: Callable[[list[Path], str, bool, str | None, Path, Path], ScanReport]
    #: (models, full library, level) → the graph transformers that change the models (for --prune optimizers)
    transformers: Callable[[list[Path], str, str], TransformerUse]
    #: (models, full library, export dir, level, keep quantized) → ORT-format models (minimal variant)
    convert: Callable[[list[Path], str, Path, str, bool], list[ConvertedModel]]
    #: (library, config path, jobs, converting library or None) → which config ops the library implements
    probe: Callable[[str, Path, int | None, str | None], ProbeReport]
    #: (library) → which real consumers load it and how (``ConsumersReport.to_json_dict``)
    consumers: Callable[[str], dict[str, Any]]
    #: (pruned library, models, reference library, level, tolerance) → outputs compared
    verify: Callable[[str, list[Path], str, str, float], VerifyReport]
    #: (pruned library, converted models, reference library, level, tolerance) → each .ort vs its .onnx
    verify_ort: Callable[[str, list[ConvertedModel], str, str, float], VerifyReport]
    #: (models, {variant: library}, full library, {variant: library} in ORT format, converted) → embeddings
    embed: Callable[[list[Path], dict[str, str], str, dict[str, str], list[ConvertedModel]], dict[str, EmbedCheck]]
    #: (library, data source) → every byte of the library labelled
    size: Callable[[str, str], SizeReport]
    #: (size reports by op per build, table, output dir) → chart files written
    charts: Callable[[dict[str, SizeReport], list[VariantRow], Path], list[Path]]
    #: (shipped footprints, output dir) → chart files written
    shipped_chart: Callable[[list[Shipped], Path], list[Path]]
    #: the finished result → report.md + report.json
    report: Callable[[SlimResult], None]
    #: (ort source, target or None for this machine) → the official release library of that version for that
    #: machine, as a build manifest (``ortbuild.official``); NoOfficialLibrary when there is none (slim then
    #: builds the full reference)
    reference: Callable[[str, str | None], BuildResult] = lambda ort, target: _official(ort, target)


def default_stages(
    store: Store | None = None,
    ccache_remote: str | None = None,
    log: Callable[[str], None] | None = None,
    levers: Levers | None = None,
    target: str | None = None,
    distcc: str | None = None,
) -> Stages:
    """The real stages; builds go through ``store`` (fetched from and published to), ``ccache_remote`` and
    ``distcc``; pruned variants get ``levers``; every build is for ``target`` (None: this machine)."""
    from ortprune.report.size import write_category_chart, write_shipped_chart
    from ortprune.report.slim import write_report

    return Stages(
        build=functools.partial(
            _build,
            store=store,
            ccache_remote=ccache_remote,
            log=log,
            levers=levers or Levers(),
            target=target,
            distcc=distcc,
        ),
        scan=_scan,
        transformers=_transformers,
        convert=_convert_models,
        probe=_probe,
        consumers=_consumers,
        verify=_verify,
        verify_ort=_verify_ort,
        embed=_embed_check,
        size=_analyze,
        charts=write_category_chart,
        shipped_chart=write_shipped_chart,
        report=write_report,
    )


T = TypeVar("T")

#: (file, key parts) of every stage result the current slim run used: published with the builds they describe
_MEMO_LOG: contextvars.ContextVar[list[tuple[Path, list[str]]]] = contextvars.ContextVar("_MEMO_LOG")


def _memo(
    kind: str,
    key_parts: list[str],
    compute: Callable[[], T],
    to_dict: Callable[[T], dict[str, Any]],
    from_dict: Callable[[dict[str, Any]], T],
) -> T:
    """A stage result cached as JSON under ~/.cache/ortprune/stages, keyed by a hash of its inputs."""
    key = hashlib.sha256(json.dumps([kind, *key_parts]).encode()).hexdigest()[:20]
    path = cache_dir("stages", f"{kind}-{key}.json")
    _MEMO_LOG.get([]).append((path, key_parts))
    if path.exists():
        try:
            return from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):  # e.g. a list where an object was
            pass  # a damaged cache entry is recomputed, not trusted
    value = compute()
    atomic_write_text(path, json.dumps(to_dict(value), indent=2) + "\n")
    return value


def check_inputs(
    models: list[Path],
    ort: str,
    level: str,
    variants: tuple[str, ...],
    out: Path,
    jobs: int | None,
    tolerance: float,
    reference: str = "official",
) -> list[Path]:
    """Every input of a slim run, checked before the first (25-minute) build: the variants, the ORT
    source, each model file (parsed, ops valid, external data present) and the output directory.
    Returns the model files (directories expanded)."""
    import math

    from ortprune._io import check_outputs, output_dir
    from ortprune.catalog import VARIANTS
    from ortprune.errors import UsageError
    from ortprune.ortbuild.sources import check_source_spec
    from ortprune.scan import check_level, find_models, scan_model

    if not variants:
        raise UsageError("--variants is empty: name at least one pruned variant, e.g. --variants reduced")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UsageError(f"unknown variant(s) {', '.join(map(repr, unknown))}; known: {', '.join(VARIANTS)}")
    if reference not in REFERENCES:
        raise UsageError(f"--reference must be one of {', '.join(REFERENCES)}, not {reference!r}")
    if BASELINE in variants and reference == BASELINE:
        raise UsageError("'full' is the reference already (--reference full); --variants lists the others")
    if variants == (BASELINE,):
        raise UsageError("--variants names no pruned variant: add one, e.g. --variants full,reduced")
    if len(set(variants)) != len(variants):
        raise UsageError(f"--variants names a variant twice: {','.join(variants)}")
    check_parallel(jobs, "--jobs")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise UsageError(f"--tolerance must be a finite number >= 0, got {tolerance}")
    check_level(level)
    check_source_spec(ort)
    files = find_models(models)
    for m in files:
        scan_model(m, "disable")  # reads the graph only: a file that is not a usable model stops here
    output_dir(out)
    check_outputs([out / n for n in ("ops.config", "scan.json", "report.md", "report.json", "libonnxruntime.so")],
                  [*files, *([Path(ort)] if Path(ort).exists() else [])])  # fmt: skip
    return files


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
    stages: Stages | None = None,
    levers: Levers | None = None,
    reference: str = "official",
    target: str | None = None,
    distcc: str | None = None,
) -> SlimResult:
    """``reference``: ``official`` (default) verifies against, scans with and measures from the official release
    library of the same version (PyPI's onnxruntime wheel; when there is none for this version and machine, the
    full MinSizeRel build takes its place, said in a note); ``full`` builds that full library for it. ``full``
    among ``variants`` adds the MinSizeRel full build (the seed's baseline) to the tables.

    ``variants`` with ``model_format == "ort"`` (minimal) get ORT-format models made by the full build
    (``keep_quantized``: without ConstantFolding, see :mod:`ortprune.convert`), a typed config scanned
    from those, probes and models loaded in ORT format, and the ``.ort`` files exported to ``out/models``.

    ``store``: an artifact store (directory or http(s) URL) builds are fetched from and published to, with
    their probe, verify and size results; ``ccache_remote``: ccache's remote storage for what is compiled.
    ``levers``: build options for the pruned variants (``--extra``, ``--prune``, ``--toolchain``).
    ``stages``: the stage functions (default: :func:`default_stages` with that store). ``target``: the machine
    the libraries are for (``linux-aarch64`` cross-builds here; its libraries are scanned with, probed and
    verified under qemu-user; the in-process checks, consumers and embeddings, are skipped for it).
    ``distcc``: hosts that compile what ccache misses (``ortbuild.distcc``; checked before any stage runs)."""
    ui = ui or QuietUI()
    if distcc is not None:
        from ortprune.ortbuild.runner import build_env

        build_env(ccache_remote, distcc)  # a bad host list or a missing distcc stops here, not after the scan
    models = check_inputs(models, ort, level, variants, out, jobs, tolerance, reference)
    foreign = _foreign_target(target)
    if foreign and any(variant(v).model_format == "ort" for v in variants):
        from ortprune.errors import UsageError

        raise UsageError(f"--target {foreign}: the ORT-format (minimal) variants are made for this machine only")
    if foreign and any((levers or Levers()).prunes_optimizers(v) for v in variants):
        from ortprune.errors import UsageError

        raise UsageError(f"--target {foreign}: --prune optimizers reads ORT's log in this process; not for {foreign}")
    levers = levers or Levers()
    levers.check(variants)
    the_store = None
    if store is not None:
        from ortprune.ortbuild.store import open_store

        the_store = open_store(store)  # one object: a store found unusable is skipped for the rest of the run
    run = stages or default_stages(the_store, ccache_remote, ui.note, levers, foreign, distcc)
    memo_log: list[tuple[Path, list[str]]] = []
    _MEMO_LOG.set(memo_log)
    for v in variants:
        variant(v)  # an unknown name stops here, before any build
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        t0 = time.monotonic()
        with ui.stage(name):
            yield
        timings[name] = round(timings.get(name, 0.0) + time.monotonic() - t0, 2)

    builds: dict[str, SlimBuild] = {}

    def build(name: str, config: Path | None, keep: tuple[str, ...] = ()) -> None:
        with ui.build_progress(name) as progress:
            b = run.build(ort, name, config, keep, jobs, progress)
        builds[name] = SlimBuild(b, file_digest(b.library))

    config_path = out / "ops.config"
    with timed("build"):  # the reference: the optimizer of the exact version being pruned, and the baseline
        if reference == OFFICIAL:
            try:
                official = run.reference(ort, foreign)
            except NoOfficialLibrary as e:
                ui.note(f"{e}: the full MinSizeRel build is the reference instead")
                reference = BASELINE
            else:
                builds[OFFICIAL] = SlimBuild(official, file_digest(official.library))
        if BASELINE in variants or reference == BASELINE:
            build(BASELINE, None)
    full = builds[reference]
    with timed("scan"):
        wants_types = any(variant(v).needs_types for v in variants)
        scanned = run.scan(models, level, wants_types, full.library, config_path, out / "scan.json")
    res = SlimResult(out=out, config_path=config_path, scan=scanned, builds=builds, reference=reference)
    if foreign:
        with timed("scan"):
            ui.note(_compare_with_host(models, level, full.build.ort_version, config_path, foreign))
    model_shas = [file_digest(m) for m in models]
    keep: tuple[str, ...] = ()
    if any(levers.prunes_optimizers(v) for v in variants):
        with timed("scan"):
            use = _memo(
                "transformers",
                [full.library_sha, level, *model_shas],
                lambda: run.transformers(models, full.library, level),
                TransformerUse.to_dict,
                TransformerUse.from_dict,
            )
            keep = tuple(use.used)
            ui.note(f"graph transformers the models need at level {level}: {', '.join(keep) or 'none'}")
    ort_variants = [v for v in variants if variant(v).model_format == "ort"]
    if ort_variants:
        with timed("convert"):
            res.converted = run.convert(models, full.library, out / "models", level, keep_quantized)
            res.ort_config_path = out / "ops-ort.config"
            ort_models = [Path(c.ort) for c in res.converted]
            run.scan(ort_models, level, True, None, res.ort_config_path, out / "scan-ort.json")
    with timed("build"):
        for v in variants:
            if v == BASELINE:
                continue  # built with the reference
            config = res.ort_config_path if v in ort_variants else config_path
            build(v, config if variant(v).needs_config else None, keep if levers.prunes_optimizers(v) else ())

    with timed("probe"):
        for v in variants:
            b = builds[v]
            is_ort = v in ort_variants
            cfg = res.ort_config_path if is_ort and res.ort_config_path else config_path
            res.probes[v] = _memo(
                "probe",
                [b.library_sha, file_digest(cfg), "ort" if is_ort else "onnx"],
                lambda b=b, cfg=cfg, is_ort=is_ort: run.probe(  # type: ignore[misc]
                    b.library, cfg, jobs, full.library if is_ort else None
                ),
                ProbeReport.to_dict,
                ProbeReport.from_dict,
            )

    with timed("consumers"):
        if foreign:
            ui.note(f"consumers not checked: they load the library in this process, and it is for {foreign}")
        for v in variants if not foreign else ():
            ask = functools.partial(run.consumers, builds[v].library)
            res.consumers[v] = _memo("consumers", [builds[v].library_sha], ask, dict, dict)

    with timed("verify"):
        for v in variants:
            b = builds[v]
            key = [b.library_sha, full.library_sha, level, str(tolerance), *model_shas]
            if v in ort_variants:
                key += ["ort", *(file_digest(c.ort) for c in res.converted)]

                def compute(b: SlimBuild = b) -> VerifyReport:
                    return run.verify_ort(b.library, res.converted, full.library, level, tolerance)
            else:

                def compute(b: SlimBuild = b) -> VerifyReport:
                    return run.verify(b.library, models, full.library, level, tolerance)

            res.verifies[v] = _memo("verify", key, compute, VerifyReport.to_dict, VerifyReport.from_dict)

    with timed("embed"):
        onnx_libs = {v: builds[v].library for v in variants if v not in ort_variants}
        ort_libs = {v: builds[v].library for v in ort_variants}
        if foreign:  # TextEmbedding loads the library in this process
            ui.note(f"embeddings not checked in this process: the libraries are for {foreign}")
        else:
            res.embeds = run.embed(models, onnx_libs, full.library, ort_libs, res.converted)

    with timed("size"):
        res.sizes = _sizes(res, run)
        res.shipped = _shipped(res, models, ort_variants)
        shipped_charts = run.shipped_chart(res.shipped, out / "charts")
        res.sizes.shipped_charts = [str(p.relative_to(out)) for p in shipped_charts]
    if the_store is not None:
        _publish_stage_results(the_store, res, memo_log, ui)

    with timed("report"):
        res.stage_seconds = timings
        atomic_copy(builds[res.exported].library, out / "libonnxruntime.so")
        run.report(res)
    return res


def _compare_with_host(models: list[Path], level: str, version: str, config_path: Path, target: str) -> str:
    """Whether this machine's official library of ``version`` would want another config than ``target``'s."""
    from ortprune.errors import OrtpruneError
    from ortprune.opconfig import OpConfig
    from ortprune.ortbuild.official import official_library
    from ortprune.platform import host_target
    from ortprune.scan import compare_configs, scan

    try:
        here = scan(models, level, runtime=official_library(version, host_target()).library)
    except OrtpruneError as e:
        return f"not compared with {host_target()}'s config: {e}"
    return compare_configs(OpConfig.load(config_path), target, here.config, host_target())


def _foreign_target(target: str | None) -> str | None:
    """``target`` when it is another machine's than this one (its libraries run under qemu-user), else None."""
    from ortprune.platform import host_target
    from ortprune.platform import target as check_target

    return None if target is None or check_target(target).name == host_target() else target


def _sizes(res: SlimResult, run: Stages) -> SizeSummary:
    """Seed table for full and each variant, attribution by op of the full build, savings by op, charts."""
    from ortprune.analyze import diff_reports

    def report(name: str, by: str) -> SizeReport:
        b = res.builds[name]
        return _memo(
            f"size-{by}", [b.library_sha], lambda: run.size(b.library, by), SizeReport.to_dict, SizeReport.from_dict
        )

    sections = {v: report(v, "section") for v in res.builds}
    by_op = {v: report(v, "op") for v in res.builds}
    base = sections[res.reference]
    rows = [
        VariantRow(
            "official release" if v == OFFICIAL else v,
            r.path,
            r.file_size,
            base.file_size,
            None if r.footprint is None else r.footprint.total,
        )
        for v, r in sections.items()
    ]
    charts = run.charts(by_op, rows, res.out / "charts")
    ref = by_op[res.reference]
    return SizeSummary(
        table=rows,
        full_by_op=[LabelSize(lb.name, lb.kind, lb.size) for lb in ref.sorted_labels()],
        savings_by_op={v: diff_reports(ref, by_op[v]) for v in res.builds if v != res.reference},
        notes=sorted({n for r in by_op.values() for n in r.notes}),
        charts=[str(p.relative_to(res.out)) for p in charts],
    )


#: What slim verifies against and measures from (``--reference``).
REFERENCES = (OFFICIAL, BASELINE)


# ---- the real stages -----------------------------------------------------------------------------------
def _build(
    ort: str,
    name: str,
    config: Path | None,
    keep: tuple[str, ...],
    jobs: int | None,
    progress: ProgressFn | None,
    store: Store | None = None,
    ccache_remote: str | None = None,
    log: Callable[[str], None] | None = None,
    levers: Levers = Levers(),
    target: str | None = None,
    distcc: str | None = None,
) -> BuildResult:
    from ortprune.ortbuild import build_variant

    if name == BASELINE:
        levers = Levers()  # the reference is the stock full build
    return build_variant(
        ort,
        name,
        config,
        extra_flags=levers.extra,
        jobs=jobs,
        progress=progress,
        prune=levers.prune,
        keep_transformers=keep,
        store=store,
        ccache_remote=ccache_remote,
        log=log or (lambda s: None),
        toolchain=levers.toolchain,
        target=target,
        distcc=distcc,
    )


def _official(ort: str, target: str | None) -> BuildResult:
    from ortprune.ortbuild.official import as_build, official_library
    from ortprune.ortbuild.sources import version_of

    return as_build(official_library(version_of(ort), target))


def _publish_stage_results(store: Store, res: SlimResult, used: list[tuple[Path, list[str]]], ui: StageUI) -> None:
    """Each build's probe, verify and size results (those keyed by its library's hash) join its artifact in
    the store, so a teammate's slim with an empty cache skips those stages too."""
    from ortprune.ortbuild.store import publish_or_warn, stage_file_name

    for b in res.builds.values():
        paths = {stage_file_name(p): p for p, parts in used if b.library_sha in parts and p.exists()}
        publish_or_warn(store, b.build, ui.note, paths)


def _transformers(models: list[Path], full_lib: str, level: str) -> TransformerUse:
    """The transformers that change the models' graphs on the full build (ORT's log), checked: with all the
    others disabled the full build optimizes every model into the byte-identical graph."""
    from ortprune.errors import OrtpruneError
    from ortprune.scan.transformers import changed_by_disabling, transformer_log

    log = transformer_log(models, full_lib, level)
    changed = changed_by_disabling(models, full_lib, log.unused, level)
    if changed:
        raise OrtpruneError("disabling the transformers that logged no change changed the graph", changed[0])
    return TransformerUse(list(log.used), list(log.unused))


def _scan(
    models: list[Path], level: str, types: bool, runtime: str | None, config: Path, json_path: Path
) -> ScanReport:
    from ortprune.scan import scan

    result = scan(models, level, types=types, runtime=runtime)
    result.write(config, json_path)
    return result.report()


def _consumers(lib: str) -> dict[str, Any]:
    """``ortprune.runtime.consumers`` on ``lib``, in a child process: loading a second ORT library into
    this one would share its symbols with whichever loaded first."""
    code = (
        "import json, sys\n"
        "from ortprune.runtime.consumers import check_consumers\n"
        "print(json.dumps(check_consumers(sys.argv[1]).to_json_dict()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, lib], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        from ortprune.errors import OrtpruneError

        raise OrtpruneError(f"checking which consumers load it failed: {proc.stderr.strip()[-500:]}", lib)
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def _probe(lib: str, config_path: Path, jobs: int | None, converter: str | None) -> ProbeReport:
    from ortprune.opconfig import OpConfig
    from ortprune.verify import probe

    config = OpConfig.load(config_path)
    return probe(lib, list(config), jobs, config.types, converter=converter)


def _verify(lib: str, models: list[Path], full: str, level: str, tolerance: float) -> VerifyReport:
    from ortprune.verify import verify

    return verify(lib, models, full, level, tolerance)


def _analyze(lib: str, by: str) -> SizeReport:
    from ortprune.analyze import analyze

    return analyze(lib, by)


def _verify_ort(lib: str, converted: list[ConvertedModel], full: str, level: str, tolerance: float) -> VerifyReport:
    """Each ``.ort`` on the pruned library (loaded as it is, level disable) against the ``.onnx`` it came
    from on the full build at ``level``: what a deployment of the minimal build runs vs the reference."""
    from ortprune.verify import verify

    reports = [
        verify(lib, [Path(c.ort)], full, level, tolerance, reference_model=Path(c.source), pruned_level="disable")
        for c in converted
    ]
    merged = reports[0]
    for r in reports[1:]:
        merged.models += r.models
    return merged


def _convert_models(
    models: list[Path], full_lib: str, out: Path, level: str, keep_quantized: bool
) -> list[ConvertedModel]:
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
        target = atomic_copy(cached, target_dir / cached.name)
        tok = _tokenizer_dir(model)
        for f in tokenizer_files(tok) if tok is not None else []:
            atomic_copy(f, target_dir / f.name)
        record.update(ort=str(target), source=str(model), name=names[model])
        done.append(ConvertedModel.from_dict(record))
    return done


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


def _shipped(res: SlimResult, models: list[Path], ort_variants: list[str]) -> list[Shipped]:
    """Library (stripped) + model files + tokenizer files per build, smallest total first."""
    from ortprune.analyze.shipped import ranked, shipped, stripped_size
    from ortprune.verify.compare import _tokenizer_dir

    tok_dirs = [d for d in (_tokenizer_dir(m) for m in models) if d is not None]
    items = []
    for v, b in res.builds.items():
        files = [Path(c.ort) for c in res.converted] if v in ort_variants else models
        probe, check = res.probes.get(v), res.verifies.get(v)
        ok = v == res.reference or (probe is not None and probe.ok and check is not None and check.ok)
        stripped = b.build.stripped_bytes
        if stripped is None:
            stripped = _memo(
                "stripped",
                [b.library_sha],
                lambda b=b: stripped_size(b.library),  # type: ignore[misc]
                lambda n: {"bytes": n},
                lambda d: d["bytes"],
            )
        items.append(shipped(v, b.library, files, tok_dirs, ok, stripped))
    return ranked(items)


def _embed_check(
    models: list[Path],
    libs: dict[str, str],
    full_lib: str,
    ort_libs: dict[str, str],
    converted: list[ConvertedModel],
) -> dict[str, EmbedCheck]:
    """For bundled text models: embeddings through ortprune.embed on each pruned library vs the full one
    (for ``ort_libs``: the exported ``.ort`` file with its tokenizer beside it)."""
    import numpy as np

    from ortprune.bundled import BUNDLED
    from ortprune.verify.compare import compare_outputs

    bundled = {m.path().resolve(): m for m in BUNDLED}
    texts = ["ONNX Runtime, pruned to what the model needs.", "Hello, World!", "fastembed-rs loads it dynamically."]
    report: dict[str, EmbedCheck] = {}
    try:
        from ortprune.embed import TextEmbedding, model_info
    except ImportError:
        return report
    for model in models:
        b = bundled.get(model.resolve())
        if b is None:
            continue
        ref = np.stack(list(TextEmbedding(b.name, lib=full_lib).embed(texts)))
        ort_file = next((c.ort for c in converted if Path(c.source).resolve() == model.resolve()), None)
        runs = [(v, lib, b.name, "all") for v, lib in libs.items()]
        runs += [(v, lib, ort_file, "disable") for v, lib in ort_libs.items() if ort_file]
        info = model_info(b.name)  # the exported .ort has no modules.json: say how it pools and normalizes
        for v, lib, source, lvl in runs:
            emb = TextEmbedding(source, lib=lib, optimization_level=lvl, pooling=info.pooling, normalize=info.normalize)
            got = np.stack(list(emb.embed(texts)))
            (diff,) = compare_outputs({"embedding": ref}, {"embedding": got}, tolerance=0.0)
            report[f"{b.name} @ {v}"] = EmbedCheck(diff.max_abs_diff, diff.min_row_cosine, int(ref.shape[1]))
    return report
