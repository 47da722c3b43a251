"""build: ORT source + offline deps + variant → BuildResult (runs ORT's own build.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ortprune.cache import cache_dir
from ortprune.catalog import DEFAULT_TOOLCHAIN, VARIANTS
from ortprune.errors import BuildError
from ortprune.ortbuild import runner
from ortprune.ortbuild.cross import cross_target
from ortprune.ortbuild.cross import resolve as resolve_cross
from ortprune.ortbuild.deps import DepsDir, fetch_debian, load_deps_dir
from ortprune.ortbuild.depsmap import read_deps_txt
from ortprune.ortbuild.identity import compiler_and_cmake, source_id, toolchain_id
from ortprune.ortbuild.runner import BuildResult, ProgressFn, build, export, find_cached, ort_version_of
from ortprune.ortbuild.sources import RELEASES, release, resolve_source
from ortprune.ortbuild.store import Store
from ortprune.ortbuild.toolchain import resolve as resolve_toolchain
from ortprune.ortbuild.variants import BuildSpec
from ortprune.platform import check_parallel

#: The most compile jobs ``-j`` takes: far beyond one machine's cores, for distcc / icecream farms.
MAX_BUILD_JOBS = 1024

__all__ = ["VARIANTS", "BuildResult", "BuildSpec", "build", "build_variant", "export", "fetch_debian"]


def deps_for(source_spec: str | Path, version: str, deps_dir: Path | None, src: Path) -> DepsDir | None:
    """Offline deps for the source tree ``src``, mapped from its own cmake/deps.txt (``ortbuild.depsmap``):
    from ``deps_dir`` when given, else from Debian's pool for releases whose source is there; None for git
    and other versions (online: ORT's CMake downloads what deps.txt lists; ``--source git:v1.24.4`` is the
    way to a library fastembed-rs 6 accepts)."""
    if deps_dir is not None:
        return load_deps_dir(deps_dir, version, read_deps_txt(src))
    if str(source_spec).startswith("git:") or version not in RELEASES:
        return None
    own, rel = read_deps_txt(src), release(version)
    if str(source_spec).startswith("debian:") and own[0] != rel.deps_txt():
        raise BuildError(
            f"differs from the deps.txt recorded for ONNX Runtime {version} ({rel.deps_txt_path}), which names "
            "this build: the extracted source was changed (remove it to extract it again)",
            own[1],
        )
    return fetch_debian(version, deps_txt=own)


def spec_for(
    source: str | Path,
    variant: str,
    config_text: str | None = None,
    deps_dir: Path | None = None,
    extra_flags: tuple[str, ...] = (),
    wheel: bool = False,
    env: dict[str, str] | None = None,
    prune: tuple[str, ...] = (),
    keep_transformers: tuple[str, ...] = (),
    toolchain: str = DEFAULT_TOOLCHAIN,
    target: str | None = None,
) -> tuple[BuildSpec, Path | None, Path]:
    """The full spec (with source and toolchain identity) of a build, the resolved source tree (None for
    ``debian:``, which is identified without downloading it) and where that tree lives or will live.
    ``target`` (``linux-aarch64``) cross-builds; this machine's own target is a native build."""
    cross = cross_target(target)
    text = str(source)
    tree: Path | None = None
    if text.startswith("debian:"):  # identified by its pinned pool hash: a store hit downloads no source
        version = release(text.split(":", 1)[1]).version
    else:
        tree = resolve_source(source)
        version = ort_version_of(tree)
    env = env or runner.build_env()
    tools = resolve_toolchain(toolchain, env["PATH"])
    cxx = None if tools.is_default else tools.cxx
    if cross is not None:
        cxx = resolve_cross(cross, env["PATH"]).cxx
    spec = BuildSpec(
        version,
        variant,
        config_text,
        tuple(extra_flags),
        wheel,
        prune=prune,
        keep_transformers=keep_transformers,
        source_id=source_id(source, tree, version, deps_dir),
        toolchain=toolchain_id(*compiler_and_cmake(env["PATH"], cxx), flags=tools.key_flags()),
        toolchain_name=toolchain,
        target=None if cross is None else cross.name,
    )
    return spec, tree, tree or cache_dir("src", f"onnxruntime-{version}")


def lookup(
    source: str | Path,
    variant: str,
    config_text: str | None = None,
    toolchain: str = DEFAULT_TOOLCHAIN,
    target: str | None = None,
) -> BuildResult | None:
    """The finished local build of ``variant`` from ``source`` (as ``build_variant`` would find it), or None."""
    spec, _, where = spec_for(source, variant, config_text, toolchain=toolchain, target=target)
    return find_cached(spec, where)


def build_variant(
    source: str | Path,
    variant: str,
    config: Path | None = None,
    deps_dir: Path | None = None,
    extra_flags: tuple[str, ...] = (),
    wheel: bool = False,
    jobs: int | None = None,
    progress: ProgressFn | None = None,
    prune: tuple[str, ...] = (),
    keep_transformers: tuple[str, ...] = (),
    store: str | Path | Store | None = None,
    ccache_remote: str | None = None,
    log: Callable[[str], None] = print,
    toolchain: str = DEFAULT_TOOLCHAIN,
    target: str | None = None,
    distcc: str | None = None,
) -> BuildResult:
    """Resolve the source and deps, then build one variant: from the local cache, else from ``store`` (an
    artifact store: directory or http(s) URL), else compiled here (through ``ccache_remote`` when given)
    and published to ``store``. A store that is down or answers garbage only costs one line of output.

    ``prune`` adds source transforms (``ortbuild.prune.LEVERS``) on top of the variant's own;
    ``keep_transformers`` are the graph transformers ``optimizers`` keeps (``scan.transformers``); ``toolchain``
    the compiler and linker (``catalog.TOOLCHAINS``); ``target`` the machine it is for (``ortbuild.cross``:
    ``linux-aarch64`` cross-builds on an x86-64 host); ``distcc`` the hosts that compile what ccache misses
    (``ortbuild.distcc``: checked with the other inputs, never part of the build key)."""
    from ortprune.opconfig import OpConfig
    from ortprune.ortbuild import store as store_mod
    from ortprune.ortbuild.deps import check_wheel_headers

    # every input is checked before any download, extraction or compile
    config_text = None
    if config is not None:
        OpConfig.load(config).require_ops(config)  # a syntax error or a config of no op stops here, naming the file
        config_text = config.read_text(encoding="utf-8")
    # variant, config, flags and levers fit together
    cross = cross_target(target)
    BuildSpec("0", variant, config_text, tuple(extra_flags), wheel, prune=prune, keep_transformers=keep_transformers,
              toolchain_name=toolchain, target=cross.name if cross else None)  # fmt: skip
    check_parallel(jobs, "--jobs", top=MAX_BUILD_JOBS)
    if deps_dir is not None and not deps_dir.is_dir():
        raise BuildError("--deps must be a directory of dependency archives", deps_dir)
    if wheel:
        check_wheel_headers()
    env = runner.build_env(ccache_remote, distcc)
    spec, tree, where = spec_for(
        source, variant, config_text, deps_dir, extra_flags, wheel, env, prune, keep_transformers, toolchain, target
    )
    cached = find_cached(spec, where)
    the_store = store_mod.open_store(store) if store else None
    if cached is None and the_store is not None:
        cached = store_mod.fetch_or_none(the_store, spec, log)
        if cached is not None:
            return cached
    if cached is not None:
        log(f"cached: {cached.library} ({cached.library_bytes:,} bytes)")
        result = cached
    else:
        src = tree or resolve_source(source)
        deps = deps_for(source, spec.ort_version, deps_dir, src)
        result = runner.build(
            spec, src, deps, jobs=jobs, progress=progress, log=log, ccache_remote=ccache_remote, distcc=distcc
        )
    if the_store is not None and result.fetched_from is None:
        store_mod.publish_or_warn(the_store, result, log)
    return result
