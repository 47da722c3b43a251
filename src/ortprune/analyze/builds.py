"""Find the ORT builds in the cache (``~/.cache/ortprune/builds``) by their manifests, for size tables.

Reads only the manifest's JSON (``variant``, ``extra_flags``) and the ``ops.config`` copy beside it,
so this stage does not depend on the build stage's code.
"""

from __future__ import annotations

import filecmp
import json
from dataclasses import dataclass
from pathlib import Path

BUILDS = Path.home() / ".cache" / "ortprune" / "builds"
ORDER = ("full", "no-contrib", "reduced", "reduced-types", "minimal")


@dataclass(frozen=True)
class CachedBuild:
    name: str  #: variant, plus extra flags when any (``reduced+--enable_lto``)
    variant: str
    library: Path
    config: Path | None  #: the reduced-build config it was made with


def find_builds(version: str, root: Path = BUILDS) -> list[CachedBuild]:
    """Builds of ORT ``version`` with a library, full first, then in ORDER."""
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
    return sorted(unique, key=lambda b: (ORDER.index(b.variant) if b.variant in ORDER else len(ORDER), b.name))


def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)
