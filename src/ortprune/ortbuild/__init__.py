"""build: ORT source + offline deps + variant → BuildResult (runs ORT's own build.py)."""

from __future__ import annotations

from pathlib import Path

from ortprune.ortbuild.deps import DepsDir, fetch_debian, load_deps_dir
from ortprune.ortbuild.runner import BuildResult, ProgressFn, build, export, ort_version_of
from ortprune.ortbuild.sources import RELEASES, resolve_source
from ortprune.ortbuild.variants import VARIANTS, BuildSpec

__all__ = ["VARIANTS", "BuildResult", "BuildSpec", "build", "build_variant", "export", "fetch_debian"]


def deps_for(source_spec: str | Path, version: str, deps_dir: Path | None) -> DepsDir | None:
    """Offline deps for a source: a given directory, else Debian's pool for known releases; None for git."""
    if deps_dir is not None:
        return load_deps_dir(deps_dir, version)
    if str(source_spec).startswith("git:") or version not in RELEASES:
        return None  # online: ORT's CMake downloads what deps.txt lists
    return fetch_debian(version)


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
) -> BuildResult:
    """Resolve the source and deps, then build one variant (cached by spec).

    ``prune`` adds source transforms (``ortbuild.prune.LEVERS``) on top of the variant's own;
    ``keep_transformers`` are the graph transformers ``optimizers`` keeps (``scan.transformers``)."""
    from ortprune.opconfig import OpConfig

    src = resolve_source(source)
    version = ort_version_of(src)
    config_text = None
    if config is not None:
        OpConfig.load(config)  # a syntax error stops here, naming the file and line
        config_text = config.read_text()
    spec = BuildSpec(version, variant, config_text, tuple(extra_flags), wheel, prune=prune,
                     keep_transformers=keep_transformers)  # fmt: skip
    deps = deps_for(source, version, deps_dir)
    return build(spec, src, deps, jobs=jobs, progress=progress)
