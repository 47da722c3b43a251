"""Find the ORT builds in the cache (``~/.cache/ortprune/builds``) by their manifests, for size tables.

Reads only the manifest's JSON (``variant``, ``extra_flags``) and the ``ops.config`` copy beside it,
so this stage does not depend on the build stage's code.
"""

from __future__ import annotations

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
    if not root.is_dir():
        return found
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        libs = sorted((d / "MinSizeRel").glob(f"libonnxruntime.so.{version}"))
        if not libs:
            continue
        variant, extra = d.name, []
        manifest = d / "manifest.json"
        if manifest.exists():
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
    return sorted(found, key=lambda b: (ORDER.index(b.variant) if b.variant in ORDER else len(ORDER), b.name))
