"""Find the ORT builds in the cache (``$ORTPRUNE_CACHE/builds``) by their manifests, for size tables and the
measured-builds page. Reads only the manifests (``ortprune.results.BuildResult``) and the files beside them."""

from __future__ import annotations

import filecmp
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from ortprune.analyze.shipped import stripped_size
from ortprune.cache import cache_dir, file_digest
from ortprune.catalog import DEFAULT_TOOLCHAIN, VARIANTS, variant, variant_rank
from ortprune.errors import OrtpruneError
from ortprune.results import BuildResult, MeasuredBuild


@dataclass(frozen=True)
class CachedBuild:
    name: str  #: variant, plus extra flags when any (``reduced+--enable_lto``)
    variant: str
    library: Path
    config: Path | None  #: the reduced-build config it was made with


def find_builds(version: str, root: Path | None = None) -> list[CachedBuild]:
    """Builds of ORT ``version`` with a library, in catalogue order (full first)."""
    root = root or cache_dir("builds")
    found: list[CachedBuild] = []
    has_manifest: set[Path] = set()
    if not root.is_dir():
        return found
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        libs = sorted((d / "MinSizeRel").glob(f"libonnxruntime.so.{version}"))
        if not libs:
            continue
        variant, extra = d.name, []
        manifest = d / "manifest.json"
        if manifest.exists():
            has_manifest.add(libs[0])
            try:
                data = json.loads(manifest.read_text())
                variant, extra = str(data["variant"]), [str(f) for f in data.get("extra_flags", [])]
            except (ValueError, KeyError, TypeError):
                pass
        name = variant + "".join(f"+{f}" for f in extra)
        if any(b.name == name for b in found):
            name = f"{name} ({d.name})"
        config = d / "ops.config"
        found.append(CachedBuild(name, variant, libs[0], config if config.exists() else None))
    # A copy of a build (e.g. a bootstrap directory a manifest build was made from) is listed once.
    unique: list[CachedBuild] = []
    for b in sorted(found, key=lambda b: b.library not in has_manifest):
        if not any(_same_file(b.library, u.library) for u in unique):
            unique.append(b)
    return sorted(unique, key=lambda b: (variant_rank(b.variant), b.name))


def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)


def find_manifests(version: str | None = None, root: Path | None = None) -> list[BuildResult]:
    """Every finished build in the cache (``builds/*/manifest.json``), optionally of one ORT version."""
    root = root or cache_dir("builds")
    found = [BuildResult.load(p) for p in sorted(root.glob("*/manifest.json"))]
    return [r for r in found if version is None or r.ort_version == version]


def command_for(r: BuildResult, config_file: str | None) -> str:
    """The ortprune command that reproduces the build (the config by the file name given for it)."""
    args = ["ortprune", "build", "--source", f"debian:{r.ort_version}", "--variant", r.variant]
    if r.config_hash:
        args += ["--config", config_file or "ops.config"]
    args += [f"--extra={flag}" for flag in r.extra_flags]
    own = set(variant(r.variant).prune) if r.variant in VARIANTS else set()
    levers = [lv for lv in r.prune if lv not in own]
    if levers:
        args += ["--prune", ",".join(levers)]
    if r.keep_transformers:
        args += ["--keep-transformers", ",".join(r.keep_transformers)]
    if r.toolchain_name != DEFAULT_TOOLCHAIN:
        args += ["--toolchain", r.toolchain_name]
    if r.wheel_file:
        args.append("--wheel")
    if r.target:
        args += ["--target", r.target]
    return shlex.join(args)


def measured_builds(
    version: str, configs: dict[str, Path] | None = None, root: Path | None = None, target: str | None = None
) -> list[MeasuredBuild]:
    """The finished builds of ORT ``version``, full first, for the measured-builds page. ``configs``
    (label → config file) names the builds made from those configs; naming any selects them: builds from
    other configs are left out. ``target``: the cross builds for that target (None: native builds only; a
    page never mixes machines)."""
    named: dict[str, tuple[str | None, str | None]] = {}
    for label, path in (configs or {}).items():
        try:
            named[file_digest(path)] = (label, str(path))
        except OSError as e:
            raise OrtpruneError(f"cannot read the config: {e.strerror}", path) from None
    found = [r for r in find_manifests(version, root) if r.target == target]
    if named:
        found = [r for r in found if r.config_hash is None or r.config_hash in named]
    if not found:
        raise OrtpruneError(
            f"no finished builds of ONNX Runtime {version}{f' for {target}' if target else ''} in the cache "
            "(run ortprune build)"
        )
    rows = []
    official = _official_row(version, target)
    if official is not None:
        rows.append(official)
    for r in sorted(found, key=lambda r: (variant_rank(r.variant), r.library_bytes)):
        config_label, file = named.get(r.config_hash or "", (None, None))
        wheel = " + Python wheel" if r.wheel_file else ""
        extra = "".join(f" {f}" for f in r.extra_flags)
        tag = f" ({r.toolchain_name})" if r.toolchain_name != DEFAULT_TOOLCHAIN else ""
        name = f"{r.variant}: {config_label}{tag}{wheel}" if config_label else f"{r.variant}{extra}{tag}{wheel}"
        stripped = stripped_size(r.library) if Path(r.library).exists() else None
        rows.append(MeasuredBuild(r, name, command_for(r, file), stripped, file))
    return rows


def _official_row(version: str, target: str | None) -> MeasuredBuild | None:
    """The official release library of ``version`` for ``target`` (this machine when None) as the page's first
    row and baseline, when it is cached (``ortprune scan --runtime official:VERSION`` or ``slim`` fetch it)."""
    from ortprune.ortbuild.official import as_build, cached

    lib = cached(version, target)
    if lib is None:
        return None
    command = f"pip download onnxruntime=={version} --no-deps (the official release library, {lib.wheel})"
    return MeasuredBuild(as_build(lib), "official release", command, lib.library_bytes)
